"""Compaction: choose the K synthetic images whose signatures best separate good from bad chips.

This is the seed paper's Algorithm 1, simulated annealing over K-subsets of the N images:

* start from K distinct random images;
* each iteration, every slot of the current set is replaced with probability 0.5 by a random
  image not already in the (candidate) set;
* reward = mean validation accuracy of a gradient-boosting classifier trained on the chips'
  signatures for that set, over I random 80/20 splits of the D labelled chips;
* accept if not worse, else with probability exp((r_new - r_cur) / T); keep the best set ever;
* T starts at 2.0 and is multiplied by 0.98 each iteration until it reaches 0.03 (208
  iterations).

Choices the paper leaves open, and why:

* Splits are stratified (both classes in every validation fold, so accuracy is defined even
  when few chips fail) and drawn ONCE per run from the seed: every candidate is scored on the
  same I splits (common random numbers), so r_new - r_cur measures the image sets, not the
  luck of the split. I = 5 by default: the standard error of a mean over 5 folds of 200 chips
  is ~1 point of accuracy, enough to rank sets, at a cost that fits the time budget.
* Booster: HistGradientBoostingClassifier, small (see ``BoosterConfig``), early stopping off
  (early stopping draws its own validation split, which would make rewards depend on it).
  bench/bench_compaction.py measures it against GradientBoostingClassifier.
* A candidate identical to an already scored set reuses that score (each set is scored at
  most once; the result is the same, only faster). With K=4 a sixteenth of the proposals
  replace nothing.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from egis.toolkit.errors import DataError
from egis.toolkit.signatures import signatures

# HistGradientBoosting bins features with scikit-learn's own Parallel. Fitted from one of our
# worker threads, that Parallel replaces the warning filters with an empty list and warns on
# every fit that it could not pass its configuration on (nothing is lost: the fits use the
# default configuration). Filters cannot silence it, since they are replaced; the hook that
# shows warnings is kept, so we drop exactly that message there and show everything else.
_SKLEARN_PARALLEL_NOTICE = "`sklearn.utils.parallel.delayed` should be used"
_show_warning = warnings.showwarning


def _show_warning_except_parallel_notice(message, *args, **kwargs):  # noqa: ANN001
    if _SKLEARN_PARALLEL_NOTICE not in str(message):
        _show_warning(message, *args, **kwargs)


warnings.showwarning = _show_warning_except_parallel_notice

T_START = 2.0
T_END = 0.03
COOLING = 0.98
DEFAULT_TRIALS = 5
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class BoosterConfig:
    """The gradient-boosting classifier used for rewards and for the final detector.

    Defaults are tuned so that the full 208-iteration schedule for D=1000, K=4, M=10 runs in
    under a minute on two cores (bench/bench_compaction.py) while still ranking image sets.
    """

    kind: str = "hgb"              # "hgb": HistGradientBoostingClassifier, "gb": GradientBoostingClassifier
    max_iter: int = 20             # boosting rounds (n_estimators for "gb")
    learning_rate: float = 0.3
    max_depth: int | None = 3
    max_leaf_nodes: int = 8        # "hgb" only
    max_bins: int = 64             # "hgb" only
    random_state: int = 0

    def make(self) -> Any:
        """A fresh, unfitted estimator (deterministic: no subsampling, no early stopping)."""
        if self.kind == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate, max_depth=self.max_depth,
                max_leaf_nodes=self.max_leaf_nodes, max_bins=self.max_bins, early_stopping=False,
                random_state=self.random_state)
        if self.kind == "gb":
            from sklearn.ensemble import GradientBoostingClassifier

            return GradientBoostingClassifier(
                n_estimators=self.max_iter, learning_rate=self.learning_rate,
                max_depth=self.max_depth or 3, random_state=self.random_state)
        raise DataError(f"unknown booster kind {self.kind!r} (use 'hgb' or 'gb')")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Step:
    """One annealing iteration: temperature, the candidate's reward and the state after it."""

    iteration: int
    temperature: float
    candidate: float
    current: float
    best: float
    accepted: bool


@dataclass
class CompactionResult:
    indices: list[int]                       # the best image set, in signature order
    reward: float                            # its mean validation accuracy
    initial_indices: list[int]
    initial_reward: float
    history: list[Step] = field(default_factory=list)
    evaluations: int = 0                     # distinct image sets scored
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"indices": self.indices, "reward": self.reward,
                "initial_indices": self.initial_indices, "initial_reward": self.initial_reward,
                "iterations": len(self.history), "evaluations": self.evaluations,
                "settings": self.settings}


