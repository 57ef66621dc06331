"""The one place that imports onnx2torch, so its torchvision dependency is handled once.

onnx2torch 1.5.15 imports torchvision at import time, but only its NonMaxSuppression and
RoiAlign converters use it, and PyPI's torchvision wheels fail to load beside the CPU build
of torch. When torchvision is absent we register a stand-in module whose ops raise a clear
error, so classifiers (which never contain those ops) convert without it.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import onnx

from egis.toolkit.errors import ModelError


def _missing_torchvision_op(*_args, **_kwargs):
    raise ModelError("this model uses NonMaxSuppression/RoiAlign, which need torchvision; "
                     "classifiers given to egis should not contain them")


def install_torchvision_stand_in() -> None:
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    ops = types.ModuleType("torchvision.ops")
    for op in ("nms", "box_convert", "roi_align", "batched_nms"):
        setattr(ops, op, _missing_torchvision_op)
    package = types.ModuleType("torchvision")
    package.ops = ops
    package.__egis_stand_in__ = True
    sys.modules["torchvision"] = package
    sys.modules["torchvision.ops"] = ops


def _inline_identity_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of ``model`` where Identity nodes of initializers become initializers themselves.

    The torch exporter merges identical weights into one initializer plus Identity nodes;
    onnx2torch then fails with a KeyError on the Identity's output. Giving every such output
    its own initializer keeps the graph equivalent and convertible.
    """
    initializers = {init.name: init for init in model.graph.initializer}
    identities = [node for node in model.graph.node
                  if node.op_type == "Identity" and node.input[0] in initializers]
    if not identities:
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for node in identities:
        copy = fixed.graph.initializer.add()
        copy.CopyFrom(initializers[node.input[0]])
        copy.name = node.output[0]
    drop = {id(n) for n in identities}
    kept = [n for n, original in zip(fixed.graph.node, model.graph.node) if id(original) not in drop]
    del fixed.graph.node[:]
    fixed.graph.node.extend(kept)
    return fixed


def to_torch(model: onnx.ModelProto):
    """Convert an ONNX model to a frozen torch module in eval mode.

    onnx2torch returns modules in training mode with trainable parameters; both would let
    synthesis silently change the customer's model (BatchNorm running statistics, weights).
    """
    install_torchvision_stand_in()
    import onnx2torch  # noqa: PLC0415 (deliberately late: see module docstring)

    try:
        module = onnx2torch.convert(_inline_identity_initializers(model))
    except NotImplementedError as exc:
        raise ModelError(f"onnx2torch cannot convert this model: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # onnx2torch raises bare exceptions for unsupported opsets/attributes
        raise ModelError(f"onnx2torch cannot convert this model: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def unsupported_ops(proto: onnx.ModelProto) -> list[str]:
    """Ops (``"Op (domain opset N)"``) of the main graph that onnx2torch cannot convert.

    Uses onnx2torch's registry the way its converter does: keyed by (domain, op_type,
    since_version resolved from the model's opset). Needs onnx2torch (and so torch).
    """
    install_torchvision_stand_in()
    from onnx2torch.node_converters.registry import get_converter  # noqa: PLC0415

    opsets = {o.domain: o.version for o in proto.opset_import}
    missing: list[str] = []
    for node in proto.graph.node:
        version = opsets.get(node.domain, opsets.get("ai.onnx" if not node.domain else "", 0))
        label = f"{node.op_type} ({node.domain or 'ai.onnx'} opset {version})"
        if label in missing:
            continue
        try:
            get_converter(operation_type=node.op_type, version=version, domain=node.domain)
        except NotImplementedError:
            missing.append(label)
    return missing


def check_convertible(model: onnx.ModelProto) -> None:
    """Raise ModelError naming the first op onnx2torch cannot convert (synthesis needs torch).

    Accepts a ModelProto or anything with a ``proto`` (a LoadedModel)."""
    proto = getattr(model, "proto", model)
    try:
        missing = unsupported_ops(proto)
    except ImportError as exc:
        raise ModelError(f"checking torch convertibility needs torch and onnx2torch: {exc}") from exc
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"onnx2torch cannot convert op {missing[0]}{more}; egis synthesis "
                         "needs it")
