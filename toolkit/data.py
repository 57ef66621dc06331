"""Customer image data in the formats customers actually have, turned into model inputs.

Supported: an .npz with images ``x`` (uint8 0..255 or float already in the pixel range) and
integer labels ``y`` in NHWC or NCHW (or N,H,W for one channel); a folder ``root/<class>/*``
of PNG/JPEG files; a zip of such a folder (optionally below a sub-folder, e.g. ``test/``).
Class order is the sorted folder names unless a mapping is given. Pixels come out in the
model's layout and pixel domain, float32.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from egis.toolkit.errors import DataError
from egis.toolkit.model import InputContract

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class LabelledImages:
    pixels: np.ndarray      # (n, *contract.image_shape) float32, pixel domain, model layout
    labels: np.ndarray      # (n,) int64
    classes: list[str]      # class names in label order (empty for npz)


def load_labelled_images(path: str | Path, contract: InputContract, num_classes: int,
                         class_map: str | None = None, subdir: str | None = None) -> LabelledImages:
    """Load DATA for labelling; every problem is a one-line DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {path}")
    if path.suffix == ".npz":
        data = _from_npz(path, contract)
    elif path.is_dir():
        data = _from_folder(path if subdir is None else path / subdir, contract, class_map)
    elif path.suffix == ".zip":
        data = _from_zip(path, contract, class_map, subdir)
    else:
        raise DataError(f"unsupported data {path}: expected an .npz, an image folder or a .zip")
    if len(data.labels) == 0:
        raise DataError(f"{path} holds no images")
    bad = (data.labels < 0) | (data.labels >= num_classes)
    if bad.any():
        raise DataError(f"{path}: label {int(data.labels[bad][0])} is out of range for a model "
                        f"with {num_classes} classes")
    return data


def _to_pixel_domain(x: np.ndarray, contract: InputContract) -> np.ndarray:
    """uint8 images are scaled from 0..255 into the contract's pixel range; floats are kept."""
    if x.dtype == np.uint8:
        scale = (contract.pixel_max - contract.pixel_min) / 255.0
        return (x.astype(np.float32) * scale + contract.pixel_min).astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    raise DataError(f"images have dtype {x.dtype}; expected uint8 or float")


def _to_model_layout(x: np.ndarray, contract: InputContract, source: str) -> np.ndarray:
    """Accept NHWC, NCHW or (N,H,W) for one channel; return the model's layout."""
    c, h, w = contract.channels, contract.height, contract.width
    if x.ndim == 3 and c == 1:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise DataError(f"{source}: images of shape {tuple(x.shape[1:])} do not match the model "
                        f"input ({c}x{h}x{w}, as NCHW or NHWC)")
    per_image = tuple(x.shape[1:])
    if per_image == (c, h, w):
        nchw = x
    elif per_image == (h, w, c):
        nchw = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: images of shape {per_image} do not match the model input "
                        f"({c}x{h}x{w}, as NCHW or NHWC)")
    if contract.layout == "NHWC":
        return np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(nchw)


def _from_npz(path: Path, contract: InputContract) -> LabelledImages:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files or "y" not in archive.files:
                raise DataError(f"{path} must hold arrays 'x' (images) and 'y' (labels); "
                                f"it holds {', '.join(archive.files) or 'nothing'}")
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels 'y' must be integers, got {y.dtype}")
    pixels = _to_model_layout(_to_pixel_domain(x, contract), contract, str(path))
    return LabelledImages(pixels, y.astype(np.int64).reshape(-1), [])


