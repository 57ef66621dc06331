"""Which weight tensors of an ONNX graph live on RRAM crossbars, and how they map to a grid.

A crossbar computes ``y = x @ M`` for a (rows, cols) conductance matrix ``M``: rows are the
inputs of one output, cols are the outputs. Every layer that is a matrix product with a
constant operand is mapped:

* ``Conv`` (plain, grouped, depthwise): im2col convention, ``M = w.reshape(out, -1).T``, so
  rows = in_channels/groups * kh * kw and cols = out_channels. A grouped conv is stored as
  one matrix whose columns are the output channels; rows are shared by position within a
  group (each group is its own block on the chip, but its cells have the same shape).
* ``Gemm``: ``Y = A' @ B'`` with ``A' = A.T if transA`` and ``B' = B.T if transB``. The usual
  constant operand is B: ``M = B'`` (so transB=1, W (out, in), gives ``M = W.T``). A constant
  A maps ``x -> A' @ x``: ``M = A'.T``.
* ``MatMul`` with exactly one constant 2-D operand: second operand (in, out) gives ``M = W``;
  first operand (``W @ x``) gives ``M = W.T``.

Constants are initializers or ``Constant`` nodes (``value`` attribute). A weight may reach
its consumer through a single-input chain of ``Identity``/``Cast``/``Transpose``/
``Reshape`` (Reshape only with a constant target; 0 and -1 resolved as ONNX does); the chain
is recorded and replayed by :meth:`CrossbarLayer.to_matrix`. Anything else (Squeeze, Slice,
Concat, DequantizeLinear, ...) is skipped: such a weight is not reported as a crossbar layer.
Also not mapped: ConvTranspose, quantized ops (QLinearConv, MatMulInteger), non-float
weights, MatMul weights of rank != 2, and nodes inside subgraphs (If/Loop/Scan bodies).

Never crossbar layers: biases (Conv input 2, Gemm C, the Add after a MatMul), BatchNorm
parameters and every other constant. An initializer consumed by several crossbar nodes is a
single tensor, so it is reported once, with the first consuming node in graph order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

MATRIX_OPS = ("Conv", "Gemm", "MatMul")
_CHAIN_OPS = ("Identity", "Cast", "Transpose", "Reshape")
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                onnx.TensorProto.BFLOAT16}

# One chain step: ("transpose", perm) or ("reshape", target_shape); Identity/Cast keep values.
ChainStep = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class CrossbarLayer:
    """One weight tensor mapped onto a (rows, cols) crossbar grid.

    ``chain`` replays Transpose/Reshape steps between the stored tensor and its consumer;
    ``transposed`` says whether the consumer's effective 2-D weight must be transposed to
    obtain the (inputs, outputs) matrix. Both default to the plain case so callers may build
    layers from the documented fields alone.
    """

    name: str
    node: str
    op: str
    shape: tuple[int, ...]
    rows: int
    cols: int
    transposed: bool = False
    chain: tuple[ChainStep, ...] = field(default=())

    @property
    def cells(self) -> int:
        """Number of RRAM cells (one per weight)."""
        return self.rows * self.cols

    def _effective(self, w: np.ndarray) -> np.ndarray:
        for kind, arg in self.chain:
            w = np.transpose(w, arg) if kind == "transpose" else w.reshape(arg)
        return w

    def _uneffective(self, w: np.ndarray) -> np.ndarray:
        shapes = [self.shape]
        for kind, arg in self.chain:  # forward shapes, to undo reshapes
            prev = shapes[-1]
            shapes.append(tuple(prev[i] for i in arg) if kind == "transpose" else tuple(arg))
        for (kind, arg), prev in zip(reversed(self.chain), reversed(shapes[:-1])):
            w = np.transpose(w, np.argsort(arg)) if kind == "transpose" else w.reshape(prev)
        return w

    def to_matrix(self, w: np.ndarray) -> np.ndarray:
        """Weight tensor (``shape``) -> crossbar matrix (rows, cols); a view where possible."""
        w = np.asarray(w)
        if w.shape != self.shape:
            raise ValueError(f"{self.name}: expected shape {self.shape}, got {w.shape}")
        e = self._effective(w)
        if self.op == "Conv":
            return e.reshape(e.shape[0], -1).T
        return e.T if self.transposed else e

    def from_matrix(self, m: np.ndarray) -> np.ndarray:
        """Crossbar matrix (rows, cols) -> weight tensor of ``shape``; exact inverse of to_matrix."""
        m = np.asarray(m)
        if m.shape != (self.rows, self.cols):
            raise ValueError(f"{self.name}: expected matrix {(self.rows, self.cols)}, got {m.shape}")
        if self.op == "Conv":
            e = m.T.reshape(self._effective_shape())
        else:
            e = m.T if self.transposed else m
        return np.ascontiguousarray(self._uneffective(e))

    def _effective_shape(self) -> tuple[int, ...]:
        shape = self.shape
        for kind, arg in self.chain:
            shape = tuple(shape[i] for i in arg) if kind == "transpose" else tuple(arg)
        return shape


class _Constants:
    """Shapes/values of the graph's constants: initializers and Constant(value=...) outputs."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.tensors: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        for node in graph.node:
            tensor = constant_tensor(node)
            if tensor is not None:
                self.tensors[node.output[0]] = tensor

    def get(self, name: str) -> onnx.TensorProto | None:
        return self.tensors.get(name)


def constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor of a standard ``Constant(value=tensor)`` node; None for any other node.

    Shared with toolkit.model, which turns these nodes into initializers: what the mapper
    accepts as a constant weight and what intake converts must be the same set of nodes.
    """
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return attr.t
    return None


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _trace_weight(name: str, consts: _Constants, producers: dict[str, onnx.NodeProto]
                  ) -> tuple[str, tuple[int, ...], tuple[ChainStep, ...]] | None:
    """Follow ``name`` back to a float constant through a cheap chain; None if not constant."""
    steps: list[ChainStep] = []
    while consts.get(name) is None:
        node = producers.get(name)
        if node is None or node.op_type not in _CHAIN_OPS or not node.input:
            return None
        step = _chain_step(node, consts)
        if step is False:
            return None
        if step is not None:
            steps.append(step)
        name = node.input[0]
    tensor = consts.get(name)
    if tensor.data_type not in _FLOAT_TYPES:
        return None
    shape = tuple(int(d) for d in tensor.dims)
    steps.reverse()
    try:
        return name, shape, _resolve_chain(shape, steps)
    except (ValueError, IndexError):
        return None


def _chain_step(node: onnx.NodeProto, consts: _Constants) -> ChainStep | None | bool:
    """Chain step of one node: a step, None for value-preserving ops, False if unsupported."""
    if node.op_type in ("Identity", "Cast"):
        return None
    if node.op_type == "Transpose":
        perm = next((tuple(int(i) for i in a.ints) for a in node.attribute if a.name == "perm"), ())
        return ("transpose", perm)  # () = reversed dims, resolved by _resolve_chain
    target = consts.get(node.input[1]) if len(node.input) > 1 else None
    if target is None:
        return False
    dims = tuple(int(d) for d in numpy_helper.to_array(target).reshape(-1))
    if 0 in dims and _attr_int(node, "allowzero", 0):
        return False  # a literal zero-sized dim: not a weight we can map
    return ("reshape", dims)


def _reshape_target(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX Reshape semantics (0 copies a dim, one -1 is inferred) without touching data."""
    dims = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(target)]
    total = int(np.prod(shape))
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1]))
        if known <= 0 or total % known:
            raise ValueError(f"cannot reshape {shape} to {target}")
        dims[dims.index(-1)] = total // known
    if any(d < 0 for d in dims) or int(np.prod(dims)) != total:
        raise ValueError(f"cannot reshape {shape} to {target}")
    return tuple(dims)


def _resolve_chain(shape: tuple[int, ...], steps: list[ChainStep]) -> tuple[ChainStep, ...]:
    """Fill in default perms and resolve 0/-1 in Reshape targets against the actual shapes."""
    resolved: list[ChainStep] = []
    for kind, arg in steps:
        if kind == "transpose":
            perm = arg if arg else tuple(reversed(range(len(shape))))
            resolved.append(("transpose", perm))
            shape = tuple(shape[i] for i in perm)
        else:
            shape = _reshape_target(shape, arg)
            resolved.append(("reshape", shape))
    return tuple(resolved)


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(helper.get_attribute_value(attr))
    return default


def _make_layer(node: onnx.NodeProto, operand: int, consts: _Constants,
                producers: dict[str, onnx.NodeProto]) -> CrossbarLayer | None:
    """The crossbar layer for ``node``'s constant operand ``operand``, or None."""
    traced = _trace_weight(node.input[operand], consts, producers)
    if traced is None:
        return None
    name, shape, chain = traced
    layer = CrossbarLayer(name, node.name, node.op_type, shape, 0, 0, False, chain)
    eff = layer._effective_shape()
    if node.op_type == "Conv":
        if len(eff) < 3:
            return None
        rows, cols, transposed = int(np.prod(eff[1:])), eff[0], False
    else:
        if len(eff) != 2:
            return None
        transposed = _is_transposed(node, operand)
        rows, cols = (eff[1], eff[0]) if transposed else eff
    return CrossbarLayer(name, node.name, node.op_type, shape, int(rows), int(cols), transposed, chain)


def _is_transposed(node: onnx.NodeProto, operand: int) -> bool:
    """Whether the constant 2-D operand must be transposed to give the (in, out) matrix."""
    if node.op_type == "MatMul":
        return operand == 0
    if operand == 1:
        return bool(_attr_int(node, "transB", 0))
    return not _attr_int(node, "transA", 0)


def _weight_operand(node: onnx.NodeProto, consts: _Constants,
                    producers: dict[str, onnx.NodeProto]) -> int | None:
    """Index of the weight operand of a Conv/Gemm/MatMul node, or None if it has none."""
    if node.op_type == "Conv":
        return 1 if len(node.input) > 1 else None
    is_const = [_trace_weight(name, consts, producers) is not None for name in node.input[:2]]
    if len(is_const) < 2 or all(is_const) or not any(is_const):
        return None  # x @ x, or a fully constant product (folded away by any runtime)
    return 1 if is_const[1] else 0


def find_crossbar_layers(proto: onnx.ModelProto) -> list[CrossbarLayer]:
    """All crossbar layers of the main graph, in node order, each weight tensor once.

    Nodes without a name get ``"<op>_<index>"`` in ``node`` (informational only).
    """
    graph = proto.graph
    consts, producers = _Constants(graph), _producers(graph)
    layers: list[CrossbarLayer] = []
    seen: set[str] = set()
    for index, node in enumerate(graph.node):
        if node.op_type not in MATRIX_OPS or node.domain not in ("", "ai.onnx"):
            continue
        operand = _weight_operand(node, consts, producers)
        if operand is None:
            continue
        layer = _make_layer(node, operand, consts, producers)
        if layer is None or layer.name in seen:
            continue
        if not node.name:
            layer = CrossbarLayer(layer.name, f"{node.op_type}_{index}", layer.op, layer.shape,
                                  layer.rows, layer.cols, layer.transposed, layer.chain)
        seen.add(layer.name)
        layers.append(layer)
    return layers
