"""Model intake: validation errors, layout and contract, Constant weights, inspect report/CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import model_zoo
from egis.toolkit.errors import DataError, ModelError
from egis.toolkit.inspect_report import format_report, inspect_model
from egis.toolkit.model import InputContract, load_model
from egis.toolkit.torch_bridge import check_convertible, unsupported_ops


def _run(proto_or_path, x: np.ndarray) -> np.ndarray:
    data = proto_or_path.SerializeToString() if isinstance(proto_or_path, onnx.ModelProto) \
        else str(proto_or_path)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _need_onnx2torch() -> None:
    """onnx2torch imports torchvision at import time: install the stand-in first."""
    pytest.importorskip("torch")
    from egis.toolkit.torch_bridge import install_torchvision_stand_in
    install_torchvision_stand_in()
    pytest.importorskip("onnx2torch")


# ------------------------------------------------------------------------------ good models

@pytest.mark.parametrize("name,layout,chw,classes,batch", [
    ("tiny_cnn", "NCHW", (3, 32, 32), 10, None),
    ("digits_cnn", "NCHW", (1, 8, 8), 10, None),
    ("nhwc_matmul", "NHWC", (3, 12, 12), 10, None),
    ("residual", "NCHW", (3, 16, 16), 10, None),
    ("batch1_opset9", "NCHW", (3, 16, 16), 10, 1),
    ("fixed_batch4", "NCHW", (1, 8, 8), 3, 4),
])
def test_good_models_load(name, layout, chw, classes, batch, request):
    path = request.getfixturevalue(f"{name}_path")
    loaded = load_model(path)
    c = loaded.contract
    assert (c.layout, (c.channels, c.height, c.width)) == (layout, chw)
    assert (loaded.num_classes, loaded.fixed_batch) == (classes, batch)
    assert loaded.sha256 == __import__("hashlib").sha256(Path(path).read_bytes()).hexdigest()
    pixels = np.random.default_rng(0).random((batch or 2, *c.image_shape), dtype=np.float32)
    logits = _run(loaded.proto, c.normalize(pixels))
    assert logits.shape == (batch or 2, classes) and np.isfinite(logits).all()


def test_opset9_export_lists_initializers_as_inputs_but_has_one_input(batch1_opset9_path):
    proto = onnx.load(str(batch1_opset9_path))
    assert len(proto.graph.input) > 1  # the old-exporter quirk the loader must see through
    assert load_model(batch1_opset9_path).input_name == "input.1"


def test_unknown_static_output_shape_is_found_by_running_once(unknown_output_shape_path):
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(unknown_output_shape_path)))
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert not dims[1].HasField("dim_value")
    assert load_model(unknown_output_shape_path).num_classes == 5


def test_torch_export_loads_and_is_convertible(torch_cnn_path):
    _need_onnx2torch()
    loaded = load_model(torch_cnn_path, require_torch=True)
    assert loaded.fixed_batch is None and loaded.num_classes == 10
    assert unsupported_ops(loaded.proto) == []


# ------------------------------------------------------------------------------- bad models

@pytest.mark.parametrize("name,message", [
    ("two_inputs", "has 2 inputs (a, b); egis needs exactly one image input"),
    ("int_input", "input 'tokens' is int64 with rank 4; egis needs a rank-4 float32"),
    ("rank3_output", "has shape (?, 3, 2); egis needs (batch, classes) logits"),
    ("int_output", "is int64; egis needs float (batch, classes) logits"),
    ("corrupt", "is not a valid ONNX model"),
])
def test_bad_models_give_one_line_model_error(name, message, request):
    with pytest.raises(ModelError) as info:
        load_model(request.getfixturevalue(f"{name}_path"))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_non_onnx_bytes(tmp_path):
    with pytest.raises(ModelError, match="cannot read model file .*missing.onnx"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="cannot read model file"):
        load_model(tmp_path)  # a directory
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(tmp_path / "empty.onnx")


def test_rank3_input_is_rejected(tmp_path):
    g = model_zoo.GraphBuilder(0)
    y = g.op("MatMul", ["seq", g.weight("w", (4, 2), 4)])
    path = g.save(tmp_path / "rank3.onnx", [model_zoo._input("seq", ["N", 3, 4])], y, ["N", 3, 2])
    with pytest.raises(ModelError, match="input 'seq' is float with rank 3"):
        load_model(path)


def test_model_without_crossbar_weights_is_rejected(tmp_path):
    g = model_zoo.GraphBuilder(0)
    y = g.op("Flatten", [g.op("GlobalAveragePool", ["x"])])
    path = g.save(tmp_path / "pool.onnx", [model_zoo._input("x", ["N", 3, 4, 4])], y, ["N", 3])
    with pytest.raises(ModelError, match="no Conv/Gemm/MatMul weights"):
        load_model(path)


def test_checker_failure_is_model_error(tmp_path, digits_cnn_path):
    proto = onnx.load(str(digits_cnn_path))
    proto.graph.node[0].input[1] = "no_such_tensor"
    path = tmp_path / "dangling.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="fails ONNX validation"):
        load_model(path)


def test_unsupported_op_is_named(digits_cnn_path):
    _need_onnx2torch()
    proto = onnx.load(str(digits_cnn_path))
    proto.graph.node[0].op_type = "NoSuchOp"
    assert unsupported_ops(proto) == ["NoSuchOp (ai.onnx opset 13)"]
    with pytest.raises(ModelError, match="onnx2torch cannot convert op NoSuchOp"):
        check_convertible(proto)


# ---------------------------------------------------------------------- layout and contract

def test_layout_override(nhwc_matmul_path, tiny_cnn_path):
    assert load_model(nhwc_matmul_path).contract.layout == "NHWC"
    forced = load_model(tiny_cnn_path, layout="nhwc").contract
    assert (forced.layout, forced.channels, forced.height, forced.width) == ("NHWC", 32, 3, 32)
    with pytest.raises(ModelError, match="use NCHW or NHWC"):
        load_model(tiny_cnn_path, layout="CHW")


def test_ambiguous_layout_prefers_metadata_then_nchw(tmp_path):
    plain = load_model(model_zoo.build_ambiguous_layout(tmp_path)).contract
    assert (plain.layout, plain.channels, plain.height, plain.width) == ("NCHW", 3, 4, 3)
    meta = load_model(model_zoo.build_ambiguous_layout(
        tmp_path, {"egis.layout": "NHWC"}, "meta.onnx")).contract
    assert (meta.layout, meta.channels, meta.height, meta.width) == ("NHWC", 3, 3, 4)
    assert load_model(tmp_path / "meta.onnx", layout="NCHW").contract.layout == "NCHW"


def test_metadata_contract_and_arguments_win(tmp_path):
    meta = {"egis.pixel_range": "0,255", "egis.mean": "0.49,0.48,0.45", "egis.std": "0.25"}
    path = model_zoo.build_ambiguous_layout(tmp_path, meta, "contract.onnx")
    c = load_model(path).contract
    assert (c.pixel_min, c.pixel_max) == (0.0, 255.0)
    assert c.mean == (0.49, 0.48, 0.45) and c.std == (0.25, 0.25, 0.25)
    c = load_model(path, pixel_range=(-1, 1), mean=(0.5, 0.5, 0.5), std="0.5,0.5,0.5").contract
    assert (c.pixel_min, c.pixel_max, c.mean, c.std) == (-1.0, 1.0, (0.5,) * 3, (0.5,) * 3)
    d = load_model(model_zoo.build_ambiguous_layout(tmp_path)).contract
    assert (d.pixel_min, d.pixel_max, d.mean, d.std) == (0.0, 1.0, None, None)


@pytest.mark.parametrize("meta,message", [
    ({"egis.pixel_range": "1,0"}, "expected 'min,max' with min < max"),
    ({"egis.pixel_range": "zero,one"}, "expected comma-separated numbers"),
    ({"egis.mean": "0.5,0.5"}, "has 2 values; the model has 3 channels"),
    ({"egis.std": "0,1,1"}, "must be positive"),
    ({"egis.layout": "HWC"}, "metadata 'egis.layout' is 'HWC'"),
])
def test_bad_metadata_is_model_error(tmp_path, meta, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        load_model(model_zoo.build_ambiguous_layout(tmp_path, meta, "bad_meta.onnx"))


def test_contract_normalize_and_round_trip():
    c = InputContract("NHWC", 3, 2, 2, 0.0, 255.0, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    assert c.image_shape == (2, 2, 3)
    x = np.full((1, 2, 2, 3), 50.0)
    out = c.normalize(x)
    assert out.dtype == np.float32 and out.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(out[0, 0, 0], [20.0, 7.5, 4.0])
    assert c.normalize(x[0]).shape == (1, 2, 2, 3)  # a single image gets a batch axis
    with pytest.raises(DataError, match="the model expects"):
        c.normalize(np.zeros((1, 3, 2, 2)))
    assert InputContract.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    plain = InputContract("NCHW", 1, 8, 8)
    px = np.random.default_rng(0).random((2, 1, 8, 8))
    np.testing.assert_array_equal(plain.normalize(px), px.astype(np.float32))


# ------------------------------------------------------------------------- Constant weights

def test_constant_node_weights_become_initializers_with_identical_outputs(constant_weights_path):
    raw = onnx.load(str(constant_weights_path))
    assert not raw.graph.initializer and any(n.op_type == "Constant" for n in raw.graph.node)
    loaded = load_model(constant_weights_path)
    inits = {t.name for t in loaded.proto.graph.initializer}
    assert {layer.name for layer in loaded.layers} <= inits
    assert not any(n.op_type == "Constant" for n in loaded.proto.graph.node)
    onnx.checker.check_model(loaded.proto)
    x = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(_run(loaded.proto, x), _run(constant_weights_path, x))


def test_constant_weights_in_old_ir_are_also_listed_as_inputs(tmp_path, constant_weights_path):
    proto = onnx.load(str(constant_weights_path))
    proto.ir_version, proto.opset_import[0].version = 3, 9
    path = tmp_path / "old_ir.onnx"
    onnx.save(proto, str(path))
    loaded = load_model(path)
    names = {i.name for i in loaded.proto.graph.input}
    assert {layer.name for layer in loaded.layers} <= names and loaded.input_name == "x"


# --------------------------------------------------------------------------- report and CLI

def test_inspect_report(residual_path):
    report = inspect_model(load_model(residual_path))
    assert json.loads(json.dumps(report)) == report
    assert report["inputs"] == [{"name": "input", "dtype": "float", "shape": ["N", 3, 16, 16]}]
    assert (report["layout"], report["classes"], report["fixed_batch"], report["opset"]) == \
        ("NCHW", 10, None, 13)
    assert len(report["layers"]) == 7
    assert report["total_cells"] == sum(r * c for _, _, r, c in model_zoo.EXPECTED_LAYERS["residual"])
    text = format_report(report)
    assert "b2.proj.weight" in text and f"cells: {report['total_cells']:,}" in text


CLI = [sys.executable, "-c", "from egis.cli.main import main; main()"]


def test_cli_inspect_json_and_bad_file(tiny_cnn_path, tmp_path):
    ok = subprocess.run([*CLI, "inspect", str(tiny_cnn_path), "--json", "--layout", "NCHW"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_cells"] == 27 * 8 + 72 * 16 + 16 * 10
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    err = subprocess.run([*CLI, "inspect", str(bad)], capture_output=True, text=True, timeout=60)
    assert err.returncode == 2
    assert err.stderr.strip().count("\n") == 0 and "not a valid ONNX model" in err.stderr
