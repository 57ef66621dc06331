"""Reading a synthetic image set (SID) directory, without torch.

``egis synthesize`` and the baselines write SIDs (egis.synthesis.write_sid); compaction and
the evaluation only read their images, and must refuse a set made for another model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from toolkit.errors import DataError
from toolkit.io import read_json, read_npz


def read_sid_images(sid_dir: str | Path, model_sha256: str) -> np.ndarray:
    """Pixel-domain images (N, *image_shape) of an SID directory, checked against the model."""
    sid_dir = Path(sid_dir)
    path = sid_dir / "images.npz"
    if not path.is_file():
        raise DataError(f"{sid_dir} is not an SID directory (no images.npz)")
    try:
        arrays = read_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile):
        raise DataError(f"{path} is damaged or not an .npz of plain arrays") from None
    if "images" not in arrays:
        raise DataError(f"{path} holds no 'images' array")
    meta_path = sid_dir / "meta.json"
    if meta_path.is_file():
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError):
            raise DataError(f"{meta_path} is damaged (not valid JSON)") from None
        sha = meta.get("model_sha256") if isinstance(meta, dict) else None
        if sha and sha != model_sha256:
            raise DataError(f"{sid_dir} was synthesized for model sha256 {sha[:12]}..., "
                            f"not this model ({model_sha256[:12]}...)")
    return np.ascontiguousarray(arrays["images"], dtype=np.float32)
