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

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    # stimulus name -> (chips, images, M) responses of the fab's unlabelled chips to every image
    # of that set (egis-distil's teacher labels them); empty when none were measured
    unlabelled: dict[str, np.ndarray] = field(default_factory=dict)
    # results derived from these responses that a run computes once (egis.evaluate.teacher_labels)
    memo: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

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
                    stimuli: dict[str, np.ndarray], cache_dir: Path, num_classes: int,
                    columns: Mapping[str, np.ndarray] | None = None) -> dict[str, ResponseCache]:
    """One cache per stimulus set (sorted by name), keyed by the population, the chips, the
    set's name and its images' hash. A set's responses do not depend on which other sets an
    evaluation measures, so keying each on its own lets evaluations of the same chips share a
    cache folder (``egis evaluate --responses``): adding a method simulates only its new set.

    With ``columns`` (name -> sorted indices into that set) the set's cache holds those images
    only, and its identity records them, so a later reader can tell which images it covers
    (:func:`chip_responses_on`, :func:`cached_responses`)."""
    chip_list = [int(c) for c in chips]
    caches = {}
    for name in sorted(stimuli):
        identity: dict[str, Any] = {"population": spec.sha256(), "chips": chip_list, "stimulus": name,
                                    "images": images_sha256(stimuli[name])}
        width = len(stimuli[name])
        if columns is not None and name in columns:
            identity["indices"] = [int(i) for i in columns[name]]
            width = len(identity["indices"])
        key = sha256_bytes(json.dumps(identity).encode())[:16]
        caches[name] = ResponseCache(Path(cache_dir) / f"{Path(pop_path).stem}-{name}-{key}",
                                     {**identity, "key": key}, (len(chip_list), width, num_classes))
    return caches


SET_IDENTITY = ("population", "chips", "stimulus", "images")   # what a set's caches share


def _found_caches(cache_dir: Path, pop_path: Path,
                  older: list[Path] | None = None) -> list[tuple[dict[str, Any], ResponseCache]]:
    """Every cache of ``pop_path``'s population in ``cache_dir``, with its identity (sidecar).
    A cache of the older layout (every set in one file) cannot serve anyone: it is skipped,
    and its sidecar appended to ``older`` so a reader that finds nothing else can name it."""
    population = PopulationSpec.load(pop_path).sha256()
    found = []
    for sidecar in sorted(Path(cache_dir).glob(f"{Path(pop_path).stem}-*.json")):
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("population") != population:
            continue
        if "stimulus" not in meta:
            if older is not None:
                older.append(sidecar)
            continue
        # the key must be the hash of the identity it sits beside (as response_caches made it)
        identity = {k: meta[k] for k in (*SET_IDENTITY, "indices") if k in meta}
        if sha256_bytes(json.dumps(identity).encode())[:16] != meta.get("key"):
            continue
        found.append((meta, ResponseCache(sidecar.with_suffix(""), {**identity, "key": meta["key"]},
                                          tuple(meta.get("shape", (0, 0, 0))))))
    return found


def _covering(found: list[tuple[dict[str, Any], ResponseCache]], of_set: Mapping[str, Any],
              wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The smallest cached subset of one set (``of_set``: its SET_IDENTITY fields) that holds
    every ``wanted`` image: its responses and the indices its columns hold."""
    best = None
    for meta, cache in found:
        indices = meta.get("indices")
        if indices is None or any(meta.get(k) != of_set[k] for k in SET_IDENTITY):
            continue
        held = np.asarray(indices, dtype=np.intp)
        if np.isin(wanted, held).all() and (best is None or len(held) < len(best[1])):
            arr = cache.open()
            if arr is not None:
                best = (np.asarray(arr), held)
    return best


@contextlib.contextmanager
def population_lock(cache_dir: Path, pop_path: Path) -> Iterator[None]:
    """Hold the cache folder's lock for one population while its caches are checked, simulated
    and published, so two evaluations sharing the folder neither simulate the same set twice
    nor unpublish each other's caches (a POSIX advisory lock; where fcntl is missing, none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / f".{Path(pop_path).stem}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _simulate_missing(model: LoadedModel, spec: PopulationSpec, chips: Sequence[int],
                      caches: dict[str, ResponseCache], images: Mapping[str, np.ndarray],
                      progress: bool) -> dict[str, np.ndarray]:
    """Every cache's responses: those not cached yet are simulated together in one pass
    (``images[name]`` fills ``caches[name]``) and published. Call under :func:`population_lock`."""
    missing = [name for name, cache in caches.items() if cache.open() is None]
    if missing:
        stacked = np.concatenate([images[name] for name in missing])
        population = Population(spec, model)
        write_together([caches[name] for name in missing],
                       lambda out: population_logits(population, stacked, chips=list(chips), progress=progress,
                                                     out=out))
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
    with population_lock(cache_dir, pop_path):
        logits = _simulate_missing(model, spec, chips, caches, stimuli, progress)
    return ChipResponses(logits, labels.accuracies)


