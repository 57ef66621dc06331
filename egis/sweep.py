"""One evaluation sweep for one model: every (variability, cutoff, K, seed, method), resumable.

Layout of a populations directory (what the customer's evaluation copy provides)::

    POPS/<variability>/labelled.json             population spec of the labelled chips
    POPS/<variability>/labelled_accuracy.csv     dut,pass,accuracy (customer's copy)
    POPS/<variability>/evaluation.json           population spec of the evaluation chips
    POPS/<variability>/evaluation_accuracy.csv   dut,pass,accuracy (customer's copy)
    POPS/<variability>/unlabelled.json           the fab's own unlabelled chips (egis-distil only)

Two passes: every setting's K images are chosen on the labelled chips first (checkpointed in
choices.json), then the evaluation chips are measured on the union of the chosen images only
(a few hundred of the thousands of candidates; the evaluation's half of the response work
drops by that ratio) and every choice is scored. results.csv is rewritten atomically as rows
land, with sweep.json recording what the rows depend on, so an interrupted sweep resumes where
it stopped and a stale one is refused.
Chip responses come from egis.responses (cached), stimuli from egis.stimuli, the report from
egis.report.build_report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from egis.compaction import BoosterConfig, CompactionResult
from egis.distil import refuse_shared_chips
from egis.evaluate import Choice, choose_sets, read_rows, row_key, score_choices, write_rows, write_table
from egis.methods import DEFAULT_METHODS, SELECT_CANDIDATES, get_method, needs_unlabelled
from egis.responses import ChipResponses, chip_responses, chip_responses_on, unlabelled_responses
from egis.toolkit.errors import DataError
from egis.toolkit.io import read_json, sha256_bytes, write_json
from egis.toolkit.population import PopulationSpec
from egis.toolkit.runner import get_runner
from egis.toolkit.signatures import images_sha256

CHIP_SETS = ("labelled", "evaluation")
UNLABELLED = "unlabelled.json"   # the fab's own chips without labels, for egis-distil (optional)
CHOICES_NAME = "choices.json"   # every setting's chosen images, so an interrupted sweep resumes
# bumped whenever a method chooses differently from the same inputs (a new prefilter, reward or
# selection rule), so a resumed sweep never keeps choices the current code would not make
CHOICES_VERSION = 2
# SweepConfig fields that only move the detectors' pass threshold: recorded in the provenance
# (a resume must score the same way) but not in what the choices depend on
SCORING_ONLY = ("max_escape", "escape_confidence")


@dataclass
class SweepConfig:
    ks: Sequence[int] = (2, 4, 8, 16)
    cutoffs: Sequence[str] = ("A50", "A60", "A70")
    seeds: Sequence[int] = (0, 1, 2)
    methods: Sequence[str] = DEFAULT_METHODS
    baseline_ks: Sequence[int] = (4,)       # K values at which the non-EGIS methods also run
    trials: int = 5
    images: int = 1024                      # images per stimulus set
    booster: BoosterConfig = field(default_factory=BoosterConfig)
    # Overrides of the annealing schedule (t_start, t_end, cooling). Empty = the seed's
    # schedule; only tests shorten it.
    schedule: dict[str, float] = field(default_factory=dict)
    max_escape: float | None = None          # escape budget for the classifier detectors (egis.escape)
    escape_confidence: float | None = None   # level at which max_escape holds (None: its mean)
    chance: int = 0                          # random K-sets per stimulus set for the chance level (0: none)

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "cutoffs": list(self.cutoffs), "seeds": list(self.seeds),
                "methods": list(self.methods), "baseline_ks": list(self.baseline_ks),
                "trials": self.trials, "images": self.images, "booster": self.booster.to_dict(),
                "schedule": dict(self.schedule), "max_escape": self.max_escape,
                "escape_confidence": self.escape_confidence, "chance": self.chance}


def headline_of(ks: Sequence[int]) -> int:
    """The K of the headline table among ``ks``: the seed's K = 4 when swept, else the first."""
    return 4 if 4 in ks else ks[0]


def headline_k(config: SweepConfig) -> int:
    """The K of the headline table: the seed's K = 4 when swept, else the first K."""
    return headline_of(config.ks)


