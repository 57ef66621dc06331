"""One evaluation run for one model: stimuli, chip responses, the sweep, resumable.

Layout of a populations directory (what the customer's evaluation copy provides)::

    POPS/<variability>/labelled.json             population spec of the labelled chips
    POPS/<variability>/labelled_accuracy.csv     dut,pass,accuracy (customer's copy)
    POPS/<variability>/evaluation.json           population spec of the evaluation chips
    POPS/<variability>/evaluation_accuracy.csv   dut,pass,accuracy (customer's copy)

Responses of every chip to every stimulus set are computed once per (population, stimuli)
and cached as .npy next to the results, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from egis.compaction import BoosterConfig, CompactionResult
from egis.evaluate import (METHODS, STIMULUS_OF, ChipResponses, evaluate_setting, read_rows,
                           row_key, write_rows)
from toolkit.engine import population_logits
from toolkit.errors import DataError
from toolkit.io import read_json, sha256_bytes, write_json
from toolkit.labels import read_labels
from toolkit.model import LoadedModel
from toolkit.population import Population, PopulationSpec

CHIP_SETS = ("labelled", "evaluation")
T = TypeVar("T")


@dataclass
class SweepConfig:
    ks: Sequence[int] = (2, 4, 8, 16)
    cutoffs: Sequence[str] = ("A50", "A60", "A70")
    seeds: Sequence[int] = (0, 1, 2)
    methods: Sequence[str] = METHODS
    baseline_ks: Sequence[int] = (4,)       # K values at which the non-EGIS methods also run
    trials: int = 5
    images: int = 1024                      # images per stimulus set
    booster: BoosterConfig = field(default_factory=BoosterConfig)
    # Overrides of the annealing schedule (t_start, t_end, cooling). Empty = the seed's
    # schedule; only tests shorten it.
    schedule: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "cutoffs": list(self.cutoffs), "seeds": list(self.seeds),
                "methods": list(self.methods), "baseline_ks": list(self.baseline_ks),
                "trials": self.trials, "images": self.images, "booster": self.booster.to_dict(),
                "schedule": dict(self.schedule)}


def load_stimuli(model: LoadedModel, sid_dir: Path, real_pixels: np.ndarray | None, count: int,
                 seed: int, work_dir: Path) -> dict[str, np.ndarray]:
    """The stimulus sets of the comparison, ``count`` images each, in the pixel domain."""
    from egis.baselines import make_baseline, noise_images
    from egis.sid import read_sid_images
    from egis.synthesis import SynthesisConfig

    sid = read_sid_images(sid_dir, model.sha256)
    if len(sid) < count:
        raise DataError(f"{sid_dir} holds {len(sid)} images; the evaluation asks for {count}")
    stimuli = {"egis": sid[:count],
               "gaussian": noise_images(model.contract, "gaussian", count, seed),
               "uniform": noise_images(model.contract, "uniform", count, seed)}
    untrained_dir = work_dir / "stimuli" / "untrained"
    try:  # a cache: made again when missing, too small or made for another model
        untrained = read_sid_images(untrained_dir, model.sha256)
    except DataError:
        untrained = np.zeros((0,))
    if len(untrained) < count:
        make_baseline(model, "untrained", untrained_dir, SynthesisConfig(images=count, seed=seed))
        untrained = read_sid_images(untrained_dir, model.sha256)
    stimuli["untrained"] = untrained[:count]
    if real_pixels is not None:
        pick = np.random.default_rng(seed).choice(len(real_pixels), size=min(count, len(real_pixels)),
                                                  replace=False)
        stimuli["real"] = real_pixels[np.sort(pick)]
    return stimuli


def response_cache(pop_path: Path, spec: PopulationSpec, chips: Sequence[int],
                   stimuli: dict[str, np.ndarray], cache_dir: Path) -> tuple[Path, np.ndarray]:
    """Where the responses of ``chips`` to ``stimuli`` are cached, and the stacked stimuli
    (sets in sorted name order) whose logits fill it, (len(chips), len(stacked), M)."""
    names = sorted(stimuli)
    stacked = np.concatenate([stimuli[name] for name in names])
    key = sha256_bytes(json.dumps({"population": spec.sha256(), "chips": [int(c) for c in chips],
                                   "names": names, "counts": [len(stimuli[n]) for n in names]}).encode()
                       + stacked.tobytes())[:16]
    return Path(cache_dir) / f"{Path(pop_path).stem}-{key}.npy", stacked


def write_response_cache(cache: Path, shape: tuple[int, int, int],
                         fill: Callable[[np.ndarray], T]) -> T:
    """Let ``fill`` write a float32 memory-mapped array of ``shape`` under a .partial name,
    then rename it to ``cache``: an interrupted run never leaves a cache that looks complete.
    Returns what ``fill`` returns."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npy")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
    result = fill(out)
    out.flush()
    del out
    partial.replace(cache)
    return result