def schedule_length(t_start: float = T_START, t_end: float = T_END, cooling: float = COOLING) -> int:
    """Number of iterations of the schedule (208 for the defaults)."""
    n, t = 0, t_start
    while t > t_end:
        n, t = n + 1, t * cooling
    return n


def _classes_with_at_least(labels: np.ndarray, minimum: int, need: str) -> np.ndarray:
    """The label classes, after refusing a single class or a class of fewer than ``minimum`` chips."""
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DataError("labels contain a single class; compaction needs both passing and failing chips")
    if counts.min() < minimum:
        raise DataError(f"class {classes[counts.argmin()]} has {counts.min()} chip"
                        f"{'s' if counts.min() != 1 else ''}; {need}")
    return classes


def stratified_splits(labels: np.ndarray, trials: int, rng: np.random.Generator,
                      fraction: float = VALIDATION_FRACTION) -> list[tuple[np.ndarray, np.ndarray]]:
    """``trials`` random stratified (train, validation) index splits, validation ~``fraction``."""
    classes = _classes_with_at_least(labels, 2, "need at least 2 of each class to validate")
    splits = []
    for _ in range(trials):
        val = []
        for cls in classes:
            members = np.flatnonzero(labels == cls)
            n_val = min(len(members) - 1, max(1, round(fraction * len(members))))
            val.append(rng.choice(members, n_val, replace=False))
        val_idx = np.sort(np.concatenate(val))
        train_mask = np.ones(len(labels), bool)
        train_mask[val_idx] = False
        splits.append((np.flatnonzero(train_mask), val_idx))
    return splits


CV_REPEATS = 2   # the "folds" validation: every chip is validated this many times
VALIDATIONS = ("splits", "folds")   # how the annealing reward validates (compact's ``validation``)


