"""An escape budget the operator sets: the detector's pass threshold, chosen on held-out folds.

For a fab a shipped bad chip costs far more than a scrapped good one. ``--max-escape P`` makes
compaction choose the threshold on the detector's P(pass) so that the *expected test-escape
rate* -- bad chips passed, as a fraction of all chips -- stays at or under P on held-out folds
of the labelled chips, at the least yield loss. The fab's labels are pass/fail only (the
customer keeps the accuracies), so critical escapes cannot be told from benign ones at the
fab; every critical escape is a test escape, so the budget bounds the critical-escape rate too.

Procedure: stratified F-fold cross-validation over the labelled chips (the same booster and
K images as the shipped detector); every chip gets an out-of-fold P(pass); the threshold is
the smallest t whose out-of-fold escape rate is <= P (smallest t = most chips passed = least
yield loss). The validation TE and YL at t travel in the bundle with t.

With a ``confidence`` c (``--escape-confidence``) the rule asks more: the one-sided
Clopper-Pearson upper bound, at level c, of the out-of-fold escape rate must be <= P. Why: at
a 1% budget on 1000 labelled chips the budget is about 10 escapes, and the plain rule bounds
their *average*; measured on held-out chips of three full-protocol runs it held 1% in 12 of
18 cells, the 75% bound in 16, at 0.2-3.6 more yield-loss points (bench/bench_escape_rules.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from egis.compaction import BoosterConfig, one_native_thread
from egis.toolkit.errors import DataError
from egis.toolkit.signatures import signatures

DEFAULT_FOLDS = 5
# a fold's training chips and their labels -> more training rows: (chips, K, M) responses on
# the detector's images, and their labels (egis.distil.teacher_rows)
ExtraRows = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float               # pass when P(pass) >= threshold
    max_escape: float              # the budget asked for, fraction of chips
    validation_escape: float       # out-of-fold test-escape rate at threshold (fraction of chips)
    validation_yield_loss: float
    validation_accuracy: float
    default_escape: float          # the same at the detector's own 0.5
    default_yield_loss: float
    folds: int
    met: bool                      # False when even passing no chip could not meet the budget
    confidence: float | None = None          # the bound's level, when the budget holds at a confidence
    validation_escape_bound: float | None = None   # that upper bound of the escape rate at threshold

    def to_dict(self) -> dict:
        return asdict(self)


def _fraction(text: str, option: str, example: str) -> float:
    """'1%' or '0.01' -> 0.01, or a DataError that names ``option`` and an ``example`` fraction."""
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise DataError(f"{option} {text!r} is not a fraction ({example}) or a percentage "
                        f"({float(example) * 100:g}%)") from None


def parse_budget(text: str) -> float:
    """'1%' or '0.01' -> 0.01; DataError outside [0, 1)."""
    value = _fraction(text, "--max-escape", "0.01")
    if not 0.0 <= value < 1.0:
        raise DataError(f"--max-escape must lie in [0, 1) (or 0%..100%), got {text}")
    return value


def parse_confidence(text: str) -> float:
    """'75%' or '0.75' -> 0.75; DataError outside (0, 1)."""
    value = _fraction(text, "--escape-confidence", "0.75")
    if not 0.0 < value < 1.0:
        raise DataError(f"--escape-confidence must lie strictly between 0 and 1 (or 0% and 100%), got {text}")
    return value


def parse_escape_options(max_escape: str | None, escape_confidence: str | None) -> tuple[float | None, float | None]:
    """The budget and its confidence level from ``--max-escape`` and ``--escape-confidence``
    (either may be absent; a level without a budget is a DataError), for every command that
    takes them."""
    if escape_confidence is not None and max_escape is None:
        raise DataError("--escape-confidence sets the level at which --max-escape holds; give --max-escape too")
    return (None if max_escape is None else parse_budget(max_escape),
            None if escape_confidence is None else parse_confidence(escape_confidence))


def escape_upper_bound(escapes: int, chips: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound, at level ``confidence``, of a rate seen as
    ``escapes`` of ``chips`` (exact for a binomial count; 1 when every chip escaped)."""
    from scipy.stats import beta

    if escapes >= chips:
        return 1.0
    return float(beta.ppf(confidence, escapes + 1, chips - escapes))


