"""The chance level of a compaction: where a chosen K-set sits among random K-sets of the same
stimulus set, each scored on the evaluation chips exactly as a choice is (issue #18: a choice
that beats chance, measurably).

Why a level and not a row: one random K-set per seed (the evaluation's "random K" row) varies
by 0.4-0.7 TA points from set to set on 1000 evaluation chips, so "annealing minus random K"
carries that noise twice. The mean of many random sets is the chance level itself, and a
choice's percentile among them says how lucky or good it was. Under an escape budget the
level's mean CTE and YL are what the budget costs with a stimulus set, free of the luck of one
annealed choice. Used by ``egis evaluate --chance R`` (chance.csv, the report) and by
bench/bench_chance_level.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from egis.compaction import BoosterConfig
from egis.evaluate import predict_with, setting_labels
from egis.metrics import test_metrics
from egis.responses import ChipResponses

CHANCE_SEED = 12345            # the random sets' seed (the bench's default too)
SCORES = ("TA", "CTE", "YL")   # what each random set is scored by


def random_sets(images: int, k: int, count: int, seed: int = CHANCE_SEED) -> list[np.ndarray]:
    """``count`` random K-sets (sorted indices) of a stimulus set of ``images`` images."""
    if not 0 < k <= images:
        raise ValueError(f"cannot draw {k} of {images} images")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(images, k, replace=False)) for _ in range(count)]


@dataclass
class ChanceLevel:
    """The scores of random K-sets of one stimulus set at one cutoff, on the evaluation chips."""

    stimulus: str
    cutoff: str
    k: int
    scores: dict[str, np.ndarray]   # metric (SCORES) -> one value per random set

    @property
    def sets(self) -> int:
        return len(self.scores["TA"])

    @property
    def ta(self) -> float:
        return float(np.mean(self.scores["TA"]))

    def place(self, ta: float) -> tuple[float, float]:
        """A chosen set's TA minus the chance level, and its percentile among the random sets."""
        return ta - self.ta, float(np.mean(self.scores["TA"] < ta) * 100)

    def row(self) -> dict[str, float | int | str]:
        """The level as a CSV row: mean TA, its sd over sets and standard error, mean CTE / YL."""
        sd = float(np.std(self.scores["TA"], ddof=1)) if self.sets > 1 else float("nan")
        return {"stimulus": self.stimulus, "cutoff": self.cutoff, "k": self.k, "sets": self.sets,
                "TA": self.ta, "TA_sd": sd, "TA_se": sd / np.sqrt(self.sets),
                **{name: float(np.mean(self.scores[name])) for name in SCORES if name != "TA"}}


def chance_level(labelled: ChipResponses, evaluation: ChipResponses, stimulus: str, cutoff: str, k: int,
                 sets: Sequence[Sequence[int]], config: BoosterConfig, max_escape: float | None = None,
                 escape_confidence: float | None = None, method: str = "egis") -> ChanceLevel:
    """Score every random set in ``sets`` (indices into ``stimulus``) as the evaluation scores
    a data-free choice of ``method``: its detector fitted on the labelled chips (for
    egis-distil, the student: labelled plus teacher-labelled chips), exported to ONNX, its
    threshold set by the escape budget when one is given (egis.evaluate.predict_with)."""
    threshold, labels = setting_labels(labelled, cutoff)
    scores: dict[str, list[float]] = {name: [] for name in SCORES}
    for indices in sets:
        predicted = predict_with(method, labelled, evaluation, list(indices), labels, threshold, config,
                                 max_escape=max_escape, stimulus=stimulus, escape_confidence=escape_confidence)
        metrics = test_metrics(predicted, evaluation.accuracy, threshold)
        for name in SCORES:
            scores[name].append(metrics[name])
    return ChanceLevel(stimulus, cutoff, k, {name: np.asarray(values) for name, values in scores.items()})
