"""Chip responses for the evaluation: the logits of every chip of a population on every
stimulus set, computed once per (population, chips, stimuli) and cached on disk through the
core's one response cache (egis.toolkit.responses.ResponseCache), so an interrupted sweep
resumes where it stopped and the one-pass labelling can fill the same cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

T = TypeVar("T")


@dataclass
class ChipResponses:
    """Logits of one chip set on every stimulus set, plus the chips' true accuracies."""

    logits: dict[str, np.ndarray]   # stimulus name -> (chips, images, M)
    accuracy: np.ndarray            # (chips,)


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


def chip_responses(model: LoadedModel, pop_path: Path, accuracy_csv: Path,
                   stimuli: dict[str, np.ndarray], cache_dir: Path, progress: bool = True) -> ChipResponses:
    """Logits of one population on all stimuli (cached) and its chips' true accuracies."""
    spec = PopulationSpec.load(pop_path)
    labels = read_labels(accuracy_csv)
    if labels.accuracies is None:
        raise DataError(f"{accuracy_csv} has no accuracy column; evaluation needs the customer's "
                        f"evaluation copy (egis label --with-accuracy)")
    chips = labels.chips.tolist()
    cache, stacked = response_cache(pop_path, spec, chips, stimuli, cache_dir, model.num_classes)
    population = Population(spec, model)
    logits = cache.get(lambda out: population_logits(population, stacked, chips=chips,
                                                     progress=progress, out=out))
    split, start = {}, 0
    for name in sorted(stimuli):
        split[name] = np.asarray(logits[:, start:start + len(stimuli[name])])
        start += len(stimuli[name])
    return ChipResponses(split, labels.accuracies)
