"""Customer-side labelling: each chip's accuracy on private data, then pass/fail at a cutoff.

Only the labels leave the customer: LABELS.csv holds ``dut,pass`` by default. The accuracy
column (``--with-accuracy``) is for the customer's own evaluation copies. A JSON side file
records the cutoff, the threshold it gave, and which population and model it belongs to.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Sequence

import numpy as np

from egis.toolkit.errors import DataError
from egis.toolkit.io import atomic_open, read_json, write_json
from egis.toolkit.progress import progress_iter

CUTOFF_PATTERN = re.compile(r"^[Aa](\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Cutoff:
    """``A<p>``: the p% most accurate chips pass; otherwise an absolute accuracy in 0..1."""

    text: str
    pass_percent: float | None = None
    absolute: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Cutoff":
        match = CUTOFF_PATTERN.match(text.strip())
        if match:
            percent = float(match.group(1))
            if not 0 < percent < 100:
                raise DataError(f"cutoff {text}: p must be between 0 and 100")
            return cls(text=text.strip().upper(), pass_percent=percent)
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"cutoff '{text}' is neither A<p> (e.g. A70) nor an accuracy") from None
        if value > 1:
            value /= 100.0   # "85" means 85%
        if not 0 <= value <= 1:
            raise DataError(f"cutoff {text} is not an accuracy in 0..1 (or 0..100%)")
        return cls(text=text.strip(), absolute=value)

    def threshold(self, accuracies: np.ndarray) -> float:
        """Accuracy a chip needs to pass. For A<p>: the accuracy of the chip ranked at p%.

        Ties: every chip with an accuracy >= the threshold passes, so chips that share the
        ranked chip's accuracy all pass and the achieved pass fraction can exceed p% (on few
        chips or few images accuracies repeat). :func:`tie_warning` says when it is far off."""
        if self.absolute is not None:
            return self.absolute
        ranked = np.sort(accuracies)[::-1]
        n_pass = max(1, int(round(self.pass_percent / 100.0 * len(ranked))))
        return float(ranked[n_pass - 1])


def chip_accuracies(population, pixels: np.ndarray, labels: np.ndarray,
                    chips: Sequence[int] | None = None, progress: bool = True,
                    threads: int | None = None, also: tuple[np.ndarray, np.ndarray] | None = None,
                    workers: int | None = None) -> np.ndarray:
    """Top-1 accuracy of each chip on (pixels, labels); logits are never kept in memory.

    ``also=(other_pixels, out)`` fills ``out[row]`` with chip ``chips[row]``'s logits on
    ``other_pixels`` in the same pass. Why: drawing a chip's weights (its correlated field)
    can cost more than running it, so a simulation that needs both the accuracies and the
    responses to test images pays for each chip once.
    """
    from egis.toolkit.engine import ChipTask
    from egis.toolkit.runner import get_runner

    chips = list(range(len(population))) if chips is None else list(chips)
    n = len(pixels)
    images = pixels
    if also is not None:
        other, out = also
        if out.shape != (len(chips), len(other), population.model.num_classes):
            raise ValueError(f"out has shape {out.shape}, expected "
                             f"{(len(chips), len(other), population.model.num_classes)}")
        images = np.concatenate([pixels, other])
    task = ChipTask(population, images, threads)
    task.setup()
    result = np.empty(len(chips), dtype=np.float64)
    answers = get_runner(workers).map(task, chips)
    for row, (_, logits) in enumerate(progress_iter(answers, len(chips), "labelling chips", progress)):
        result[row] = float(np.mean(logits[:n].argmax(axis=1) == labels))
        if also is not None:
            also[1][row] = logits[n:]
    return result


def tie_warning(cutoff: Cutoff, accuracies: np.ndarray, threshold: float) -> str | None:
    """A warning when ties at the threshold move the pass fraction far from A<p>'s p%
    (more than 5 points, or more than one chip on small sets)."""
    if cutoff.pass_percent is None or len(accuracies) == 0:
        return None
    achieved = 100.0 * float(np.mean(np.asarray(accuracies) >= threshold))
    tolerance = max(5.0, 100.0 / len(accuracies))
    if abs(achieved - cutoff.pass_percent) <= tolerance:
        return None
    tied = int(np.sum(np.asarray(accuracies) == threshold))
    return (f"{cutoff.text} asked for {cutoff.pass_percent:g}% passing chips but {achieved:.1f}% pass: "
            f"{tied} chips share the threshold accuracy {threshold:.4f} and ties pass; use more images "
            "(finer accuracies) or an absolute cutoff")


CHANCE_MARGIN = 0.05   # a cutoff this close to chance accuracy (1/M) separates broken chips only


def chance_warning(threshold: float, num_classes: int, labelled_images: int) -> str | None:
    """A warning when the cutoff's threshold accuracy lies within CHANCE_MARGIN of chance
    (1/M): the chips on both sides of it are broken, their pass/fail differs by sampling
    noise of the labelling images, and any test trained on such labels learns nothing a fab
    can use (e.g. MobileNet at sigma_tot 0.3: mean chip accuracy 18%, A50 threshold 11.7%)."""
    chance = 1.0 / max(int(num_classes), 1)
    if not threshold < chance + CHANCE_MARGIN:
        return None
    noise = 100.0 * np.sqrt(chance * (1 - chance) / max(int(labelled_images), 1))
    return (f"the threshold accuracy {threshold:.4f} is within {100 * CHANCE_MARGIN:g} points of chance "
            f"({chance:.4f} for {num_classes} classes; sampling noise of one chip's accuracy on "
            f"{labelled_images} images ~{noise:.1f} points): the chips on both sides are broken; lower "
            "the variability or use a higher cutoff")


def chip_set_accuracies(chip_set: Any, pixels: np.ndarray, labels: np.ndarray, progress: bool = True,
                        threads: int | None = None,
                        on_excluded: Callable[[str, str], None] | None = None,
                        workers: int | None = None) -> np.ndarray:
    """Top-1 accuracy of every chip of a chip set (egis.toolkit.chipset) on (pixels, labels).

    Populations take the fast route (:func:`chip_accuracies`). A chip of an external set that
    fails to answer gets NaN and is reported through ``on_excluded(chip_id, reason)``: the
    caller leaves it out of the labels, never silently."""
    if getattr(chip_set, "kind", "") == "population":
        return chip_accuracies(chip_set.population, pixels, labels, chip_set.indices, progress=progress,
                               threads=threads, workers=workers)
    result = np.full(len(chip_set), np.nan)
    for row in progress_iter(range(len(chip_set)), len(chip_set), "labelling chips", progress):
        try:
            logits = chip_set.responses(row, pixels)
        except Exception as exc:  # noqa: BLE001 - hardware and vendor code fail any way
            if on_excluded is not None:
                on_excluded(chip_set.ids[row], str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            continue
        result[row] = float(np.mean(np.asarray(logits).argmax(axis=1) == labels))
    return result


def pass_fail(accuracies: np.ndarray, threshold: float) -> np.ndarray:
    passed = accuracies >= threshold
    if passed.all() or not passed.any():
        side = "pass" if passed.all() else "fail"
        raise DataError(f"all {len(accuracies)} chips {side} at threshold {threshold:.4f} "
                        f"(accuracies {accuracies.min():.4f}..{accuracies.max():.4f}); "
                        f"choose another cutoff or a wider variation")
    return passed


def write_labels(path: str | Path, chips: Sequence[int | str], passed: np.ndarray,
                 accuracies: np.ndarray | None = None, images: np.ndarray | None = None) -> None:
    """The labels CSV: dut, pass, and optionally each chip's accuracy and (adaptive
    labelling) the number of images that accuracy was measured on, so estimates are never
    mistaken for exact accuracies."""
    if images is not None and accuracies is None:
        raise ValueError("an images column needs the accuracies it counts")
    with atomic_open(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["dut", "pass"] + (["accuracy"] if accuracies is not None else [])
                        + (["images"] if images is not None else []))
        for row, chip in enumerate(chips):
            extra = [f"{accuracies[row]:.6f}"] if accuracies is not None else []
            extra += [str(int(images[row]))] if images is not None else []
            writer.writerow([chip, int(bool(passed[row]))] + extra)


@dataclass
class Labels:
    """A labels file: chip ids (``dut``), pass/fail, optional accuracies, its side file.

    ``ids`` are the chip ids as written: population indices, or the readable ids of an
    external chip set (file stems, adapter targets). ``chips`` is the integer view for
    population chip sets."""

    ids: list[str]
    passed: np.ndarray           # bool
    accuracies: np.ndarray | None
    meta: dict[str, Any]         # the JSON side file (empty if absent)

    @property
    def chips(self) -> np.ndarray:
        """Population chip indices; DataError when the labels name chips by file or adapter."""
        try:
            return np.array([int(i) for i in self.ids], dtype=np.int64)
        except ValueError:
            raise DataError("these labels name chips by id, not population index; use them with "
                            "their chip set") from None

    def check_chip_set(self, identities: dict[str, str], path: str | Path) -> None:
        """Refuse labels of chips that are not in this chip set, or are other chips under the
        same id (the side file records each labelled chip's identity: file sha256, adapter)."""
        recorded = self.meta.get("chip_identities")
        for chip_id in self.ids:
            if chip_id not in identities:
                raise DataError(f"{path} labels chip '{chip_id}', which is not in this chip set")
            if isinstance(recorded, dict) and recorded.get(chip_id, identities[chip_id]) != identities[chip_id]:
                raise DataError(f"{path} labels another chip '{chip_id}' (its file changed since "
                                "labelling); label these chips again")


def side_file(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def read_labels(path: str | Path) -> Labels:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DataError(f"labels file not found: {path}") from None
    if not rows or "dut" not in rows[0] or "pass" not in rows[0]:
        raise DataError(f"{path} is not a labels file (expected a header 'dut,pass')")
    try:
        ids = [str(r["dut"]).strip() for r in rows]
        if any(not i for i in ids):
            raise DataError(f"{path}: a row has an empty dut")
        if len(set(ids)) != len(ids):
            raise DataError(f"{path} lists a chip more than once")
        raw_pass = [str(r["pass"]).strip() for r in rows]
        bad = next((i for i, v in enumerate(raw_pass) if v not in ("0", "1")), None)
        if bad is not None:
            raise DataError(f"{path}: row {bad + 2} has pass={raw_pass[bad]!r}; pass must be 0 or 1")
        passed = np.array([v == "1" for v in raw_pass])
        accuracies = (np.array([float(r["accuracy"]) for r in rows])
                      if "accuracy" in rows[0] and rows[0]["accuracy"] not in (None, "") else None)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed row ({exc})") from None
    meta = {}
    if side_file(path).exists():
        try:
            meta = read_json(side_file(path))
        except (OSError, ValueError) as exc:
            raise DataError(f"{side_file(path)} is damaged (not valid JSON: {exc})") from None
        if not isinstance(meta, dict):
            raise DataError(f"{side_file(path)} is not a labels side file (expected a JSON object)")
        count = meta.get("count")
        if count is not None and count != len(ids):
            raise DataError(f"{path} has {len(ids)} rows but its side file says {count} chips; "
                            "the file was cut or mixed up")
        threshold = meta.get("threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise DataError(f"{side_file(path)}: threshold must be a number, got {threshold!r}")
    if accuracies is not None and not np.isfinite(accuracies).all():
        raise DataError(f"{path}: the accuracy column holds non-numbers")
    return Labels(ids, passed, accuracies, meta)


def labels_meta(*, cutoff: str, threshold: float, passed: np.ndarray, population_sha256: str,
                model_sha256: str, images: int, **extra: Any) -> dict[str, Any]:
    """The side file's content: one schema for every writer (egis label, the shipped
    populations, the demo). ``extra`` adds writer-specific facts (timings, image hashes)."""
    passed = np.asarray(passed, dtype=bool)
    return {"cutoff": cutoff, "threshold": float(threshold), "pass_fraction": float(passed.mean()),
            "count": int(len(passed)), "population_sha256": population_sha256,
            "model_sha256": model_sha256, "images": int(images), **extra}


def write_side_file(path: str | Path, meta: dict[str, Any]) -> None:
    write_json(side_file(path), meta)
