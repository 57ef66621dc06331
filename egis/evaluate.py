"""Evaluation harness: EGIS against its baselines on the same evaluation chips.

The evaluation chips are never used for synthesis, compaction or detector training; their
true accuracies come from the customer's evaluation copy of the labels. Every method sees
the same labelled chips, the same cutoff (computed on the labelled chips, A<p> = p% of them
pass) and the same seeds, and is scored on the same evaluation chips.

Methods and metrics come from their registries (egis.methods, egis.metrics).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egis.compaction import BoosterConfig, CompactionResult, rank_by_held_out
from egis.detector import build_detector, onnx_predict
from egis.distil import check_unlabelled, distil_compact, pseudo_labels, student_rows, teacher_rows
from egis.methods import METHODS, SELECT_CANDIDATES, get_method, reward_settings
from egis.metrics import CRITICAL_MARGIN, METRICS, least_yield_loss, test_metrics
from egis.pipeline import annealed
from egis.responses import ChipResponses
from egis.toolkit.errors import DataError
from egis.toolkit.io import atomic_open
from egis.toolkit.labels import Cutoff

# YL_at_budget: under an escape budget, the least yield loss any threshold on the detector's
# P(pass) reaches within the budget's critical escapes on the evaluation chips (hindsight: the
# detector's ranking at the budget, free of the threshold's choice; egis.metrics.least_yield_loss)
ROW_FIELDS = ("variability", "cutoff", "threshold", "k", "seed", "method", *METRICS, "YL_at_budget",
              "reward", "seconds", "max_escape", "choice", "escape_confidence")


def _regressor(config: BoosterConfig) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=config.max_iter * 5, learning_rate=0.1,
                                         early_stopping=False, random_state=0)


def predict_with(method: str, labelled: ChipResponses, evaluation: ChipResponses, indices: Sequence[int],
                 labels: np.ndarray, threshold: float, config: BoosterConfig,
                 max_escape: float | None = None, stimulus: str | None = None,
                 escape_confidence: float | None = None) -> np.ndarray:
    """Pass/fail of the evaluation chips by the final detector of ``method`` on ``indices``
    of ``stimulus`` (default: the method's own); with ``max_escape`` the pass threshold is
    chosen on held-out folds (egis.escape), as ``egis compact --max-escape`` does for a bundle,
    held at ``escape_confidence`` when given (as ``--escape-confidence``)."""
    return judge_with(method, labelled, evaluation, indices, labels, threshold, config, max_escape, stimulus,
                      escape_confidence)[0]


def judge_with(method: str, labelled: ChipResponses, evaluation: ChipResponses, indices: Sequence[int],
               labels: np.ndarray, threshold: float, config: BoosterConfig,
               max_escape: float | None = None, stimulus: str | None = None,
               escape_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`predict_with`'s pass/fail, and the detector's P(pass) of each evaluation chip,
    with or without a budget (None for the accuracy regressor, which has none)."""
    spec = get_method(method)
    stimulus = stimulus or spec.stimulus
    x_eval = evaluation.signatures(stimulus, indices)
    if spec.selection == "distil":
        return _distilled_prediction(labelled, stimulus, indices, labels, x_eval, config, max_escape,
                                     escape_confidence)
    if spec.detector == "regressor":
        model = _regressor(config)
        model.fit(labelled.signatures(stimulus, indices), labelled.accuracy)
        return model.predict(x_eval) >= threshold, None
    # scored through the exported ONNX detector, as the tester scores a bundle, so the
    # evaluation measures the artifact that ships rather than the scikit-learn object
    _, onnx_bytes = build_detector(labelled.logits[stimulus], labels, indices, config)
    predicted, p_pass = onnx_predict(onnx_bytes, x_eval)
    if max_escape is not None:
        from egis.escape import escape_budget_threshold

        choice = escape_budget_threshold(labelled.logits[stimulus], labels, indices, max_escape, config,
                                         confidence=escape_confidence)
        return p_pass >= choice.threshold, p_pass
    return predicted.astype(bool), p_pass


def teacher_labels(labelled: ChipResponses, stimulus: str, labels: np.ndarray,
                   train: np.ndarray | None = None) -> np.ndarray:
    """egis-distil's teacher's pass/fail of the unlabelled chips on ``stimulus``, fitted on the
    labelled chips (``train``: only those, as a budget fold's teacher) with ``labels`` (theirs).
    Computed once per run for each (set, chips, labels): every seed, random chance set and
    budget fold of a cutoff reuses the same teacher."""
    unlabelled = check_unlabelled(labelled.logits[stimulus], labelled.unlabelled.get(stimulus))
    train_key = b"" if train is None else np.asarray(train, dtype=np.int64).tobytes()
    key = ("teacher", stimulus, np.asarray(labels).astype(np.int8).tobytes(), train_key)
    if key not in labelled.memo:
        fitted_on = labelled.logits[stimulus] if train is None else np.asarray(labelled.logits[stimulus])[train]
        labelled.memo[key] = pseudo_labels(fitted_on, labels, unlabelled)
    return labelled.memo[key]


def _distilled_prediction(labelled: ChipResponses, stimulus: str, indices: Sequence[int], labels: np.ndarray,
                          x_eval: np.ndarray, config: BoosterConfig, max_escape: float | None,
                          escape_confidence: float | None) -> tuple[np.ndarray, np.ndarray]:
    """egis-distil's student: the detector fitted on the labelled chips plus the teacher-labelled
    unlabelled ones (egis.distil), scored through its ONNX export; under a budget the
    threshold comes from folds whose teacher saw only the training chips."""
    logits = labelled.logits[stimulus]
    unlabelled = check_unlabelled(logits, labelled.unlabelled.get(stimulus))
    rows, row_labels = student_rows(logits, labels, unlabelled, teacher_labels(labelled, stimulus, labels), indices)
    _, onnx_bytes = build_detector(rows, row_labels, range(len(indices)), config)
    predicted, p_pass = onnx_predict(onnx_bytes, x_eval)
    if max_escape is None:
        return predicted.astype(bool), p_pass
    from egis.escape import escape_budget_threshold

    extra_rows = teacher_rows(logits, unlabelled, indices, fold_labels=lambda train, train_labels:
                              teacher_labels(labelled, stimulus, train_labels, train))
    choice = escape_budget_threshold(logits, labels, indices, max_escape, config, confidence=escape_confidence,
                                     extra_rows=extra_rows)
    return p_pass >= choice.threshold, p_pass


@dataclass
class Choice:
    """The K images one method chose at one (cutoff, K, seed), from the labelled chips alone."""

    method: str
    stimulus: str            # the stimulus set the indices point into
    indices: list[int]
    reward: float            # the selection's own score (nan for random K)
    choice: str              # egis-select: the candidate taken, "stimulus/selection"
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "stimulus": self.stimulus, "indices": [int(i) for i in self.indices],
                "reward": None if np.isnan(self.reward) else float(self.reward), "choice": self.choice,
                "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        reward = float("nan") if data["reward"] is None else float(data["reward"])
        return cls(data["method"], data["stimulus"], [int(i) for i in data["indices"]], reward,
                   data["choice"], float(data["seconds"]))


def _require_every_image(labelled: ChipResponses) -> None:
    """The labelled chips' logits are indexed by position in the full stimulus sets, so responses
    on a subset of images (ChipResponses.columns) would silently pick the wrong columns."""
    if labelled.columns:
        raise DataError("the labelled chips' responses must hold every image of their stimuli, "
                        f"not a subset ({', '.join(sorted(labelled.columns))})")


def setting_labels(labelled: ChipResponses, cutoff: str) -> tuple[float, np.ndarray]:
    """The cutoff's threshold on the labelled chips and their pass (1) / fail (0) labels."""
    threshold = Cutoff.parse(cutoff).threshold(labelled.accuracy)
    return threshold, (labelled.accuracy >= threshold).astype(np.int64)


def choose_sets(labelled: ChipResponses, cutoff: str, k: int, seed: int, methods: Sequence[str], trials: int,
                config: BoosterConfig, on_compaction: Callable[[str, CompactionResult], None] | None = None,
                schedule: dict[str, float] | None = None, jobs: int | None = None) -> list[Choice]:
    """Each method's K images at one (cutoff, K, seed); annealing shared where equal.

    Needs only the labelled chips, so every setting's choice can be made before the
    evaluation chips are measured, and then only on the images chosen. ``labelled`` must hold
    every image of its stimuli (indices are into the full sets). ``jobs``: the annealing's
    threads (None: egis.compaction's default; 1 on a runner worker, whose siblings hold the
    other cores)."""
    _require_every_image(labelled)
    _, labels = setting_labels(labelled, cutoff)
    done: dict[tuple[str, str], CompactionResult] = {}   # (stimulus, selection) -> its annealing

    def annealing(stimulus: str, selection: str) -> CompactionResult:
        """Algorithm 1 with ``selection``'s reward on ``stimulus``, once per setting."""
        key = (stimulus, selection)
        if key not in done:
            done[key] = result = annealed(np.asarray(labelled.logits[stimulus]), labels,
                                          reward_settings(selection), k=k, seed=seed, trials=trials,
                                          config=config, schedule=schedule, jobs=jobs)
            if on_compaction is not None and selection == "anneal":
                on_compaction(stimulus, result)
        return done[key]

    choices = []
    for method in methods:
        started = time.perf_counter()
        spec = get_method(method)
        stimulus, choice = spec.stimulus, ""
        if spec.selection == "random":
            n_images = labelled.logits[stimulus].shape[1]
            indices = np.random.default_rng([seed, k]).choice(n_images, size=k, replace=False).tolist()
            reward = float("nan")
        elif spec.selection == "select":
            candidates = [(c, s) for c, s in SELECT_CANDIDATES if c in labelled.logits]
            chosen = [annealing(c, s).indices for c, s in candidates]
            pick, scores = rank_by_held_out([(labelled.logits[c], ix) for (c, _), ix in zip(candidates, chosen)],
                                            labels, seed, config)
            (stimulus, selection), indices, reward = candidates[pick], chosen[pick], scores[pick]
            choice = f"{stimulus}/{selection}"
        elif spec.selection == "distil":
            result = distil_compact(np.asarray(labelled.logits[stimulus]), labels,
                                    labelled.unlabelled.get(stimulus), k, seed, config,
                                    pseudo=teacher_labels(labelled, stimulus, labels), schedule=schedule)
            indices, reward = result.indices, result.reward
        else:
            result = annealing(stimulus, spec.selection)
            indices, reward = result.indices, result.reward
        choices.append(Choice(method, stimulus, [int(i) for i in indices], float(reward), choice,
                              time.perf_counter() - started))
    return choices


def score_choices(labelled: ChipResponses, evaluation: ChipResponses, cutoff: str, k: int, seed: int,
                  choices: Sequence[Choice], config: BoosterConfig,
                  max_escape: float | None = None,
                  escape_confidence: float | None = None) -> list[dict[str, Any]]:
    """Rows of metrics on the evaluation chips for each method's chosen images (``evaluation``
    may hold only the chosen images; ``labelled`` must hold every image)."""
    _require_every_image(labelled)
    threshold, labels = setting_labels(labelled, cutoff)
    rows = []
    for chosen in choices:
        started = time.perf_counter()
        spec = get_method(chosen.method)
        predicted, p_pass = judge_with(chosen.method, labelled, evaluation, chosen.indices, labels, threshold,
                                       config, max_escape if spec.detector == "classifier" else None,
                                       stimulus=chosen.stimulus, escape_confidence=escape_confidence)
        at_budget = (float("nan") if max_escape is None or p_pass is None else
                     least_yield_loss(p_pass, evaluation.accuracy, threshold, max_escape))
        rows.append({"cutoff": cutoff, "threshold": threshold, "k": k, "seed": seed, "method": chosen.method,
                     **test_metrics(predicted, evaluation.accuracy, threshold), "YL_at_budget": at_budget,
                     "reward": chosen.reward, "seconds": chosen.seconds + time.perf_counter() - started,
                     "max_escape": float("nan") if max_escape is None else max_escape, "choice": chosen.choice,
                     "escape_confidence": float("nan") if escape_confidence is None else escape_confidence})
    return rows


def evaluate_setting(labelled: ChipResponses, evaluation: ChipResponses, cutoff: str, k: int, seed: int,
                     methods: Sequence[str], trials: int, config: BoosterConfig,
                     on_compaction: Callable[[str, CompactionResult], None] | None = None,
                     schedule: dict[str, float] | None = None,
                     max_escape: float | None = None,
                     escape_confidence: float | None = None) -> list[dict[str, Any]]:
    """Rows of metrics for each method at one (cutoff, K, seed): choose, then score."""
    choices = choose_sets(labelled, cutoff, k, seed, methods, trials, config, on_compaction, schedule)
    return score_choices(labelled, evaluation, cutoff, k, seed, choices, config, max_escape, escape_confidence)


def row_key(row: dict[str, Any]) -> tuple:
    return (row["variability"], row["cutoff"], int(row["k"]), int(row["seed"]), row["method"])


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for name in (*METRICS, "reward", "seconds", "threshold"):
            row[name] = float(row[name])
        row["max_escape"] = float(row.get("max_escape") or "nan")   # absent before escape budgets
        row["YL_at_budget"] = float(row.get("YL_at_budget") or "nan")  # absent before the figure
        row["escape_confidence"] = float(row.get("escape_confidence") or "nan")  # absent before the option
        row["choice"] = row.get("choice") or ""                      # absent before egis-select
        row["k"], row["seed"] = int(row["k"]), int(row["seed"])
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    write_table(path, ROW_FIELDS, sorted(rows, key=row_key))


def write_table(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """A CSV of ``fields`` written atomically, floats to 6 significant digits (results.csv,
    chance.csv)."""
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value)
                             for key, value in row.items()})


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds for each (variability, cutoff, K, method)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["variability"], row["cutoff"], int(row["k"]), row["method"]), []).append(row)
    summary = []
    for (variability, cutoff, k, method), members in sorted(groups.items()):
        entry: dict[str, Any] = {"variability": variability, "cutoff": cutoff, "k": k, "method": method,
                                 "seeds": len(members)}
        for name in METRICS:
            values = np.array([m[name] for m in members])
            entry[name], entry[f"{name}_std"] = float(values.mean()), float(values.std())
        at_budget = np.array([m.get("YL_at_budget", np.nan) for m in members], dtype=np.float64)
        if not np.isnan(at_budget).any():    # every seed scored under a budget by a classifier detector
            entry["YL_at_budget"], entry["YL_at_budget_std"] = float(at_budget.mean()), float(at_budget.std())
        summary.append(entry)
    return summary
