"""The synthetic image set (SID) directory: its writer and its reader, in one place.

``egis synthesize`` and the baselines write SIDs (:func:`write_sid`); compaction and the
evaluation only read their images (:func:`read_sid_images`) and must refuse a set made for
another model. Torch-free at import: the generator is exported only when one is given.

Layout: images.npz, meta.json (same seed, same bytes), timings.json (wall-clock figures, kept
out of meta.json so identical runs give identical meta), and for generator-made sets
generator.onnx, training.csv, entropy.png; grid.png for every set.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from egis.synthesis.config import StepRecord, SynthesisError
from egis.synthesis.predictions import Predictions
from egis.toolkit.errors import DataError
from egis.toolkit.io import atomic_directory, read_json, read_npz, write_json, write_npz
from egis.toolkit.io import check_output_dir as check_output_folder
from egis.toolkit.model import LoadedModel

if TYPE_CHECKING:
    from egis.generator import PixelGenerator


def read_sid_meta(sid_dir: str | Path) -> dict[str, Any]:
    """An SID directory's meta.json (how the set was made), refused when missing or damaged."""
    meta_path = Path(sid_dir) / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{sid_dir} is not an SID directory (no meta.json)")
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError):
        raise DataError(f"{meta_path} is damaged (not valid JSON)") from None
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path} is damaged (not a JSON object)")
    return meta


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
    if (sid_dir / "meta.json").is_file():
        meta = read_sid_meta(sid_dir)
        sha = meta.get("model_sha256")
        if sha and sha != model_sha256:
            raise DataError(f"{sid_dir} was synthesized for model sha256 {sha[:12]}..., "
                            f"not this model ({model_sha256[:12]}...)")
    images = np.ascontiguousarray(arrays["images"], dtype=np.float32)
    if images.ndim < 2 or len(images) == 0:
        raise DataError(f"{path}: 'images' must be a non-empty array of images, got shape {images.shape}")
    if not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).reshape(len(images), -1).any(axis=1).sum())
        raise DataError(f"{path}: {bad} of {len(images)} images hold NaN/Inf pixels")
    return images


# --------------------------------------------------------------------------- SID directory
SID_FORMAT_VERSION = 1
TIMINGS_NAME = "timings.json"
GRID_IMAGES = 64


def checkpoint_dir_for(out_dir: str | Path) -> Path:
    """Where training checkpoints of ``out_dir`` live: a visible sibling ``<out>.checkpoint``.

    Not inside the SID directory, which only appears (atomically) once complete, and not in
    a temp dir, which a failure removes: --resume must find it after a crash.
    """
    out = Path(out_dir)
    return out.with_name(out.name + ".checkpoint")


def check_output_dir(out_dir: str | Path) -> None:
    """Fail fast (before any training) on an output path we must not replace."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SynthesisError(f"{out} exists and is not a directory")
    check_output_folder(out)
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").is_file():
        raise SynthesisError(f"{out} exists and is not an SID directory (no meta.json); "
                             "choose another output directory")


@contextlib.contextmanager
def staged_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out_dir``; it becomes ``out_dir`` on success.

    A failure removes it, so readers never see a half-written SID directory. An existing
    ``out_dir`` is replaced only if it is an earlier SID directory (has meta.json) or empty,
    never a folder of someone's other files.
    """
    check_output_dir(out_dir)
    with atomic_directory(out_dir) as staging:
        yield staging


def class_histogram(pred: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(pred, minlength=num_classes).astype(int).tolist()


def set_summary(predictions: Predictions, num_classes: int) -> dict[str, Any]:
    """Entropies, histogram and the issue's coverage test (every class, none above 3/M)."""
    from egis.entropy import set_entropies  # noqa: PLC0415

    h_c, h_s = set_entropies(predictions.probabilities)
    histogram = class_histogram(predictions.pred, num_classes)
    count = max(1, len(predictions.pred))
    return {"h_c": h_c, "h_s": h_s, "log_m": math.log(num_classes), "class_histogram": histogram,
            "classes_covered": int(sum(1 for h in histogram if h > 0)),
            "max_class_share": max(histogram) / count,
            "coverage_ok": min(histogram) > 0 and max(histogram) / count <= 3.0 / num_classes,
            "mean_confidence": float(np.mean(predictions.confidence)) if len(predictions.pred) else 0.0}


def write_history_csv(path: Path, history: list[StepRecord]) -> None:
    from egis.toolkit.io import atomic_open  # noqa: PLC0415

    with atomic_open(path) as handle:
        spread = any(r.spread for r in history)   # the variation-aware loss adds a column
        handle.write("iteration,loss,h_c,h_s" + (",spread" if spread else "") + "\n")
        for r in history:
            handle.write(f"{r.iteration},{r.loss:.6g},{r.h_c:.6g},{r.h_s:.6g}"
                         + (f",{r.spread:.6g}" if spread else "") + "\n")


def write_sid(out_dir: str | Path, *, model: LoadedModel, noise_vectors: np.ndarray | None,
              images: np.ndarray, predictions: Predictions, meta: dict[str, Any],
              history: list[StepRecord] | None = None,
              generator: PixelGenerator | None = None,
              timings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write an SID directory atomically; returns the meta.json content.

    ``timings`` (wall-clock figures) go to timings.json, never into meta.json: the same
    seed and settings give the same bytes in every other file.

    images.npz: images (N, *image_shape) float32 pixel domain, pred int64, confidence
    float32, and noise (N, 100) when a generator made them (generator.onnx(noise) == images).
    """
    from egis import plots  # noqa: PLC0415

    contract = model.contract
    summary = set_summary(predictions, model.num_classes)
    meta = {"format_version": SID_FORMAT_VERSION, "model_sha256": model.sha256,
            "num_classes": model.num_classes, "input_contract": contract.to_dict(),
            "image_count": int(len(images)), "set": summary, **meta}
    with staged_directory(out_dir) as staging:
        arrays = {"images": images.astype(np.float32), "pred": predictions.pred.astype(np.int64),
                  "confidence": predictions.confidence.astype(np.float32)}
        if noise_vectors is not None:
            arrays["noise"] = noise_vectors.astype(np.float32)
        write_npz(staging / "images.npz", **arrays)
        if generator is not None:
            from egis.synthesis.training import export_generator  # noqa: PLC0415 (torch)

            export_generator(generator, staging / "generator.onnx")
        if history is not None:
            write_history_csv(staging / "training.csv", history)
            its = [r.iteration for r in history]
            plots.line_plot(staging / "entropy.png",
                            {"H_c (per-image entropy)": (its, [r.h_c for r in history]),
                             "H_s (batch class entropy)": (its, [r.h_s for r in history])},
                            hlines={"log M": math.log(model.num_classes)},
                            title="EGIS training", xlabel="iteration", ylabel="entropy (nats)")
        shown = min(GRID_IMAGES, len(images))
        plots.image_grid(staging / "grid.png", images[:shown],
                         [f"{p} ({c:.2f})" for p, c in zip(predictions.pred[:shown], predictions.confidence[:shown])],
                         layout=contract.layout, vmin=contract.pixel_min, vmax=contract.pixel_max,
                         title=f"{meta.get('kind', 'sid')}: predicted class (confidence)")
        write_json(staging / "meta.json", meta)
        if timings is not None:
            write_json(staging / TIMINGS_NAME, timings)
    return meta

