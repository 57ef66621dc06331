"""End to end: population -> labels -> `egis compact` -> bundle -> tester on exported chips.

The tester's verdicts on standalone chip ONNX files (egis duts export) must equal the
in-memory pipeline (engine logits -> signatures -> scikit-learn detector) for the same chips.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from egis.cli.main import app
from egis.toolkit.bundle import DETECTOR_FILE, MANIFEST_FILE, STIMULUS_FILE, load_bundle
from egis.toolkit.chips import OnnxChip, PopulationChips, open_chip
from egis.toolkit.errors import BundleError
from egis.toolkit.tester import Tester as ChipTester

PARAMS = {"preset": "extreme", "sigma_tot": 0.3}   # no correlated field: fast chips
CHIPS, LABELLED, IMAGES, K = 150, 120, 32, 3
ROOT = Path(__file__).resolve().parents[1]


def compact_args(world: dict, out: Path) -> list[str]:
    return ["compact", str(world["model_path"]), str(world["sid"]), str(world["pop"]),
            str(world["labels"]), "-k", str(K), "-o", str(out), "--seed", "3", "--trials", "2",
            "--cache", str(world["root"] / "cache"), "-q"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, digits_cnn_path):
    from egis.toolkit.engine import population_logits
    from egis.toolkit.io import write_json, write_npz
    from egis.toolkit.labels import chip_accuracies, pass_fail, write_labels, write_side_file
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    root = tmp_path_factory.mktemp("e2e")
    model = load_model(digits_cnn_path)
    spec = PopulationSpec(model.sha256, "generic", PARAMS, seed=1, count=CHIPS,
                          model_path=str(digits_cnn_path))
    spec.save(root / "pop.json")
    pop = Population(spec, model)
    rng = np.random.default_rng(0)
    sid = root / "sid"
    sid.mkdir()
    write_npz(sid / "images.npz", images=rng.random((IMAGES, 1, 8, 8), dtype=np.float32))
    write_json(sid / "meta.json", {"model_sha256": model.sha256})
    data = rng.random((200, 1, 8, 8), dtype=np.float32)
    # the nominal model's predictions stand in for the customer's true labels
    nominal = type("Nominal", (), {"model": model, "chip_weights": lambda self, i: _nominal(model),
                                   "__len__": lambda self: 1})()
    truth = population_logits(nominal, data, [0], progress=False)[0].argmax(1)
    chips = list(range(LABELLED))
    acc = chip_accuracies(pop, data, truth, chips, progress=False)
    threshold = float(np.median(acc))
    write_labels(root / "labels.csv", chips, pass_fail(acc, threshold))
    write_side_file(root / "labels.csv", {"cutoff": "A50", "threshold": threshold,
                                         "population_sha256": spec.sha256()})
    world = {"root": root, "model_path": digits_cnn_path, "sid": sid, "pop": root / "pop.json",
             "labels": root / "labels.csv", "population": pop}
    result = CliRunner().invoke(app, compact_args(world, root / "cid"))
    assert result.exit_code == 0, result.output
    world["cid"] = root / "cid"
    # chips never seen in training, exported as standalone ONNX files
    world["chip_files"] = []
    for index in range(LABELLED, LABELLED + 12):
        path = root / f"chip{index}.onnx"
        onnx.save(pop.chip_model(index), str(path))
        world["chip_files"].append(path)
    return world


def _nominal(model):
    from egis.toolkit.model import nominal_weights

    return nominal_weights(model)


def test_compact_writes_every_output(world):
    cid = world["cid"]
    for name in ("indices.json", "images.npz", "reward.csv", "reward.png", "cid.png"):
        assert (cid / name).is_file(), name
    indices = json.loads((cid / "indices.json").read_text())
    assert len(indices["indices"]) == K and indices["iterations"] == 208
    assert len((cid / "reward.csv").read_text().splitlines()) == 209
    bundle = load_bundle(cid / "bundle")
    assert bundle.k == K and bundle.m == 10
    assert bundle.manifest["population"]["plugin"] == "generic"
    assert bundle.manifest["creation"]["indices"] == indices["indices"]


def test_same_seed_gives_same_bundle_bytes(world):
    again = world["root"] / "cid_again"
    result = CliRunner().invoke(app, compact_args(world, again))
    assert result.exit_code == 0, result.output
    for name in (STIMULUS_FILE, DETECTOR_FILE, MANIFEST_FILE):
        assert (again / "bundle" / name).read_bytes() == (world["cid"] / "bundle" / name).read_bytes(), name
    for name in ("indices.json", "images.npz", "reward.csv"):   # timings.json holds the wall clock
        assert (again / name).read_bytes() == (world["cid"] / name).read_bytes(), name


def test_tester_on_exported_chips_equals_in_memory_pipeline(world):
    from egis.compaction import BoosterConfig
    from egis.detector import train_detector
    from egis.toolkit.engine import population_logits
    from egis.toolkit.io import read_npz
    from egis.toolkit.labels import read_labels
    from egis.toolkit.signatures import compute_signatures, signatures

    pop = world["population"]
    cid = world["cid"]
    indices = json.loads((cid / "indices.json").read_text())["indices"]
    pixels = read_npz(world["sid"] / "images.npz")["images"]
    labels = read_labels(world["labels"])
    logits = compute_signatures(pop, pixels, labels.chips.tolist(), cache_dir=world["root"] / "cache",
                                progress=False)
    detector = train_detector(logits, labels.passed.astype(int), indices, BoosterConfig())
    test_chips = list(range(LABELLED, LABELLED + 12))
    x = signatures(population_logits(pop, pixels, test_chips, progress=False), indices)
    expected_pass = detector.predict(x) == 1
    expected_p = detector.predict_proba(x)[:, 1]

    tester = ChipTester(cid / "bundle")
    verdicts = [tester.test(OnnxChip(p, tester.bundle.manifest)) for p in world["chip_files"]]
    got_p = np.array([v.pass_probability for v in verdicts])
    assert [v.passed for v in verdicts] == expected_pass.tolist()
    assert np.allclose(got_p, expected_p, atol=1e-4)
    assert len(set(expected_pass.tolist())) == 2   # both verdicts occur

    simulated = PopulationChips(world["pop"], None, tester.bundle.manifest, test_chips)
    sim_verdicts = list(tester.test_many(simulated))
    assert [v.passed for v in sim_verdicts] == expected_pass.tolist()
    assert np.allclose([v.pass_probability for v in sim_verdicts], expected_p, atol=1e-5)
    assert all(v.elapsed_ms > 0 for v in verdicts + sim_verdicts)


def test_chip_of_another_model_is_refused(world, tiny_cnn_path):
    manifest = load_bundle(world["cid"] / "bundle").manifest
    with pytest.raises(BundleError, match="no input 'image'|shape"):
        OnnxChip(tiny_cnn_path, manifest)
    with pytest.raises(BundleError, match="not found"):
        open_chip(str(world["root"] / "missing.onnx"), manifest)
    with pytest.raises(BundleError, match="plugin:NAME:TARGET"):
        open_chip("plugin:generic", manifest)


def test_wrong_logit_count_is_refused(world):
    tester = ChipTester(world["cid"] / "bundle")

    class Odd:
        name = "odd"

        def logits(self, stimulus):
            return np.zeros((K, 7), np.float32)

    verdict = tester.test(Odd())
    assert not verdict.passed and verdict.pass_probability is None and "shape" in verdict.reason

    from egis.toolkit.chips import AdapterChip

    class Ragged:                             # an adapter whose answer fits no (K, M) shape
        def run(self, images):
            return np.zeros(len(images) * 10 + 1, np.float32)

    verdict = tester.test(AdapterChip(Ragged(), "plugin:ragged:0"))
    assert not verdict.passed and "logits for" in verdict.reason

    class Crashing:                           # vendor code that raises anything at all
        def run(self, images):
            raise RuntimeError("board 3 lost power")

    verdict = tester.test(AdapterChip(Crashing(), "adapter:crash:3"))
    assert not verdict.passed and "board 3 lost power" in verdict.reason


class Fixed:
    """A chip that answers with given logits."""

    def __init__(self, name, logits):
        self.name, self._logits = name, logits

    def logits(self, stimulus):
        return self._logits


def test_non_finite_chips_always_fail_with_the_reason(world):
    tester = ChipTester(world["cid"] / "bundle", allow_unknown=True)
    healthy = OnnxChip(world["chip_files"][0], tester.bundle.manifest).logits(tester.stimulus)
    for value in (np.nan, np.inf, -np.inf):
        broken = healthy.copy()
        broken[1, 2] = value
        verdict = tester.test(Fixed(f"v{value}", broken))
        assert not verdict.passed and verdict.pass_probability is None
        assert verdict.reason.startswith("non-finite response (1 of 30 logits")
    verdict = tester.test(Fixed("all-nan", np.full_like(healthy, np.nan)))
    assert not verdict.passed and "30 of 30" in verdict.reason


def test_dead_and_alien_chips_are_unknown_not_passed(world, tmp_path):
    """Signatures far from every labelled chip's fail as unknown. (This world's model is
    untrained, so its dead chip answers like the median chip: it must fail, and does, but the
    guard's dead-chip case is tested on the shipped digits model in test_guard.py.)"""
    tester = ChipTester(world["cid"] / "bundle")
    dead = onnx.load(str(world["chip_files"][0]))
    names = {layer.name for layer in world["population"].model.layers}
    for init in dead.graph.initializer:
        if init.name in names:
            init.CopyFrom(onnx.numpy_helper.from_array(
                np.zeros_like(onnx.numpy_helper.to_array(init)), init.name))
    onnx.save(dead, str(tmp_path / "dead.onnx"))
    verdict = tester.test(OnnxChip(tmp_path / "dead.onnx", tester.bundle.manifest))
    assert not verdict.passed, verdict
    healthy = OnnxChip(world["chip_files"][0], tester.bundle.manifest).logits(tester.stimulus)
    for alien in (healthy * 50, healthy + 1e3, np.zeros_like(healthy)):
        verdict = tester.test(Fixed("alien", alien))
        assert not verdict.passed and verdict.reason.startswith("unknown chip"), verdict
    # the operator may ask to judge such chips anyway: the detector decides, the reason stays
    lenient = ChipTester(world["cid"] / "bundle", allow_unknown=True)
    judged = lenient.test(Fixed("alien", healthy + 1e3))
    assert judged.pass_probability is not None and "judged anyway" in judged.reason


