"""Distillation: a teacher that sees every synthetic image labels the fab's unlabelled chips,
and the K-image test learns from them (``egis-distil``; issue #18: a choice that beats chance).

Why: with D ~ 1000 labelled chips no reward computed on them ranks K-sets of one pool (its
correlation with held-out accuracy is 0.1-0.25, bench/bench_selection_headroom.py), and a
K = 4 detector fitted on D chips is itself short of data. Two things the fab has, besides the
customer's pass/fail, remove both limits without any customer data:

* the labelled chips' responses to *every* image of the pool, not only K: a detector on all of
  them (the teacher: principal components of the whole response plus a few summary
  statistics, then a larger gradient-boosting classifier) separates pass from fail better
  than any K-image detector;
* as many unlabelled chips as it likes: its own variability model simulated, or production
  chips measured on the tester with the synthetic images. The teacher labels them.

The K images are then chosen by Algorithm 1's annealing with a reward of far less variance --
how often a K-image detector fitted on the labelled chips agrees with the teacher on the
unlabelled chips (thousands of them, not a 200-chip validation fold) -- and the final
detector (the student) is fitted on the labelled chips plus the teacher-labelled ones. The
bundle is unchanged in kind: K images and one gradient-boosting detector on their logits.

The risk, stated: the student learns the teacher's errors, and simulated unlabelled chips are
only as representative as the fab's variability model. The evaluation measures the result on
held-out chips against the seed's method and against chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from egis.compaction import (COOLING, T_END, T_START, BoosterConfig, CompactionResult, SetReward, anneal,
                             one_native_thread)
from egis.toolkit.errors import DataError
from egis.toolkit.population import PopulationSpec
from egis.toolkit.signatures import signatures

DISTIL_STREAM = 4099   # the annealing's draws come from rng([seed, DISTIL_STREAM])


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher: PCA of the chips' whole responses, then gradient boosting.

    Measured on VGG16 typical (288 images, 1000 labelled chips, held-out TA at A50 / A60 /
    A70): 50 components plus the summary statistics 94.2 / 96.4 / 96.8; a logistic
    regression on the same components 93.7 / 94.4 / 96.2; K = 4 random sets 92.6 / 95.2 / 96.2.
    """

    components: int = 50
    max_iter: int = 200
    learning_rate: float = 0.1
    max_depth: int = 3
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Teacher:
    """Pass/fail of a chip from its responses to every image of the pool."""

    def __init__(self, config: TeacherConfig | None = None) -> None:
        self.config = config or TeacherConfig()

    def fit(self, logits: np.ndarray, labels: Sequence[int] | np.ndarray) -> Teacher:
        from sklearn.decomposition import PCA
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = np.asarray(logits, dtype=np.float32)
        y = np.asarray(labels).astype(np.int64)
        if x.ndim != 3 or len(x) != len(y):
            raise DataError(f"the teacher needs (chips, images, logits) responses and one label per chip, "
                            f"got {x.shape} and {len(y)}")
        if len(np.unique(y)) < 2:
            raise DataError("the teacher needs both passing and failing labelled chips")
        self.reference = np.median(x, axis=0)                 # (N, M): the chips' consensus response
        self.consensus = self.reference.argmax(axis=1)        # (N,) its class per image
        flat = x.reshape(len(x), -1)
        components = int(min(self.config.components, len(x) - 1, flat.shape[1]))
        self.pca = PCA(components, random_state=self.config.random_state).fit(flat)
        c = self.config
        with one_native_thread():
            self.model = HistGradientBoostingClassifier(
                max_iter=c.max_iter, learning_rate=c.learning_rate, max_depth=c.max_depth,
                early_stopping=False, random_state=c.random_state).fit(self.features(x), y)
        return self

    def summary(self, logits: np.ndarray) -> np.ndarray:
        """(chips, 4): how far each chip's answers are from the consensus -- the share of images
        on which its top class is the consensus class, its mean absolute logit deviation, and
        the mean and median margin of the consensus class over the best other class."""
        x = np.asarray(logits, dtype=np.float32)
        n = x.shape[1]
        agree = (x.argmax(axis=2) == self.consensus).mean(axis=1)
        deviation = np.abs(x - self.reference).mean(axis=(1, 2))
        chosen = x[:, np.arange(n), self.consensus]
        others = np.where(np.eye(x.shape[2], dtype=bool)[self.consensus], -np.inf, x).max(axis=2)
        margin = chosen - others
        return np.column_stack([agree, deviation, margin.mean(axis=1), np.median(margin, axis=1)])

    def features(self, logits: np.ndarray) -> np.ndarray:
        x = np.asarray(logits, dtype=np.float32)
        if x.shape[1:] != self.reference.shape:
            raise DataError(f"responses of shape {x.shape[1:]} per chip; the teacher was fitted on "
                            f"{self.reference.shape}")
        return np.column_stack([self.pca.transform(x.reshape(len(x), -1)), self.summary(x)])

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """(chips,) 1 = pass, 0 = fail."""
        with one_native_thread():
            return self.model.predict(self.features(logits)).astype(np.int64)


