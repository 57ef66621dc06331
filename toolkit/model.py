"""Intake of a customer's ONNX image classifier: validation, input contract, crossbar layers.

Everything downstream (synthesis, bundles, chip simulation) assumes what this module checks:
exactly one rank-4 float32 image input, one (batch, M) float logits output, every crossbar
weight stored as an initializer, and a known pixel domain and layout for the input images.
Problems are reported as one-line :class:`~toolkit.errors.ModelError` messages.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, numpy_helper

from egis.toolkit.crossbar import CrossbarLayer, constant_tensor, find_crossbar_layers
from egis.toolkit.errors import DataError, ModelError

LAYOUTS = ("NCHW", "NHWC")
_CHANNEL_COUNTS = (1, 3, 4)
META_LAYOUT, META_RANGE, META_MEAN, META_STD = "egis.layout", "egis.pixel_range", "egis.mean", "egis.std"


@dataclass(frozen=True)
class InputContract:
    """How pixel images (model layout, pixel domain) become the model's input tensor."""

    layout: str
    channels: int
    height: int
    width: int
    pixel_min: float = 0.0
    pixel_max: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one image in the model's layout."""
        if self.layout == "NCHW":
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def channel_axis(self) -> int:
        """Channel axis of a batch (n, *image_shape)."""
        return 1 if self.layout == "NCHW" else 3

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Pixel-domain images (n, *image_shape) or one image -> float32 model input batch.

        ``mean``/``std`` (if set) are applied here because the graph does not do it.
        """
        x = np.asarray(pixels, dtype=np.float32)
        if x.shape == self.image_shape:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise DataError(f"images have shape {tuple(x.shape)}, the model expects "
                            f"(n, {', '.join(map(str, self.image_shape))}) in {self.layout}")
        if self.mean is not None or self.std is not None:
            shape = [1, 1, 1, 1]
            shape[self.channel_axis] = self.channels
            mean = np.asarray(self.mean or (0.0,) * self.channels, np.float32).reshape(shape)
            std = np.asarray(self.std or (1.0,) * self.channels, np.float32).reshape(shape)
            x = (x - mean) / std
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists, not tuples)."""
        return {"layout": self.layout, "channels": self.channels, "height": self.height,
                "width": self.width, "pixel_min": self.pixel_min, "pixel_max": self.pixel_max,
                "mean": list(self.mean) if self.mean is not None else None,
                "std": list(self.std) if self.std is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputContract:
        """Inverse of :meth:`to_dict`."""
        return cls(layout=str(data["layout"]), channels=int(data["channels"]),
                   height=int(data["height"]), width=int(data["width"]),
                   pixel_min=float(data.get("pixel_min", 0.0)),
                   pixel_max=float(data.get("pixel_max", 1.0)),
                   mean=_opt_tuple(data.get("mean")), std=_opt_tuple(data.get("std")))


def _opt_tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


@dataclass
class LoadedModel:
    """A validated classifier; ``proto`` has every crossbar weight as an initializer."""

    proto: onnx.ModelProto
    sha256: str
    input_name: str
    output_name: str
    num_classes: int
    fixed_batch: int | None
    contract: InputContract
    layers: list[CrossbarLayer] = field(default_factory=list)


# ---------------------------------------------------------------------------------- reading

def _read(path: str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    """Parse the file (and any external data next to it); sha256 is of the file bytes."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{p} is not a valid ONNX model (cannot parse it: {type(exc).__name__})") from exc
    if not proto.graph.node or not proto.opset_import:
        raise ModelError(f"{p} is not a valid ONNX model (no graph or no opset)")
    if any(external_data_helper.uses_external_data(t) for t in proto.graph.initializer):
        from egis.toolkit.onnx_files import external_data_problem  # noqa: PLC0415

        problem = external_data_problem(proto, p.parent)
        if problem:
            raise ModelError(f"{p}: {problem}")
        try:
            external_data_helper.load_external_data_for_model(proto, str(p.parent))
        except Exception as exc:  # noqa: BLE001 - onnx raises OSError, ValueError, checker errors
            raise ModelError(f"cannot read the external weight data of {p}: {_first_line(exc)}") from None
    return proto, hashlib.sha256(data).hexdigest()


def constants_to_initializers(proto: onnx.ModelProto) -> int:
    """Turn top-level ``Constant(value=tensor)`` nodes into initializers, in place.

    Crossbar weights must be initializers so chips can substitute them by name. Returns the
    number converted. Constants that are graph outputs are left alone.
    """
    graph = proto.graph
    outputs = {o.name for o in graph.output}
    keep: list[onnx.NodeProto] = []
    converted = 0
    for node in graph.node:
        tensor = constant_tensor(node)
        if tensor is None or node.output[0] in outputs:
            keep.append(node)
            continue
        init = graph.initializer.add()
        init.CopyFrom(tensor)
        init.name = node.output[0]
        if proto.ir_version < 4:  # old IR: initializers must also be listed as inputs
            graph.input.append(onnx.helper.make_tensor_value_info(
                init.name, init.data_type, list(init.dims)))
        converted += 1
    if converted:
        del graph.node[:]
        graph.node.extend(keep)
    return converted


STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def _check_runnable(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Refuse what every later stage would trip over: ops of custom domains (no runtime here
    can execute them: accepted by inspect, they used to fail mid-labelling) and non-finite
    weights (every chip would then 'pass' at chance accuracy)."""
    name = Path(path).name
    for node in proto.graph.node:
        if node.domain not in STANDARD_DOMAINS:
            raise ModelError(f"{name} uses op {node.op_type} of the custom domain '{node.domain}', "
                             "which onnxruntime cannot run without the vendor's library; export the "
                             "model with standard ONNX ops")
    for tensor in proto.graph.initializer:
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                                onnx.TensorProto.BFLOAT16):
            values = numpy_helper.to_array(tensor)
            if not np.isfinite(values.astype(np.float32)).all():
                bad = int((~np.isfinite(values.astype(np.float32))).sum())
                raise ModelError(f"{name}: weight '{tensor.name}' holds {bad} NaN/Inf values; "
                                 "a model with non-finite weights cannot be tested")


def _validate(proto: onnx.ModelProto, path: str | os.PathLike) -> onnx.ModelProto:
    """onnx.checker plus shape inference; returns the inferred model."""
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ModelError(f"{Path(path).name} fails ONNX validation: {_first_line(exc)}") from exc
    try:
        return onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{Path(path).name} fails ONNX shape inference: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- inputs/outputs

def _dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    """Static dims (None where symbolic/unknown); None when the rank is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tensor_type.shape.dim]


def graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old exports also list every initializer as a graph input."""
    initializers = {t.name for t in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in initializers]


def _image_input(proto: onnx.ModelProto) -> tuple[str, list[int | None]]:
    inputs = graph_inputs(proto)
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelError(f"the model has {len(inputs)} inputs ({names}); egis needs exactly one "
                         "image input")
    value = inputs[0]
    elem = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
    dims = _dims(value) if elem else None
    if elem != onnx.TensorProto.FLOAT or dims is None or len(dims) != 4:
        kind = onnx.TensorProto.DataType.Name(elem).lower() if elem else "non-tensor"
        rank = "unknown rank" if dims is None else f"rank {len(dims)}"
        raise ModelError(f"input '{value.name}' is {kind} with {rank}; egis needs a rank-4 float32 "
                         "image input")
    if any(d is None for d in dims[1:]):
        raise ModelError(f"input '{value.name}' has shape {shape_text(dims)}; channels, height and "
                         "width must be fixed numbers")
    return value.name, dims


def shape_text(dims: Sequence[int | str | None] | None) -> str:
    """``(1, 3, ?, ?)``: unknown dims (and an unknown rank) as ``?``, for messages and reports."""
    if dims is None:
        return "(?)"
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _logits_output(inferred: onnx.ModelProto, input_name: str,
                   input_dims: list[int | None]) -> tuple[str, int]:
    """Name and class count M of the (batch, M) float logits output (first graph output)."""
    if not inferred.graph.output:
        raise ModelError("the model has no output; egis needs (batch, classes) logits")
    out = inferred.graph.output[0]
    elem = out.type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
        raise ModelError(f"output '{out.name}' is {onnx.TensorProto.DataType.Name(elem).lower()}; "
                         "egis needs float (batch, classes) logits")
    dims = _dims(out)
    if dims is None or (len(dims) == 2 and dims[1] is None):
        dims = list(_run_once(inferred, input_name, input_dims, out.name).shape)
    if len(dims) != 2:
        raise ModelError(f"output '{out.name}' has shape {shape_text(dims)}; egis needs "
                         "(batch, classes) logits")
    if dims[1] < 2:
        raise ModelError(f"output '{out.name}' has {dims[1]} class(es); egis needs at least 2")
    return out.name, int(dims[1])


def _run_once(proto: onnx.ModelProto, input_name: str, input_dims: list[int | None],
              output_name: str) -> np.ndarray:
    """Run onnxruntime on one zero batch to learn the output shape static inference missed."""
    import onnxruntime as ort  # noqa: PLC0415 (only needed for models without output shapes)

    shape = [input_dims[0] or 1, *input_dims[1:]]
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return session.run([output_name], {input_name: np.zeros(shape, np.float32)})[0]
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot run the model to find its output shape: "
                         f"{_first_line(exc)}") from exc


