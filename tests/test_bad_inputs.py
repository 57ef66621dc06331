"""A corpus of bad inputs, faults and interrupts, as a careless or hostile user would give them.

Every case runs the real command line (``egis.cli.main.main``, in-process for speed) and must
end with one line on stderr, exit code 2 (130 for Ctrl-C), no traceback, the reason named,
and nothing new left at the output path.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from egis.cli.main import main
from egis.toolkit.bundle import MANIFEST_FILE, SELF_HASH, canonical_json
from egis.toolkit.io import sha256_bytes, write_json, write_npz
from egis.toolkit.labels import write_labels, write_side_file

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of ``egis ARGS``; asserts the one-line contract."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    if code:
        lines = [line for line in err.splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith(("error: ", "interrupted")), err
        assert "Traceback" not in err
    return code, err


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_cnn_path):
    """A model, a population spec, labels and an SID that are all fine."""
    from egis.toolkit.model import load_model
    from egis.toolkit.population import PopulationSpec

    root = tmp_path_factory.mktemp("bad")
    model = load_model(tiny_cnn_path)
    spec = PopulationSpec(model.sha256, "generic", {"preset": "extreme"}, seed=0, count=40,
                          model_path=str(tiny_cnn_path))
    spec.save(root / "pop.json")
    chips = list(range(30))
    write_labels(root / "labels.csv", chips, np.arange(30) % 2 == 0)
    write_side_file(root / "labels.csv", {"cutoff": "A50", "threshold": 0.5, "count": 30,
                                         "population_sha256": spec.sha256()})
    rng = np.random.default_rng(0)
    shape = model.contract.image_shape
    (root / "sid").mkdir()
    write_npz(root / "sid" / "images.npz", images=rng.random((16, *shape), dtype=np.float32))
    write_json(root / "sid" / "meta.json", {"model_sha256": model.sha256})
    write_npz(root / "data.npz", x=rng.random((20, *shape), dtype=np.float32),
              y=rng.integers(0, model.num_classes, 20))
    (root / "a_file").write_text("not a folder")
    return {"root": root, "model": str(tiny_cnn_path), "pop": str(root / "pop.json"),
            "labels": str(root / "labels.csv"), "sid": str(root / "sid"), "data": str(root / "data.npz"),
            "spec": spec}


def _model_variant(world, name: str, edit) -> str:
    proto = onnx.load(world["model"])
    edit(proto)
    path = world["root"] / f"{name}.onnx"
    onnx.save(proto, str(path))
    return str(path)


def _nan_weights(proto):
    init = proto.graph.initializer[0]
    values = numpy_helper.to_array(init).copy()
    values.flat[0] = np.nan
    init.CopyFrom(numpy_helper.from_array(values, init.name))


def _custom_op(proto):
    node = onnx.helper.make_node("Relu", [proto.graph.output[0].name + "_pre"], [proto.graph.output[0].name],
                                 domain="com.vendor", name="vendor_relu")
    last = proto.graph.node[-1]
    last.output[0] = proto.graph.output[0].name + "_pre"
    proto.graph.node.append(node)
    proto.opset_import.append(onnx.helper.make_opsetid("com.vendor", 1))


# ------------------------------------------------------------------------------- models
@pytest.mark.parametrize("variant, expected", [
    ("nan", "NaN/Inf values"),
    ("custom", "custom domain 'com.vendor'"),
])
def test_models_that_cannot_be_tested_are_refused_everywhere(world, capsys, variant, expected):
    path = _model_variant(world, variant, {"nan": _nan_weights, "custom": _custom_op}[variant])
    for args in (["inspect", path], ["duts", "make", path, "-o", str(world["root"] / f"{variant}.json")]):
        code, err = run(capsys, *args)
        assert code == 2 and expected in err, err
    assert not (world["root"] / f"{variant}.json").exists()


def test_model_external_data_missing_or_outside(world, capsys, tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data

    proto = onnx.load(world["model"])
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    code, err = run(capsys, "inspect", str(tmp_path / "m.onnx"))
    assert code == 0
    (tmp_path / "w.bin").rename(tmp_path / "moved.bin")
    code, err = run(capsys, "inspect", str(tmp_path / "m.onnx"))
    assert code == 2 and "'w.bin'" in err and "missing" in err
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save(proto, str(tmp_path / "evil.onnx"))
    code, err = run(capsys, "inspect", str(tmp_path / "evil.onnx"))
    assert code == 2 and "outside the model's folder" in err


# ------------------------------------------------------------------------- output paths
@pytest.mark.parametrize("command", ["duts-make", "duts-export", "label", "compact", "synthesize", "evaluate"])
@pytest.mark.parametrize("where", ["existing-folder", "under-a-file"])
def test_bad_output_paths_fail_before_any_work(world, capsys, command, where):
    root = world["root"]
    target = {"existing-folder": root / "sid" if command in ("duts-make", "duts-export", "label") else root / "a_file",
              "under-a-file": root / "a_file" / "out"}[where]
    args = {"duts-make": ["duts", "make", world["model"], "-o", str(target)],
            "duts-export": ["duts", "export", world["pop"], "0", "-o", str(target)],
            "label": ["label", world["model"], world["pop"], "--data", world["data"], "-o", str(target)],
            "compact": ["compact", world["model"], world["sid"], world["pop"], world["labels"], "-o", str(target)],
            "synthesize": ["synthesize", world["model"], "-o", str(target), "--iterations", "5000"],
            "evaluate": ["evaluate", world["model"], "--sid", world["sid"], "--populations", str(root),
                         "-o", str(target)]}[command]
    started = time.perf_counter()
    code, err = run(capsys, *args)
    assert code == 2, err
    assert any(text in err for text in ("is a folder", "is a file", "not a folder", "not a directory")), err
    assert time.perf_counter() - started < 30      # refused up front, not after training
    assert (root / "a_file").is_file() and (root / "a_file").read_text() == "not a folder"


# ------------------------------------------------------------------- population specs
@pytest.mark.parametrize("field, value, expected", [
    ("params", [1, 2], "params must be an object"),
    ("model_sha256", 12345, "model_sha256 must be a sha256"),
    ("plugin", None, "plugin must be a plugin name"),
    ("count", True, "must be integers"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("format_version", 99, "format version 99"),
])
def test_malformed_population_specs(world, capsys, field, value, expected):
    data = json.loads(Path(world["pop"]).read_text())
    data[field] = value
    bad = world["root"] / f"pop_{field}.json"
    bad.write_text(json.dumps(data))
    code, err = run(capsys, "label", world["model"], str(bad), "--data", world["data"],
                    "-o", str(world["root"] / "never.csv"))
    assert code == 2 and expected in err, err
    assert not (world["root"] / "never.csv").exists()


# ------------------------------------------------------------------------- labelling
def test_label_checks_its_cutoff_before_simulating(world, capsys, tmp_path):
    out = tmp_path / "l.csv"
    base = ["label", world["model"], world["pop"], "--data", world["data"], "-o", str(out)]
    (tmp_path / "nothreshold.json").write_text(json.dumps({"cutoff": "A50"}))
    (tmp_path / "broken.json").write_text("{not json")
    for extra, expected in ((["--cutoff-from", str(tmp_path / "missing.json")], "file not found"),
                            (["--cutoff-from", str(tmp_path / "nothreshold.json")], "no numeric threshold"),
                            (["--cutoff-from", str(tmp_path / "broken.json")], "is not a labels side file"),
                            (["--cutoff", "B50"], "neither A<p>"),
                            (["--cutoff", "A150"], "between 0 and 100"),
                            (["--chips", "x:y"], "is not START:STOP")):
        code, err = run(capsys, *base, *extra)
        assert code == 2, (extra, err)
        if expected:
            assert expected in err, (extra, err)
        assert not out.exists() and not out.with_suffix(".json").exists()


def test_class_map_json_errors(tmp_path):
    from egis.toolkit.data import _class_order
    from egis.toolkit.errors import DataError

    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "typed.json").write_text(json.dumps({"cat": "zero"}))
    for name, expected in (("bad.json", "not valid JSON"), ("typed.json", "JSON list of class names")):
        with pytest.raises(DataError, match=expected):
            _class_order(["cat"], str(tmp_path / name))


def test_ties_at_a_cutoff_warn(world, capsys, tmp_path):
    from egis.toolkit.labels import Cutoff, tie_warning

    accuracies = np.array([0.9] * 15 + [0.5] * 5)
    rule = Cutoff.parse("A50")
    threshold = rule.threshold(accuracies)
    assert threshold == 0.9 and float(np.mean(accuracies >= threshold)) == 0.75
    assert "15 chips share the threshold accuracy 0.9000 and ties pass" in tie_warning(rule, accuracies, threshold)
    assert tie_warning(rule, np.linspace(0, 1, 20), rule.threshold(np.linspace(0, 1, 20))) is None



def test_a_cutoff_near_chance_accuracy_warns():
    """Labels whose threshold sits at chance (most chips broken) are flagged; a working
    population's are not, nor a threshold just past the margin."""
    from egis.toolkit.labels import CHANCE_MARGIN, chance_warning

    message = chance_warning(0.117, 10, 1000)
    assert "within 5 points of chance (0.1000 for 10 classes" in message and "~0.9 points" in message
    assert chance_warning(0.601, 10, 1000) is None
    assert chance_warning(0.1 + CHANCE_MARGIN, 10, 256) is None
    assert chance_warning(0.52, 2, 360) is not None

