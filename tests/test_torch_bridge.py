"""onnx2torch bridge: works without torchvision, and on exporter graphs with shared weights."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

from egis.toolkit.torch_bridge import to_torch  # noqa: E402


def test_identity_of_shared_initializer_converts_and_matches_onnxruntime():
    """The torch exporter writes a shared weight once and Identity nodes for its other uses."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 2, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["w_copy"]),
             helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w_copy"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    module = to_torch(model)
    got = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in module.parameters())
    assert not module.training
