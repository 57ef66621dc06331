"""The test-generation methods compared by the evaluation, one registry.

A method is a stimulus set (where its candidate images come from), a selection rule (how K of
them are chosen) and a detector (how a chip's signature becomes pass/fail). Adding a method is
one entry in :data:`METHOD_REGISTRY`; a new kind of stimulus is one entry in
:data:`STIMULUS_REGISTRY` (egis.stimuli builds them). The evaluation, the sweep, the report
and the CLI's ``--methods`` all read these tables.

Methods:

* ``egis`` -- synthetic images, K chosen by annealing (Algorithm 1), gradient-boosting classifier;
* ``egis-random`` -- K random synthetic images, no annealing;
* ``egis-cost`` -- the seed's annealing with a cost-weighted reward: a passed bad chip costs
  ``ESCAPE_COST`` failed good ones, as it does for a fab (egis.compaction);
* ``egis-cv`` -- the seed's annealing scored by repeated stratified cross-validation (every
  labelled chip validated twice) instead of random 80/20 splits: a less noisy reward;
* ``egis-spread`` -- the synthetic images preselected by response spread over the labelled
  chips (egis.selection), then annealing: a variation-aware choice, still data-free;
* ``egis-relevance`` -- the synthetic images preselected by relevance (egis.selection: the
  Mann-Whitney AUC of each logit against the labelled chips' pass/fail), then annealing on
  those few dozen: Algorithm 1's ~200 swaps search where the information is;
* ``egis-va`` -- images of the variation-aware generator loss (egis.synthesis.variation: the
  seed's loss plus the spread of a few simulated chips' predictions; ``egis synthesize
  --variation``, ``egis evaluate --sid-va``), the seed's annealing;
* ``egis-tv`` -- images of the seed's loss plus a total-variation image prior
  (egis.synthesis.prior; ``egis synthesize --tv-weight``, ``egis evaluate --sid-tv``): smoother
  images, nearer natural ones, whose logits carry more of the chips' differences; the seed's
  annealing;
* ``egis-select`` -- per model and cutoff, the data-free candidate (SELECT_CANDIDATES: the
  SID under each annealing reward, the variation-aware and the prior's SIDs where given
  (``--sid-va``, ``--sid-tv``), and uniform noise where it is evaluated too) whose chosen K images score best in a cross-validation over the labelled
  chips on folds none of them was annealed on (egis.compaction.held_out_accuracy). Still
  data-free: it sees only what the fab has, the labelled chips' pass/fail;
* ``egis-distil`` -- the seed's images; a teacher fitted on the labelled chips' responses to
  every image labels the fab's unlabelled chips (a population's ``unlabelled.json``), the K
  images are annealed on agreement with it over those chips, and the detector is fitted on the
  labelled plus the teacher-labelled chips (egis.distil). Still data-free;
  ``egis-tv-distil`` does the same on the prior's images, and ``egis-both-distil`` on one pool
  of both sets (the seed's images and the prior's, ``--images`` of each): the teacher sees
  every image of both and the annealing chooses K among all of them;
* ``gaussian`` / ``uniform`` -- i.i.d. noise images, annealing, classifier;
* ``untrained`` -- images of the untrained generator, annealing, classifier;
* ``da-regressor`` -- the seed's reference [6]: K real test images chosen by the same
  annealing, a gradient-boosting regressor of accuracy, pass if predicted accuracy >= cutoff;
* ``da-classifier`` -- the same K real images with the classifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from egis.toolkit.errors import EgisError

Selection = Literal["anneal", "random", "spread", "relevance", "cost", "folds", "select", "distil"]
ESCAPE_COST = 5.0   # the "cost" selection's price of a passed bad chip, in failed good chips
DetectorKind = Literal["classifier", "regressor"]


@dataclass(frozen=True)
class StimulusKind:
    name: str
    title: str
    needs_real_images: bool = False
    # a synthetic set made by a variant of the seed's loss: the SynthesisConfig weight that
    # must be above 0 in its meta.json (egis.stimuli.check_sid_variant); None for the others
    synthesis_weight: str | None = None
    # a pool made of other sets, concatenated in this order (egis.stimuli.load_stimuli); a
    # composite needs what each of its parts needs
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    stimulus: str
    selection: Selection = "anneal"
    detector: DetectorKind = "classifier"
    baseline: bool = True     # runs only at the sweep's baseline K values (egis runs at every K)


STIMULUS_REGISTRY: dict[str, StimulusKind] = {s.name: s for s in (
    StimulusKind("egis", "EGIS synthetic images (the SID)"),
    StimulusKind("egis-va", "variation-aware synthetic images (egis synthesize --variation)",
                 synthesis_weight="variation_weight"),
    StimulusKind("egis-tv", "synthetic images with a total-variation prior (egis synthesize --tv-weight)",
                 synthesis_weight="tv_weight"),
    StimulusKind("egis-both", "EGIS synthetic images and the prior's, one pool", parts=("egis", "egis-tv")),
    StimulusKind("gaussian", "Gaussian noise images"),
    StimulusKind("uniform", "uniform noise images"),
    StimulusKind("untrained", "images of the untrained generator"),
    StimulusKind("real", "real test images (dataset-aware)", needs_real_images=True),
)}

METHOD_REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("egis", "EGIS", "egis", baseline=False),
    Method("egis-random", "EGIS, random K (no annealing)", "egis", selection="random"),
    Method("egis-cv", "EGIS, annealing on a cross-validated reward (every chip validated twice)",
           "egis", selection="folds"),
    Method("egis-spread", "EGIS, annealing on the images the labelled chips disagree on most",
           "egis", selection="spread"),
    Method("egis-relevance", "EGIS, annealing on the images whose logits best separate the labelled chips",
           "egis", selection="relevance"),
    Method("egis-cost", "EGIS, annealing on a cost-weighted reward (an escape costs 5 yield losses)",
           "egis", selection="cost"),
    Method("egis-va", "EGIS, variation-aware generator loss", "egis-va"),
    Method("egis-tv", "EGIS, total-variation image prior", "egis-tv"),
    Method("egis-select", "EGIS, the data-free set and reward chosen by held-out labelled chips",
           "egis", selection="select"),
    Method("egis-distil", "EGIS, distilled: a teacher on every image labels unlabelled chips for "
           "the choice and the detector", "egis", selection="distil"),
    Method("egis-tv-distil", "EGIS with the total-variation prior, distilled (egis-distil on the prior's images)",
           "egis-tv", selection="distil"),
    Method("egis-both-distil", "EGIS, distilled on one pool of the seed's and the prior's images",
           "egis-both", selection="distil"),
    Method("gaussian", "Gaussian noise + annealing", "gaussian"),
    Method("uniform", "uniform noise + annealing", "uniform"),
    Method("untrained", "untrained generator + annealing", "untrained"),
    Method("da-regressor", "dataset-aware [6] (regressor)", "real", detector="regressor"),
    Method("da-classifier", "dataset-aware (classifier)", "real"),
)}
METHODS = tuple(METHOD_REGISTRY)
# what an evaluation runs unless told: every method that needs nothing beyond the labelled and
# evaluation chips (egis-distil also needs the fab's unlabelled chips, so it is asked for by name)
DEFAULT_METHODS = tuple(name for name, method in METHOD_REGISTRY.items() if method.selection != "distil")
# egis-select's candidates, (stimulus, selection), in the order that wins ties; a candidate
# whose stimulus the evaluation does not measure (no --sid-va / --sid-tv set, no uniform method) is skipped.
SELECT_CANDIDATES: tuple[tuple[str, Selection], ...] = (
    ("egis", "anneal"), ("egis", "folds"), ("egis", "cost"), ("egis", "spread"), ("egis", "relevance"),
    ("egis-va", "anneal"), ("egis-tv", "anneal"), ("uniform", "anneal"))


PREFILTERS = ("none", "spread", "relevance")   # candidate pools an annealing can start from (RewardSettings.prefilter)


@dataclass(frozen=True)
class RewardSettings:
    """How an annealing selection runs Algorithm 1: its candidate pool, escape price and validation."""

    prefilter: str = "none"        # "spread": only the images the labelled chips disagree on most;
                                   # "relevance": only those whose logits best separate pass and fail
    escape_cost: float = 1.0       # a passed bad chip costs this many failed good chips
    validation: str = "splits"     # "splits": the seed's 80/20 splits; "folds": repeated CV


REWARD_SETTINGS: dict[str, RewardSettings] = {
    "anneal": RewardSettings(),
    "folds": RewardSettings(validation="folds"),
    "cost": RewardSettings(escape_cost=ESCAPE_COST),
    "spread": RewardSettings(prefilter="spread"),
    "relevance": RewardSettings(prefilter="relevance"),
}


def reward_settings(selection: str) -> RewardSettings:
    """The annealing settings of an annealing ``selection`` (evaluate and ``compact --select``)."""
    if selection not in REWARD_SETTINGS:
        raise EgisError(f"selection '{selection}' does not anneal; choose from {', '.join(REWARD_SETTINGS)}")
    return REWARD_SETTINGS[selection]


def synthesis_kind(hyperparameters: Mapping[str, Any]) -> str:
    """The stimulus kind a synthetic set of these SynthesisConfig settings is measured as: the
    first loss variant in registry order whose weight is on (so the variation-aware term takes
    precedence over the prior, which may come with it), else the seed's ``egis``."""
    for kind in STIMULUS_REGISTRY.values():
        weight = hyperparameters.get(kind.synthesis_weight) if kind.synthesis_weight else None
        if isinstance(weight, (int, float)) and weight > 0:
            return kind.name
    return "egis"