def stratified_folds(labels: np.ndarray, folds: int, rng: np.random.Generator,
                     repeats: int = CV_REPEATS) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` x ``folds`` stratified cross-validation splits (scikit-learn's
    RepeatedStratifiedKFold): every chip lands in a validation fold exactly ``repeats`` times.

    Why: random 80/20 splits validate some chips several times and others never, so the
    reward of two image sets differs by the luck of which chips were drawn as much as by the
    sets (measured: annealing on it gains about what random K gains). Covering every chip
    equally often is the variance-reduced estimate of the same accuracy.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    folds = max(2, folds)
    _classes_with_at_least(labels, folds, f"{folds}-fold validation needs at least {folds} of each class")
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats,
                                       random_state=int(rng.integers(2**31 - 1)))
    return [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(np.zeros(len(labels)), labels)]


_CONTROLLER: Any = None


def _openmp_controller() -> Any:
    """A threadpoolctl controller made after sklearn's OpenMP runtime is loaded (once)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime the controller must see
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def one_native_thread() -> Any:
    """Context manager: scikit-learn fits inside it use ONE OpenMP thread.

    Measured here (2 cores shared with other jobs): HGB's OpenMP with 2 threads took
    0.15-6 s per fit, erratically (spinning threads fighting for busy cores); one thread took
    0.05-0.07 s. The limit is set in the calling thread, so it also holds in pool workers.
    """
    return _openmp_controller().limit(limits=1, user_api="openmp")


def _score_split(config: BoosterConfig, x: np.ndarray, y: np.ndarray,
                 train: np.ndarray, val: np.ndarray, escape_cost: float = 1.0) -> float:
    """Validation score of one fit, on one native thread (:func:`one_native_thread`).

    ``escape_cost`` 1: accuracy (the seed's reward). Otherwise a fab's cost: a bad chip
    passed costs ``escape_cost``, a good chip failed costs 1, and the score is
    ``1 - cost / (n (escape_cost + 1) / 2)`` -- accuracy's scale, so the annealing schedule
    keeps its meaning, and equal to accuracy when the two errors cost the same."""
    with one_native_thread():
        model = config.make()
        model.fit(x[train], y[train])
        predicted = model.predict(x[val])
    if escape_cost == 1.0:
        return float(np.mean(predicted == y[val]))
    escapes = float(np.sum((predicted == 1) & (y[val] == 0)))
    losses = float(np.sum((predicted == 0) & (y[val] == 1)))
    return 1.0 - (escape_cost * escapes + losses) / (len(val) * (escape_cost + 1) / 2)


class SetReward:
    """A reward over image sets that scores each distinct set once (``score``, given the set's
    indices as a tuple): annealing proposes the same set again often (a sixteenth of K = 4
    proposals replace nothing), and a set's reward never changes within one annealing."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, ...], float] = {}

    @property
    def evaluations(self) -> int:
        """Distinct image sets scored."""
        return len(self._cache)

    def score(self, key: tuple[int, ...]) -> float:
        raise NotImplementedError

    def __call__(self, indices: Sequence[int]) -> float:
        key = tuple(int(i) for i in indices)
        if key not in self._cache:
            self._cache[key] = self.score(key)
        return self._cache[key]


class RewardFunction(SetReward):
    """Mean validation accuracy over fixed splits; runs the I fits on a joblib pool if asked.

    Every fit runs on one native thread; ``n_jobs>1`` runs the I trials concurrently on a
    joblib pool (``backend`` "threading" or "loky"), which is where the cores are used.
    """

    def __init__(self, logits: np.ndarray, labels: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]],
                 config: BoosterConfig, n_jobs: int = 1, backend: str = "threading",
                 escape_cost: float = 1.0) -> None:
        super().__init__()
        self.escape_cost = escape_cost
        self.logits = logits
        self.labels = labels
        self.splits = list(splits)
        self.config = config
        self.n_jobs = n_jobs
        self.backend = backend
        self._pool = None

    def __enter__(self) -> "RewardFunction":
        if self.n_jobs > 1:
            if self.backend == "threading":
                from concurrent.futures import ThreadPoolExecutor

                # A plain thread pool: the fits are independent and need no scikit-learn
                # configuration from the caller (sklearn's Parallel warns when it cannot pass it).
                self._pool = ThreadPoolExecutor(max_workers=self.n_jobs)
            else:
                from joblib import Parallel

                self._pool = Parallel(n_jobs=self.n_jobs, backend=self.backend)
                self._pool.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            if self.backend == "threading":
                self._pool.shutdown(wait=True)
            else:
                self._pool.__exit__(*exc)
            self._pool = None

    def score(self, key: tuple[int, ...]) -> float:
        x = signatures(self.logits, key)
        if self._pool is None:
            scores = [_score_split(self.config, x, self.labels, tr, va, self.escape_cost)
                      for tr, va in self.splits]
        elif self.backend == "threading":
            scores = list(self._pool.map(
                lambda split: _score_split(self.config, x, self.labels, *split, self.escape_cost), self.splits))
        else:
            from joblib import delayed

            scores = self._pool(delayed(_score_split)(self.config, x, self.labels, tr, va, self.escape_cost)
                                for tr, va in self.splits)
        return float(np.mean(scores))


def propose(current: np.ndarray, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Replace each slot with probability 0.5 by a random image not already in the set."""
    candidate = current.copy()
    for slot in range(len(candidate)):
        if rng.random() < 0.5:
            while True:
                new = int(rng.integers(n_images))
                if new not in candidate:
                    break
            candidate[slot] = new
    return candidate


SELECT_FOLDS = 5
SELECT_STREAM = 7919   # the held-out score's splits come from rng([seed, SELECT_STREAM]), not the annealing's


def held_out_accuracy(logits: np.ndarray, labels: Sequence[int] | np.ndarray, indices: Sequence[int],
                      seed: int = 0, config: BoosterConfig | None = None, folds: int = SELECT_FOLDS) -> float:
    """Cross-validated accuracy of the pass/fail classifier on ``indices``, over the labelled
    chips, on folds drawn independently of any annealing's splits (repeated stratified
    ``folds``-fold, CV_REPEATS times).

    Why: the annealing's final reward is the maximum it found over its own splits, so it is
    biased upwards, and by a different amount for each reward; comparing image sets chosen by
    different rules (``egis-select``) needs a score none of them was maximised on."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    splits = stratified_folds(y, folds, np.random.default_rng([seed, SELECT_STREAM]))
    with RewardFunction(logits, y, splits, config or BoosterConfig()) as reward:
        return reward(indices)


def rank_by_held_out(candidates: Sequence[tuple[np.ndarray, Sequence[int]]],
                     labels: Sequence[int] | np.ndarray, seed: int = 0,
                     config: BoosterConfig | None = None) -> tuple[int, list[float]]:
    """Score each candidate, (logits of the labelled chips on its image set, the indices it
    chose), by :func:`held_out_accuracy`; return the best one's position (the first wins ties)
    and every score. The one rule ``egis-select`` chooses by, in evaluate and in compact."""
    scores = [held_out_accuracy(logits, labels, indices, seed, config) for logits, indices in candidates]
    if not scores:
        raise DataError("no candidate image set to choose from")
    return max(range(len(scores)), key=scores.__getitem__), scores


def compact(logits: np.ndarray, labels: Sequence[int] | np.ndarray, k: int, seed: int = 0,
            trials: int = DEFAULT_TRIALS, config: BoosterConfig | None = None,
            n_jobs: int | None = None, backend: str = "threading",
            t_start: float = T_START, t_end: float = T_END, cooling: float = COOLING,
            progress: bool = False,
            callback: Callable[[Step], None] | None = None,
            escape_cost: float = 1.0, validation: str = "splits") -> CompactionResult:
    """Run Algorithm 1 on ``logits`` (D chips, N images, M) with chip ``labels`` (1 = pass).

    ``validation`` "splits": the seed's ``trials`` random 80/20 splits; "folds": ``trials``-fold
    cross-validation repeated CV_REPEATS times (:func:`stratified_folds`).

    Deterministic for a given ``seed`` (and independent of ``n_jobs``/``backend``).
    ``n_jobs`` defaults to min(trials, CPU count): on 2 busy cores, 2 threads ran the schedule
    1.4x faster than serial fits and 1.6x faster than 2 processes (bench/bench_compaction.py).
    """
    if n_jobs is None:
        n_jobs = max(1, min(trials, os.cpu_count() or 1))
    config = config or BoosterConfig()
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    d, n, m = logits.shape
    if len(y) != d:
        raise DataError(f"{len(y)} labels for {d} chips")
    if not 1 <= k < n:
        raise DataError(f"K must be between 1 and {n - 1} (the number of images minus one), got {k}")
    if trials < 1:
        raise DataError("trials must be at least 1")
    if validation not in VALIDATIONS:
        raise DataError(f"validation must be {' or '.join(map(repr, VALIDATIONS))}, got {validation!r}")
    if not escape_cost > 0:
        raise DataError(f"escape cost must be positive, got {escape_cost}")
    rng = np.random.default_rng(seed)
    splits = stratified_splits(y, trials, rng) if validation == "splits" else stratified_folds(y, trials, rng)
    with RewardFunction(logits, y, splits, config, n_jobs, backend, escape_cost) as reward:
        result = anneal(reward, n, k, rng, t_start, t_end, cooling, progress, callback)
        result.evaluations = reward.evaluations
    settings = {"k": k, "seed": seed, "trials": trials, "validation_fraction": VALIDATION_FRACTION,
                "stratified": True, "t_start": t_start, "t_end": t_end, "cooling": cooling,
                "iterations": len(result.history), "booster": config.to_dict(), "chips": d, "images": n,
                "logits": m, **({"escape_cost": escape_cost} if escape_cost != 1.0 else {}),
                **({"validation": "folds", "cv_repeats": CV_REPEATS} if validation == "folds" else {})}
    result.settings = settings
    return result


def anneal(reward: Callable[[np.ndarray], float], n_images: int, k: int, rng: np.random.Generator,
           t_start: float = T_START, t_end: float = T_END, cooling: float = COOLING, progress: bool = False,
           callback: Callable[[Step], None] | None = None) -> CompactionResult:
    """Algorithm 1's search over K-subsets of ``n_images`` under any ``reward`` (higher is
    better), drawing from ``rng``: the one annealing loop, shared by the seed's reward
    (:func:`compact`) and the others (egis.distil). ``settings`` is left for the caller."""
    started = time.perf_counter()
    current = rng.choice(n_images, size=k, replace=False)
    iterations = schedule_length(t_start, t_end, cooling)
    steps: Any = range(iterations)
    if progress:
        from egis.toolkit.progress import progress_iter

        steps = progress_iter(steps, iterations, "annealing")
    history: list[Step] = []
    r_cur = reward(current)
    initial, r_init = current.copy(), r_cur
    best, r_best = current.copy(), r_cur
    t = t_start
    for it in steps:
        candidate = propose(current, n_images, rng)
        r_new = reward(candidate)
        accepted = r_new >= r_cur or rng.random() < math.exp((r_new - r_cur) / t)
        if accepted:
            current, r_cur = candidate, r_new
            if r_cur > r_best:
                best, r_best = current.copy(), r_cur
        step = Step(it, t, r_new, r_cur, r_best, accepted)
        history.append(step)
        if callback is not None:
            callback(step)
        t *= cooling
    return CompactionResult(indices=[int(i) for i in best], reward=r_best,
                            initial_indices=[int(i) for i in initial], initial_reward=r_init,
                            history=history, seconds=time.perf_counter() - started)
