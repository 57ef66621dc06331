"""CIFAR-10 loader for the reference-model recipes.

Decodes ``cifar10-jpeg.zip`` (train/<class>/NNNN.jpg, test/<class>/NNNN.jpg) with Pillow
once into a uint8 cache OUTSIDE the repository (default ``~/.cache/egis/cifar10_uint8.npz``,
override with ``EGIS_CIFAR10_CACHE``). The zip path defaults to
``<repo>/../shared/datasets/cifar10/cifar10-jpeg.zip`` and is overridable with
``EGIS_CIFAR10_ZIP``. An exclusive file lock guarantees that two recipes started at the
same time decode only once. Decoded data is never written into the repository.
"""

from __future__ import annotations

import fcntl
import io
import os
import zipfile
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO_ROOT.parent / "shared" / "datasets" / "cifar10" / "cifar10-jpeg.zip"
DEFAULT_CACHE = Path.home() / ".cache" / "egis" / "cifar10_uint8.npz"


def zip_path() -> Path:
    return Path(os.environ.get("EGIS_CIFAR10_ZIP", str(DEFAULT_ZIP)))


def cache_path() -> Path:
    return Path(os.environ.get("EGIS_CIFAR10_CACHE", str(DEFAULT_CACHE)))


def _decode(zpath: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    class_index = {name: i for i, name in enumerate(CLASSES)}
    out: dict[str, list] = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    with zipfile.ZipFile(zpath) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg"))
        for name in names:
            parts = name.split("/")
            split, cls = parts[-3], parts[-2]
            if split not in ("train", "test") or cls not in class_index:
                continue
            with Image.open(io.BytesIO(zf.read(name))) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if arr.shape != (32, 32, 3):
                raise ValueError(f"{name}: unexpected image shape {arr.shape}")
            out[f"x_{split}"].append(arr)
            out[f"y_{split}"].append(class_index[cls])
    data = {
        "x_train": np.stack(out["x_train"]), "y_train": np.asarray(out["y_train"], np.int64),
        "x_test": np.stack(out["x_test"]), "y_test": np.asarray(out["y_test"], np.int64),
    }
    if len(data["y_train"]) != 50000 or len(data["y_test"]) != 10000:
        raise ValueError(f"expected 50000/10000 images, got {len(data['y_train'])}/{len(data['y_test'])}")
    return data


def load_cifar10() -> dict[str, np.ndarray]:
    """Return dict with x_train (50000,32,32,3) uint8, y_train, x_test (10000,...), y_test."""
    cpath = cache_path()
    if REPO_ROOT in cpath.resolve().parents:
        raise ValueError(f"refusing to cache decoded CIFAR-10 inside the repository: {cpath}")
    cpath.parent.mkdir(parents=True, exist_ok=True)
    lock = cpath.with_name(cpath.name + ".lock")
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)  # second concurrent caller waits, then reads the cache
        try:
            if not cpath.exists():
                zpath = zip_path()
                if not zpath.exists():
                    raise FileNotFoundError(f"CIFAR-10 zip not found: {zpath} (set EGIS_CIFAR10_ZIP)")
                print(f"decoding {zpath} -> {cpath} (once)", flush=True)
                data = _decode(zpath)
                tmp = cpath.with_name(cpath.name + f".tmp{os.getpid()}.npz")
                np.savez(tmp, **data)
                os.replace(tmp, cpath)
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)
    with np.load(cpath) as z:
        return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}


if __name__ == "__main__":
    d = load_cifar10()
    print({k: v.shape for k, v in d.items()}, np.bincount(d["y_test"]))
