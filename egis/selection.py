"""Candidate selection by response spread: the images on which the labelled chips disagree.

Hypothesis behind it (issue: test fidelity on any customer's model): entropy-guided images
are pushed deep into confident regions, far from the decision boundaries, where chip-to-chip
differences barely move the answer; images near a boundary, where the chips' variation
flips or nearly flips the prediction, tell chips apart. The fab knows how its chips vary, so
it can measure this on the labelled chips' responses without any label: for every image,
the margin of its majority class (that class's logit minus the best other) on every chip,
and the score ``std / (|median| + std)`` over the chips -- near 1 when the chips straddle the
boundary, near 0 when every chip answers confidently alike. Annealing then runs on the top
``fraction`` of the images (at least ``4 K``).
"""

from __future__ import annotations

import numpy as np

DEFAULT_FRACTION = 0.25


def spread_scores(logits: np.ndarray) -> np.ndarray:
    """(N,) disagreement score of each image from responses (D, N, M)."""
    x = np.asarray(logits, dtype=np.float64)
    top = x.mean(axis=0).argmax(axis=1)                        # (N,) majority class
    d, n, m = x.shape
    chosen = x[:, np.arange(n), top]                           # (D, N)
    others = x.copy()
    others[:, np.arange(n), top] = -np.inf
    margin = chosen - others.max(axis=2)                       # (D, N)
    spread = margin.std(axis=0)
    return spread / (np.abs(np.median(margin, axis=0)) + spread + 1e-12)


def spread_candidates(logits: np.ndarray, k: int, fraction: float = DEFAULT_FRACTION) -> np.ndarray:
    """Indices (sorted) of the images kept for annealing: the top ``fraction`` by spread."""
    n = logits.shape[1]
    keep = int(min(n, max(4 * k, round(fraction * n), k + 1)))
    order = np.argsort(-spread_scores(logits), kind="stable")[:keep]
    return np.sort(order)
