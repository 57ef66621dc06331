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


def test_metrics(predicted_pass: np.ndarray, accuracy: np.ndarray, threshold: float) -> dict[str, float]:
    """Every registered metric, in % of all chips ("pass" is the positive class)."""
    predicted = np.asarray(predicted_pass, dtype=bool)
    accuracy = np.asarray(accuracy)
    good = accuracy >= threshold
    critical = accuracy < threshold - CRITICAL_MARGIN
    scale = 100.0 / len(accuracy)
    return {name: scale * float(np.sum(metric.chips(predicted, good, critical)))
            for name, metric in METRIC_REGISTRY.items()}


test_metrics.__test__ = False  # a library function, not a pytest test
