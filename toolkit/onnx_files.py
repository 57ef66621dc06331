"""Checks on ONNX files that come from outside (customer models, chip files): external weight
data must exist and stay inside the file's own folder. Needs onnx only (tester path)."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import uses_external_data


def external_data_problem(proto: onnx.ModelProto, folder: Path) -> str | None:
    """Why the external data a model refers to cannot be used, or None when it can.

    A location that resolves outside ``folder`` (``../../etc/passwd``, an absolute path) is
    refused: a model handed over by someone else must not make the tool read other files."""
    base = Path(folder).resolve()
    for tensor in proto.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if not location or base not in target.parents:
            return f"weight '{tensor.name}' refers to external data '{location}' outside the model's folder"
        if not target.is_file():
            return f"external data file '{location}' of weight '{tensor.name}' is missing"
    return None