STIMULUS_OF = {name: method.stimulus for name, method in METHOD_REGISTRY.items()}
METHOD_TITLES = {name: method.title for name, method in METHOD_REGISTRY.items()}


def get_method(name: str) -> Method:
    if name not in METHOD_REGISTRY:
        raise EgisError(f"unknown method '{name}'; choose from {', '.join(METHODS)}")
    return METHOD_REGISTRY[name]


def needs_unlabelled(methods: Sequence[str]) -> list[str]:
    """The stimulus sets on which the given methods need unlabelled chips' responses."""
    needed = {get_method(m).stimulus for m in methods if get_method(m).selection == "distil"}
    return [name for name in STIMULUS_REGISTRY if name in needed]


def stimulus_parts(name: str) -> list[str]:
    """A stimulus set and every set it is made of (a composite's parts), in registry order."""
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in needed:
            needed.add(current)
            todo.extend(STIMULUS_REGISTRY[current].parts)
    return [n for n in STIMULUS_REGISTRY if n in needed]


def stimuli_for(methods: Sequence[str]) -> list[str]:
    """The stimulus sets the given methods choose from, in registry order (a composite's parts
    are built for it, not measured on their own: see :func:`stimulus_parts`)."""
    needed = {get_method(m).stimulus for m in methods}
    return [name for name in STIMULUS_REGISTRY if name in needed]
