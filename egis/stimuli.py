"""The candidate image sets of an evaluation, built from the methods asked for.

Only the stimulus sets the requested methods need are built (egis.methods.stimuli_for): an
``--methods egis`` evaluation reads the SID and nothing else, and the untrained-generator set
(which imports torch) is made only when a method uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from egis.methods import (METHODS, SELECT_CANDIDATES, STIMULUS_REGISTRY, get_method, stimuli_for, stimulus_parts,
                          synthesis_kind)
from egis.toolkit.errors import DataError
from egis.toolkit.model import LoadedModel


# The seed of an evaluation's noise images and of its draw of real images: ``egis evaluate``
# uses it, and the benches that rescore a finished evaluation rebuild the same sets with it.
EVALUATION_SEED = 0


def load_real_images(source: str, model: LoadedModel, subdir: str | None) -> np.ndarray:
    """Real images for the dataset-aware baseline: DATA path, or builtin:digits (test split)."""
    from egis.toolkit.data import BUILTIN_DIGITS, digits_split, load_labelled_images

    if source == BUILTIN_DIGITS:
        return digits_split()[2]
    return load_labelled_images(Path(source), model.contract, model.num_classes, subdir=subdir).pixels


def _untrained(model: LoadedModel, count: int, seed: int, work_dir: Path) -> np.ndarray:
    """The untrained generator's images, cached under ``work_dir``: made again when missing,
    too small or made for another model."""
    from egis.baselines import make_baseline
    from egis.synthesis.config import SynthesisConfig
    from egis.synthesis.sid import read_sid_images

    untrained_dir = work_dir / "stimuli" / "untrained"
    try:
        untrained = read_sid_images(untrained_dir, model.sha256)
    except DataError:
        untrained = np.zeros((0,))
    if len(untrained) < count:
        make_baseline(model, "untrained", untrained_dir, SynthesisConfig(images=count, seed=seed))
        untrained = read_sid_images(untrained_dir, model.sha256)
    return untrained[:count]


def _sid_images(model: LoadedModel, sid_dir: Path, count: int) -> np.ndarray:
    from egis.synthesis.sid import read_sid_images

    sid = read_sid_images(sid_dir, model.sha256)
    if len(sid) < count:
        raise DataError(f"{sid_dir} holds {len(sid)} images; the evaluation asks for {count}")
    return sid[:count]


def check_sid_variant(stimulus: str, sid_dir: Path) -> None:
    """Refuse a synthetic set given for a loss variant it was not made with (an ``--sid-tv``
    set synthesized without the prior would silently measure the seed's loss under the
    variant's name). Reads the SynthesisConfig settings recorded in the set's meta.json."""
    from egis.synthesis.sid import read_sid_meta

    if STIMULUS_REGISTRY[stimulus].synthesis_weight is None:
        raise DataError(f"stimulus '{stimulus}' is not a variant of the seed's synthesis")
    hyperparameters = read_sid_meta(sid_dir).get("hyperparameters") or {}
    kind = synthesis_kind(hyperparameters)
    if kind != stimulus:
        weight = STIMULUS_REGISTRY[stimulus].synthesis_weight
        raise DataError(f"{sid_dir} was not made for '{stimulus}' but is an '{kind}' set ({weight} is "
                        f"{hyperparameters.get(weight)!r} in its meta.json; {STIMULUS_REGISTRY[stimulus].title})")


def variants_used(methods: Sequence[str], variant_sids: Mapping[str, Path]) -> list[str]:
    """The loss variants' sets an evaluation of ``methods`` measures or builds a pool from: those
    of its own methods (a composite pool's parts included), and under ``egis-select`` every
    given set that is one of its candidates."""
    wanted = {part for name in stimuli_for(methods) for part in stimulus_parts(name)}
    wanted |= _select_variants(methods, variant_sids)
    return [name for name in variant_sids if name in wanted]


def _select_variants(methods: Sequence[str], variant_sids: Mapping[str, Path]) -> set[str]:
    """The given loss variants' sets that ``egis-select`` measures among its candidates (none
    when it is not among ``methods``)."""
    if not any(get_method(m).selection == "select" for m in methods):
        return set()
    return {stimulus for stimulus, _ in SELECT_CANDIDATES if stimulus in variant_sids}


def load_stimuli(model: LoadedModel, sid_dir: Path, real_pixels: np.ndarray | None, count: int,
                 seed: int, work_dir: Path, methods: Sequence[str] = METHODS,
                 variant_sids: Mapping[str, Path] | None = None) -> dict[str, np.ndarray]:
    """The stimulus sets ``methods`` need, ``count`` images each, in the pixel domain.

    ``variant_sids`` maps a synthesis variant's stimulus (``egis-va``, ``egis-tv``) to its SID
    directory; ``egis-select`` measures every given one among its candidates. The real-image
    set is left out when no real images are given, and a variant's set when ``variant_sids``
    does not name it (their methods are then skipped by the sweep). A composite pool
    (``egis-both``) is its parts' ``count`` images each, concatenated, and is left out when a
    part is (the default ``methods``, every registered one, includes such a pool); its parts are
    not measured on their own unless a method chooses from them."""
    from egis.baselines import noise_images

    variant_sids = variant_sids or {}
    needed = set(stimuli_for(methods)) | _select_variants(methods, variant_sids)

    def given(name: str) -> bool:
        """Whether what the set ``name`` is made from was given (a variant's SID, real images)."""
        kind = STIMULUS_REGISTRY[name]
        if kind.parts:
            return all(given(part) for part in kind.parts)
        if kind.synthesis_weight is not None:
            return name in variant_sids
        return name != "real" or real_pixels is not None

    def build(name: str) -> np.ndarray | None:
        """The set ``name``, or None when what it is made from was not given."""
        kind = STIMULUS_REGISTRY[name]
        if not given(name):
            return None
        if kind.parts:
            return np.concatenate([build(part) for part in kind.parts])
        if name == "egis":
            return _sid_images(model, sid_dir, count)
        if kind.synthesis_weight is not None:
            return _sid_images(model, variant_sids[name], count)
        if name in ("gaussian", "uniform"):
            return noise_images(model.contract, name, count, seed)
        if name == "untrained":
            return _untrained(model, count, seed, work_dir)
        if name == "real":
            pick = np.random.default_rng(seed).choice(len(real_pixels), size=min(count, len(real_pixels)),
                                                      replace=False)
            return real_pixels[np.sort(pick)]
        raise DataError(f"no builder for stimulus '{name}' ({kind.title})")   # registered without one here

    stimuli: dict[str, np.ndarray] = {}
    for name in (name for name in STIMULUS_REGISTRY if name in needed):
        images = build(name)
        if images is not None:
            stimuli[name] = images
    return stimuli