def plan(config: SweepConfig, variabilities: Sequence[str]) -> list[tuple[str, str, int, int, list[str]]]:
    """(variability, cutoff, K, seed, methods) in run order, K = 4 first. Every setting is
    chosen (checkpointed in choices.json) before any row is scored, so the order decides which
    choices a stopped run keeps, not which rows land first."""
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
              progress: bool = True, log=print, cache_dir: Path | None = None,
              ) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, CompactionResult]]:
    """Run (or resume) the sweep; results.csv is rewritten atomically after each step.

    Chip responses are cached in ``cache_dir`` (default ``out_dir/cache``), one file per
    population and stimulus set (egis.responses.response_caches), so sweeps may share one.

    Rows already in results.csv count as done only if they were computed for the same
    model, populations and stimuli (recorded in sweep.json); otherwise this is refused.
    """
    results = out_dir / "results.csv"
    cache_dir = out_dir / "cache" if cache_dir is None else Path(cache_dir)
    rows = read_rows(results)
    unlabelled_sets = needs_unlabelled(config.methods)
    for variability in variabilities if unlabelled_sets else ():
        check_unlabelled_population(pops_dir, variability)
    provenance = sweep_provenance(model, pops_dir, variabilities, stimuli, bool(unlabelled_sets))
    provenance.update({name: getattr(config, name) for name in SCORING_ONLY})
    _check_resume(out_dir, rows, provenance)
    out_dir.mkdir(parents=True, exist_ok=True)
    # where the responses are is not provenance (a resume may use another folder): recorded
    # beside it, relative to out_dir, with each set's images' hash, for readers of a finished run
    # (egis.responses.evaluation_responses)
    write_json(out_dir / "sweep.json", {"config": config.to_dict(), "variabilities": list(variabilities),
                                        "provenance": provenance,
                                        "responses": os.path.relpath(cache_dir, out_dir),
                                        "response_sets": {name: images_sha256(images)
                                                          for name, images in sorted(stimuli.items())}})
    done = {row_key(r) for r in rows}
    timings: dict[str, float] = {}
    showcase: dict[str, CompactionResult] = {}
    labelled: dict[str, ChipResponses] = {}
    for variability in variabilities:
        started = time.perf_counter()
        base = pops_dir / variability
        labelled[variability] = chip_responses(model, base / "labelled.json", base / "labelled_accuracy.csv",
                                               stimuli, cache_dir, progress)
        timings[f"chip responses, labelled chips ({variability})"] = time.perf_counter() - started
        if unlabelled_sets:
            started = time.perf_counter()
            labelled[variability].unlabelled = unlabelled_responses(
                model, base / UNLABELLED, {name: stimuli[name] for name in unlabelled_sets if name in stimuli},
                cache_dir, progress)
            timings[f"chip responses, unlabelled chips ({variability})"] = time.perf_counter() - started

    # 1. choose every setting's images from the labelled chips alone (checkpointed); the
    # settings are independent, so they run on every worker the runner has
    choices, set_aside = _load_choices(out_dir, provenance, config)
    pending: list[tuple[str, str, int, int, list[str]]] = []
    to_choose: list[tuple[str, str, int, int, list[str]]] = []
    for variability, cutoff, k, seed, methods in plan(config, variabilities):
        methods = [m for m in methods if get_method(m).stimulus in stimuli]
        todo = [m for m in methods if (variability, cutoff, k, seed, m) not in done]
        if not todo:
            continue
        pending.append((variability, cutoff, k, seed, todo))
        missing = [m for m in todo if _choice_key(variability, cutoff, k, seed, m) not in choices]
        if missing:
            to_choose.append((variability, cutoff, k, seed, missing))
    if set_aside and to_choose:
        log(f"{out_dir / CHOICES_NAME} was made for other chips, stimuli, annealing settings or code version: "
            f"choosing again")
    started = time.perf_counter()
    task = ChoiceTask(labelled, to_choose, config)
    for index, (chosen_sets, headline, seconds) in get_runner(chunk=1).map(task, range(len(to_choose))):
        variability, cutoff, k, seed, missing = to_choose[index]
        for chosen in chosen_sets:
            choices[_choice_key(variability, cutoff, k, seed, chosen.method)] = chosen
        if headline is not None and (k, seed, cutoff) == (headline_k(config), config.seeds[0], config.cutoffs[0]):
            showcase[variability] = headline
        _save_choices(out_dir, provenance, config, choices)
        log(f"{variability} {cutoff} K={k} seed={seed}: chose images for {len(missing)} methods ({seconds:.0f} s)")
    timings["compaction (sweep)"] = time.perf_counter() - started

    # 2. measure the evaluation chips on the chosen images only, then score every choice
    for variability in variabilities:
        steps = [step for step in pending if step[0] == variability]
        if not steps:
            continue
        wanted: dict[str, set[int]] = {}
        for _, cutoff, k, seed, todo in steps:
            for method in todo:
                chosen = choices[_choice_key(variability, cutoff, k, seed, method)]
                wanted.setdefault(chosen.stimulus, set()).update(chosen.indices)
        started = time.perf_counter()
        base = pops_dir / variability
        evaluation, measured = chip_responses_on(
            model, base / "evaluation.json", base / "evaluation_accuracy.csv", stimuli,
            {name: sorted(ix) for name, ix in wanted.items()}, cache_dir, progress)
        timings[f"chip responses, evaluation chips ({variability})"] = time.perf_counter() - started
        if measured:
            log(f"{variability}: evaluation chips measured on the {measured} chosen images of "
                f"{sum(len(images) for images in stimuli.values())}")
        started = time.perf_counter()
        for _, cutoff, k, seed, todo in steps:
            new = score_choices(labelled[variability], evaluation, cutoff, k, seed,
                                [choices[_choice_key(variability, cutoff, k, seed, m)] for m in todo],
                                config.booster, max_escape=config.max_escape,
                                escape_confidence=config.escape_confidence)
            for row in new:
                row["variability"] = variability
            rows.extend(new)
            write_rows(results, rows)
            egis_row = next((r for r in new if r["method"] == "egis"), None)
            if egis_row is not None:
                log(f"{variability} {cutoff} K={k} seed={seed}: EGIS TA {egis_row['TA']:.1f}% "
                    f"CTE {egis_row['CTE']:.1f}%")
        timings[f"detectors on the evaluation chips ({variability})"] = time.perf_counter() - started

    # 3. the chance level: random K-sets of the same images, every choice placed against it
    if config.chance:
        started = time.perf_counter()
        table = chance_table(model, pops_dir, variabilities, stimuli, labelled, choices, rows, config,
                             cache_dir, progress)
        write_table(out_dir / CHANCE_NAME, CHANCE_FIELDS, table)
        timings["chance level"] = time.perf_counter() - started
        log(f"{out_dir / CHANCE_NAME}: the chance level of {config.chance} random K-sets per stimulus set")
    return rows, timings, showcase


