"""Chips from anywhere: a chip set the toolkit did not simulate goes label -> synthesize ->
measure -> compact -> test, and the tester agrees with the in-memory detector on every chip.

The chips are the shipped digits model with its weights perturbed by this test's own rule
(not the toolkit's simulator), written as ONNX files; one more chip is a vendor tool behind
the ``command`` adapter (a Python script that runs the model with onnxruntime).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from egis.cli.main import main
from egis.toolkit.data import digits_split
from egis.toolkit.io import write_npz

CHIPS, K = 36, 3


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def perturbed_chip(model: onnx.ModelProto, sigma: float, seed: int) -> onnx.ModelProto:
    """This test's own variation: every weight of every Conv/Gemm scaled by 1 + N(0, sigma)."""
    rng = np.random.default_rng(seed)
    chip = onnx.ModelProto()
    chip.CopyFrom(model)
    weights = {node.input[1] for node in chip.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")}
    for init in chip.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((w * (1 + rng.normal(0, sigma, w.shape))).astype(w.dtype),
                                                  init.name))
    return chip


VENDOR_TOOL = textwrap.dedent('''
    """A vendor's tester tool: IN.npy (pixels) -> OUT.npy (logits), run by the command adapter."""
    import sys
    import numpy as np
    import onnxruntime as ort

    chip, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if chip == "broken":
        sys.stderr.write("probe card not seated\\n")
        sys.exit(3)
    if chip == "slow":
        import time
        time.sleep(30)
    x = np.load(inp)
    session = ort.InferenceSession(chip, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    np.save(out, session.run(None, {name: x})[0].astype(np.float32))
''')


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    """A folder of externally produced chips, a chip list with an adapter chip, customer data."""
    from egis.models.registry import reference_model_path

    root = tmp_path_factory.mktemp("floor")
    model_path = reference_model_path("digits")
    model = onnx.load(str(model_path))
    chips = root / "chips"
    chips.mkdir()
    for i in range(CHIPS):
        onnx.save(perturbed_chip(model, sigma=0.05 + 0.6 * i / CHIPS, seed=i), str(chips / f"die{i:03d}.onnx"))
    (root / "vendor_tool.py").write_text(VENDOR_TOOL)
    _, _, x, y = digits_split()
    write_npz(root / "data.npz", x=x, y=y)
    # the vendor's chip: the same file as die005, reached through the command adapter
    listing = root / "floor.chips"
    lines = [f"chips/die{i:03d}.onnx" for i in range(CHIPS)]
    lines.append(f"adapter:command:{sys.executable} {root / 'vendor_tool.py'} {chips / 'die005.onnx'}")
    listing.write_text("# wafer 7, lot 3\n" + "\n".join(lines) + "\n")
    return {"root": root, "model": str(model_path), "chips": str(chips), "list": str(listing),
            "data": str(root / "data.npz")}


@pytest.fixture(scope="module")
def flow(floor, tmp_path_factory):
    """label -> synthesize -> measure -> compact on the chip list (files + adapter)."""
    root = floor["root"]
    steps = [["label", floor["model"], floor["list"], "--data", floor["data"], "-o", str(root / "labels.csv")],
             ["synthesize", floor["model"], "-o", str(root / "sid"), "--iterations", "40", "--images", "48",
              "--threads", "1", "-q"],
             ["measure", floor["model"], floor["list"], str(root / "sid"), "-o", str(root / "resp"), "-q"],
             ["compact", floor["model"], str(root / "sid"), str(root / "resp"), str(root / "labels.csv"),
              "-k", str(K), "-o", str(root / "cid"), "--trials", "2", "-q"]]
    for args in steps:
        try:
            main(args)
        except SystemExit as exc:
            assert not exc.code, (args, exc.code)
    return root


def test_labels_name_chips_by_file_and_adapter_and_record_them(flow, floor):
    from egis.toolkit.labels import read_labels

    labels = read_labels(flow / "labels.csv")
    assert labels.ids[:2] == ["die000", "die001"] and len(labels.ids) == CHIPS + 1
    adapter_id = labels.ids[-1]
    assert adapter_id.endswith("die005.onnx")
    identities = labels.meta["chip_identities"]
    assert identities["die000"].startswith("sha256:") and identities[adapter_id].startswith("adapter:command:")
    assert 0 < labels.passed.mean() < 1


def test_measure_writes_responses_with_provenance(flow, floor):
    from egis.toolkit.measure import load_responses

    responses = load_responses(flow / "resp")
    assert responses.logits.shape == (CHIPS + 1, 48, 10) and responses.ok_ids == responses.chip_ids
    meta = responses.meta
    assert meta["chip_set"]["kind"] == "external" and len(meta["chip_set_sha256"]) == 64
    # the adapter chip is the same chip as die005: same answers through another route
    assert np.allclose(responses.logits[-1], responses.logits[5], atol=1e-4)
    timings = json.loads((flow / "resp" / "timings.json").read_text())
    assert len(timings["seconds_per_chip"]) == CHIPS + 1