def pseudo_labels(labelled: np.ndarray, labels: Sequence[int] | np.ndarray, unlabelled: np.ndarray,
                  config: TeacherConfig | None = None) -> np.ndarray:
    """The teacher's pass/fail of the ``unlabelled`` chips, fitted on the ``labelled`` ones
    (both (chips, N, M) responses to the same N images)."""
    return Teacher(config).fit(labelled, labels).predict(unlabelled)


class AgreementReward(SetReward):
    """How often a K-image detector fitted on the labelled chips agrees with the teacher's
    labels of the unlabelled chips: the annealing reward of ``egis-distil``.

    Each candidate costs one fit on the D labelled chips and one prediction of U chips; the
    score is an average over U (thousands) chips instead of a 200-chip validation fold, so it
    moves with the image set, not with which chips a split drew."""

    def __init__(self, labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray,
                 pseudo: np.ndarray, config: BoosterConfig) -> None:
        self.labelled, self.labels = labelled, np.asarray(labels).astype(np.int64)
        self.unlabelled, self.pseudo = unlabelled, np.asarray(pseudo).astype(np.int64)
        self.config = config
        super().__init__()

    def score(self, key: tuple[int, ...]) -> float:
        with one_native_thread():
            model = self.config.make()
            model.fit(signatures(self.labelled, key), self.labels)
            predicted = model.predict(signatures(self.unlabelled, key))
        return float(np.mean(predicted == self.pseudo))


def refuse_shared_chips(unlabelled: PopulationSpec, other: PopulationSpec, what: str, path: Any) -> None:
    """Refuse unlabelled chips that are (some of) the ``what`` chips: chip i of a population is
    drawn from rng([seed, i]) whatever its count, so two specs with one seed share chips. A
    labelled chip among the unlabelled ones would reach the budget's held-out folds through the
    teacher's labels, and an evaluation chip would be tested by a detector fitted on it."""
    if unlabelled.sha256() == other.sha256():
        raise DataError(f"{path} is the {what} population itself; give the unlabelled chips a seed of their own")
    if unlabelled.seed == other.seed:
        raise DataError(f"{path} has the {what} chips' seed ({other.seed}), so it would draw the same chips; "
                        f"give the unlabelled chips a seed of their own")


def refuse_shared_identities(unlabelled: dict[str, str], labelled: dict[str, str], path: Any) -> None:
    """The same refusal for measured chip sets: a chip (file sha256, adapter target) among both."""
    shared = set(unlabelled.values()) & set(labelled.values())
    if shared:
        raise DataError(f"{path} holds {len(shared)} of the labelled chips; the unlabelled chips must be others")