# --------------------------------------------------------------------------- labels files
@pytest.mark.parametrize("problem, expected", [
    ("pass-value", "pass must be 0 or 1"),
    ("short", "rows but its side file says 30 chips"),
    ("side-json", "is damaged"),
    ("threshold-type", "threshold must be a number"),
    ("no-header", "expected a header 'dut,pass'"),
])
def test_bad_labels_files_are_refused(world, capsys, tmp_path, problem, expected):
    labels = tmp_path / "labels.csv"
    shutil.copy(world["labels"], labels)
    shutil.copy(Path(world["labels"]).with_suffix(".json"), labels.with_suffix(".json"))
    rows = labels.read_text().splitlines()
    if problem == "pass-value":
        rows[3] = rows[3].split(",")[0] + ",2"
    elif problem == "short":
        rows = rows[:-4]
    elif problem == "no-header":
        rows = rows[1:]
    labels.write_text("\n".join(rows) + "\n")
    if problem == "side-json":
        labels.with_suffix(".json").write_text("{")
    if problem == "threshold-type":
        labels.with_suffix(".json").write_text(json.dumps({"threshold": "high", "count": 30}))
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], str(labels), "-o", str(out))
    assert code == 2 and expected in err, err
    assert not out.exists()


# ----------------------------------------------------------------------------- SID images
def test_sid_with_nan_pixels_is_refused_and_nothing_is_left(world, capsys, tmp_path):
    sid = tmp_path / "sid"
    sid.mkdir()
    images = np.random.default_rng(1).random((16, *np.load(Path(world["sid"]) / "images.npz")["images"].shape[1:]),
                                             dtype=np.float32)
    images[3, 0, 0, 0] = np.nan
    write_npz(sid / "images.npz", images=images)
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], str(sid), world["pop"], world["labels"], "-o", str(out))
    assert code == 2 and "1 of 16 images hold NaN/Inf pixels" in err
    assert not out.exists()