CHANCE_NAME = "chance.csv"
CHANCE_FIELDS = ("variability", "cutoff", "k", "stimulus", "method", "seed", "TA", "minus_chance", "percentile",
                 "TA_sd", "TA_se", "sets", "CTE", "YL", "detector")


def chance_detector(method: str) -> str:
    """Which detector a method's chance level is scored with: egis-distil's methods ship the
    student (labelled plus teacher-labelled chips), every other classifier method the seed's."""
    return "student" if get_method(method).selection == "distil" else "classifier"


def chance_table(model: LoadedModel, pops_dir: Path, variabilities: Sequence[str], stimuli: dict[str, np.ndarray],
                 labelled: dict[str, ChipResponses], choices: dict[str, Choice], rows: list[dict[str, Any]],
                 config: SweepConfig, cache_dir: Path, progress: bool = True) -> list[dict[str, Any]]:
    """The chance level (egis.chance) of every stimulus set the classifier methods choose from
    at the headline K, per variability and cutoff, scored as the rows were (same budget, same
    detector: :func:`chance_detector`), and each such row placed against its set's level. A
    row's set is its recorded choice's, else its method's own (egis-select's is known only
    from its choice). The evaluation chips are measured on the random sets' images (cached,
    shared with the choices' where they overlap)."""
    from egis.chance import chance_level, random_sets

    k = headline_k(config)
    classifiers = [m for m in config.methods if get_method(m).detector == "classifier"]
    own = {m: get_method(m).stimulus for m in classifiers if get_method(m).selection != "select"}
    student_method = {get_method(m).stimulus: m for m in classifiers if chance_detector(m) == "student"}
    table: list[dict[str, Any]] = []
    for variability in variabilities:
        chosen = {key: c for key, c in choices.items()
                  if key.startswith(f"{variability}|") and int(key.split("|")[2]) == k
                  and get_method(c.method).detector == "classifier"}
        levels = sorted(({(c.stimulus, chance_detector(c.method)) for c in chosen.values()}
                         | {(name, chance_detector(m)) for m, name in own.items()}))
        levels = [(name, kind) for name, kind in levels if name in stimuli]
        if not levels:
            continue
        drawn = {name: random_sets(len(stimuli[name]), k, config.chance) for name, _ in levels}
        base = pops_dir / variability
        evaluation, _ = chip_responses_on(model, base / "evaluation.json", base / "evaluation_accuracy.csv", stimuli,
                                          {name: sorted({int(i) for s in sets for i in s})
                                           for name, sets in drawn.items()}, cache_dir, progress)
        for cutoff in config.cutoffs:
            for name, kind in levels:
                level = chance_level(labelled[variability], evaluation, name, cutoff, k, drawn[name],
                                     config.booster, config.max_escape, config.escape_confidence,
                                     method=student_method[name] if kind == "student" else "egis")
                table.append({"variability": variability, "method": "chance", "seed": "", "detector": kind,
                              **level.row()})
                for row in sorted((r for r in rows if r["variability"] == variability and r["cutoff"] == cutoff
                                   and int(r["k"]) == k), key=row_key):
                    choice = chosen.get(_choice_key(variability, cutoff, k, int(row["seed"]), row["method"]))
                    if ((choice.stimulus if choice is not None else own.get(row["method"])) != name
                            or chance_detector(row["method"]) != kind):
                        continue
                    minus, percentile = level.place(row["TA"])
                    table.append({"variability": variability, "cutoff": cutoff, "k": k, "stimulus": name,
                                  "method": row["method"], "seed": int(row["seed"]), "TA": row["TA"],
                                  "minus_chance": minus, "percentile": percentile, "CTE": row["CTE"],
                                  "YL": row["YL"], "detector": kind})
    return table


