"""Chip responses for the evaluation: the logits of every chip of a population on every
stimulus set, computed once per (population, chips, stimulus set) and cached on disk through
the core's one response cache (egis.toolkit.responses.ResponseCache), one file per set, so an
interrupted sweep resumes where it stopped, the one-pass labelling can fill the same cache,
and evaluations of the same chips that share a cache folder simulate only the sets they add.

The evaluation chips need only the images some method chose (K per method and setting, a few
hundred of the thousands the labelled chips see), so :func:`chip_responses_on` measures a
chip set on a subset of each stimulus set and :class:`ChipResponses` remembers which images
its columns hold: a signature asked for an image that was not measured is an error, never a
silent zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egis.toolkit.engine import population_logits
from egis.toolkit.errors import DataError
from egis.toolkit.io import sha256_bytes
from egis.toolkit.labels import read_labels
from egis.toolkit.model import LoadedModel
from egis.toolkit.population import Population, PopulationSpec
from egis.toolkit.responses import ResponseCache, write_together
from egis.toolkit.signatures import images_sha256, signatures


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


def response_caches(pop_path: Path, spec: PopulationSpec, chips: Sequence[int],
                    stimuli: dict[str, np.ndarray], cache_dir: Path, num_classes: int) -> dict[str, ResponseCache]:
    """One cache per stimulus set (sorted by name), shape (len(chips), len(set), M), keyed by
    the population, the chips, the set's name and its images' hash. A set's responses do not
    depend on which other sets an evaluation measures, so keying each on its own lets
    evaluations of the same chips share a cache folder (``egis evaluate --responses``): adding
    a method simulates only its new set."""
    chip_list = [int(c) for c in chips]
    caches = {}
    for name in sorted(stimuli):
        identity = {"population": spec.sha256(), "chips": chip_list, "stimulus": name,
                    "images": images_sha256(stimuli[name])}
        key = sha256_bytes(json.dumps(identity).encode())[:16]
        caches[name] = ResponseCache(Path(cache_dir) / f"{Path(pop_path).stem}-{name}-{key}",
                                     {**identity, "key": key}, (len(chip_list), len(stimuli[name]), num_classes))
    return caches


def _opened(caches: dict[str, ResponseCache]) -> dict[str, np.ndarray]:
    """Every cache's responses (all present and current: just checked or written)."""
    opened = {name: cache.open() for name, cache in caches.items()}
    stale = [name for name, arr in opened.items() if arr is None]
    if stale:
        raise DataError(f"the response cache of the {stale[0]} stimuli was changed while in use")
    return {name: np.asarray(arr) for name, arr in opened.items()}


def _labels_with_accuracy(accuracy_csv: Path):
    """The customer's evaluation copy of a chip set's labels (true accuracies required)."""
    labels = read_labels(accuracy_csv)
    if labels.accuracies is None:
        raise DataError(f"{accuracy_csv} has no accuracy column; evaluation needs the customer's "
                        f"evaluation copy (egis label --with-accuracy)")
    return labels


def chip_responses(model: LoadedModel, pop_path: Path, accuracy_csv: Path,
                   stimuli: dict[str, np.ndarray], cache_dir: Path, progress: bool = True) -> ChipResponses:
    """Logits of one population on all stimuli and its chips' true accuracies. Sets already
    cached are read; the others are simulated together in one pass and cached."""
    spec = PopulationSpec.load(pop_path)
    labels = _labels_with_accuracy(accuracy_csv)
    chips = labels.chips.tolist()
    caches = response_caches(pop_path, spec, chips, stimuli, cache_dir, model.num_classes)
    missing = [name for name, cache in caches.items() if cache.open() is None]
    if missing:
        stacked = np.concatenate([stimuli[name] for name in missing])
        population = Population(spec, model)
        write_together([caches[name] for name in missing],
                       lambda out: population_logits(population, stacked, chips=chips, progress=progress, out=out))
    return ChipResponses(_opened(caches), labels.accuracies)


def responses_dir(eval_dir: Path) -> Path:
    """The folder an evaluation kept its chips' responses in: what its sweep.json records
    (``egis evaluate --responses``, relative to the evaluation folder), else its own cache/."""
    sweep = Path(eval_dir) / "sweep.json"
    recorded = json.loads(sweep.read_text()).get("responses") if sweep.exists() else None
    return Path(eval_dir) / (recorded or "cache")


def cached_responses(cache_dir: Path, pop_path: Path) -> dict[str, np.ndarray]:
    """What an evaluation cached for one population (its labelled or its evaluation chips),
    per stimulus set, as read-only memory-mapped views, so a benchmark can rescore a run
    without simulating it. The evaluation chips' blocks hold only the images some method
    chose, in sorted index order (:attr:`ChipResponses.columns`); the labelled chips' hold
    every image. A folder holding two caches of one set for this population (a resumed
    evaluation that measured more images, or two evaluations that chose differently sharing
    a folder) is refused rather than guessed between."""
    pop_path = Path(pop_path)
    population = PopulationSpec.load(pop_path).sha256()
    blocks: dict[str, np.ndarray] = {}
    for sidecar in sorted(Path(cache_dir).glob(f"{pop_path.stem}-*.json")):
        meta = json.loads(sidecar.read_text())
        name = meta.get("stimulus")
        if name is None:
            raise DataError(f"{sidecar} is a response cache of the older layout (every set in one file); "
                            f"rerun the evaluation to rebuild it one set per file")
        if meta.get("population") != population:
            continue
        if name in blocks:
            raise DataError(f"{cache_dir} holds more than one response cache of the {name} stimuli "
                            f"for {pop_path}")
        blocks[name] = np.load(sidecar.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
    if not blocks:
        raise DataError(f"no response cache of {pop_path} in {cache_dir} (run the evaluation first)")
    return blocks


def chip_responses_on(model: LoadedModel, pop_path: Path, accuracy_csv: Path, stimuli: dict[str, np.ndarray],
                      wanted: dict[str, Sequence[int]], cache_dir: Path,
                      progress: bool = True) -> tuple[ChipResponses, int]:
    """Responses of one population to the images ``wanted`` (stimulus -> indices) only, and
    how many images that measured; a set whose complete cache exists (e.g. the one-pass
    labelling's) is read whole instead."""
    spec = PopulationSpec.load(pop_path)
    labels = _labels_with_accuracy(accuracy_csv)
    chips = labels.chips.tolist()
    asked = {name: np.unique(np.asarray(list(ix), dtype=np.intp)) for name, ix in wanted.items() if len(ix)}
    for name, held in asked.items():
        if name not in stimuli or held[0] < 0 or held[-1] >= len(stimuli[name]):
            raise DataError(f"images asked of the {name} stimuli lie outside the set")
    full = response_caches(pop_path, spec, chips, {name: stimuli[name] for name in asked}, cache_dir,
                           model.num_classes)
    whole = {name for name, cache in full.items() if cache.open() is not None}
    columns = {name: held for name, held in asked.items() if name not in whole}
    logits = _opened({name: full[name] for name in whole})
    if columns:
        subset = {name: np.ascontiguousarray(stimuli[name][held]) for name, held in columns.items()}
        logits.update(chip_responses(model, pop_path, accuracy_csv, subset, cache_dir, progress).logits)
    return (ChipResponses(logits, labels.accuracies, columns),
            sum(len(held) for held in columns.values()))
