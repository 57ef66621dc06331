"""Synthetic sets of the seed's loss variants (egis-va, egis-tv) as stimuli of their own:
the kind a set is written as, and the evaluation's refusal of a set made with another loss."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from egis.methods import METHOD_REGISTRY, SELECT_CANDIDATES, STIMULUS_REGISTRY
from egis.stimuli import check_sid_variant, variants_used
from egis.synthesis.config import SynthesisConfig
from egis.synthesis.run import sid_kind
from egis.toolkit.errors import DataError


def _sid(tmp_path: Path, name: str, **weights: float) -> Path:
    sid = tmp_path / name
    sid.mkdir()
    hyper = SynthesisConfig().to_dict() | weights
    (sid / "meta.json").write_text(json.dumps({"kind": "egis", "hyperparameters": hyper}))
    return sid


def test_each_loss_variant_is_a_registered_stimulus_with_its_method() -> None:
    base = SynthesisConfig()
    assert sid_kind(base) == "egis"
    assert sid_kind(replace(base, tv_weight=10.0)) == "egis-tv"
    assert sid_kind(replace(base, variation_weight=1.0, tv_weight=10.0)) == "egis-va"
    for kind in ("egis-va", "egis-tv"):
        assert STIMULUS_REGISTRY[kind].synthesis_weight in base.to_dict()
        assert METHOD_REGISTRY[kind].stimulus == kind
        assert (kind, "anneal") in SELECT_CANDIDATES


def test_a_set_is_refused_for_a_variant_it_was_not_made_with(tmp_path: Path) -> None:
    seed_loss = _sid(tmp_path, "seed")
    prior = _sid(tmp_path, "tv", tv_weight=10.0)
    check_sid_variant("egis-tv", prior)
    with pytest.raises(DataError, match="not made for 'egis-tv'"):
        check_sid_variant("egis-tv", seed_loss)
    with pytest.raises(DataError, match="not made for 'egis-va'"):
        check_sid_variant("egis-va", prior)
    # a set of both terms is measured as the variation-aware one, never under the prior's name
    both = _sid(tmp_path, "both", tv_weight=10.0, variation_weight=1.0)
    check_sid_variant("egis-va", both)
    with pytest.raises(DataError, match="is an 'egis-va' set"):
        check_sid_variant("egis-tv", both)
    with pytest.raises(DataError, match="no meta.json"):
        check_sid_variant("egis-tv", tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{")
    with pytest.raises(DataError, match="damaged"):
        check_sid_variant("egis-tv", tmp_path / "broken")


def test_egis_select_measures_every_given_variant_among_its_candidates(tmp_path: Path) -> None:
    given = {"egis-va": tmp_path / "va", "egis-tv": tmp_path / "tv"}
    assert variants_used(["egis", "egis-tv"], given) == ["egis-tv"]
    assert variants_used(["egis-tv-distil"], given) == ["egis-tv"]      # distilled on the prior's images
    assert variants_used(["egis-both-distil"], given) == ["egis-tv"]    # a pool that holds them
    assert variants_used(["egis", "egis-select"], given) == ["egis-va", "egis-tv"]
    assert variants_used(["egis", "uniform"], given) == []
    assert variants_used(["egis-select"], {}) == []


def test_the_both_pool_is_the_seed_set_then_the_prior_set_and_only_that(digits_cnn_path: Path,
                                                                         tmp_path: Path) -> None:
    from egis.baselines import make_baseline
    from egis.stimuli import load_stimuli
    from egis.synthesis.sid import read_sid_images
    from egis.toolkit.model import load_model

    model = load_model(digits_cnn_path)
    seed_sid, prior_sid = tmp_path / "seed", tmp_path / "prior"   # two image sets (load_stimuli reads images only)
    for seed, sid in enumerate((seed_sid, prior_sid)):
        make_baseline(model, "untrained", sid, SynthesisConfig(images=4, seed=seed, batch=4))
    both = load_stimuli(model, seed_sid, None, 3, seed=0, work_dir=tmp_path / "w", methods=["egis-both-distil"],
                        variant_sids={"egis-tv": prior_sid})
    assert set(both) == {"egis-both"}        # the parts are built for the pool, not measured on their own
    expected = np.concatenate([read_sid_images(seed_sid, model.sha256)[:3], read_sid_images(prior_sid, model.sha256)[:3]])
    np.testing.assert_array_equal(both["egis-both"], expected)
    assert load_stimuli(model, seed_sid, None, 3, seed=0, work_dir=tmp_path / "w",
                        methods=["egis-both-distil"]) == {}     # no prior set given: no pool
    together = load_stimuli(model, seed_sid, None, 3, seed=0, work_dir=tmp_path / "w",
                            methods=["egis", "egis-both-distil"], variant_sids={"egis-tv": prior_sid})
    assert set(together) == {"egis", "egis-both"}


def _evaluate(tmp_path: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    pops = tmp_path / "pops" / "typical"
    pops.mkdir(parents=True, exist_ok=True)
    (pops / "labelled.json").write_text("{}")
    return subprocess.run([sys.executable, "-m", "egis.cli", "evaluate", str(model), "--sid", str(tmp_path / "sid"),
                           "--populations", str(tmp_path / "pops"), "--variability", "typical",
                           "-o", str(tmp_path / "eval"), "--methods", "egis,egis-tv", *extra],
                          capture_output=True, text=True)


def test_evaluate_checks_the_prior_set_before_any_work(digits_cnn_path: Path, tmp_path: Path) -> None:
    missing = _evaluate(tmp_path, digits_cnn_path)
    assert missing.returncode == 2 and "needs --sid-tv" in missing.stderr
    pool = _evaluate(tmp_path, digits_cnn_path, "--methods", "egis-both-distil")
    assert pool.returncode == 2 and "egis-both-distil needs --sid-tv" in pool.stderr
    wrong = _evaluate(tmp_path, digits_cnn_path, "--sid-tv", str(_sid(tmp_path, "seed")))
    assert wrong.returncode == 2 and "not made for 'egis-tv'" in wrong.stderr
    for result in (missing, pool, wrong):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "eval").exists()