def test_compact_failure_after_signatures_leaves_no_output(world, capsys, tmp_path, monkeypatch):
    """A failure after the signature cache was written removes the fresh CID folder with it."""
    import egis.pipeline as pipeline

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "compact", boom)
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "-q")
    assert code == 2 and "unexpected RuntimeError: disk on fire" in err
    assert not out.exists()


def test_compact_k_out_of_range_creates_nothing(world, capsys, tmp_path):
    out = tmp_path / "cid"
    for k in ("0", "16", "99"):
        code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                        "-o", str(out), "-k", k)
        assert code == 2 and "-k must be between 1 and 15" in err, err
        assert not out.exists()


def test_compact_validation_choice_is_checked_and_recorded(world, capsys, tmp_path):
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--validation", "loo")
    assert code == 2 and "--validation must be splits or folds" in err and not out.exists()
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--validation", "folds", "--trials", "2", "-q", "--no-bundle")
    assert code == 0, err
    assert json.loads((out / "indices.json").read_text())["settings"]["validation"] == "folds"


def test_compact_select_is_checked_and_records_its_choice(world, capsys, tmp_path):
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--select", "--prefilter", "spread")
    assert code == 2 and "--select chooses the annealing reward itself" in err and not out.exists()
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--select", "--trials", "2", "-q", "--no-bundle")
    assert code == 0, err
    chosen = json.loads((out / "indices.json").read_text())["settings"]["select"]
    assert chosen["chosen"] in chosen["candidates"] and set(chosen["candidates"]) == {"anneal", "folds", "cost", "spread", "relevance"}
    assert chosen["held_out_accuracy"] == max(chosen["candidates"].values())