def out_of_fold_pass_probability(logits: np.ndarray, labels: np.ndarray, indices: Sequence[int],
                                 config: BoosterConfig, folds: int = DEFAULT_FOLDS, seed: int = 0,
                                 extra_rows: ExtraRows | None = None) -> np.ndarray:
    """P(pass) of every labelled chip from a detector that never saw it. ``extra_rows``
    (a fold's training chips and labels -> more (chips, K, M) responses on ``indices`` and
    their labels) adds training rows per fold, as the distilled student has (egis.distil)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels).astype(np.int64)
    counts = np.bincount(y, minlength=2)
    folds = int(min(folds, counts.min()))
    if folds < 2:
        raise DataError("an escape budget needs at least 2 passing and 2 failing labelled chips")
    x = signatures(logits, indices)
    out = np.empty(len(y))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        x_train, y_train = x[train], y[train]
        if extra_rows is not None:
            rows, row_labels = extra_rows(train, y[train])
            x_train = np.concatenate([x_train, signatures(rows, range(rows.shape[1]))])
            y_train = np.concatenate([y_train, np.asarray(row_labels).astype(np.int64)])
        with one_native_thread():
            model = config.make()
            model.fit(x_train, y_train)
        out[held] = model.predict_proba(x[held])[:, 1]
    return out


def _rates(p: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    passed = p >= t
    escape = float(np.mean(passed & (y == 0)))
    loss = float(np.mean(~passed & (y == 1)))
    return escape, loss, float(np.mean(passed == (y == 1)))


def choose_threshold(p: np.ndarray, labels: np.ndarray, max_escape: float, folds: int,
                     confidence: float | None = None) -> ThresholdChoice:
    """The smallest threshold whose out-of-fold escape rate is within the budget (with
    ``confidence``: whose upper bound at that level is, :func:`escape_upper_bound`)."""
    y = np.asarray(labels).astype(np.int64)
    candidates = np.unique(np.concatenate([p, [0.5, np.nextafter(1.0, 2.0)]]))

    def bound(t: float) -> float:
        return escape_upper_bound(int(np.sum((p >= t) & (y == 0))), len(y), confidence)

    chosen = None
    for t in candidates:            # ascending: the first that meets the budget loses least yield
        escape = _rates(p, y, float(t))[0] if confidence is None else bound(float(t))
        if escape <= max_escape + 1e-12:
            chosen = float(t)
            break
    met = chosen is not None
    chosen = chosen if met else float(np.nextafter(1.0, 2.0))
    escape, loss, accuracy = _rates(p, y, chosen)
    d_escape, d_loss, _ = _rates(p, y, 0.5)
    return ThresholdChoice(threshold=chosen, max_escape=max_escape, validation_escape=escape,
                           validation_yield_loss=loss, validation_accuracy=accuracy,
                           default_escape=d_escape, default_yield_loss=d_loss, folds=folds, met=met,
                           confidence=confidence,
                           validation_escape_bound=None if confidence is None else bound(chosen))


def escape_budget_threshold(logits: np.ndarray, labels: np.ndarray, indices: Sequence[int], max_escape: float,
                            config: BoosterConfig | None = None, folds: int = DEFAULT_FOLDS,
                            seed: int = 0, confidence: float | None = None,
                            extra_rows: ExtraRows | None = None) -> ThresholdChoice:
    config = config or BoosterConfig()
    p = out_of_fold_pass_probability(logits, labels, indices, config, folds, seed, extra_rows)
    return choose_threshold(p, labels, max_escape, folds, confidence)
