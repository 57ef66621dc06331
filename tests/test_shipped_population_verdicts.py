"""The acceptance check of the bundle: `egis test` verdicts on the exported bundle equal the
in-memory pipeline's predictions for ALL evaluation chips of a shipped population.

Uses the shipped digits population with extreme variation (no correlated field, so drawing
1000 chips takes seconds) and a small data-free stimulus set; a few minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
POPS = ROOT / "models/digits/populations/extreme"
pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (POPS / "evaluation.json").exists(), reason="shipped digits populations absent")
def test_tester_verdicts_equal_in_memory_predictions_for_every_evaluation_chip(tmp_path):
    from egis.cli.main import app
    from egis.baselines import make_baseline
    from egis.detector import train_detector
    from egis.synthesis import SynthesisConfig
    from egis.toolkit.chips import PopulationChips
    from egis.toolkit.engine import population_logits
    from egis.toolkit.io import read_json
    from egis.toolkit.labels import read_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec
    from egis.toolkit.signatures import signatures
    from egis.toolkit.tester import Tester

    model_path = ROOT / "models/digits/model.onnx"
    model = load_model(model_path)
    sid = tmp_path / "sid"
    make_baseline(model, "uniform", sid, SynthesisConfig(images=48, seed=5))
    labels_csv = POPS / "labelled_A50.csv"
    result = CliRunner().invoke(app, ["compact", str(model_path), str(sid), str(POPS / "labelled.json"),
                                      str(labels_csv), "-k", "4", "-o", str(tmp_path / "cid"),
                                      "--seed", "1", "--trials", "2", "-q"])
    assert result.exit_code == 0, result.output
    indices = read_json(tmp_path / "cid" / "indices.json")["indices"]

    # In memory: the same detector, retrained from the same signatures, on every evaluation chip.
    images = np.load(sid / "images.npz")["images"]
    labelled = Population(PopulationSpec.load(POPS / "labelled.json"), model)
    evaluation = Population(PopulationSpec.load(POPS / "evaluation.json"), model)
    labels = read_labels(labels_csv)
    lab_logits = population_logits(labelled, images[indices], progress=False)
    detector = train_detector(lab_logits, labels.passed.astype(int), list(range(len(indices))))
    eval_logits = population_logits(evaluation, images[indices], progress=False)
    in_memory = detector.predict(signatures(eval_logits, list(range(len(indices))))).astype(bool)

    tester = Tester(tmp_path / "cid" / "bundle")
    chips = PopulationChips(POPS / "evaluation.json", model_path, tester.bundle.manifest)
    verdicts = np.array([v.passed for v in tester.test_many(chips)])
    assert len(verdicts) == len(evaluation) == 1000
    assert verdicts.any() and not verdicts.all()
    np.testing.assert_array_equal(verdicts, in_memory)