def test_compact_escape_confidence_is_checked_and_travels_in_the_bundle(world, capsys, tmp_path):
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--escape-confidence", "75%")
    assert code == 2 and "give --max-escape too" in err and not out.exists()
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--max-escape", "20%", "--escape-confidence", "1.5")
    assert code == 2 and "--escape-confidence must lie strictly between 0 and 1" in err and not out.exists()
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--max-escape", "20%", "--escape-confidence", "75%", "--trials", "2", "-q")
    assert code == 0, err
    budget = json.loads((out / "bundle" / "manifest.json").read_text())["escape_budget"]
    assert budget["confidence"] == 0.75 and budget["max_escape"] == 0.2
    assert budget["validation_escape"] <= budget["validation_escape_bound"]
    assert budget["validation_escape_bound"] <= 0.2 or not budget["met"]


def test_evaluate_checks_its_escape_confidence_before_any_work(world, capsys, tmp_path):
    pops = tmp_path / "pops" / "typical"
    pops.mkdir(parents=True)
    (pops / "labelled.json").write_text(Path(world["pop"]).read_text())
    out = tmp_path / "eval"
    base = ["evaluate", world["model"], "--sid", world["sid"], "--populations", str(tmp_path / "pops"),
            "--variability", "typical", "--methods", "egis,uniform", "-o", str(out)]
    a_file = tmp_path / "responses.npy"
    a_file.write_bytes(b"not a folder")
    for extra, expected in ((["--escape-confidence", "75%"], "give --max-escape too"),
                            (["--max-escape", "1%", "--escape-confidence", "100%"], "strictly between 0 and 1"),
                            (["--responses", str(a_file)], "is not a folder")):
        code, err = run(capsys, *base, *extra)
        assert code == 2 and expected in err, (extra, err)
        assert not out.exists()


# --------------------------------------------------------------------------------- bundles
@pytest.fixture(scope="module")
def bundle(world, tmp_path_factory):
    from test_bundle import detector_bytes, info

    from egis.toolkit.bundle import write_bundle

    rng = np.random.default_rng(0)
    pixels = rng.random((3, 1, 8, 8), dtype=np.float32)
    return write_bundle(tmp_path_factory.mktemp("b") / "bundle", pixels, detector_bytes(), info(), pixels)


def _rehashed(bundle: Path, tmp_path: Path, edit) -> Path:
    """A copy of the bundle whose manifest was edited and re-hashed: it passes the self-hash."""
    copy = tmp_path / "forged"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    edit(manifest)
    manifest.pop(SELF_HASH)
    manifest[SELF_HASH] = sha256_bytes(canonical_json(manifest))
    (copy / MANIFEST_FILE).write_bytes(canonical_json(manifest))
    return copy


@pytest.mark.parametrize("edit, expected", [
    (lambda m: m.pop("m"), "field 'm'"),
    (lambda m: m.update(k="3"), "field 'k'"),
    (lambda m: m["model"].pop("input_name"), "field 'model.input_name'"),
    (lambda m: m["model"].update(sha256=12), "field 'model.sha256'"),
    (lambda m: m["detector"].update(pass_column=5), "field 'detector.pass_column'"),
    (lambda m: m["stimulus"].update(inputs_shape="big"), "field 'stimulus.inputs_shape'"),
    (lambda m: m.pop("guard"), "'guard' must be an object"),
    (lambda m: m["guard"].update(low=[0.0]), "'guard.low' must be a list"),
    (lambda m: m["cutoff"].update(threshold="0.8"), "field 'cutoff.threshold'"),
    (lambda m: m.update(format_version=1), "version 1 bundles carry no signature guard"),
])
def test_rehashed_manifests_with_bad_fields_are_one_line_errors(bundle, capsys, tmp_path, edit, expected):
    forged = _rehashed(bundle, tmp_path, edit)
    code, err = run(capsys, "test", str(forged), str(tmp_path / "nochip.onnx"))
    assert code == 2 and expected in err, err