def test_tester_verdicts_equal_the_in_memory_detector_on_every_chip(flow, floor, capsys):
    from egis.compaction import BoosterConfig
    from egis.detector import train_detector
    from egis.toolkit.labels import read_labels
    from egis.toolkit.measure import load_responses
    from egis.toolkit.signatures import signatures

    indices = json.loads((flow / "cid" / "indices.json").read_text())["indices"]
    responses = load_responses(flow / "resp")
    labels = read_labels(flow / "labels.csv")
    rows = responses.rows_of(labels.ids)
    detector = train_detector(responses.logits[rows], labels.passed.astype(int), indices, BoosterConfig())
    expected = detector.predict(signatures(responses.logits, indices)).astype(bool)
    code, out, err = run(capsys, "test", str(flow / "cid" / "bundle"), floor["list"], "--json", "-q")
    assert code == 0, err
    verdicts = json.loads(out)
    assert [v["chip"] for v in verdicts][:2] == [str(Path(floor["chips"]) / "die000.onnx"),
                                               str(Path(floor["chips"]) / "die001.onnx")]
    assert [v["passed"] for v in verdicts] == expected.tolist()
    assert all(v["reason"] == "" for v in verdicts)


def test_compact_on_a_chip_folder_measures_it_itself(flow, floor, capsys, tmp_path):
    """The chip folder itself (no measure step) works too, labels are checked per chip."""
    from egis.toolkit.labels import read_labels, write_labels, write_side_file

    labels = read_labels(flow / "labels.csv")
    keep = [i for i, cid in enumerate(labels.ids) if cid.startswith("die")]
    write_labels(tmp_path / "l.csv", [labels.ids[i] for i in keep], labels.passed[keep])
    write_side_file(tmp_path / "l.csv", {**labels.meta, "count": len(keep)})
    code, out, err = run(capsys, "compact", floor["model"], str(flow / "sid"), floor["chips"], str(tmp_path / "l.csv"),
                         "-k", str(K), "-o", str(tmp_path / "cid"), "--trials", "2", "-q")
    assert code == 0, err
    assert (tmp_path / "cid" / "bundle" / "manifest.json").is_file()
    # a chip file replaced after labelling is refused by name
    other = tmp_path / "chips"
    other.mkdir()
    for path in Path(floor["chips"]).glob("*.onnx"):
        (other / path.name).write_bytes(path.read_bytes())
    onnx.save(perturbed_chip(onnx.load(floor["model"]), 0.9, 99), str(other / "die003.onnx"))
    code, _, err = run(capsys, "compact", floor["model"], str(flow / "sid"), str(other), str(tmp_path / "l.csv"),
                       "-o", str(tmp_path / "cid2"), "-q")
    assert code == 2 and "labels another chip 'die003'" in err and not (tmp_path / "cid2").exists()


def test_interrupted_measurement_resumes_to_the_same_bytes(flow, floor, tmp_path):
    from egis.synthesis.sid import read_sid_images
    from egis.toolkit.chipset import open_chip_set
    from egis.toolkit.measure import PROVENANCE, RESPONSES, measure
    from egis.toolkit.model import load_model
    from egis.toolkit.signatures import images_sha256

    model = load_model(floor["model"])
    pixels = read_sid_images(flow / "sid", model.sha256)
    chip_set = open_chip_set(floor["chips"], model=model, chips="8")
    real = chip_set.responses

    def dies_at_row_5(row, images):
        if row == 5:
            raise KeyboardInterrupt
        return real(row, images)

    chip_set.responses = dies_at_row_5
    with pytest.raises(KeyboardInterrupt):
        measure(chip_set, pixels, tmp_path / "a", images_sha256=images_sha256(pixels), progress=False)
    assert not (tmp_path / "a" / RESPONSES).exists()
    chip_set.responses = real
    measure(chip_set, pixels, tmp_path / "a", images_sha256=images_sha256(pixels), progress=False)
    measure(chip_set, pixels, tmp_path / "b", images_sha256=images_sha256(pixels), progress=False)
    for name in (RESPONSES, PROVENANCE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_corrupt_or_foreign_chip_files_are_named(floor, capsys, tmp_path, tiny_cnn_path):
    chips = tmp_path / "chips"
    chips.mkdir()
    (chips / "die000.onnx").write_bytes((Path(floor["chips"]) / "die000.onnx").read_bytes())
    (chips / "die001.onnx").write_bytes(b"\x08\x07garbage")
    code, _, err = run(capsys, "measure", floor["model"], str(chips), str(tmp_path / "nosid"), "-o",
                       str(tmp_path / "r"))
    assert code == 2 and "chip die001" in err and err.count("\n") == 1
    (chips / "die001.onnx").write_bytes(Path(tiny_cnn_path).read_bytes())     # a chip of another model
    code, _, err = run(capsys, "measure", floor["model"], str(chips), str(tmp_path / "nosid"), "-o",
                       str(tmp_path / "r"))
    assert code == 2 and "chip die001" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_failing_and_slow_adapters_are_excluded_by_name(flow, floor, capsys, tmp_path):
    tool = floor["root"] / "vendor_tool.py"
    listing = tmp_path / "mixed.chips"
    listing.write_text("\n".join([
        str(Path(floor["chips"]) / "die000.onnx"), str(Path(floor["chips"]) / "die001.onnx"),
        f"adapter:command:{sys.executable} {tool} broken",
        f"adapter:command:{sys.executable} {tool} slow"]) + "\n")
    code, out, err = run(capsys, "measure", floor["model"], str(listing), str(flow / "sid"), "-o",
                         str(tmp_path / "r"), "--timeout", "5", "-q")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: chip")]
    assert len(warnings) == 2
    assert "broken" in warnings[0] and "probe card not seated" in warnings[0]
    assert "slow" in warnings[1] and "no answer within 5 s" in warnings[1]
    assert "2 of 4 chips" in out
    status = json.loads((tmp_path / "r" / "responses.json").read_text())["status"]
    assert status[:2] == ["ok", "ok"] and all(s.startswith("excluded: ") for s in status[2:])
