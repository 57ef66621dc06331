"""The variation-aware synthesis loss (method egis-va): the spread term, training with it,
its records and settings, and the CLI's checks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:
    pytest.skip("onnx2torch is not installed", allow_module_level=True)

from egis.synthesis import SynthesisConfig, build_classifier, sample, synthesize, train_generator  # noqa: E402
from egis.synthesis.training import finalize_generator  # noqa: E402
from egis.synthesis.variation import chip_classifiers, top_class_spread  # noqa: E402
from egis.toolkit.errors import EgisError  # noqa: E402
from egis.toolkit.io import read_json, read_npz  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402
from egis.toolkit.population import PopulationSpec  # noqa: E402

TINY = SynthesisConfig(iterations=4, batch=32, images=40, checkpoint_every=2, early_stop=False, threads=1)


@pytest.fixture()
def chips_spec(digits_cnn_path: Path, tmp_path: Path) -> Path:
    model = load_model(digits_cnn_path)
    path = tmp_path / "synthesis_chips.json"
    PopulationSpec(model.sha256, "generic", {"preset": "extreme"}, seed=7, count=6,
                   model_path=str(digits_cnn_path)).save(path)
    return path


def test_spread_is_zero_when_chips_agree_and_half_when_they_split() -> None:
    nominal = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    assert float(top_class_spread(nominal, [nominal, nominal.clone()])) == pytest.approx(0.0, abs=1e-7)
    sure_yes = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    sure_no = torch.tensor([[0.0, 50.0], [50.0, 0.0]])
    assert float(top_class_spread(nominal, [sure_yes, sure_no])) == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError):
        top_class_spread(nominal, [])


def test_chip_classifiers_are_the_populations_chips(digits_cnn_path: Path, chips_spec: Path) -> None:
    from egis.toolkit.population import open_population

    model = load_model(digits_cnn_path)
    chips = chip_classifiers(model, chips_spec, 3)
    x = torch.rand(8, *model.contract.image_shape)
    nominal = build_classifier(model)(x)
    population = open_population(chips_spec, model)
    from egis.toolkit.engine import ChipSimulator

    simulator = ChipSimulator(model, threads=1)
    for index, chip in enumerate(chips):
        got = chip(x).detach().numpy()
        assert not np.allclose(got, nominal.numpy(), atol=1e-3)       # a chip, not the model
        expected = simulator.logits(population.chip_weights(index), x.numpy())
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)  # the engine's chip
        assert not any(p.requires_grad for p in chip.parameters())
    with pytest.raises(EgisError, match="holds 6 chips"):
        chip_classifiers(model, chips_spec, 7)


def test_weight_zero_is_the_seeds_training(digits_cnn_path: Path, chips_spec: Path) -> None:
    model = load_model(digits_cnn_path)
    plain = train_generator(model, TINY)
    same = train_generator(model, replace(TINY, variation=str(chips_spec), variation_weight=0.0))
    assert [r.loss for r in plain.history] == [r.loss for r in same.history]
    aware = train_generator(model, replace(TINY, variation=str(chips_spec), variation_weight=1.0,
                                           variation_chips=3, variation_batch=16))
    assert plain.history[0].h_c == aware.history[0].h_c         # same first batch and generator
    assert aware.history[0].loss < plain.history[0].loss        # the bonus is subtracted
    assert all(r.spread > 0 for r in aware.history)
    assert plain.history[-1].h_c != aware.history[-1].h_c       # different updates


def test_the_term_raises_the_chips_spread_on_the_sampled_images(digits_cnn_path: Path, chips_spec: Path) -> None:
    """What the method is for: images the fab's chips disagree on more than the seed's do."""
    model = load_model(digits_cnn_path)
    config = replace(TINY, iterations=60, batch=64, images=256, hc_warmup=0)
    chips = chip_classifiers(model, chips_spec, 4)
    classifier = build_classifier(model)

    def spread_of(cfg: SynthesisConfig) -> float:
        generator = finalize_generator(train_generator(model, cfg).pixel_generator, cfg)
        _, images = sample(generator, cfg.images, cfg.seed)
        x = torch.from_numpy(images)
        with torch.no_grad():
            return float(top_class_spread(classifier(x), [c(x) for c in chips]))

    seed_loss = spread_of(config)
    aware = spread_of(replace(config, variation=str(chips_spec), variation_weight=2.0, variation_chips=4,
                              variation_batch=64))
    assert aware > 1.2 * seed_loss, (aware, seed_loss)   # measured: 0.256 against 0.186


def test_sid_records_the_variation_and_is_reproducible(digits_cnn_path: Path, chips_spec: Path,
                                                       tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    config = replace(TINY, variation=str(chips_spec), variation_weight=1.0, variation_chips=2, variation_batch=8)
    synthesize(model, tmp_path / "a", config)
    synthesize(model, tmp_path / "b", config)
    meta = read_json(tmp_path / "a" / "meta.json")
    assert meta["kind"] == "egis-va"
    assert meta["variation"] == {"population": chips_spec.name,
                                 "spec_sha256": PopulationSpec.load(chips_spec).sha256()}
    assert meta["training"]["final_spread"] > 0
    assert (tmp_path / "a" / "training.csv").read_text().splitlines()[0] == "iteration,loss,h_c,h_s,spread"
    a, b = (read_npz(tmp_path / n / "images.npz")["images"] for n in "ab")
    assert a.tobytes() == b.tobytes()


def test_the_variation_settings_are_part_of_the_resume_key(digits_cnn_path: Path, chips_spec: Path,
                                                           tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    config = replace(TINY, variation=str(chips_spec), variation_weight=1.0, variation_chips=2, variation_batch=8)
    ckpt = tmp_path / "ckpt"
    train_generator(model, replace(config, iterations=2), checkpoint_dir=ckpt)
    resumed = train_generator(model, config, checkpoint_dir=ckpt, resume=True)
    straight = train_generator(model, config)
    assert [r.spread for r in resumed.history] == [r.spread for r in straight.history]
    with pytest.raises(EgisError, match="used"):
        train_generator(model, replace(config, variation_weight=2.0), checkpoint_dir=ckpt, resume=True)
    assert "variation" not in TINY.training_key()    # checkpoints of the seed's loss still resume


@pytest.mark.parametrize("change, message", [
    ({"variation_weight": 1.0}, "needs --variation"),
    ({"variation": "x.json", "variation_weight": -1.0}, "0 or more"),
    ({"variation": "x.json", "variation_weight": 1.0, "variation_chips": 1}, "at least 2"),
    ({"variation": "x.json", "variation_weight": 1.0, "variation_batch": 999}, "between 1 and"),
])
def test_settings_are_validated(change: dict, message: str) -> None:
    with pytest.raises(EgisError, match=message):
        replace(TINY, **change).validate()


def _egis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egis.cli", *args], capture_output=True, text=True)


def test_cli_refuses_a_missing_variation_file_before_training(digits_cnn_path: Path, tmp_path: Path) -> None:
    result = _egis("synthesize", str(digits_cnn_path), "-o", str(tmp_path / "sid"),
                   "--variation", str(tmp_path / "nope.json"), "--iterations", "2")
    assert result.returncode == 2
    assert "no such population file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "sid").exists()


def test_evaluate_needs_the_variation_aware_set_for_its_method(digits_cnn_path: Path, tmp_path: Path) -> None:
    pops = tmp_path / "pops" / "typical"
    pops.mkdir(parents=True)
    (pops / "labelled.json").write_text("{}")
    result = _egis("evaluate", str(digits_cnn_path), "--sid", str(tmp_path / "sid"), "--populations",
                   str(tmp_path / "pops"), "--variability", "typical", "-o", str(tmp_path / "eval"),
                   "--methods", "egis,egis-va")
    assert result.returncode == 2
    assert "needs --sid-va" in result.stderr and "Traceback" not in result.stderr
