"""Tiny ONNX classifiers shaped like what customers hand over, plus broken ones.

Each ``build_*`` writes one model into ``directory`` and returns its path. Weights are
seeded random (He scale, so logits are not degenerate); nothing is trained. Only the
``build_torch_*`` builders need torch; the fixtures other areas share are built with
onnx.helper so they stay deterministic, fast and torch-free.

``EXPECTED_LAYERS[builder name]`` lists the crossbar layers each model must have:
(weight name, op, rows, cols).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
FLOAT = TensorProto.FLOAT


class GraphBuilder:
    """Minimal helper to assemble an ONNX graph with seeded random weights."""

    def __init__(self, seed: int, *, constants_as_nodes: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.constants_as_nodes = constants_as_nodes
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        """Add a constant as an initializer (or a Constant node) and return its name."""
        tensor = numpy_helper.from_array(np.asarray(array), name)
        if self.constants_as_nodes and tensor.data_type == FLOAT:
            self.nodes.append(helper.make_node("Constant", [], [name], name=f"const_{name}",
                                               value=tensor))
        else:
            self.inits.append(tensor)
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
        return self.const(name, w)

    def bias(self, name: str, n: int) -> str:
        return self.const(name, self.rng.normal(0.0, 0.05, size=n).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs) -> str:
        self._count += 1
        name = name or f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, cin: int, cout: int, k: int = 3, *, stride: int = 1,
             groups: int = 1, pad: int | None = None, bias: bool = True) -> str:
        pad = k // 2 if pad is None else pad
        w = self.weight(f"{name}.weight", (cout, cin // groups, k, k), cin // groups * k * k)
        inputs = [x, w] + ([self.bias(f"{name}.bias", cout)] if bias else [])
        return self.op("Conv", inputs, name, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, group=groups)

    def bn(self, x: str, name: str, c: int) -> str:
        scale = self.const(f"{name}.weight", (1 + 0.1 * self.rng.standard_normal(c)).astype(np.float32))
        shift = self.bias(f"{name}.bias", c)
        mean = self.bias(f"{name}.running_mean", c)
        var = self.const(f"{name}.running_var", (1 + 0.1 * self.rng.random(c)).astype(np.float32))
        return self.op("BatchNormalization", [x, scale, shift, mean, var], name, epsilon=1e-5)

    def gemm(self, x: str, name: str, fin: int, fout: int) -> str:
        """torch.nn.Linear style: W (out, in), transB=1."""
        w = self.weight(f"{name}.weight", (fout, fin), fin)
        return self.op("Gemm", [x, w, self.bias(f"{name}.bias", fout)], name, transB=1)

    def dense(self, x: str, name: str, fin: int, fout: int) -> str:
        """tf2onnx style: MatMul with W (in, out), then Add bias."""
        y = self.op("MatMul", [x, self.weight(f"{name}/kernel", (fin, fout), fin)], f"{name}/MatMul")
        return self.op("Add", [y, self.bias(f"{name}/bias", fout)], f"{name}/BiasAdd")

    def save(self, path: Path, inputs: list[onnx.ValueInfoProto], output: str,
             out_shape: list, *, opset: int = OPSET, ir_version: int | None = None,
             metadata: dict[str, str] | None = None, inits_as_inputs: bool = False,
             out_type: int = FLOAT) -> Path:
        graph_inputs = list(inputs)
        if inits_as_inputs:
            graph_inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                             for t in self.inits]
        graph = helper.make_graph(self.nodes, "zoo", graph_inputs,
                                  [helper.make_tensor_value_info(output, out_type, out_shape)],
                                  initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="egis-model-zoo")
        model.ir_version = ir_version or min(8, model.ir_version)
        for key, value in (metadata or {}).items():
            model.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        return path


def _input(name: str, shape: list, elem: int = FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


# ------------------------------------------------------------------------- good models

def build_tiny_cnn(directory: Path, seed: int = 0) -> Path:
    """(f) 32x32x3 NCHW, dynamic batch, pixels 0..1: 2 conv + pool, GAP, Linear -> 10."""
    g = GraphBuilder(seed)
    x = g.op("Relu", [g.conv("input", "conv1", 3, 8)])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Relu", [g.conv(x, "conv2", 8, 16)])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    y = g.gemm(x, "fc", 16, 10)
    return g.save(directory / "tiny_cnn.onnx", [_input("input", ["N", 3, 32, 32])], y, ["N", 10],
                  metadata={"egis.pixel_range": "0,1"})


def build_digits_cnn(directory: Path, seed: int = 1) -> Path:
    """(f) 8x8x1 (sklearn digits sized) NCHW, dynamic batch, pixels 0..1."""
    g = GraphBuilder(seed)
    x = g.op("Relu", [g.conv("image", "conv1", 1, 4)])
    x = g.op("Relu", [g.conv(x, "conv2", 4, 8, stride=2)])
    y = g.gemm(g.op("Flatten", [x]), "fc", 8 * 4 * 4, 10)
    return g.save(directory / "digits_cnn.onnx", [_input("image", ["batch", 1, 8, 8])], y,
                  ["batch", 10])


def build_nhwc_matmul(directory: Path, seed: int = 2) -> Path:
    """(c) tf2onnx style: NHWC input, Transpose to NCHW, Conv, MatMul+Add dense layers."""
    g = GraphBuilder(seed)
    x = g.op("Transpose", ["input_1"], "transpose_nchw", perm=[0, 3, 1, 2])
    x = g.op("Relu", [g.conv(x, "conv2d", 3, 4)])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Transpose", [x], "transpose_nhwc", perm=[0, 2, 3, 1])
    x = g.op("Reshape", [x, g.const("flatten_shape", np.array([-1, 144], np.int64))], "flatten")
    x = g.op("Relu", [g.dense(x, "dense", 144, 16)])
    y = g.dense(x, "dense_1", 16, 10)
    return g.save(directory / "nhwc_matmul.onnx", [_input("input_1", ["unk__1", 12, 12, 3])], y,
                  ["unk__1", 10])


def build_residual(directory: Path, seed: int = 3) -> Path:
    """(d) ResNet-style residual Add blocks (identity and 1x1 projection shortcut), with BN."""
    g = GraphBuilder(seed)
    stem = g.op("Relu", [g.bn(g.conv("input", "stem", 3, 8, bias=False), "stem_bn", 8)])
    x = g.op("Relu", [g.conv(stem, "b1.conv1", 8, 8)])
    x = g.op("Relu", [g.op("Add", [g.conv(x, "b1.conv2", 8, 8), stem])])
    y = g.op("Relu", [g.conv(x, "b2.conv1", 8, 16, stride=2)])
    y = g.conv(y, "b2.conv2", 16, 16)
    shortcut = g.conv(x, "b2.proj", 8, 16, k=1, stride=2, pad=0)
    x = g.op("Relu", [g.op("Add", [y, shortcut])])
    y = g.gemm(g.op("Flatten", [g.op("GlobalAveragePool", [x])]), "fc", 16, 10)
    return g.save(directory / "residual.onnx", [_input("input", ["N", 3, 16, 16])], y, ["N", 10])


def build_batch1_opset9(directory: Path, seed: int = 4) -> Path:
    """(b) old-PyTorch style: opset 9, IR 4, FIXED batch 1, initializers listed as inputs,
    BN kept as a node, Flatten + Gemm."""
    g = GraphBuilder(seed)
    x = g.op("Relu", [g.bn(g.conv("input.1", "0", 3, 6, pad=0), "1", 6)])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    y = g.gemm(g.op("Flatten", [x], axis=1), "5", 6 * 7 * 7, 10)
    return g.save(directory / "batch1_opset9.onnx", [_input("input.1", [1, 3, 16, 16])], y, [1, 10],
                  opset=9, ir_version=4, inits_as_inputs=True)


def build_constant_weights(directory: Path, seed: int = 5) -> Path:
    """(e) every float constant is a Constant node; the dense weight is stored (out, in) and
    reaches its MatMul through Transpose (a chain the crossbar finder must follow)."""
    g = GraphBuilder(seed, constants_as_nodes=True)
    x = g.op("Relu", [g.conv("x", "conv", 1, 4)])
    x = g.op("Flatten", [x])
    w = g.weight("fc.weight", (10, 4 * 8 * 8), 256)
    y = g.op("MatMul", [x, g.op("Transpose", [w], "fc.weight_t", perm=[1, 0])], "fc")
    y = g.op("Add", [y, g.bias("fc.bias", 10)], "fc_bias")
    return g.save(directory / "constant_weights.onnx", [_input("x", ["N", 1, 8, 8])], y, ["N", 10])


def build_fixed_batch4(directory: Path, seed: int = 6) -> Path:
    """A fixed batch of 4 (allowed; recorded as fixed_batch)."""
    g = GraphBuilder(seed)
    y = g.gemm(g.op("Flatten", [g.op("Relu", [g.conv("in", "conv", 1, 2)])]), "fc", 2 * 8 * 8, 3)
    return g.save(directory / "fixed_batch4.onnx", [_input("in", [4, 1, 8, 8])], y, [4, 3])


def build_unknown_output_shape(directory: Path, seed: int = 7) -> Path:
    """Logits reshaped with a runtime-computed shape: static inference cannot tell M."""
    g = GraphBuilder(seed)
    x = g.op("Flatten", [g.op("Relu", [g.conv("input", "conv", 3, 2)])])
    x = g.gemm(x, "fc", 2 * 4 * 4, 5)
    batch = g.op("Slice", [g.op("Shape", ["input"]), g.const("s0", np.array([0], np.int64)),
                           g.const("s1", np.array([1], np.int64))])
    shape = g.op("Concat", [batch, g.const("minus1", np.array([-1], np.int64))], axis=0)
    y = g.op("Reshape", [x, shape], "logits")
    return g.save(directory / "unknown_output_shape.onnx", [_input("input", ["N", 3, 4, 4])], y,
                  ["N", None])


def build_ambiguous_layout(directory: Path, metadata: dict[str, str] | None = None,
                           name: str = "ambiguous.onnx", seed: int = 8) -> Path:
    """Input (N, 3, 4, 3): both dim 1 and dim 3 look like channels."""
    g = GraphBuilder(seed)
    y = g.op("MatMul", [g.op("Flatten", ["input"]), g.weight("w", (36, 4), 36)], "fc")
    return g.save(directory / name, [_input("input", ["N", 3, 4, 3])], y, ["N", 4],
                  metadata=metadata)


# -------------------------------------------------------------------------- bad models

def build_two_inputs(directory: Path) -> Path:
    g = GraphBuilder(9)
    y = g.op("Add", [g.op("Flatten", ["a"]), g.op("Flatten", ["b"])])
    y = g.op("MatMul", [y, g.weight("w", (16, 2), 16)])
    return g.save(directory / "two_inputs.onnx",
                  [_input("a", ["N", 1, 4, 4]), _input("b", ["N", 1, 4, 4])], y, ["N", 2])


def build_int_input(directory: Path) -> Path:
    g = GraphBuilder(10)
    x = g.op("Cast", [g.op("Flatten", ["tokens"])], to=FLOAT)
    y = g.op("MatMul", [x, g.weight("w", (16, 2), 16)])
    return g.save(directory / "int_input.onnx", [_input("tokens", ["N", 1, 4, 4], TensorProto.INT64)],
                  y, ["N", 2])


def build_rank3_output(directory: Path) -> Path:
    """Output (batch, M, 2): not logits."""
    g = GraphBuilder(11)
    y = g.op("MatMul", [g.op("Flatten", ["input"]), g.weight("w", (16, 6), 16)])
    y = g.op("Reshape", [y, g.const("shape", np.array([-1, 3, 2], np.int64))])
    return g.save(directory / "rank3_output.onnx", [_input("input", ["N", 1, 4, 4])], y,
                  ["N", 3, 2])


def build_int_output(directory: Path) -> Path:
    """An exported ``argmax``: int64 labels instead of logits."""
    g = GraphBuilder(12)
    y = g.op("MatMul", [g.op("Flatten", ["input"]), g.weight("w", (16, 3), 16)])
    y = g.op("ArgMax", [y], axis=1, keepdims=0)
    return g.save(directory / "int_output.onnx", [_input("input", ["N", 1, 4, 4])], y, ["N"],
                  out_type=TensorProto.INT64)


def build_corrupt(directory: Path) -> Path:
    """A truncated copy of a good model (what a broken upload looks like)."""
    data = build_digits_cnn(directory / "src").read_bytes()
    path = directory / "corrupt.onnx"
    path.write_bytes(data[: len(data) // 3] + b"\xff\xfe garbage")
    return path


# ------------------------------------------------------------------------- torch exports

def _torch_cnn():
    import torch  # noqa: PLC0415 (only these builders need torch)
    from torch import nn  # noqa: PLC0415

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(),          # grouped
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),          # depthwise
        nn.Conv2d(8, 16, 1), nn.ReLU(),                              # pointwise
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()


def build_torch_cnn(directory: Path) -> Path:
    """(a) torch.onnx.export(dynamo=False), opset 13, dynamic batch, BN kept as a node."""
    import torch  # noqa: PLC0415

    path = directory / "torch_cnn.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(_torch_cnn(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False,
                          opset_version=13, do_constant_folding=False, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def build_torch_opset9(directory: Path) -> Path:
    """(b) the real old-PyTorch export: opset 9, fixed batch 1, initializers as inputs."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    path = directory / "torch_opset9.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False,
                          opset_version=9, keep_initializers_as_inputs=True)
    return path


