"""The signature guard on a trained model: dead and broken chips are unknown, healthy held-out
chips are not."""

from __future__ import annotations

import numpy as np
import pytest

from egis.toolkit.guard import SignatureGuard, nonfinite_reason
from egis.toolkit.signatures import signatures

K = 4


@pytest.fixture(scope="module")
def digits_world():
    from egis.models.registry import reference_model_path
    from egis.toolkit.data import digits_split
    from egis.toolkit.engine import ChipSimulator, population_logits
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(reference_model_path("digits"))
    spec = PopulationSpec(model.sha256, "generic", {"preset": "typical", "sigma_tot": 0.3,
                                                    "placement": "independent", "lam": 0.05}, seed=5, count=160)
    pop = Population(spec, model)
    images = digits_split()[2][:K]
    logits = population_logits(pop, images, range(160), progress=False)
    sim = ChipSimulator(model, threads=1)
    dead = {name: np.zeros_like(w) for name, w in sim.nominal_weights().items()}
    dead_logits = sim.logits(dead, images)
    return model, logits, dead_logits


def test_dead_chip_is_unknown_and_held_out_chips_are_not(digits_world):
    model, logits, dead_logits = digits_world
    guard = SignatureGuard.fit(signatures(logits[:120], list(range(K))), m=model.num_classes)
    held_out = signatures(logits[120:], list(range(K)))
    assert [guard.check(row) for row in held_out].count(None) == len(held_out)
    reason = guard.check(dead_logits.reshape(-1))
    assert reason is not None and reason.startswith("unknown chip"), reason
    half_dead = logits[121].copy()
    half_dead[2:] = dead_logits[2:]
    assert guard.check(half_dead.reshape(-1)) is not None


def test_guard_round_trips_and_rejects_malformed_dicts(digits_world):
    model, logits, _ = digits_world
    sig = signatures(logits[:60], list(range(K)))
    guard = SignatureGuard.fit(sig, m=model.num_classes)
    again = SignatureGuard.from_dict(guard.to_dict(), sig.shape[1])
    assert [again.score(r) for r in sig] == [guard.score(r) for r in sig]
    for key, bad in (("low", [1.0]), ("limit", -1), ("scale", ["x"] * sig.shape[1]), ("activity_low", [0.0]), ("m", 7),
                     ("version", 9), ("components", [[0.0]]), ("residual_scale", 0)):
        data = guard.to_dict()
        data[key] = bad
        with pytest.raises(ValueError, match="guard"):
            SignatureGuard.from_dict(data, sig.shape[1])
    with pytest.raises(ValueError):
        SignatureGuard.fit(np.full((5, 8), np.nan), m=2)


def test_nonfinite_reason():
    assert nonfinite_reason(np.zeros(6)) is None
    assert nonfinite_reason(np.array([0, np.nan, np.inf, 1.0])) == "non-finite response (2 of 4 logits are NaN/inf)"