def unlabelled_responses(model: LoadedModel, pop_path: Path, stimuli: dict[str, np.ndarray], cache_dir: Path,
                         progress: bool = True) -> dict[str, np.ndarray]:
    """Logits of every chip of an unlabelled population (the fab's own chips, no labels:
    egis-distil) on every image of ``stimuli``, cached like the labelled chips'."""
    spec = PopulationSpec.load(pop_path)
    chips = list(range(spec.count))
    caches = response_caches(pop_path, spec, chips, stimuli, cache_dir, model.num_classes)
    with population_lock(cache_dir, pop_path):
        return _simulate_missing(model, spec, chips, caches, stimuli, progress)


def chip_responses_on(model: LoadedModel, pop_path: Path, accuracy_csv: Path, stimuli: dict[str, np.ndarray],
                      wanted: dict[str, Sequence[int]], cache_dir: Path,
                      progress: bool = True) -> tuple[ChipResponses, int]:
    """Responses of one population to the images ``wanted`` (stimulus -> indices) only, and
    how many images that simulated. A set whose complete cache exists (e.g. the one-pass
    labelling's) is read whole, and a cached subset that holds every wanted image (e.g. that
    of the evaluation this one shares a folder with) is read as it is: only the rest is
    simulated, in one pass."""
    spec = PopulationSpec.load(pop_path)
    labels = _labels_with_accuracy(accuracy_csv)
    chips = labels.chips.tolist()
    asked = {name: np.unique(np.asarray(list(ix), dtype=np.intp)) for name, ix in wanted.items() if len(ix)}
    for name, held in asked.items():
        if name not in stimuli or held[0] < 0 or held[-1] >= len(stimuli[name]):
            raise DataError(f"images asked of the {name} stimuli lie outside the set")
    full = response_caches(pop_path, spec, chips, {name: stimuli[name] for name in asked}, cache_dir,
                           model.num_classes)
    logits: dict[str, np.ndarray] = {}
    columns: dict[str, np.ndarray] = {}
    to_measure: dict[str, np.ndarray] = {}
    with population_lock(cache_dir, pop_path):
        found = _found_caches(cache_dir, pop_path)
        for name, held in asked.items():
            whole = full[name].open()
            if whole is not None:
                logits[name] = np.asarray(whole)
                continue
            covered = _covering(found, full[name].key, held)
            if covered is not None:
                logits[name], columns[name] = covered
            else:
                to_measure[name] = held
        if to_measure:
            caches = response_caches(pop_path, spec, chips, {name: stimuli[name] for name in to_measure},
                                     cache_dir, model.num_classes, columns=to_measure)
            subsets = {name: np.ascontiguousarray(stimuli[name][held]) for name, held in to_measure.items()}
            logits.update(_simulate_missing(model, spec, chips, caches, subsets, progress))
            columns.update(to_measure)
    return ChipResponses(logits, labels.accuracies, columns), sum(len(held) for held in to_measure.values())


def _sweep_record(eval_dir: Path) -> dict[str, Any]:
    """A finished evaluation's sweep.json (empty when it has none)."""
    sweep = Path(eval_dir) / "sweep.json"
    return json.loads(sweep.read_text()) if sweep.exists() else {}


