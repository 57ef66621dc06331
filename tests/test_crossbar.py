"""Crossbar mapping: rows/cols per op, exact to_matrix/from_matrix inverse, zoo layers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import model_zoo
from egis.toolkit.crossbar import CrossbarLayer, find_crossbar_layers
from egis.toolkit.model import load_model

RNG = np.random.default_rng(0)


def _model(nodes, inputs, output, inits, opset=13):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(output, 1, None)],
                              initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)


def _only_layer(proto) -> CrossbarLayer:
    layers = find_crossbar_layers(proto)
    assert len(layers) == 1, layers
    return layers[0]


def _ort(proto, feeds):
    import onnxruntime as ort
    return ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("cin,cout,groups,k,rows", [
    (3, 8, 1, 3, 27),     # plain
    (8, 8, 2, 3, 36),     # grouped: in/groups * kh * kw
    (8, 8, 8, 3, 9),      # depthwise
    (4, 6, 1, 1, 4),      # pointwise
    (2, 4, 1, 5, 50),
])
def test_conv_rows_cols(cin, cout, groups, k, rows):
    w = RNG.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="c", group=groups)
    layer = _only_layer(_model([node], [_x([1, cin, 8, 8])], "y",
                               {"w": w, "b": np.zeros(cout, np.float32)}))
    assert (layer.op, layer.rows, layer.cols, layer.cells) == ("Conv", rows, cout, rows * cout)
    np.testing.assert_array_equal(layer.to_matrix(w), w.reshape(cout, -1).T)


def test_conv_matrix_is_im2col_product():
    """y = patches @ M, where M = to_matrix(w), checked against onnxruntime."""
    w = RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)
    x = RNG.standard_normal((1, 3, 3, 3)).astype(np.float32)
    proto = _model([helper.make_node("Conv", ["x", "w"], ["y"])], [_x([1, 3, 3, 3])], "y", {"w": w})
    layer = _only_layer(proto)
    np.testing.assert_allclose(_ort(proto, {"x": x}).reshape(1, 5),
                               x.reshape(1, -1) @ layer.to_matrix(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_gemm_weight_b_transposes_honoured(trans_a, trans_b):
    w = RNG.standard_normal((6, 4) if trans_b else (4, 6)).astype(np.float32)
    x = RNG.standard_normal((4, 2) if trans_a else (2, 4)).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w"], ["y"], transA=trans_a, transB=trans_b)
    proto = _model([node], [_x(list(x.shape))], "y", {"w": w})
    layer = _only_layer(proto)
    assert (layer.rows, layer.cols) == (4, 6)
    x_eff = x.T if trans_a else x
    np.testing.assert_allclose(_ort(proto, {"x": x}), x_eff @ layer.to_matrix(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_weight_a(trans_a):
    """Constant A: Y = A' @ X maps each column of X; matrix = A'.T (in, out)."""
    w = RNG.standard_normal((4, 6) if trans_a else (6, 4)).astype(np.float32)  # A' is (6, 4)
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    proto = _model([helper.make_node("Gemm", ["w", "x"], ["y"], transA=trans_a)], [_x([4, 3])], "y",
                   {"w": w})
    layer = _only_layer(proto)
    assert (layer.rows, layer.cols) == (4, 6)
    np.testing.assert_allclose(_ort(proto, {"x": x}).T, x.T @ layer.to_matrix(w), rtol=1e-5, atol=1e-5)


def test_matmul_constant_second_and_first_operand():
    w = RNG.standard_normal((5, 7)).astype(np.float32)
    second = _only_layer(_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_x([2, 5])], "y",
                                {"w": w}))
    assert (second.rows, second.cols) == (5, 7)
    np.testing.assert_array_equal(second.to_matrix(w), w)
    first = _only_layer(_model([helper.make_node("MatMul", ["w", "x"], ["y"])], [_x([7, 2])], "y",
                               {"w": w}))
    assert (first.rows, first.cols) == (7, 5)
    np.testing.assert_array_equal(first.to_matrix(w), w.T)


def test_matmul_of_two_activations_or_two_constants_is_not_a_layer():
    w = np.ones((3, 3), np.float32)
    both_var = _model([helper.make_node("MatMul", ["x", "x"], ["y"])], [_x([3, 3])], "y", {})
    both_const = _model([helper.make_node("MatMul", ["w", "v"], ["p"]),
                         helper.make_node("Add", ["x", "p"], ["y"])], [_x([3, 3])], "y",
                        {"w": w, "v": w})
    assert find_crossbar_layers(both_var) == [] and find_crossbar_layers(both_const) == []


def test_weight_through_transpose_reshape_cast_identity_chain():
    """tf/keras exports: stored tensor -> Identity -> Cast -> Reshape -> Transpose -> MatMul."""
    stored = RNG.standard_normal((2, 3, 4)).astype(np.float32)   # reshaped to (6, 4), then .T
    nodes = [helper.make_node("Identity", ["w"], ["w1"]),
             helper.make_node("Cast", ["w1"], ["w2"], to=TensorProto.FLOAT),
             helper.make_node("Reshape", ["w2", "shape"], ["w3"]),
             helper.make_node("Transpose", ["w3"], ["w4"]),          # default perm: reverse
             helper.make_node("MatMul", ["x", "w4"], ["y"])]
    proto = _model(nodes, [_x([2, 4])], "y", {"w": stored, "shape": np.array([-1, 4], np.int64)})
    layer = _only_layer(proto)
    assert (layer.name, layer.shape, layer.rows, layer.cols) == ("w", (2, 3, 4), 4, 6)
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(_ort(proto, {"x": x}), x @ layer.to_matrix(stored), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.from_matrix(layer.to_matrix(stored)), stored)


def test_unsupported_chain_is_skipped():
    """Squeeze (or any op outside Identity/Cast/Transpose/Reshape) hides the weight."""
    nodes = [helper.make_node("Squeeze", ["w", "axes"], ["w1"]),
             helper.make_node("MatMul", ["x", "w1"], ["y"])]
    proto = _model(nodes, [_x([2, 4])], "y", {"w": np.ones((1, 4, 3), np.float32),
                                              "axes": np.array([0], np.int64)})
    assert find_crossbar_layers(proto) == []


def test_shared_initializer_recorded_once():
    w = RNG.standard_normal((4, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="first"),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="second")]
    layer = _only_layer(_model(nodes, [_x([1, 4])], "y", {"w": w}))
    assert (layer.name, layer.node) == ("w", "first")


def test_biases_and_batchnorm_are_never_layers():
    c = 4
    ones = np.ones(c, np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["h"]),
             helper.make_node("BatchNormalization", ["h", "s", "b2", "m", "v"], ["h2"]),
             helper.make_node("Flatten", ["h2"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
             helper.make_node("Mul", ["g", "scale"], ["y"])]
    inits = {"w": np.ones((c, 1, 3, 3), np.float32), "b": ones, "s": ones, "b2": ones, "m": ones,
             "v": ones, "fw": np.ones((2, c * 36), np.float32), "fb": np.ones(2, np.float32),
             "scale": np.ones((1, 2), np.float32)}
    names = [layer.name for layer in find_crossbar_layers(_model(nodes, [_x([1, 1, 6, 6])], "y", inits))]
    assert names == ["w", "fw"]


def test_constant_node_weights_are_found_by_output_name():
    w = numpy_helper.from_array(RNG.standard_normal((3, 2)).astype(np.float32), "cw")
    nodes = [helper.make_node("Constant", [], ["cw"], value=w),
             helper.make_node("MatMul", ["x", "cw"], ["y"])]
    layer = _only_layer(_model(nodes, [_x([1, 3])], "y", {}))
    assert (layer.name, layer.rows, layer.cols) == ("cw", 3, 2)


def test_integer_constants_are_not_weights():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    proto = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 3])], "y",
                   {"w": np.ones((3, 2), np.int32)})
    assert find_crossbar_layers(proto) == []


LAYERS = [
    CrossbarLayer("c", "n", "Conv", (8, 2, 3, 3), 18, 8),
    CrossbarLayer("g", "n", "Gemm", (10, 16), 16, 10, transposed=True),
    CrossbarLayer("m", "n", "MatMul", (16, 10), 16, 10),
    CrossbarLayer("t", "n", "MatMul", (2, 3, 4), 4, 6,
                  chain=(("reshape", (6, 4)), ("transpose", (1, 0)))),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_to_from_matrix_round_trip_is_exact(layer):
    w = RNG.standard_normal(layer.shape).astype(np.float32)
    m = layer.to_matrix(w)
    assert m.shape == (layer.rows, layer.cols)
    back = layer.from_matrix(m)
    assert back.shape == layer.shape and back.dtype == w.dtype
    np.testing.assert_array_equal(back, w)
    m2 = RNG.standard_normal((layer.rows, layer.cols))
    np.testing.assert_array_equal(layer.to_matrix(layer.from_matrix(m2)), m2)


def test_to_matrix_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        LAYERS[0].to_matrix(np.zeros((8, 2, 3)))
    with pytest.raises(ValueError):
        LAYERS[0].from_matrix(np.zeros((8, 18)))


ZOO = ["tiny_cnn", "digits_cnn", "nhwc_matmul", "residual", "batch1_opset9", "constant_weights",
       "fixed_batch4", "torch_cnn", "torch_opset9"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_have_exactly_the_expected_layers(name, request):
    loaded = load_model(request.getfixturevalue(f"{name}_path"))
    expected = model_zoo.EXPECTED_LAYERS[name]
    assert [(la.name, la.op, la.rows, la.cols) for la in loaded.layers] == expected
    assert sum(la.cells for la in loaded.layers) == sum(r * c for _, _, r, c in expected)
    inits = {t.name: t for t in loaded.proto.graph.initializer}
    for layer in loaded.layers:
        w = numpy_helper.to_array(inits[layer.name])
        assert w.shape == layer.shape
        np.testing.assert_array_equal(layer.from_matrix(layer.to_matrix(w)), w)
    names = {la.name for la in loaded.layers}
    assert not any(n.endswith(("bias", "running_mean", "running_var")) for n in names)


def test_torch_cnn_keeps_batchnorm_and_it_is_not_a_layer(torch_cnn_path):
    proto = onnx.load(str(torch_cnn_path))
    bn_params = {i for n in proto.graph.node if n.op_type == "BatchNormalization" for i in n.input[1:]}
    assert bn_params and not bn_params & {la.name for la in find_crossbar_layers(proto)}


@pytest.mark.parametrize("shape,target,expected", [
    ((2, 3, 4), (-1, 4), (6, 4)),
    ((2, 3, 4), (0, -1), (2, 12)),   # 0 copies the input dim
    ((6, 4), (3, 0, 3), None),       # 3 * 4 * 3 != 24
    ((6, 4), (-1, -1), None),
])
def test_reshape_targets_follow_onnx_semantics(shape, target, expected):
    from egis.toolkit.crossbar import _reshape_target
    if expected is None:
        with pytest.raises(ValueError):
            _reshape_target(shape, target)
    else:
        assert _reshape_target(shape, target) == expected
