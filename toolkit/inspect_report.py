"""`egis inspect`: what the toolkit understood about a customer's model, as data and as text.

The report is the first thing a customer sees, so it shows every decision load_model made
(layout, pixel range, normalisation, batch) next to the crossbar layers it found.
"""

from __future__ import annotations

from typing import Any

import onnx

from egis.toolkit.model import LoadedModel, graph_inputs, shape_text


def _shape(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    """Dims as ints, symbolic names, or None (unknown); None when the rank is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor_type.shape.dim]


def _value(value: onnx.ValueInfoProto) -> dict[str, Any]:
    elem = value.type.tensor_type.elem_type
    dtype = onnx.TensorProto.DataType.Name(elem).lower() if elem else "unknown"
    return {"name": value.name, "dtype": dtype, "shape": _shape(value)}


def _opset(proto: onnx.ModelProto) -> int | None:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def inspect_model(loaded: LoadedModel) -> dict[str, Any]:
    """JSON-able description of a loaded model and its crossbar layers."""
    proto = loaded.proto
    layers = [{"name": layer.name, "node": layer.node, "op": layer.op, "shape": list(layer.shape),
               "rows": layer.rows, "cols": layer.cols, "cells": layer.cells}
              for layer in loaded.layers]
    return {
        "sha256": loaded.sha256,
        "inputs": [_value(v) for v in graph_inputs(proto)],
        "outputs": [_value(v) for v in proto.graph.output],
        "input_name": loaded.input_name,
        "output_name": loaded.output_name,
        "layout": loaded.contract.layout,
        "contract": loaded.contract.to_dict(),
        "classes": loaded.num_classes,
        "fixed_batch": loaded.fixed_batch,
        "opset": _opset(proto),
        "ir_version": proto.ir_version,
        "producer": " ".join(p for p in (proto.producer_name, proto.producer_version) if p),
        "layers": layers,
        "total_cells": sum(layer["cells"] for layer in layers),
    }


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_report(report: dict[str, Any]) -> str:
    """Human-readable text of :func:`inspect_model`'s dict."""
    contract = report["contract"]
    norm = ("inside the model" if contract["mean"] is None and contract["std"] is None
            else f"mean {contract['mean']}, std {contract['std']} (applied by egis)")
    batch = "dynamic" if report["fixed_batch"] is None else f"fixed at {report['fixed_batch']}"
    lines = [
        f"model     sha256 {report['sha256'][:16]}..., opset {report['opset']}, "
        f"IR {report['ir_version']}, producer {report['producer'] or '?'}",
        *(f"input     {v['name']}: {v['dtype']} {shape_text(v['shape'])}" for v in report["inputs"]),
        *(f"output    {v['name']}: {v['dtype']} {shape_text(v['shape'])}" for v in report["outputs"]),
        f"images    {report['layout']}, {contract['channels']}x{contract['height']}x"
        f"{contract['width']} (CxHxW), pixels {contract['pixel_min']:g}..{contract['pixel_max']:g}, "
        f"normalisation {norm}",
        f"classes   {report['classes']}, batch {batch}",
        "",
        f"crossbar layers: {len(report['layers'])}, cells: {report['total_cells']:,}",
    ]
    rows = [[layer["name"], layer["op"], "x".join(map(str, layer["shape"])), str(layer["rows"]),
             str(layer["cols"]), f"{layer['cells']:,}"] for layer in report["layers"]]
    lines += _table(["weight", "op", "shape", "rows", "cols", "cells"], rows, right={3, 4, 5})
    return "\n".join(lines)