def responses_dir(eval_dir: Path) -> Path:
    """The folder an evaluation kept its chips' responses in: what its sweep.json records
    (``egis evaluate --responses``, relative to the evaluation folder), else its own cache/."""
    return Path(eval_dir) / (_sweep_record(eval_dir).get("responses") or "cache")


def cached_responses(cache_dir: Path, pop_path: Path, images: Mapping[str, str] | None = None,
                     wanted: Mapping[str, Sequence[int]] | None = None) -> ChipResponses:
    """What an evaluation cached for one population (its labelled or its evaluation chips),
    per stimulus set, as read-only memory-mapped views, so a benchmark can rescore a run
    without simulating it (``accuracy`` is left empty: the caller has the labels).

    ``images`` (name -> images_sha256, as sweep.json's "response_sets" records them) picks the
    sets an evaluation used from a folder that holds other pools too. A set's complete cache
    is preferred; else, for a set named in ``wanted``, the smallest cached subset that holds
    those images (:attr:`ChipResponses.columns` says which). Two complete caches of one set
    name that ``images`` does not tell apart are refused rather than guessed between."""
    older: list[Path] = []
    found = [(meta, cache) for meta, cache in _found_caches(cache_dir, pop_path, older)
             if images is None or images.get(meta["stimulus"]) == meta.get("images")]
    logits: dict[str, np.ndarray] = {}
    columns: dict[str, np.ndarray] = {}
    for meta, cache in found:
        if "indices" in meta:
            continue
        arr = cache.open()
        if arr is None:
            continue
        if meta["stimulus"] in logits:
            raise DataError(f"{cache_dir} holds more than one response cache of the {meta['stimulus']} "
                            f"stimuli for {pop_path} (give the evaluation's images to tell them apart)")
        logits[meta["stimulus"]] = np.asarray(arr)
    for name, ix in (wanted or {}).items():
        sets = [meta for meta, _ in found if meta["stimulus"] == name]
        if name in logits or not sets:
            continue
        if len({meta["images"] for meta in sets}) > 1:
            raise DataError(f"{cache_dir} holds responses of {pop_path} to more than one {name} set "
                            f"(give the evaluation's images to tell them apart)")
        covered = _covering(found, sets[0], np.unique(np.asarray(list(ix), dtype=np.intp)))
        if covered is not None:
            logits[name], columns[name] = covered
    if not logits and older:
        raise DataError(f"{older[0]} is a response cache of the older layout (every set in one file); "
                        f"rerun the evaluation to rebuild it one set per file")
    if not logits:
        raise DataError(f"no response cache of {pop_path} in {cache_dir} (run the evaluation first)")
    return ChipResponses(logits, np.empty(0), columns)


def widest_cached(cache_dir: Path, pop_path: Path, stimulus: str,
                  images: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, responses) of the cache of ``stimulus`` (of that images hash, when given) for
    one population that holds the most images: a bench that needs as many images as an
    evaluation measured on its evaluation chips reads it (bench/bench_distil.py)."""
    found = [(meta, cache) for meta, cache in _found_caches(cache_dir, pop_path)
             if meta["stimulus"] == stimulus and (images is None or meta.get("images") == images)]
    opened = [(meta, arr) for meta, arr in ((meta, cache.open()) for meta, cache in found) if arr is not None]
    if not opened:
        raise DataError(f"no response cache of the {stimulus} stimuli for {pop_path} in {cache_dir}")
    meta, arr = max(opened, key=lambda pair: pair[1].shape[1])
    return np.asarray(meta.get("indices", range(arr.shape[1])), dtype=np.intp), np.asarray(arr)


def evaluation_responses(eval_dir: Path, pop_path: Path,
                         wanted: Mapping[str, Sequence[int]] | None = None) -> ChipResponses:
    """The responses a finished evaluation measured on one population, read from wherever it
    kept them (:func:`responses_dir`) and, where its sweep.json records them, of exactly the
    image sets it used."""
    return cached_responses(responses_dir(eval_dir), pop_path, _sweep_record(eval_dir).get("response_sets"), wanted)