@dataclass
class ChoiceTask:
    """The annealing of one sweep setting per index (a runner task, egis.toolkit.runner):
    settings are independent and seeded, so workers return what one process would."""

    labelled: dict[str, ChipResponses]           # variability -> the labelled chips' responses
    steps: list[tuple[str, str, int, int, list[str]]]   # (variability, cutoff, K, seed, methods)
    config: SweepConfig
    jobs: int | None = None                      # annealing threads (None: egis.compaction's default)

    def setup(self) -> None:
        pass

    def for_worker(self) -> ChoiceTask:
        """One annealing thread per worker: the other workers hold the other cores."""
        return replace(self, jobs=1)

    def run(self, index: int) -> tuple[list[Choice], CompactionResult | None, float]:
        """The step's choices, its EGIS annealing (the report's showcase) and its seconds."""
        variability, cutoff, k, seed, methods = self.steps[index]
        started = time.perf_counter()
        annealings: dict[str, CompactionResult] = {}
        chosen = choose_sets(self.labelled[variability], cutoff, k, seed, methods, self.config.trials,
                             self.config.booster, on_compaction=annealings.setdefault,
                             schedule=self.config.schedule, jobs=self.jobs)
        return chosen, annealings.get("egis"), time.perf_counter() - started


def _choice_key(variability: str, cutoff: str, k: int, seed: int, method: str) -> str:
    return f"{variability}|{cutoff}|{k}|{seed}|{method}"