def test_the_guard_flags_no_healthy_chip(world):
    """Every chip of the population the bundle was made from is judged (labelled and held out)."""
    tester = ChipTester(world["cid"] / "bundle")
    chips = PopulationChips(world["pop"], world["model_path"], tester.bundle.manifest)
    flagged = [v.chip for v in tester.test_many(chips) if v.reason]
    assert flagged == [], flagged


def test_chip_of_another_model_sha_is_refused(world, tmp_path):
    manifest = json.loads((world["cid"] / "bundle" / MANIFEST_FILE).read_text())
    manifest["model"]["sha256"] = "0" * 64
    with pytest.raises(BundleError, match="was made from model"):
        OnnxChip(world["chip_files"][0], manifest)


def test_chip_with_external_data(world, tmp_path):
    """A chip whose weights live in an external data file works; one pointing outside its
    folder, or at a missing file, is refused by name."""
    from onnx.external_data_helper import convert_model_to_external_data

    tester = ChipTester(world["cid"] / "bundle")
    chip = onnx.load(str(world["chip_files"][0]))
    folder = tmp_path / "ext"
    folder.mkdir()
    convert_model_to_external_data(chip, all_tensors_to_one_file=True, location="weights.bin",
                                   size_threshold=0)
    onnx.save(chip, str(folder / "chip.onnx"))
    external = tester.test(OnnxChip(folder / "chip.onnx", tester.bundle.manifest))
    inline = tester.test(OnnxChip(world["chip_files"][0], tester.bundle.manifest))
    assert (external.passed, external.pass_probability) == (inline.passed, inline.pass_probability)
    for init in chip.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../outside.bin"
    onnx.save(chip, str(folder / "escape.onnx"))
    with pytest.raises(BundleError, match="outside the model's folder"):
        OnnxChip(folder / "escape.onnx", tester.bundle.manifest)
    (folder / "weights.bin").unlink()
    with pytest.raises(BundleError, match="is missing"):
        OnnxChip(folder / "chip.onnx", tester.bundle.manifest)