# --------------------------------------------------------------------------------- Ctrl-C
@pytest.mark.slow
def test_ctrl_c_prints_interrupted_exits_130_and_leaves_nothing(world, tmp_path):
    out = tmp_path / "sid"
    proc = subprocess.Popen([sys.executable, "-m", "egis.cli", "synthesize", world["model"], "-o", str(out),
                             "--iterations", "100000", "--no-early-stop", "--checkpoint-every", "100000",
                             "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not out.exists()


def test_evaluate_refuses_egis_distil_without_its_own_unlabelled_chips(world, capsys, tmp_path):
    pops = tmp_path / "pops" / "typical"
    pops.mkdir(parents=True)
    for name in ("labelled", "evaluation"):
        spec = json.loads(Path(world["pop"]).read_text())
        spec["seed"] = {"labelled": 1, "evaluation": 2}[name]
        (pops / f"{name}.json").write_text(json.dumps(spec))
    out = tmp_path / "eval"
    base = ["evaluate", world["model"], "--sid", world["sid"], "--populations", str(tmp_path / "pops"),
            "--variability", "typical", "--methods", "egis,egis-distil", "-o", str(out)]
    code, err = run(capsys, *base)
    assert code == 2 and "no unlabelled.json" in err, err
    spec["seed"] = 1
    (pops / "unlabelled.json").write_text(json.dumps(spec))
    code, err = run(capsys, *base)
    assert code == 2 and "is the labelled population itself" in err, err
    spec["count"] = spec["count"] + 5                     # more chips, same seed: the same chips again
    (pops / "unlabelled.json").write_text(json.dumps(spec))
    code, err = run(capsys, *base)
    assert code == 2 and "labelled chips' seed" in err, err
    assert not out.exists()


def test_compact_distils_from_unlabelled_chips_into_a_bundle_the_tester_runs(world, capsys, tmp_path):
    """--unlabelled: checked before any work; the bundle records the distillation, its budget
    threshold comes from folds, the same seed gives the same bytes, and egis test runs it."""
    out = tmp_path / "cid"
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--unlabelled", world["pop"], "--select")
    assert code == 2 and "--unlabelled chooses by agreement" in err and not out.exists()
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--unlabelled", world["pop"])
    assert code == 2 and "is the labelled population itself" in err and not out.exists()
    more_of_them = tmp_path / "more.json"                 # same seed, more chips: the labelled chips again
    world["spec"].__class__(world["spec"].model_sha256, "generic", {"preset": "extreme"}, seed=0, count=60,
                            model_path=world["model"]).save(more_of_them)
    code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                    "-o", str(out), "--unlabelled", str(more_of_them))
    assert code == 2 and "the labelled chips' seed (0)" in err and not out.exists()
    unlabelled = tmp_path / "unlabelled.json"
    world["spec"].__class__(world["spec"].model_sha256, "generic", {"preset": "extreme"}, seed=7, count=60,
                            model_path=world["model"]).save(unlabelled)
    made = []
    for name in ("a", "b"):
        target = tmp_path / name
        code, err = run(capsys, "compact", world["model"], world["sid"], world["pop"], world["labels"],
                        "-o", str(target), "--unlabelled", str(unlabelled), "--max-escape", "20%", "--trials", "2",
                        "-q", "-k", "3")
        assert code == 0, err
        made.append(target)
    manifest = json.loads((made[0] / "bundle" / "manifest.json").read_text())
    creation = manifest["creation"]["settings"]
    assert creation["selection"] == "distil" and creation["unlabelled_chips"] == 60 and creation["chips"] == 30
    assert manifest["population"]["unlabelled"]["count"] == 60
    assert manifest["escape_budget"]["max_escape"] == 0.2
    for name in ("manifest.json", "detector.onnx"):
        assert (made[0] / "bundle" / name).read_bytes() == (made[1] / "bundle" / name).read_bytes()
    chip = tmp_path / "chip3.onnx"
    assert run(capsys, "duts", "export", world["pop"], "3", "-o", str(chip))[0] == 0
    capsys.readouterr()
    try:
        main(["test", str(made[0] / "bundle"), str(chip), "--json"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    (verdict,) = json.loads(capsys.readouterr().out)
    assert verdict["pass_probability"] is not None, verdict      # judged by the distilled detector