EXPECTED_LAYERS: dict[str, list[tuple[str, str, int, int]]] = {
    "tiny_cnn": [("conv1.weight", "Conv", 27, 8), ("conv2.weight", "Conv", 72, 16),
                 ("fc.weight", "Gemm", 16, 10)],
    "digits_cnn": [("conv1.weight", "Conv", 9, 4), ("conv2.weight", "Conv", 36, 8),
                   ("fc.weight", "Gemm", 128, 10)],
    "nhwc_matmul": [("conv2d.weight", "Conv", 27, 4), ("dense/kernel", "MatMul", 144, 16),
                    ("dense_1/kernel", "MatMul", 16, 10)],
    "residual": [("stem.weight", "Conv", 27, 8), ("b1.conv1.weight", "Conv", 72, 8),
                 ("b1.conv2.weight", "Conv", 72, 8), ("b2.conv1.weight", "Conv", 72, 16),
                 ("b2.conv2.weight", "Conv", 144, 16), ("b2.proj.weight", "Conv", 8, 16),
                 ("fc.weight", "Gemm", 16, 10)],
    "batch1_opset9": [("0.weight", "Conv", 27, 6), ("5.weight", "Gemm", 294, 10)],
    "constant_weights": [("conv.weight", "Conv", 9, 4), ("fc.weight", "MatMul", 256, 10)],
    "fixed_batch4": [("conv.weight", "Conv", 9, 2), ("fc.weight", "Gemm", 128, 3)],
    # torch names its weights after the module index in nn.Sequential
    "torch_cnn": [("0.weight", "Conv", 27, 8), ("3.weight", "Conv", 36, 8),
                  ("5.weight", "Conv", 9, 8), ("7.weight", "Conv", 8, 16),
                  ("11.weight", "Gemm", 16, 10)],
    "torch_opset9": [("0.weight", "Conv", 27, 4), ("3.weight", "Gemm", 144, 10)],
}
