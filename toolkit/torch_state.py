"""Torch training state (state dicts, optimizer and scheduler state, RNG state) saved as one
NPZ of arrays plus one JSON of everything else, so no checkpoint is ever a pickle.

``torch.save`` writes a pickle, and ``torch.load`` of an untrusted pickle runs code; the
project writes only ONNX, JSON, CSV, NPZ and PNG. A state is any nest of dicts, lists,
tuples, tensors, numpy arrays and JSON scalars. Tensors and arrays go to the NPZ under their
path in the nest; the JSON keeps the structure with a reference in their place. Dicts with
non-string keys (an optimizer's ``state`` is keyed by parameter index) and tuples (Adam's
``betas``) are tagged so they come back with the same types.

The NPZ is written first and the JSON last, both atomically, and both carry a token; a
reader accepts only a matching pair, so a crash between the two writes is detected.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egis.toolkit.io import read_json, read_npz, write_json, write_npz

_TENSOR, _ARRAY, _ITEMS, _TUPLE = "__tensor__", "__ndarray__", "__items__", "__tuple__"
_TOKEN = "__token__"


class CheckpointError(ValueError):
    """A checkpoint pair is missing, incomplete or damaged."""


def _encode(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        arrays[path] = obj.detach().cpu().numpy()
        return {_TENSOR: path}
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {_ARRAY: path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, arrays, f"{path}/{k}") for k, v in obj.items()}
        return {_ITEMS: [[k, _encode(v, arrays, f"{path}/{i}")] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    raise TypeError(f"cannot store a {type(obj).__name__} at {path or '/'} in a checkpoint")


def _decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if _TENSOR in obj:
        return torch.from_numpy(arrays[obj[_TENSOR]].copy())
    if _ARRAY in obj:
        return arrays[obj[_ARRAY]].copy()
    if _ITEMS in obj:
        return {k: _decode(v, arrays) for k, v in obj[_ITEMS]}
    if _TUPLE in obj:
        return tuple(_decode(v, arrays) for v in obj[_TUPLE])
    return {k: _decode(v, arrays) for k, v in obj.items()}


def _pair(path: str | os.PathLike) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".json", ".npz"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` as PATH.npz + PATH.json (atomic each, JSON last)."""
    npz_path, json_path = _pair(path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays, "")
    token = secrets.token_hex(8)
    arrays[_TOKEN] = np.frombuffer(token.encode(), dtype=np.uint8)
    write_npz(npz_path, **arrays)
    write_json(json_path, {_TOKEN: token, "state": tree})


def load_state(path: str | os.PathLike) -> dict[str, Any] | None:
    """The state saved by :func:`save_state`, or None if there is none at PATH."""
    npz_path, json_path = _pair(path)
    if not (npz_path.exists() or json_path.exists()):
        return None
    try:
        meta = read_json(json_path)
        arrays = read_npz(npz_path)
        if bytes(arrays.pop(_TOKEN)).decode() != meta[_TOKEN]:
            raise CheckpointError("its two files come from different saves")
        return _decode(meta["state"], arrays)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {npz_path.with_suffix('')} is incomplete or damaged "
                              f"({exc}); delete {npz_path.name} and {json_path.name} to start again") from exc