def load_real_images(source: str, model: LoadedModel, subdir: str | None) -> np.ndarray:
    """Real images for the dataset-aware baseline: DATA path, or builtin:digits (test split)."""
    if source == "builtin:digits":
        from models.digits.train import split

        return split()[2]
    from toolkit.data import load_labelled_images

    return load_labelled_images(Path(source), model.contract, model.num_classes, subdir=subdir).pixels


def chip_responses(model: LoadedModel, pop_path: Path, accuracy_csv: Path,
                   stimuli: dict[str, np.ndarray], cache_dir: Path, progress: bool = True) -> ChipResponses:
    """Logits of one population on all stimuli (cached) and its chips' true accuracies."""
    spec = PopulationSpec.load(pop_path)
    labels = read_labels(accuracy_csv)
    if labels.accuracies is None:
        raise DataError(f"{accuracy_csv} has no accuracy column; evaluation needs the customer's "
                        f"evaluation copy (egis label --with-accuracy)")
    names = sorted(stimuli)
    cache, stacked = response_cache(pop_path, spec, labels.chips.tolist(), stimuli, cache_dir)
    if not cache.exists():
        population = Population(spec, model)
        write_response_cache(cache, (len(labels.chips), len(stacked), model.num_classes),
                             lambda out: population_logits(population, stacked, chips=labels.chips.tolist(),
                                                           progress=progress, out=out))
    logits = np.load(cache, mmap_mode="r")
    split, start = {}, 0
    for name in names:
        split[name] = np.asarray(logits[:, start:start + len(stimuli[name])])
        start += len(stimuli[name])
    return ChipResponses(split, labels.accuracies)


def headline_k(config: SweepConfig) -> int:
    """The K of the headline table: the seed's K = 4 when swept, else the first K."""
    return 4 if 4 in config.ks else config.ks[0]


def plan(config: SweepConfig, variabilities: Sequence[str]) -> list[tuple[str, str, int, int, list[str]]]:
    """(variability, cutoff, K, seed, methods) in run order: K=4 first so the headline lands early."""
    order = sorted(config.ks, key=lambda k: (k != headline_k(config), k))
    steps = []
    for k in order:
        for variability in variabilities:
            for cutoff in config.cutoffs:
                for seed in config.seeds:
                    methods = [m for m in config.methods
                               if m in ("egis",) or k in config.baseline_ks]
                    steps.append((variability, cutoff, k, seed, methods))
    return steps


def run_sweep(model: LoadedModel, pops_dir: Path, variabilities: Sequence[str],
              stimuli: dict[str, np.ndarray], out_dir: Path, config: SweepConfig,
              progress: bool = True, log=print) -> tuple[list[dict[str, Any]], dict[str, float],
                                                         dict[str, CompactionResult]]:
    """Run (or resume) the sweep; results.csv is rewritten atomically after each step.

    Rows already in results.csv count as done only if they were computed for the same
    model, populations and stimuli (recorded in sweep.json); otherwise this is refused.
    """
    results = out_dir / "results.csv"
    rows = read_rows(results)
    provenance = sweep_provenance(model, pops_dir, variabilities, stimuli)
    _check_resume(out_dir, rows, provenance)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", {"config": config.to_dict(), "variabilities": list(variabilities),
                                        "provenance": provenance})
    done = {row_key(r) for r in rows}
    timings: dict[str, float] = {}
    showcase: dict[str, CompactionResult] = {}
    responses: dict[str, tuple[ChipResponses, ChipResponses]] = {}
    missing_real = "real" not in stimuli
    for variability in variabilities:
        started = time.perf_counter()
        pair = []
        for chip_set in CHIP_SETS:
            base = pops_dir / variability
            pair.append(chip_responses(model, base / f"{chip_set}.json", base / f"{chip_set}_accuracy.csv",
                                       stimuli, out_dir / "cache", progress))
        responses[variability] = (pair[0], pair[1])
        timings[f"chip responses ({variability})"] = time.perf_counter() - started
    anneal_seconds = 0.0
    for variability, cutoff, k, seed, methods in plan(config, variabilities):
        if missing_real:
            methods = [m for m in methods if STIMULUS_OF[m] != "real"]
        todo = [m for m in methods if (variability, cutoff, k, seed, m) not in done]
        if not todo:
            continue
        started = time.perf_counter()

        def keep(stimulus: str, result: CompactionResult) -> None:
            if stimulus == "egis" and k == headline_k(config) and seed == config.seeds[0] and cutoff == config.cutoffs[0]:
                showcase[variability] = result

        labelled, evaluation = responses[variability]
        new = evaluate_setting(labelled, evaluation, cutoff, k, seed, todo, config.trials,
                               config.booster, on_compaction=keep, schedule=config.schedule)
        for row in new:
            row["variability"] = variability
        rows.extend(new)
        write_rows(results, rows)
        anneal_seconds += time.perf_counter() - started
        egis_row = next((r for r in new if r["method"] == "egis"), None)
        if egis_row is not None:
            log(f"{variability} {cutoff} K={k} seed={seed}: EGIS TA {egis_row['TA']:.1f}% "
                f"CTE {egis_row['CTE']:.1f}% ({time.perf_counter() - started:.0f} s for {len(todo)} methods)")
    timings["compaction + detectors (sweep)"] = anneal_seconds
    return rows, timings, showcase


