"""Chip responses for the evaluation: the logits of every chip of a population on every
stimulus set, computed once per (population, chips, stimuli) and cached on disk through the
core's one response cache (egis.toolkit.responses.ResponseCache), so an interrupted sweep
resumes where it stopped and the one-pass labelling can fill the same cache.

The evaluation chips need only the images some method chose (K per method and setting, a few
hundred of the thousands the labelled chips see), so :func:`chip_responses_on` measures a
chip set on a subset of each stimulus set and :class:`ChipResponses` remembers which images
its columns hold: a signature asked for an image that was not measured is an error, never a
silent zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from egis.toolkit.engine import population_logits
from egis.toolkit.errors import DataError
from egis.toolkit.io import sha256_bytes
from egis.toolkit.labels import read_labels
from egis.toolkit.model import LoadedModel
from egis.toolkit.population import Population, PopulationSpec
from egis.toolkit.responses import ResponseCache
from egis.toolkit.signatures import signatures

T = TypeVar("T")


@dataclass
class ChipResponses:
    """Logits of one chip set on every stimulus set, plus the chips' true accuracies."""

    logits: dict[str, np.ndarray]   # stimulus name -> (chips, images, M)
    accuracy: np.ndarray            # (chips,)
    # stimulus name -> the (sorted) indices into the full stimulus set that the columns of
    # logits[name] hold; a stimulus not named here holds every image, in order
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def signatures(self, stimulus: str, indices: Sequence[int]) -> np.ndarray:
        """Signatures (chips, K*M) on ``indices`` of the full ``stimulus`` set (egis.toolkit.signatures)."""
        if stimulus not in self.logits:
            raise DataError(f"no responses to the {stimulus} stimuli were measured on these chips")
        held = self.columns.get(stimulus)
        if held is None:
            return signatures(self.logits[stimulus], indices)
        wanted = np.asarray(indices, dtype=np.intp)
        at = np.minimum(np.searchsorted(held, wanted), len(held) - 1)
        missing = wanted[held[at] != wanted]
        if len(missing):
            raise DataError(f"image {int(missing[0])} of the {stimulus} stimuli was not measured on these chips")
        return signatures(self.logits[stimulus], at)


def stack_stimuli(stimuli: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Stimulus names in sorted order and their images stacked in that order."""
    names = sorted(stimuli)
    return names, np.concatenate([stimuli[name] for name in names])


def response_cache(pop_path: Path, spec: PopulationSpec, chips: Sequence[int],
                   stimuli: dict[str, np.ndarray], cache_dir: Path, num_classes: int) -> tuple[ResponseCache, np.ndarray]:
    """The cache of the responses of ``chips`` to ``stimuli`` and the stacked stimuli (sets in
    sorted name order) whose logits fill it, shape (len(chips), len(stacked), M)."""
    names, stacked = stack_stimuli(stimuli)
    identity = {"population": spec.sha256(), "chips": [int(c) for c in chips],
                "names": names, "counts": [len(stimuli[n]) for n in names]}
    key = sha256_bytes(json.dumps(identity).encode() + stacked.tobytes())[:16]
    cache = ResponseCache(Path(cache_dir) / f"{Path(pop_path).stem}-{key}",
                          {**identity, "key": key}, (len(chips), len(stacked), num_classes))
    return cache, stacked


def _labels_with_accuracy(accuracy_csv: Path):
    """The customer's evaluation copy of a chip set's labels (true accuracies required)."""
    labels = read_labels(accuracy_csv)
    if labels.accuracies is None:
        raise DataError(f"{accuracy_csv} has no accuracy column; evaluation needs the customer's "
                        f"evaluation copy (egis label --with-accuracy)")
    return labels


def chip_responses(model: LoadedModel, pop_path: Path, accuracy_csv: Path,
                   stimuli: dict[str, np.ndarray], cache_dir: Path, progress: bool = True) -> ChipResponses:
    """Logits of one population on all stimuli (cached) and its chips' true accuracies."""
    spec = PopulationSpec.load(pop_path)
    labels = _labels_with_accuracy(accuracy_csv)
    chips = labels.chips.tolist()
    cache, stacked = response_cache(pop_path, spec, chips, stimuli, cache_dir, model.num_classes)
    population = Population(spec, model)
    logits = cache.get(lambda out: population_logits(population, stacked, chips=chips,
                                                     progress=progress, out=out))
    names = sorted(stimuli)
    split = {name: np.asarray(block) for name, block in
             _split_columns(logits, names, [len(stimuli[name]) for name in names]).items()}
    return ChipResponses(split, labels.accuracies)


def _split_columns(logits: np.ndarray, names: Sequence[str], counts: Sequence[int]) -> dict[str, np.ndarray]:
    """The stacked responses' columns, one block per stimulus set, in ``names`` order (views)."""
    blocks, start = {}, 0
    for name, count in zip(names, counts):
        blocks[name] = logits[:, start:start + int(count)]
        start += int(count)
    return blocks


def cached_responses(cache_dir: Path, chip_set: str) -> dict[str, np.ndarray]:
    """What a finished evaluation cached for one chip set ("labelled" or "evaluation"), per
    stimulus set, as read-only memory-mapped views, so a benchmark can rescore a run without
    simulating it. The evaluation chips' blocks hold only the images some method chose, in
    sorted index order (:attr:`ChipResponses.columns`); the labelled chips' hold every image."""
    sidecars = sorted(Path(cache_dir).glob(f"{chip_set}-*.json"))
    if not sidecars:
        raise DataError(f"no {chip_set} response cache in {cache_dir} (run the evaluation first)")
    meta = json.loads(sidecars[0].read_text())
    logits = np.load(sidecars[0].with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
    return _split_columns(logits, meta["names"], meta["counts"])


def chip_responses_on(model: LoadedModel, pop_path: Path, accuracy_csv: Path, stimuli: dict[str, np.ndarray],
                      wanted: dict[str, Sequence[int]], cache_dir: Path,
                      progress: bool = True) -> tuple[ChipResponses, int]:
    """Responses of one population to the images ``wanted`` (stimulus -> indices) only, and
    how many images that measured; a complete cache of every stimulus (e.g. the one-pass
    labelling's) is used as it is instead."""
    spec = PopulationSpec.load(pop_path)
    labels = _labels_with_accuracy(accuracy_csv)
    chips = labels.chips.tolist()
    full, _ = response_cache(pop_path, spec, chips, stimuli, cache_dir, model.num_classes)
    if full.open() is not None:
        return chip_responses(model, pop_path, accuracy_csv, stimuli, cache_dir, progress), 0
    columns = {name: np.unique(np.asarray(list(ix), dtype=np.intp)) for name, ix in wanted.items() if len(ix)}
    for name, held in columns.items():
        if name not in stimuli or held[0] < 0 or held[-1] >= len(stimuli[name]):
            raise DataError(f"images asked of the {name} stimuli lie outside the set")
    if not columns:
        return ChipResponses({}, labels.accuracies), 0
    subset = {name: np.ascontiguousarray(stimuli[name][held]) for name, held in columns.items()}
    responses = chip_responses(model, pop_path, accuracy_csv, subset, cache_dir, progress)
    responses.columns = columns
    return responses, sum(len(held) for held in columns.values())