def _choice_basis(provenance: dict[str, Any], config: SweepConfig) -> dict[str, Any]:
    """What a choice depends on: the labelled chips, stimuli and model, and the annealing's
    settings (not the escape budget, which only moves the detectors' threshold)."""
    return {"version": CHOICES_VERSION, "select_candidates": SELECT_CANDIDATES,
            "provenance": {k: v for k, v in provenance.items() if k not in SCORING_ONLY},
            "booster": config.booster.to_dict(), "trials": config.trials, "schedule": dict(config.schedule)}


def _load_choices(out_dir: Path, provenance: dict[str, Any], config: SweepConfig) -> tuple[dict[str, Choice], bool]:
    """The choices an earlier, interrupted run made on the same basis, and whether a file of
    choices made on another basis was set aside (every setting still to score is then annealed
    again and the file rewritten)."""
    path = out_dir / CHOICES_NAME
    if not path.exists():
        return {}, False
    data = read_json(path)
    if data.get("basis") != json.loads(json.dumps(_choice_basis(provenance, config))):
        return {}, True
    return {key: Choice.from_dict(value) for key, value in data["choices"].items()}, False


def _save_choices(out_dir: Path, provenance: dict[str, Any], config: SweepConfig,
                  choices: dict[str, Choice]) -> None:
    write_json(out_dir / CHOICES_NAME, {"basis": _choice_basis(provenance, config),
                                        "choices": {key: c.to_dict() for key, c in sorted(choices.items())}})


def check_unlabelled_population(pops_dir: Path, variability: str) -> None:
    """Refuse, before any work, an unlabelled population that is missing, or that is the labelled
    or the evaluation chips themselves (the teacher would label chips the test is scored on)."""
    base = pops_dir / variability
    path = base / UNLABELLED
    if not path.exists():
        raise DataError(f"{base} has no {UNLABELLED}: the distilled methods (egis-distil, egis-tv-distil, "
                        f"egis-both-distil) need the fab's unlabelled chips "
                        f"(egis duts make ... -o {path}, with a seed of its own)")
    spec = PopulationSpec.load(path)
    for chip_set in CHIP_SETS:
        refuse_shared_chips(spec, PopulationSpec.load(base / f"{chip_set}.json"), chip_set, path)


def sweep_provenance(model: LoadedModel, pops_dir: Path, variabilities: Sequence[str],
                     stimuli: dict[str, np.ndarray], unlabelled: bool = False) -> dict[str, Any]:
    """What a sweep's rows depend on: model, population specs and labels, stimulus images,
    and the unlabelled chips' spec where a method uses them (egis-distil)."""
    pops: dict[str, dict[str, str]] = {}
    for variability in variabilities:
        if unlabelled:
            pops[f"{variability}/unlabelled"] = {
                "spec": PopulationSpec.load(pops_dir / variability / UNLABELLED).sha256(), "labels": ""}
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


def scored_chips(populations: Any) -> Any:
    """The provenance of the labelled and evaluation chips, without the unlabelled chips': what
    the rows are scored on (scripts/goal_cells.py merges evaluations that agree on it)."""
    if not isinstance(populations, dict):
        return populations
    return {name: pop for name, pop in populations.items() if not name.endswith("/unlabelled")}


def _check_resume(out_dir: Path, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> None:
    sweep = out_dir / "sweep.json"
    if not rows or not sweep.exists():
        return
    recorded = read_json(sweep).get("provenance")
    if recorded is None:  # written before provenance was recorded: cannot tell, trust it
        return
    for part in ("model_sha256", "populations", "stimuli", *SCORING_ONLY):
        if part == "populations" and scored_chips(recorded.get(part)) == scored_chips(provenance.get(part)) \
                and recorded.get(part) != provenance.get(part):
            raise DataError(f"{out_dir / 'results.csv'} holds results made with other unlabelled chips, or with "
                            f"none (methods that need them, egis-distil, were added or dropped); write to a new "
                            f"folder or delete results.csv to start again")
        if recorded.get(part) != provenance.get(part):
            what = {"model_sha256": "another model", "populations": "other populations or labels",
                    "stimuli": "other stimuli (SID, --images or real images)",
                    "max_escape": "another --max-escape",
                    "escape_confidence": "another --escape-confidence"}[part]
            raise DataError(f"{out_dir / 'results.csv'} holds results for {what}; "
                            f"write to a new folder or delete results.csv to start again")