def check_unlabelled(labelled: np.ndarray, unlabelled: np.ndarray | None) -> np.ndarray:
    """The unlabelled chips' responses, refused unless they answer the same images."""
    if unlabelled is None or len(unlabelled) == 0:
        raise DataError("egis-distil needs unlabelled chips' responses to the same images "
                        "(a population's unlabelled.json in the evaluation, --unlabelled in compact)")
    if unlabelled.shape[1:] != labelled.shape[1:]:
        raise DataError(f"the unlabelled chips answered {unlabelled.shape[1:]} per chip, the labelled "
                        f"chips {labelled.shape[1:]}: they must see the same images")
    return unlabelled


def distil_compact(labelled: np.ndarray, labels: Sequence[int] | np.ndarray, unlabelled: np.ndarray,
                   k: int, seed: int = 0, config: BoosterConfig | None = None,
                   pseudo: np.ndarray | None = None, teacher: TeacherConfig | None = None,
                   schedule: dict[str, float] | None = None, progress: bool = False) -> CompactionResult:
    """Choose K images by annealing on :class:`AgreementReward` (``pseudo``: the teacher's
    labels of ``unlabelled``, computed here when not given)."""
    config = config or BoosterConfig()
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    check_unlabelled(labelled, unlabelled)
    d, n, m = labelled.shape
    if len(y) != d:
        raise DataError(f"{len(y)} labels for {d} chips")
    if not 1 <= k < n:
        raise DataError(f"K must be between 1 and {n - 1} (the number of images minus one), got {k}")
    if pseudo is None:
        pseudo = pseudo_labels(labelled, y, unlabelled, teacher)
    reward = AgreementReward(labelled, y, unlabelled, pseudo, config)
    temperatures = {"t_start": T_START, "t_end": T_END, "cooling": COOLING, **(schedule or {})}
    result = anneal(reward, n, k, np.random.default_rng([seed, DISTIL_STREAM]), progress=progress, **temperatures)
    result.evaluations = reward.evaluations
    result.settings = {"k": k, "seed": seed, "selection": "distil", "reward": "agreement with the teacher",
                       "iterations": len(result.history), "booster": config.to_dict(),
                       "teacher": (teacher or TeacherConfig()).to_dict(), "chips": d,
                       "unlabelled_chips": int(len(unlabelled)), "images": n, "logits": m,
                       "teacher_pass_rate": float(np.mean(pseudo)), **temperatures}
    return result


def student_rows(labelled: np.ndarray, labels: Sequence[int] | np.ndarray, unlabelled: np.ndarray,
                 pseudo: np.ndarray, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The student's training data on ``indices``: (chips, K, M) responses of the labelled
    chips then the unlabelled ones, and their labels (the customer's, then the teacher's)."""
    ix = np.asarray(indices, dtype=np.intp)
    rows = np.concatenate([np.asarray(labelled)[:, ix], np.asarray(unlabelled)[:, ix]])
    return rows, np.concatenate([np.asarray(labels).astype(np.int64), np.asarray(pseudo).astype(np.int64)])


def teacher_rows(labelled: np.ndarray, unlabelled: np.ndarray, indices: Sequence[int],
                 teacher: TeacherConfig | None = None,
                 fold_labels: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """For the escape budget's out-of-fold threshold (egis.escape): given a fold's training
    chips and their labels, the unlabelled chips' responses on ``indices`` and their labels by
    a teacher refitted on those training chips alone, so no held-out chip's label reaches the
    student through the teacher. ``fold_labels`` (training chips, their labels -> the
    unlabelled chips' labels) replaces that refit, e.g. by a memoised one (egis.evaluate)."""
    ix = np.asarray(indices, dtype=np.intp)
    rows = np.ascontiguousarray(np.asarray(unlabelled)[:, ix])
    if fold_labels is None:
        def fold_labels(train: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
            return pseudo_labels(np.asarray(labelled)[train], train_labels, unlabelled, teacher)

    def extra(train: np.ndarray, train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows, fold_labels(train, train_labels)

    return extra