def test_cli_test_outputs(world):
    bundle = str(world["cid"] / "bundle")
    chips = [str(p) for p in world["chip_files"][:3]]
    result = CliRunner().invoke(app, ["test", bundle, *chips, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["chip"] for r in rows] == chips and all(0 <= r["pass_probability"] <= 1 for r in rows)
    result = CliRunner().invoke(app, ["test", bundle, "--population", str(world["pop"]),
                                      "--chips", f"{LABELLED}:{LABELLED + 3}", "--csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "chip,pass,pass_probability,elapsed_ms,reason" and len(lines) == 4
    by_file = {r["pass_probability"] for r in rows}
    by_pop = {float(line.split(",")[2]) for line in lines[1:]}
    assert max(abs(a - b) for a, b in zip(sorted(by_file), sorted(by_pop))) < 1e-4


def test_cli_errors_are_one_line(world, tiny_cnn_path):
    result = subprocess.run([sys.executable, "-m", "egis.cli", "test", str(world["cid"] / "bundle"),
                             str(tiny_cnn_path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: chip ") and result.stderr.count("\n") == 1


def test_tester_path_does_not_import_torch_or_sklearn():
    code = ("import sys, egis.toolkit.tester, egis.toolkit.bundle, egis.toolkit.chips, egis.cli.cmd_test\n"
            "heavy = sorted(m for m in ('torch', 'sklearn', 'scipy', 'skl2onnx', 'egis.toolkit.model',\n"
            "               'egis.toolkit.population', 'egis.plugins', 'egis.synthesis') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"tester path imported {result.stdout.strip()}"


def test_hardware_adapter_chip_gets_pixels_and_matches_the_onnx_chip(world):
    from egis.toolkit.chips import AdapterChip

    tester = ChipTester(world["cid"] / "bundle")
    reference = OnnxChip(world["chip_files"][0], tester.bundle.manifest)
    seen = []

    class FakeHardware:                       # a vendor ChipAdapter: run(pixels) -> logits
        def run(self, images):
            seen.append(images)
            from egis.toolkit.chips import Stimulus

            return reference.logits(Stimulus(inputs=images, pixels=images))   # digits: inputs == pixels

    verdict = tester.test(AdapterChip(FakeHardware(), "plugin:fake:board0"))
    assert seen[0].tobytes() == tester.stimulus.pixels.tobytes()
    expected = tester.test(reference)
    assert (verdict.passed, verdict.pass_probability) == (expected.passed, expected.pass_probability)


def test_population_testing_through_worker_processes_gives_the_same_verdicts(world):
    """egis test --population --workers 2 simulates the chips in worker processes first
    (egis.toolkit.runner); verdicts and probabilities equal the in-process run."""
    base = ["test", str(world["cid"] / "bundle"), "--population", str(world["pop"]),
            "--chips", f"{LABELLED}:{LABELLED + 6}", "--json", "-q"]
    plain = CliRunner().invoke(app, base)
    pooled = CliRunner().invoke(app, [*base, "--workers", "2"])
    assert plain.exit_code == 0 and pooled.exit_code == 0, pooled.output
    strip = lambda rows: [(r["chip"], r["passed"], r["pass_probability"]) for r in rows]  # noqa: E731
    assert strip(json.loads(pooled.stdout)) == strip(json.loads(plain.stdout))
