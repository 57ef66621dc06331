"""Chip signatures: the logits every labelled chip gives on every synthetic image, cached.

Compaction (egis.compaction) evaluates thousands of candidate image sets, and each needs the
signatures of all D labelled chips. Simulating chips is the expensive part (one ONNX run per
chip per image), so the full response tensor ``logits[D, N, M]`` is computed ONCE with
:func:`egis.toolkit.engine.population_logits` and kept as a memory-mapped float32 ``.npy`` on
disk; any image subset is then a cheap gather.

Signature of chip d on image set S (K indices, in order) is the seed's ``sig_d``: the K x M
logits stacked image-major, ``logits[d, S, :].reshape(K * M)`` -- values ``[k*M:(k+1)*M]``
are the M logits of image ``S[k]``. The tester builds the same vector from a chip's answers
to the K stimulus images, so the layout is part of the bundle contract.

Cache cost: D * N * M * 4 bytes. D=1000, N=2048, M=10: 82 MB; M=100: 819 MB. The file is
memory-mapped, so only the pages of the images actually gathered need to be resident.

The cache (egis.toolkit.responses) is reused only if its JSON sidecar matches the model
sha256, population sha256, images sha256, chip list and shape.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from egis.toolkit.errors import DataError

CACHE_VERSION = 1
CACHE_STEM = "signatures"
CACHE_NAME = CACHE_STEM + ".npy"
SIDECAR_NAME = CACHE_STEM + ".json"


def images_sha256(images: np.ndarray) -> str:
    """Hash of an image array's dtype, shape and bytes (what the cache was computed from)."""
    arr = np.ascontiguousarray(images)
    digest = hashlib.sha256()
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def signatures(logits: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Signatures (D, K*M) float32 of every chip in ``logits`` (D, N, M) for image set ``indices``.

    Image-major: columns ``[k*M:(k+1)*M]`` are the logits of image ``indices[k]``.
    """
    idx = np.asarray(indices, dtype=np.intp)
    if idx.ndim != 1 or len(idx) == 0:
        raise DataError("an image set must be a non-empty list of image indices")
    d, n, m = logits.shape
    if idx.min() < 0 or idx.max() >= n:
        raise DataError(f"image indices must lie in 0..{n - 1}")
    return np.ascontiguousarray(logits[:, idx, :], dtype=np.float32).reshape(d, len(idx) * m)


def signature(logits: np.ndarray, chip: int, indices: Sequence[int]) -> np.ndarray:
    """Signature (K*M,) of one chip row ``chip`` of ``logits``; same layout as :func:`signatures`."""
    idx = np.asarray(indices, dtype=np.intp)
    return np.ascontiguousarray(logits[chip, idx, :], dtype=np.float32).reshape(-1)


def signature_from_logits(chip_logits: np.ndarray) -> np.ndarray:
    """Signature (1, K*M) from one chip's logits (K, M) on the K stimulus images, in order."""
    arr = np.asarray(chip_logits, dtype=np.float32)
    return np.ascontiguousarray(arr).reshape(1, -1)


def compute_signatures(population: Any, images: np.ndarray, chips: Sequence[int] | None = None,
                       cache_dir: str | os.PathLike | None = None, progress: bool = True,
                       threads: int | None = None, workers: int | None = None) -> np.ndarray:
    """Logits (D, N, M) of ``chips`` (default all) of ``population`` on ``images``.

    With ``cache_dir`` the result is a read-only memory map of ``cache_dir/signatures.npy``
    (egis.toolkit.responses.ResponseCache), reused when the sidecar's model, population,
    images, chips and shape all match, and recomputed (atomically) otherwise. Without it, an
    in-memory array is returned.
    """
    from egis.toolkit.engine import population_logits
    from egis.toolkit.responses import ResponseCache

    chips = list(range(len(population))) if chips is None else [int(c) for c in chips]
    shape = (len(chips), int(images.shape[0]), int(population.model.num_classes))
    if cache_dir is None:
        return population_logits(population, images, chips, progress=progress, threads=threads, workers=workers)
    key = {"cache_version": CACHE_VERSION, "model_sha256": population.model.sha256,
           "population_sha256": population.spec.sha256(), "images_sha256": images_sha256(images),
           "chips": chips}
    cache = ResponseCache(Path(cache_dir) / CACHE_STEM, key, shape)
    return cache.get(lambda out: population_logits(population, images, chips, progress=progress,
                                                   threads=threads, out=out, workers=workers))


def cache_bytes(d: int, n: int, m: int) -> int:
    """Disk size of a signature cache (float32), to warn before a large computation."""
    return d * n * m * 4
