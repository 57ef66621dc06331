"""The test metrics, one registry: adding a metric is one entry in :data:`METRIC_REGISTRY`.

Every metric is a percentage of all judged chips, computed from three boolean vectors over
the chips: ``predicted`` (the test passed it), ``good`` (true accuracy >= cutoff) and
``critical`` (true accuracy more than :data:`CRITICAL_MARGIN` below the cutoff). Rows,
results.csv, the summary and the report tables all derive their columns from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CRITICAL_MARGIN = 0.01   # a passed chip more than 1 accuracy point below the cutoff is critical

Mask = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    chips: Mask          # (predicted, good, critical) -> the chips this metric counts


METRIC_REGISTRY: dict[str, Metric] = {m.name: m for m in (
    Metric("TA", "test accuracy", lambda p, g, c: p == g),
    Metric("TE", "test escapes (bad chips passed) = CTE + BTE", lambda p, g, c: p & ~g),
    Metric("YL", "yield loss (good chips failed)", lambda p, g, c: ~p & g),
    Metric("CTE", "critical escapes (passed, > 1 point below the cutoff)", lambda p, g, c: p & c),
    Metric("BTE", "benign escapes (passed, within 1 point below the cutoff)", lambda p, g, c: p & ~g & ~c),
)}
METRICS = tuple(METRIC_REGISTRY)


def chip_classes(accuracy: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(good, critical) masks of the chips: accuracy at or above the cutoff, and more than
    :data:`CRITICAL_MARGIN` below it -- the one definition every metric counts with."""
    accuracy = np.asarray(accuracy)
    return accuracy >= threshold, accuracy < threshold - CRITICAL_MARGIN


def test_metrics(predicted_pass: np.ndarray, accuracy: np.ndarray, threshold: float) -> dict[str, float]:
    """Every registered metric, in % of all chips ("pass" is the positive class)."""
    predicted = np.asarray(predicted_pass, dtype=bool)
    good, critical = chip_classes(accuracy, threshold)
    scale = 100.0 / len(accuracy)
    return {name: scale * float(np.sum(metric.chips(predicted, good, critical)))
            for name, metric in METRIC_REGISTRY.items()}


test_metrics.__test__ = False  # a library function, not a pytest test


def least_yield_loss(p_pass: np.ndarray, accuracy: np.ndarray, threshold: float, max_critical: float) -> float:
    """The least yield loss (% of chips) that any pass threshold on ``p_pass`` reaches while its
    critical escapes stay within ``max_critical`` (a fraction of chips), on these chips.

    Why: under an escape budget a test's CTE and YL mix two things, how well its detector ranks
    chips near the cutoff and how well the threshold was chosen from the labelled chips (about
    10 escapes at a 1% budget on 1000 chips, so a noisy choice). This figure keeps the first
    only: the threshold is picked with hindsight on the scored chips, so it is not a test a fab
    could run, but the same hindsight for every method makes it the fair comparison of their
    detectors at the budget, as an ROC curve's operating point is. Passing no chip always
    meets the budget, so the figure is at most the share of good chips.

    It budgets *critical* escapes, as the goal does, while the shipped threshold rule
    (egis.escape) budgets every escape, because the fab's pass/fail labels cannot tell the two
    apart: part of the gap between a chosen threshold's yield loss and this one is built in."""
    if len(p_pass) == 0:
        raise ValueError("no chips to pick a threshold on")
    p = np.asarray(p_pass, dtype=np.float64)
    good, critical = chip_classes(accuracy, threshold)
    order = np.argsort(-p, kind="stable")
    # passing the chips from the highest P(pass) down: thresholds lie between distinct values only
    p_sorted = p[order]
    passed_critical = np.cumsum(critical[order])
    passed_good = np.cumsum(good[order])
    cut_after = np.nonzero(np.append(p_sorted[1:] != p_sorted[:-1], True))[0]   # last chip of each tie group
    within = passed_critical[cut_after] <= max_critical * len(p) + 1e-9
    most_good = int(passed_good[cut_after][within].max()) if within.any() else 0
    return 100.0 * float(good.sum() - most_good) / len(p)
