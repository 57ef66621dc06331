"""One evaluation sweep for one model: every (variability, cutoff, K, seed, method), resumable.

Layout of a populations directory (what the customer's evaluation copy provides)::

    POPS/<variability>/labelled.json             population spec of the labelled chips
    POPS/<variability>/labelled_accuracy.csv     dut,pass,accuracy (customer's copy)
    POPS/<variability>/evaluation.json           population spec of the evaluation chips
    POPS/<variability>/evaluation_accuracy.csv   dut,pass,accuracy (customer's copy)

results.csv is rewritten atomically after each step, with sweep.json recording what the rows
depend on, so an interrupted sweep resumes where it stopped and a stale one is refused.
Chip responses come from egis.responses (cached), stimuli from egis.stimuli, the report from
egis.report.build_report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egis.compaction import BoosterConfig, CompactionResult
from egis.evaluate import evaluate_setting, read_rows, row_key, write_rows
from egis.methods import METHODS, get_method
from egis.responses import ChipResponses, chip_responses
from egis.toolkit.errors import DataError
from egis.toolkit.io import read_json, sha256_bytes, write_json
from egis.toolkit.population import PopulationSpec

CHIP_SETS = ("labelled", "evaluation")


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
    max_escape: float | None = None          # escape budget for the classifier detectors (egis.escape)

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "cutoffs": list(self.cutoffs), "seeds": list(self.seeds),
                "methods": list(self.methods), "baseline_ks": list(self.baseline_ks),
                "trials": self.trials, "images": self.images, "booster": self.booster.to_dict(),
                "schedule": dict(self.schedule), "max_escape": self.max_escape}


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
                               if not get_method(m).baseline or k in config.baseline_ks]
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
    provenance["max_escape"] = config.max_escape
    _check_resume(out_dir, rows, provenance)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", {"config": config.to_dict(), "variabilities": list(variabilities),
                                        "provenance": provenance})
    done = {row_key(r) for r in rows}
    timings: dict[str, float] = {}
    showcase: dict[str, CompactionResult] = {}
    responses: dict[str, tuple[ChipResponses, ChipResponses]] = {}
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
        methods = [m for m in methods if get_method(m).stimulus in stimuli]
        todo = [m for m in methods if (variability, cutoff, k, seed, m) not in done]
        if not todo:
            continue
        started = time.perf_counter()

        def keep(stimulus: str, result: CompactionResult) -> None:
            if stimulus == "egis" and k == headline_k(config) and seed == config.seeds[0] and cutoff == config.cutoffs[0]:
                showcase[variability] = result

        labelled, evaluation = responses[variability]
        new = evaluate_setting(labelled, evaluation, cutoff, k, seed, todo, config.trials,
                               config.booster, on_compaction=keep, schedule=config.schedule,
                               max_escape=config.max_escape)
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
    for part in ("model_sha256", "populations", "stimuli", "max_escape"):
        if recorded.get(part) != provenance.get(part):
            what = {"model_sha256": "another model", "populations": "other populations or labels",
                    "stimuli": "other stimuli (SID, --images or real images)",
                    "max_escape": "another --max-escape"}[part]
            raise DataError(f"{out_dir / 'results.csv'} holds results for {what}; "
                            f"write to a new folder or delete results.csv to start again")


