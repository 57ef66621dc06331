"""compact -> detector -> bundle as one library call: what ``egis compact`` runs, callable
from any code (the demo, the evaluation, a fab's own scripts).

Inputs are the fab's: the customer model, the synthetic images, the labelled chips'
responses to them and the customer's pass/fail labels (only pass/fail leaves the customer).
Outputs, in ``out``: indices.json, images.npz, reward.csv, reward.png, cid.png and, with
``bundle=True``, the test bundle in ``out/bundle``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egis.compaction import BoosterConfig, CompactionResult, compact, rank_by_held_out
from egis.methods import PREFILTERS, SELECT_CANDIDATES, RewardSettings, reward_settings
from egis.toolkit.errors import DataError
from egis.toolkit.labels import Labels
from egis.toolkit.model import LoadedModel

BUNDLE_DIR = "bundle"


@dataclass
class CompactOutcome:
    """What one compaction produced."""

    result: CompactionResult
    bundle: Path | None                  # out/bundle, when written
    detector_training_accuracy: float | None
    escape_budget: Any = None            # egis.escape.ThresholdChoice, with --max-escape


def check_chip_labels(labels: Labels, path: Path, population_sha256: str, count: int) -> tuple[list[int], np.ndarray]:
    """(chip indices, labels 1 = pass) of a labels file, checked against the population."""
    sha = labels.meta.get("population_sha256")
    if sha and sha != population_sha256:
        raise DataError(f"{path} labels another population (sha256 {sha[:12]}...)")
    chips = [int(c) for c in labels.chips]     # read_labels already refused repeated chips
    bad = [c for c in chips if not 0 <= c < count]
    if bad:
        raise DataError(f"{path} names chip {bad[0]}, outside the population (0..{count - 1})")
    return chips, labels.passed.astype(np.int64)


def check_k(k: int, images: int) -> None:
    """K must leave at least one image out (annealing swaps images in and out)."""
    if not 1 <= k < images:
        raise DataError(f"-k must be between 1 and {images - 1} for {images} images")


def write_reward(cid_dir: Path, result: CompactionResult) -> None:
    """reward.csv (every iteration) and reward.png (best and current reward)."""
    from egis.plots import line_plot
    from egis.toolkit.io import atomic_open

    with atomic_open(cid_dir / "reward.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "temperature", "candidate", "current", "best", "accepted"])
        for s in result.history:
            writer.writerow([s.iteration, f"{s.temperature:.6g}", f"{s.candidate:.6f}",
                             f"{s.current:.6f}", f"{s.best:.6f}", int(s.accepted)])
    its = [s.iteration for s in result.history]
    line_plot(cid_dir / "reward.png",
              {"best": (its, [s.best for s in result.history]),
               "current": (its, [s.current for s in result.history])},
              title=f"compaction K={len(result.indices)}: " + ("agreement with the teacher"
                                                                if result.settings.get("selection") == "distil"
                                                                else "mean validation accuracy"),
              xlabel="iteration", ylabel="reward")


def bundle_info(model: LoadedModel, chip_set: dict[str, Any], labels_meta: dict, chips: Sequence[int],
                result: CompactionResult, extra: dict[str, Any]) -> dict[str, Any]:
    """Manifest facts (everything but the bundle's own layout and hashes)."""
    import egis.toolkit as toolkit

    contract = model.contract
    return {
        "model": {"sha256": model.sha256, "input_name": model.input_name,
                  "output_name": model.output_name, "num_classes": model.num_classes,
                  "input_shape": [model.fixed_batch, *contract.image_shape],
                  "fixed_batch": model.fixed_batch, "layout": contract.layout,
                  "input_contract": contract.to_dict()},
        "cutoff": {"definition": "a chip passes when its accuracy on the customer's data is >= "
                                 "threshold; the detector predicts that label",
                   "cutoff": labels_meta.get("cutoff"), "threshold": labels_meta.get("threshold")},
        "population": {**chip_set, "labelled_chips": len(chips)},
        "tool": {"name": "egis-toolkit", "version": toolkit.__version__},
        # no wall-clock fields: the same inputs and seed must give the same bundle bytes
        "creation": {**result.to_dict(), **extra},
    }


def population_record(spec: Any) -> dict[str, Any]:
    """How a bundle names the simulated population its labelled chips came from."""
    return {"sha256": spec.sha256(), "plugin": spec.plugin, "params": spec.params,
            "seed": spec.seed, "count": spec.count}


# compact --select's candidates: the annealing selections of methods.SELECT_CANDIDATES that
# run on the one image set compact is given (the other stimuli are evaluation-only)
SELECT_REWARDS = tuple(selection for stimulus, selection in SELECT_CANDIDATES if stimulus == "egis")


def annealed(logits: np.ndarray, labels: np.ndarray, settings: RewardSettings, *, k: int, seed: int,
             trials: int, config: BoosterConfig, jobs: int | None = None,
             progress: bool = False, schedule: dict[str, float] | None = None) -> CompactionResult:
    """Algorithm 1 under ``settings`` (a spread or relevance prefilter narrows the pool first); the
    result's indices are into all of ``logits``' images. ``schedule``: t_start/t_end/cooling."""
    pool = np.arange(logits.shape[1])
    if settings.prefilter == "spread":
        from egis.selection import spread_candidates

        pool = spread_candidates(logits, k)
    elif settings.prefilter == "relevance":
        from egis.selection import relevance_candidates

        pool = relevance_candidates(logits, labels, k)
    elif settings.prefilter not in PREFILTERS:
        raise DataError(f"prefilter must be one of {', '.join(PREFILTERS)}, got {settings.prefilter!r}")
    result = compact(np.asarray(logits)[:, pool, :] if settings.prefilter != "none" else logits, labels, k,
                     seed=seed, trials=trials, config=config, n_jobs=jobs, progress=progress,
                     escape_cost=settings.escape_cost, validation=settings.validation, **(schedule or {}))
    result.indices = [int(pool[i]) for i in result.indices]
    result.initial_indices = [int(pool[i]) for i in result.initial_indices]
    result.settings["prefilter"] = settings.prefilter
    return result


def select_compaction(logits: np.ndarray, labels: np.ndarray, *, k: int, seed: int, trials: int,
                      config: BoosterConfig, jobs: int | None = None,
                      progress: bool = False) -> CompactionResult:
    """``egis-select`` on one image set: anneal under each of SELECT_REWARDS, score every
    chosen set by :func:`held_out_accuracy` (folds none of the annealings saw) and return the
    best (the first wins ties), with every candidate's score in ``settings["select"]``.

    Why: which reward picks the best K differs per model and cutoff, and each annealing's own
    reward is its maximum over its own splits, biased by a different amount; only a score on
    independent folds compares them fairly. Still data-free: only the labelled chips' pass/fail."""
    results = [annealed(logits, labels, reward_settings(selection), k=k, seed=seed, trials=trials,
                        config=config, jobs=jobs, progress=progress) for selection in SELECT_REWARDS]
    pick, scores = rank_by_held_out([(logits, result.indices) for result in results], labels, seed, config)
    best = results[pick]
    best.seconds = sum(result.seconds for result in results)   # the time the choice took
    best.settings["select"] = {"chosen": SELECT_REWARDS[pick], "held_out_accuracy": scores[pick],
                               "candidates": dict(zip(SELECT_REWARDS, scores))}
    return best


def compact_to_bundle(model: LoadedModel, pixels: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                      k: int, out: Path, *, chip_set: dict[str, Any], labels_meta: dict[str, Any],
                      chips: Sequence[int], provenance: dict[str, Any] | None = None, seed: int = 0,
                      trials: int = 5, bundle: bool = True, jobs: int | None = None,
                      progress: bool = True, config: BoosterConfig | None = None,
                      sign_key: Path | None = None, max_escape: float | None = None,
                      escape_confidence: float | None = None,
                      prefilter: str = "none", escape_cost: float = 1.0,
                      validation: str = "splits", select: bool = False,
                      unlabelled: np.ndarray | None = None) -> CompactOutcome:
    """Choose K of ``pixels`` by annealing on ``logits`` (D, N, M) of the labelled chips,
    write the CID files to ``out`` and (``bundle``) train, verify and bundle the detector.

    ``select``: anneal under every reward of :data:`SELECT_REWARDS` and keep the set that
    scores best on held-out folds of the labelled chips (:func:`select_compaction`), instead of
    one annealing with ``prefilter``/``escape_cost``/``validation``.

    ``unlabelled`` (U, N, M): the fab's unlabelled chips' responses to the same images; given,
    the images are chosen and the detector fitted by distillation (egis.distil, ``egis-distil``)
    instead, and the escape budget's folds refit its teacher per fold.

    ``chip_set`` describes where the labelled chips came from (goes into the manifest);
    ``provenance`` adds creation facts (images and labels sha256) to it.
    """
    from egis.plots import image_grid
    from egis.toolkit.io import write_json, write_npz

    check_k(k, len(pixels))
    if logits.shape[:2] != (len(labels), len(pixels)):
        raise DataError(f"responses of shape {tuple(logits.shape)} do not match {len(labels)} labelled "
                        f"chips x {len(pixels)} images")
    config = config or BoosterConfig()
    anneal = dict(k=k, seed=seed, trials=trials, config=config, jobs=jobs, progress=progress)
    pseudo = None
    if unlabelled is not None:
        from egis.distil import check_unlabelled, distil_compact, pseudo_labels

        check_unlabelled(logits, unlabelled)
        pseudo = pseudo_labels(logits, labels, unlabelled)
        result = distil_compact(logits, labels, unlabelled, k, seed, config, pseudo=pseudo, progress=progress)
    elif select:
        result = select_compaction(logits, labels, **anneal)
    else:
        result = annealed(logits, labels, RewardSettings(prefilter, escape_cost, validation), **anneal)
    chosen = pixels[result.indices]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "indices.json", result.to_dict())          # same seed, same bytes
    write_json(out / "timings.json", {"compaction_seconds": round(result.seconds, 3)})
    write_npz(out / "images.npz", images=chosen, indices=np.asarray(result.indices, np.int64))
    write_reward(out, result)
    image_grid(out / "cid.png", chosen, [f"#{i}" for i in result.indices],
               layout=model.contract.layout, vmin=model.contract.pixel_min,
               vmax=model.contract.pixel_max, title=f"CID: K={k}, reward {result.reward:.3f}")
    if not bundle:
        return CompactOutcome(result, None, None)

    from egis.detector import build_detector, onnx_predict
    from egis.toolkit.bundle import write_bundle
    from egis.toolkit.guard import SignatureGuard
    from egis.toolkit.signatures import signatures

    extra_rows = None
    if unlabelled is None:
        _, onnx_bytes = build_detector(logits, labels, result.indices, config)
    else:
        from egis.distil import student_rows, teacher_rows

        rows, row_labels = student_rows(logits, labels, unlabelled, pseudo, result.indices)
        _, onnx_bytes = build_detector(rows, row_labels, range(k), config)
        extra_rows = teacher_rows(logits, unlabelled, result.indices)
    labelled_signatures = signatures(logits, result.indices)
    # the detector's accuracy on the labelled chips (the customer's labels) it was fitted on
    predicted, _ = onnx_predict(onnx_bytes, labelled_signatures)
    train_acc = float(np.mean(predicted == labels))
    extra = {**(provenance or {}), "detector_training_accuracy": train_acc}
    info = bundle_info(model, chip_set, labels_meta, chips, result, extra)
    # the guard describes what the customer-labelled chips produced, even when the detector saw
    # unlabelled chips too: those may hold broken chips, which would widen what the tester judges
    guard = SignatureGuard.fit(labelled_signatures, m=model.num_classes)
    info["guard"] = guard.to_dict()
    budget = None
    if max_escape is not None:
        from egis.escape import escape_budget_threshold

        budget = escape_budget_threshold(logits, labels, result.indices, max_escape, config, seed=seed,
                                         confidence=escape_confidence, extra_rows=extra_rows)
        info["escape_budget"] = budget.to_dict()
    write_bundle(out / BUNDLE_DIR, model.contract.normalize(chosen), onnx_bytes, info, chosen, sign_key=sign_key)
    return CompactOutcome(result, out / BUNDLE_DIR, train_acc, budget)
