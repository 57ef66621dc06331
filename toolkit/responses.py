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

:func:`write_together` fills several caches of the same chips in one simulation pass, so
keeping one cache per stimulus set (shareable between jobs) costs no extra weight draws.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


def write_together(caches: Sequence[ResponseCache], fill: Callable[[np.ndarray], T]) -> T:
    """Let ``fill`` write the responses of every cache side by side (images concatenated in
    ``caches`` order; the caches must share chips and logits) into one scratch memory map,
    then publish each cache's columns. One pass, because a pass draws each chip's weights once
    however many images it runs: filling the caches one by one would draw every chip again
    for each. The scratch file is removed whatever happens; each cache is published
    atomically on its own (:meth:`ResponseCache.write`)."""
    if not caches:
        raise ValueError("no caches to write")
    if len(caches) == 1:
        return caches[0].write(fill)
    chips, classes = caches[0].shape[0], caches[0].shape[2]
    if any(c.shape[0] != chips or c.shape[2] != classes for c in caches):
        raise ValueError("caches written together must hold the same chips and logits")
    widths = [c.shape[1] for c in caches]
    caches[0].npy.parent.mkdir(parents=True, exist_ok=True)
    scratch = caches[0].npy.with_name(f".together.{os.getpid()}.tmp")
    try:
        stacked = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float32,
                                            shape=(chips, sum(widths), classes))
        result = fill(stacked)
        start = 0
        for cache, width in zip(caches, widths):
            block = stacked[:, start:start + width]
            cache.write(lambda out, block=block: out.__setitem__(Ellipsis, block))
            start += width
        del stacked, block
    finally:
        scratch.unlink(missing_ok=True)
    return result
