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

Selection by relevance (:func:`relevance_candidates`) uses what the fab has besides the
responses, the labelled chips' pass/fail: an image matters when one of its logits alone
orders failing chips below passing ones (or above), measured by the Mann-Whitney AUC of each
logit against the labels. Why a prefilter at all: Algorithm 1 makes about 200 swaps, so on
N = 2048 candidates it visits a small fraction of them and ends near its random start;
annealing on the few dozen most relevant images searches where the information is.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

DEFAULT_FRACTION = 0.25
RELEVANCE_FRACTION = 1 / 32   # N = 2048 -> 64 images (at least 8 K)


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


def relevance_scores(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) relevance of each image: the largest |AUC - 0.5| of any of its M logits as a
    one-feature separator of the labelled chips' pass (1) and fail (0); 0 with one class."""
    x = np.asarray(logits, dtype=np.float64)
    d, n, m = x.shape
    y = np.asarray(labels).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return np.zeros(n)
    ranks = rankdata(x.reshape(d, n * m), axis=0)               # ties share their mean rank
    auc = (ranks[y].sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)
    return np.abs(auc.reshape(n, m) - 0.5).max(axis=1)


def relevance_candidates(logits: np.ndarray, labels: np.ndarray, k: int,
                         fraction: float = RELEVANCE_FRACTION) -> np.ndarray:
    """Indices (sorted) of the images kept for annealing: the top ``fraction`` by relevance."""
    n = logits.shape[1]
    keep = int(min(n, max(8 * k, round(fraction * n), k + 1)))
    order = np.argsort(-relevance_scores(logits, labels), kind="stable")[:keep]
    return np.sort(order)