def sweep_provenance(model: LoadedModel, pops_dir: Path, variabilities: Sequence[str],
                     stimuli: dict[str, np.ndarray]) -> dict[str, Any]:
    """What a sweep's rows depend on: model, population specs and labels, stimulus images."""
    pops: dict[str, dict[str, str]] = {}
    for variability in variabilities:
        for chip_set in CHIP_SETS:
            base = pops_dir / variability
            labels = base / f"{chip_set}_accuracy.csv"
            pops[f"{variability}/{chip_set}"] = {
                "spec": PopulationSpec.load(base / f"{chip_set}.json").sha256(),
                "labels": sha256_bytes(labels.read_bytes()) if labels.exists() else ""}
    names = sorted(stimuli)
    stacked = b"".join(np.ascontiguousarray(stimuli[n]).tobytes() for n in names)
    return {"model_sha256": model.sha256, "populations": pops,
            "stimuli": {"names": names, "sha256": sha256_bytes(stacked)}}


def _check_resume(out_dir: Path, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> None:
    sweep = out_dir / "sweep.json"
    if not rows or not sweep.exists():
        return
    recorded = read_json(sweep).get("provenance")
    if recorded is None:  # written before provenance was recorded: cannot tell, trust it
        return
    for part in ("model_sha256", "populations", "stimuli"):
        if recorded.get(part) != provenance[part]:
            what = {"model_sha256": "another model", "populations": "other populations or labels",
                    "stimuli": "other stimuli (SID, --images or real images)"}[part]
            raise DataError(f"{out_dir / 'results.csv'} holds results for {what}; "
                            f"write to a new folder or delete results.csv to start again")


def build_report(model: LoadedModel, model_name: str, sid_dir: Path, pops_dir: Path,
                 variabilities: Sequence[str], rows: list[dict[str, Any]], timings: dict[str, float],
                 showcase: dict[str, CompactionResult], stimuli: dict[str, np.ndarray],
                 out_dir: Path, config: SweepConfig, command: str) -> Path:
    """Figures + report.md + report.html for a finished (or partial) sweep."""
    import shutil

    from egis import plots, report_plots
    from egis.evaluate import summarize
    from egis.report import headline_table, k_table, table, write_report
    from toolkit.io import read_json
    from toolkit.labels import Cutoff

    summary = summarize(rows)
    write_json(out_dir / "summary.json", summary)
    lines = [f"# EGIS evaluation: {model_name}", "",
             f"Model `{model_name}` (sha256 `{model.sha256[:16]}`), {model.num_classes} classes. "
             f"Stimulus sets of {config.images} images each; annealing with {config.trials} validation "
             f"splits; seeds {list(config.seeds)}; metrics are mean ± std over seeds, in % of the "
             f"evaluation chips (TA accuracy, TE escapes = CTE critical + BTE benign, YL yield loss).", "",
             "Regenerate:", "", "```", command, "```", ""]
    for variability in variabilities:
        stats_lab = read_labels(pops_dir / variability / "labelled_accuracy.csv").accuracies
        stats_eval = read_labels(pops_dir / variability / "evaluation_accuracy.csv").accuracies
        spec = PopulationSpec.load(pops_dir / variability / "labelled.json")
        thresholds = {c: Cutoff.parse(c).threshold(stats_lab) for c in config.cutoffs}
        report_plots.accuracy_histogram(out_dir / f"accuracy_{variability}.png",
                                        {"labelled": stats_lab, "evaluation": stats_eval}, thresholds,
                                        f"{model_name}, {variability}: chip accuracy")
        lines += [f"## {variability} variation", "",
                  f"Plugin `{spec.plugin}` {json.dumps(spec.params)}; {len(stats_lab)} labelled + "
                  f"{len(stats_eval)} evaluation chips. Labelled-chip accuracy: mean {stats_lab.mean():.4f}, "
                  f"std {stats_lab.std():.4f}, min {stats_lab.min():.4f}; cutoffs "
                  + ", ".join(f"{c} = {t:.4f}" for c, t in thresholds.items()) + ".", "",
                  f"![chip accuracy histogram](accuracy_{variability}.png)", "",
                  f"### Table II analogue (K = {headline_k(config)}): TA ± std / CTE / BTE / YL, %", "",
                  headline_table(summary, variability, headline_k(config), config.cutoffs, config.methods), "",
                  "### EGIS for every K", "", k_table(summary, variability), ""]
        egis_rows = [e for e in summary if e["variability"] == variability and e["method"] == "egis"]
        if egis_rows:
            groups = [f"{e['cutoff']} K={e['k']}" for e in egis_rows]
            report_plots.grouped_bars(
                out_dir / f"fig5_{variability}.png", groups,
                {m: [e[m] for e in egis_rows] for m in ("TA", "CTE", "BTE", "YL")},
                {m: [e[f"{m}_std"] for e in egis_rows] for m in ("TA", "CTE", "BTE", "YL")},
                f"{model_name}, {variability}: EGIS per K and cutoff (Fig. 5 analogue)")
            lines += [f"![Fig. 5 analogue](fig5_{variability}.png)", ""]
        result = showcase.get(variability)
        if result is not None:
            its = [s.iteration for s in result.history]
            plots.line_plot(out_dir / f"reward_{variability}.png",
                            {"best": (its, [s.best for s in result.history]),
                             "current": (its, [s.current for s in result.history])},
                            title=f"annealing reward ({variability}, {config.cutoffs[0]}, "
                                  f"K={headline_k(config)}, seed {config.seeds[0]})",
                            xlabel="iteration", ylabel="mean validation accuracy")
            images = stimuli["egis"][result.indices]
            plots.image_grid(out_dir / f"cid_{variability}.png", images, [str(i) for i in result.indices],
                             layout=model.contract.layout, vmin=model.contract.pixel_min,
                             vmax=model.contract.pixel_max, title="compact image set (CID)")
            lines += ["### Compaction of one run", "",
                      f"Reward (best {result.reward:.4f} from initial {result.initial_reward:.4f}) and the "
                      f"chosen images:", "", f"![reward](reward_{variability}.png)", "",
                      f"![CID](cid_{variability}.png)", ""]
    sid_meta = read_json(Path(sid_dir) / "meta.json")
    for name in ("entropy.png", "grid.png"):
        if (Path(sid_dir) / name).exists():
            shutil.copyfile(Path(sid_dir) / name, out_dir / f"sid_{name}")
    training = sid_meta.get("training", {})
    lines += ["## Synthesis", "",
              f"H_c {training.get('final_h_c', float('nan')):.4f}, H_s {training.get('final_h_s', float('nan')):.4f} "
              f"(log M = {np.log(model.num_classes):.4f}) after {training.get('iterations')} iterations; "
              f"class histogram of the SID: {sid_meta.get('set', {}).get('class_histogram')}.", "",
              "![entropy](sid_entropy.png)", "", "![SID samples](sid_grid.png)", "",
              "## Run time", "",
              table(["stage", "seconds"],
                    [["synthesis (generator training + sampling)", f"{sid_meta.get('wall_time_s', float('nan')):.1f}"]]
                    + [[name, f"{seconds:.1f}"] for name, seconds in timings.items()]), ""]
    write_report(out_dir, "\n".join(lines), f"EGIS evaluation: {model_name}")
    return out_dir / "report.md"
