"""The one on-disk cache of chip responses: a float32 ``(chips, images, M)`` ``.npy`` plus a
JSON sidecar that says what it was computed from.

Every chip-parallel job that keeps responses (compaction's signatures, the evaluation's
responses to every stimulus set, the one-pass labelling that fills the evaluation's cache)
goes through :class:`ResponseCache`, so they share one set of guarantees:

* reused only when the sidecar equals the caller's key (model, chip set, images, shape...);
* written under a temporary name and renamed, with the sidecar written last and removed
  first, so an interrupted run never leaves a cache that looks complete or a stale sidecar
  that vouches for new data;
* opened as a read-only memory map: a 1000 x 2048 x 10 cache is 82 MB on disk and only the
  pages actually gathered become resident.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from egis.toolkit.io import read_json, write_json

T = TypeVar("T")
LAYOUT = "chips x images x logits"


class ResponseCache:
    """``STEM.npy`` + ``STEM.json`` holding responses of shape ``shape`` for ``key``."""

    def __init__(self, stem: str | os.PathLike, key: dict[str, Any], shape: tuple[int, int, int]) -> None:
        self.stem = Path(stem)
        self.npy = self.stem.with_name(self.stem.name + ".npy")
        self.sidecar = self.stem.with_name(self.stem.name + ".json")
        self.shape = tuple(int(s) for s in shape)
        self.key = {**key, "shape": list(self.shape), "dtype": "float32", "layout": LAYOUT}

    def open(self) -> np.ndarray | None:
        """The cached responses as a read-only memory map, or None when absent or stale."""
        if not (self.npy.exists() and self.sidecar.exists()):
            return None
        try:
            if read_json(self.sidecar) != self.key:
                return None
            arr = np.load(self.npy, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.shape != self.shape or arr.dtype != np.float32:
            return None
        return arr

    def write(self, fill: Callable[[np.ndarray], T]) -> T:
        """Let ``fill`` write every response into a float32 memory map, then publish it.
        Returns what ``fill`` returns (e.g. the accuracies a one-pass labelling computed)."""
        self.npy.parent.mkdir(parents=True, exist_ok=True)
        self.sidecar.unlink(missing_ok=True)
        tmp = self.npy.with_name(f".{self.npy.name}.{os.getpid()}.tmp")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=self.shape)
            result = fill(out)
            out.flush()
            del out
            os.replace(tmp, self.npy)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        write_json(self.sidecar, self.key)
        return result

    def get(self, fill: Callable[[np.ndarray], Any]) -> np.ndarray:
        """The cached responses, computed with ``fill`` first when absent or stale."""
        cached = self.open()
        if cached is not None:
            return cached
        self.write(fill)
        cached = self.open()
        assert cached is not None  # just written with this key
        return cached