# ---------------------------------------------------------------------------------- contract

def _metadata(proto: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def _detect_layout(dims: list[int | None], meta: dict[str, str], layout: str | None) -> str:
    """Argument, else metadata, else the shape (channel dim in 1/3/4), else NCHW."""
    if layout is not None:
        return _check_layout(layout, "the layout argument")
    if META_LAYOUT in meta:
        return _check_layout(meta[META_LAYOUT], f"metadata '{META_LAYOUT}'")
    first, last = dims[1] in _CHANNEL_COUNTS, dims[3] in _CHANNEL_COUNTS
    return "NHWC" if last and not first else "NCHW"


def _check_layout(value: str, where: str) -> str:
    layout = str(value).strip().upper()
    if layout not in LAYOUTS:
        raise ModelError(f"{where} is '{value}'; use NCHW or NHWC")
    return layout


def _floats(value: Sequence[float] | str, where: str) -> tuple[float, ...]:
    try:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(float(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where} is '{value}'; expected comma-separated numbers") from exc


def _pixel_range(meta: dict[str, str], pixel_range: Sequence[float] | None) -> tuple[float, float]:
    where = "the pixel_range argument" if pixel_range is not None else f"metadata '{META_RANGE}'"
    source = pixel_range if pixel_range is not None else meta.get(META_RANGE, (0.0, 1.0))
    values = _floats(source, where)
    if len(values) != 2 or not values[0] < values[1] or not np.all(np.isfinite(values)):
        raise ModelError(f"{where} is '{source}'; expected 'min,max' with min < max")
    return values[0], values[1]


def _per_channel(meta: dict[str, str], key: str, arg: Sequence[float] | str | None,
                 channels: int) -> tuple[float, ...] | None:
    """Per-channel mean/std from argument or metadata; one value is broadcast to all channels."""
    source = arg if arg is not None else meta.get(key)
    if source is None:
        return None
    where = f"the {key.split('.')[-1]} argument" if arg is not None else f"metadata '{key}'"
    values = _floats(source, where)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or not np.all(np.isfinite(values)):
        raise ModelError(f"{where} has {len(values)} values; the model has {channels} channels")
    if key == META_STD and min(values) <= 0:
        raise ModelError(f"{where} must be positive")
    return values


def _contract(dims: list[int | None], meta: dict[str, str], layout: str | None,
              pixel_range: Sequence[float] | None, mean: Sequence[float] | str | None,
              std: Sequence[float] | str | None) -> InputContract:
    chosen = _detect_layout(dims, meta, layout)
    c, h, w = (dims[1], dims[2], dims[3]) if chosen == "NCHW" else (dims[3], dims[1], dims[2])
    lo, hi = _pixel_range(meta, pixel_range)
    return InputContract(layout=chosen, channels=int(c), height=int(h), width=int(w),
                         pixel_min=lo, pixel_max=hi,
                         mean=_per_channel(meta, META_MEAN, mean, int(c)),
                         std=_per_channel(meta, META_STD, std, int(c)))


# ------------------------------------------------------------------------------------- load

def load_model(path: str | os.PathLike, *, layout: str | None = None,
               pixel_range: Sequence[float] | str | None = None,
               mean: Sequence[float] | str | None = None,
               std: Sequence[float] | str | None = None,
               require_torch: bool = False) -> LoadedModel:
    """Read, validate and describe a classifier; arguments override the model's metadata.

    ``require_torch`` additionally checks that onnx2torch can convert every op (synthesis
    needs that; the fab's tester does not, so it is off by default).
    """
    proto, digest = _read(path)
    constants_to_initializers(proto)
    _check_runnable(proto, path)
    inferred = _validate(proto, path)
    input_name, dims = _image_input(inferred)
    output_name, num_classes = _logits_output(inferred, input_name, dims)
    contract = _contract(dims, _metadata(proto), layout, pixel_range, mean, std)
    layers = find_crossbar_layers(proto)
    if not layers:
        raise ModelError(f"{Path(path).name} has no Conv/Gemm/MatMul weights to map onto crossbars")
    model = LoadedModel(proto=proto, sha256=digest, input_name=input_name,
                        output_name=output_name, num_classes=num_classes,
                        fixed_batch=dims[0], contract=contract, layers=layers)
    if require_torch:
        from egis.toolkit.torch_bridge import check_convertible  # noqa: PLC0415 (onnx2torch is heavy)

        check_convertible(model.proto)
    return model


def nominal_weights(model: LoadedModel) -> dict[str, np.ndarray]:
    """The nominal chip: every crossbar weight tensor (original shape) as float32, by name.

    The same dict a population's ``chip_weights(i)`` returns for a perturbed chip, so a
    simulator can run the unperturbed model through the same code path.
    """
    by_name = {t.name: t for t in model.proto.graph.initializer}
    return {layer.name: numpy_helper.to_array(by_name[layer.name]).astype(np.float32)
            for layer in model.layers}
