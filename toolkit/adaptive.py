"""Adaptive labelling: as many images per chip as its label needs, not all of them for every chip.

A chip's pass/fail label only asks whether its accuracy is above the cutoff. A chip far above
or below is decided by a few hundred images; only chips near the cutoff need the whole test
set. So:

1. every chip is measured on a first batch (``first`` images, a fixed random subset);
2. the cutoff's threshold is estimated from those accuracies (A<p>: the p-th ranked chip);
3. a chip whose Clopper-Pearson interval at ``confidence`` still contains the threshold is
   measured again on every image (exact accuracy); the threshold is re-estimated and round 3
   repeats for chips that the moved threshold made undecided, until none is left.

Labels then equal exhaustive labelling except where a decided chip's true accuracy lies on
the other side of the threshold despite its interval, which ``confidence`` bounds per chip
(and a chip whose first-batch estimate moves the A<p> rank). ``bench/bench_adaptive.py``
measures the agreement and the images saved.

Several cutoffs and a margin: an evaluation does not need every chip's exact accuracy, only
on which side of a few accuracies each chip lies: the cutoffs A50/A60/A70 and, for the
critical-escape metric, each cutoff minus 1 point (``margin``). Given several ``cutoffs``
and a ``margin``, a chip is measured on every image while any of those decision points lies
in its interval; every other chip is on the same side of each point as its exact accuracy,
up to ``confidence`` per chip and point. Accuracies of chips decided on the first batch are
estimates (``exact`` says which are not); every metric that only compares accuracies with
the decision points is then that of exhaustive labelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from egis.toolkit.labels import Cutoff, chip_accuracies

DEFAULT_CONFIDENCE = 0.995
DEFAULT_FIRST = 500


@dataclass
class AdaptiveResult:
    accuracies: np.ndarray        # per chip: exact (all images) or the first-batch estimate
    images_used: np.ndarray       # per chip: the images its accuracy was measured on
    thresholds: list[float]       # each cutoff's threshold, in the order the cutoffs were given
    rounds: int
    n_images: int                 # all images (what exhaustive labelling gives every chip)
    chip_images_run: int          # the work done: a re-measured chip ran its first batch too

    @property
    def threshold(self) -> float:
        """The first (the labelling) cutoff's threshold."""
        return self.thresholds[0]

    @property
    def exact(self) -> np.ndarray:
        """Per chip: True where the accuracy was measured on every image."""
        return self.images_used == self.n_images

    @property
    def images_saved(self) -> float:
        """Fraction of chip-images not run, against exhaustive labelling."""
        full = self.n_images * len(self.images_used)
        return 1.0 - self.chip_images_run / max(full, 1)


def interval(correct: np.ndarray, n: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Clopper-Pearson interval of accuracies ``correct / n``."""
    from scipy.stats import beta

    alpha = 1.0 - confidence
    k = np.asarray(correct, dtype=np.float64)
    low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
    high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return low, high


def decision_points(thresholds: Sequence[float], margin: float) -> np.ndarray:
    """The accuracies a chip must be placed against: each threshold, and each threshold minus
    ``margin`` when ``margin`` > 0 (the critical-escape line)."""
    points = list(thresholds) + ([t - margin for t in thresholds] if margin > 0 else [])
    return np.asarray(points, dtype=np.float64)


def adaptive_accuracies(population, pixels: np.ndarray, labels: np.ndarray, chips: Sequence[int],
                        cutoff: Cutoff | Sequence[Cutoff], confidence: float = DEFAULT_CONFIDENCE,
                        first: int = DEFAULT_FIRST, seed: int = 0, progress: bool = True,
                        threads: int | None = None, workers: int | None = None,
                        margin: float = 0.0) -> AdaptiveResult:
    """Accuracies of ``chips`` with every image only where a decision needs it (module doc).

    ``cutoff``: one cutoff or several (their thresholds are re-estimated each round from the
    current accuracies); ``margin``: also decide at each threshold minus ``margin``."""
    cutoffs = [cutoff] if isinstance(cutoff, Cutoff) else list(cutoff)
    if not cutoffs:
        raise ValueError("adaptive labelling needs at least one cutoff")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    chips = list(chips)
    n_all = len(pixels)

    def thresholds(acc: np.ndarray) -> list[float]:
        return [float(c.threshold(acc)) for c in cutoffs]

    if first >= n_all:
        acc = chip_accuracies(population, pixels, labels, chips, progress=progress, threads=threads,
                              workers=workers)
        return AdaptiveResult(acc, np.full(len(chips), n_all), thresholds(acc), 1, n_all, n_all * len(chips))
    pick = np.sort(np.random.default_rng(seed).choice(n_all, first, replace=False))
    acc = chip_accuracies(population, pixels[pick], labels[pick], chips, progress=progress, threads=threads,
                          workers=workers)
    used = np.full(len(chips), first)
    exact = np.zeros(len(chips), bool)
    rounds = 1
    while True:
        points = decision_points(thresholds(acc), margin)
        low, high = interval(np.round(acc * used), first, confidence)
        straddles = (low[:, None] <= points[None, :]) & (points[None, :] <= high[:, None])
        undecided = ~exact & straddles.any(axis=1)
        if not undecided.any():
            break
        rows = np.flatnonzero(undecided)
        acc[rows] = chip_accuracies(population, pixels, labels, [chips[r] for r in rows], progress=progress,
                                    threads=threads, workers=workers)
        used[rows] = n_all
        exact[rows] = True
        rounds += 1
    return AdaptiveResult(acc, used, thresholds(acc), rounds, n_all,
                          first * len(chips) + n_all * int(exact.sum()))