def _class_order(names: list[str], class_map: str | None) -> dict[str, int]:
    """Sorted folder names, or an explicit mapping: a JSON file {name: index} or 'a,b,c'."""
    if class_map is None:
        return {name: i for i, name in enumerate(sorted(names))}
    if Path(class_map).is_file():
        try:
            mapping = json.loads(Path(class_map).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"--class-map {class_map} is not valid JSON ({exc})") from None
        if isinstance(mapping, list):
            mapping = {name: i for i, name in enumerate(mapping)}
        if not (isinstance(mapping, dict) and all(isinstance(k, str) and isinstance(v, int)
                                                  and not isinstance(v, bool) for k, v in mapping.items())):
            raise DataError(f"--class-map {class_map} must be a JSON list of class names or an "
                            "object of class name -> index")
    else:
        mapping = {name.strip(): i for i, name in enumerate(class_map.split(","))}
    unknown = sorted(set(names) - set(mapping))
    if unknown:
        raise DataError(f"class folder '{unknown[0]}' is not in the class mapping")
    return {name: int(index) for name, index in mapping.items()}


def _decode(blob: bytes, contract: InputContract, source: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(blob))
        image = image.convert("L" if contract.channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot decode image {source}: {exc}") from None
    return np.asarray(image, dtype=np.uint8)


def _assemble(entries: list[tuple[str, str]], read, contract: InputContract,
              class_map: str | None, source: str) -> LabelledImages:
    """entries: (class name, file key); read(key) -> bytes."""
    if not entries:
        raise DataError(f"{source} holds no images in <class>/ sub-folders")
    order = _class_order(sorted({cls for cls, _ in entries}), class_map)
    entries = sorted(entries, key=lambda item: (order[item[0]], item[1]))
    images = [_decode(read(key), contract, key) for _, key in entries]
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        raise DataError(f"{source}: images have different sizes {sorted(shapes)[:2]}")
    x = np.stack(images)
    pixels = _to_model_layout(_to_pixel_domain(x, contract), contract, source)
    labels = np.array([order[cls] for cls, _ in entries], dtype=np.int64)
    classes = [name for name, _ in sorted(order.items(), key=lambda item: item[1])]
    return LabelledImages(pixels, labels, classes)


def _from_folder(root: Path, contract: InputContract, class_map: str | None) -> LabelledImages:
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    entries = [(file.parent.name, str(file)) for file in sorted(root.glob("*/*"))
               if file.suffix.lower() in IMAGE_SUFFIXES]
    return _assemble(entries, lambda key: Path(key).read_bytes(), contract, class_map, str(root))


def _from_zip(path: Path, contract: InputContract, class_map: str | None,
              subdir: str | None) -> LabelledImages:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read zip {path}: {exc}") from None
    with archive:
        prefix = PurePosixPath(subdir.strip("/")) if subdir else None
        entries = []
        for name in archive.namelist():
            member = PurePosixPath(name)
            if member.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            parts = member.parts
            if prefix is not None:
                if parts[:len(prefix.parts)] != prefix.parts:
                    continue
                parts = parts[len(prefix.parts):]
            if len(parts) < 2:
                continue
            if prefix is None and len(parts) > 2:
                parts = parts[-2:]   # a single top folder (root/<class>/file) is accepted
            entries.append((parts[-2], name))
        tops = {PurePosixPath(key).parts[0] for _, key in entries
                if prefix is None and len(PurePosixPath(key).parts) > 2}
        if len(tops) > 1:
            raise DataError(f"{path} holds several folders ({', '.join(sorted(tops))}); "
                            f"choose one with --subdir")
        return _assemble(entries, archive.read, contract, class_map, str(path))


# ---------------------------------------------------------------------- builtin datasets
BUILTIN_DIGITS = "builtin:digits"
DIGITS_SPLIT_SEED = 0


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as (x_train, y_train, x_test, y_test): float32 (N, 1, 8, 8)
    in 0..1 and int64 labels; fixed stratified 80/20 split (random_state=0).

    The data behind the shipped ``digits`` reference model. It lives in the core (not with the
    model's training recipe) because the method's evaluation, the demo and the labelling
    scripts all read it, and the core is the one layer they may all import."""
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    return xtr, ytr, xte, yte
