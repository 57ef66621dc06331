"""Each detector's ranking at an escape budget, rescored from finished evaluations' caches
(issue #18: "CTE <= 1% at a yield loss no worse than the dataset-aware test's").

Under ``--max-escape P`` a test's CTE and YL on the evaluation chips mix two things: how well its
detector ranks chips near the cutoff, and how lucky the threshold chosen on the labelled chips
was (at 1% of 1000 labelled chips that choice rests on about 10 escapes). This bench rescores
the K-image choices of finished budget evaluations through the product's own scoring
(egis.evaluate.score_choices) and prints, per setting, cutoff and method, the rows' CTE / YL
(checked against the folder's results.csv: the same figures, or the bench stops) and
``YL_at_budget``: the least yield loss any threshold on the detector's P(pass) reaches within
the budget's critical escapes on the evaluation chips (egis.metrics.least_yield_loss).

Evaluations made before the one-file-per-set response caches (the seed-protocol runs) are read
too: their caches hold every set in one file, the labelled chips' with every image and the
evaluation chips' with the sorted union of the images the run chose, which the bench checks
against the file's recorded counts before using it. Nothing is simulated.

``compare`` then reads the per-seed CSVs of several settings and counts, for each method
against a reference (the dataset-aware test), the cells where its YL_at_budget is no worse.
Budget evaluations made since ``YL_at_budget`` exists carry it in their results.csv, which
``compare`` reads as ``NAME=results.csv`` without a rescore.

    python bench/bench_budget_ranking.py rescore --populations runs/seed_vgg16_f3/pops \\
        --variability typical --name vgg16-typical --csv out.csv \\
        runs/seed_vgg16_f3/eval_typical_budget1:da-classifier,egis \\
        runs/distil/vgg16_typical/eval_typical_budget1:egis-distil [-k 4] [--budget 0.01]
    python bench/bench_budget_ranking.py compare out.csv [more.csv] [--reference da-classifier]
    python bench/bench_budget_ranking.py compare nhwc-extreme=runs/fidelity_nhwc/eval_budget_extreme/results.csv \
        nhwc-extreme=runs/distil/tv_nhwc_extreme/eval_budget_extreme/results.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.compaction import BoosterConfig  # noqa: E402
from egis.evaluate import Choice, score_choices, write_table  # noqa: E402
from egis.methods import get_method  # noqa: E402
from egis.responses import ChipResponses, cached_responses, evaluation_responses, responses_dir  # noqa: E402
from egis.toolkit.errors import DataError  # noqa: E402
from egis.toolkit.labels import read_labels  # noqa: E402
from egis.toolkit.population import PopulationSpec  # noqa: E402


def older_sidecars(evaluation: Path, pop_path: Path, stimulus: str) -> list[tuple[Path, int, int]]:
    """(sidecar, first column, count) of each older-layout cache (every set in one file, in the
    evaluation's own cache/) of ``pop_path``'s chips that holds ``stimulus``."""
    population = PopulationSpec.load(pop_path).sha256()
    found = []
    for sidecar in sorted((evaluation / "cache").glob(f"{pop_path.stem}-*.json")):
        meta = json.loads(sidecar.read_text())
        if meta.get("population") != population or "names" not in meta or stimulus not in meta["names"]:
            continue
        at = meta["names"].index(stimulus)
        found.append((sidecar, sum(meta["counts"][:at]), meta["counts"][at]))
    return found


def chosen_images(choices: dict, stimulus: str) -> list[int]:
    """The sorted union of the images the run chose from ``stimulus`` (``choices``: one
    variability's): the columns an older evaluation cache of its evaluation chips holds."""
    return sorted({i for c in choices.values() if c["stimulus"] == stimulus for i in c["indices"]})


def older_layout(evaluation: Path, pop_path: Path, stimulus: str, choices: dict,
                 whole: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(responses, columns) of ``stimulus`` from an older-layout cache. ``whole`` (the labelled
    chips): the widest cache, columns None, which must hold every chosen image. Else (the
    evaluation chips): the one cache whose count equals the chosen images' union, columns that
    union; none, or several that disagree, stop the bench rather than guess. The rescoring check
    against results.csv (rescore) catches a cache whose columns were nevertheless misread."""
    found = older_sidecars(evaluation, pop_path, stimulus)
    chosen = chosen_images(choices, stimulus)
    if not found:
        raise SystemExit(f"no cache of {pop_path.stem} chips' responses to {stimulus} in {evaluation}")
    if whole:
        sidecar, start, count = max(found, key=lambda f: f[2])
        if chosen and chosen[-1] >= count:
            raise SystemExit(f"{sidecar}: {count} {stimulus} images, but the run chose image {chosen[-1]}")
        return _columns(sidecar, start, count), None
    exact = [_columns(*f) for f in found if f[2] == len(chosen)]
    # several caches (e.g. the plain and the budget evaluation's) may hold the same images: they
    # must then hold the same responses, or the bench cannot tell which one the run used
    if not exact or any(not np.array_equal(exact[0], other) for other in exact[1:]):
        raise SystemExit(f"{evaluation}: {len(exact)} caches of the {pop_path.stem} chips hold "
                         f"{len(chosen)} {stimulus} images{' with different responses' if exact else ''}; "
                         f"the columns cannot be placed")
    return exact[0], np.asarray(chosen, dtype=np.intp)


def _columns(sidecar: Path, start: int, count: int) -> np.ndarray:
    return np.asarray(np.load(sidecar.with_suffix(".npy"), mmap_mode="r")[:, start:start + count])


def responses(evaluation: Path, pops: Path, stimuli: set[str], choices: dict, variability: str,
              distilled: bool) -> tuple[ChipResponses, ChipResponses]:
    """The labelled chips' (every image; the unlabelled chips' too for a distilled method) and
    the evaluation chips' responses to each of ``stimuli``, with their accuracies."""
    accuracy = {name: read_labels(pops / f"{name}_accuracy.csv").accuracies for name in ("labelled", "evaluation")}
    out_l, out_e = ChipResponses({}, accuracy["labelled"]), ChipResponses({}, accuracy["evaluation"])
    sweep = json.loads((evaluation / "sweep.json").read_text())
    choices = {key: c for key, c in choices.items() if key.split("|")[0] == variability}
    for stimulus in sorted(stimuli):
        chosen = {stimulus: chosen_images(choices, stimulus)}
        try:   # the one-file-per-set caches, wherever the evaluation kept them
            labelled = evaluation_responses(evaluation, pops / "labelled.json").logits[stimulus]
            held = evaluation_responses(evaluation, pops / "evaluation.json", wanted=chosen)
            out_e.logits[stimulus] = held.logits[stimulus]
        except (DataError, KeyError):
            # only an evaluation made before those caches falls back; any other error is its own
            if not older_sidecars(evaluation, pops / "labelled.json", stimulus):
                raise
        else:
            out_l.logits[stimulus] = labelled
            if stimulus in held.columns:
                out_e.columns[stimulus] = held.columns[stimulus]
            if distilled:
                out_l.unlabelled[stimulus] = np.asarray(cached_responses(
                    responses_dir(evaluation), pops / "unlabelled.json", sweep.get("response_sets")).logits[stimulus])
            continue
        if distilled:
            raise SystemExit(f"{evaluation}: a distilled method's evaluation in the older cache layout")
        out_l.logits[stimulus], _ = older_layout(evaluation, pops / "labelled.json", stimulus, choices, whole=True)
        out_e.logits[stimulus], out_e.columns[stimulus] = older_layout(evaluation, pops / "evaluation.json",
                                                                       stimulus, choices, whole=False)
    return out_l, out_e


def method_choices(evaluation: Path, pops: Path, choices: dict, variability: str, k: int,
                   method: str) -> tuple[dict[str, Choice], ChipResponses, ChipResponses]:
    """``method``'s K-image choices at ``variability`` (choices.json key -> Choice) and the
    labelled and evaluation chips' responses they are scored on (:func:`responses`)."""
    mine = {key: Choice.from_dict(c) for key, c in choices.items()
            if key.split("|")[0] == variability and key.split("|")[2] == str(k) and key.split("|")[4] == method}
    if not mine:
        raise SystemExit(f"{evaluation} made no K = {k} choice for {method}")
    labelled, held = responses(evaluation, pops, {c.stimulus for c in mine.values()}, choices, variability,
                               get_method(method).selection == "distil")
    return mine, labelled, held


def recorded_rows(evaluation: Path) -> dict[tuple, dict]:
    with open(evaluation / "results.csv", newline="") as handle:
        return {(r["variability"], r["cutoff"], int(r["k"]), int(r["seed"]), r["method"]): r
                for r in csv.DictReader(handle)}


FIELDS = ("setting", "variability", "cutoff", "k", "seed", "method", "TA", "CTE", "YL", "YL_at_budget", "max_escape",
          "escape_confidence")


def rescore(args: argparse.Namespace) -> None:
    pops = args.populations / args.variability
    config = BoosterConfig()
    out_rows = []
    print(f"{args.name} ({pops}), K = {args.k}, budget {args.budget:.2%}: mean over seeds of the chosen "
          f"threshold's CTE / YL and the hindsight YL_at_budget (± sd over seeds)")
    for spec in args.evaluations:
        folder, _, methods = spec.partition(":")
        evaluation = Path(folder)
        recorded_config = json.loads((evaluation / "sweep.json").read_text())["config"]
        if recorded_config.get("max_escape") != args.budget or recorded_config.get("escape_confidence") is not None:
            raise SystemExit(f"{evaluation} was not scored at max_escape {args.budget} without a confidence level")
        choices = json.loads((evaluation / "choices.json").read_text())["choices"]
        recorded = recorded_rows(evaluation)
        for method in methods.split(","):
            mine, labelled, held = method_choices(evaluation, pops, choices, args.variability, args.k, method)
            for cutoff in recorded_config["cutoffs"]:
                rows = []
                for key, choice in sorted(mine.items()):
                    _, c, k, seed, _ = key.split("|")
                    if c != cutoff:
                        continue
                    # the folder's rows were scored at the mean rule: every choice is rescored at it
                    # and checked against them first, so a misread cache stops the bench
                    row = score_choices(labelled, held, cutoff, int(k), int(seed), [choice], config,
                                        max_escape=args.budget)[0]
                    before = recorded[(args.variability, cutoff, int(k), int(seed), method)]
                    if any(abs(row[m] - float(before[m])) > 1e-6 for m in ("TA", "CTE", "YL")):
                        raise SystemExit(f"{evaluation} {key}: rescored {row['TA']:.2f} / {row['CTE']:.2f} / "
                                         f"{row['YL']:.2f}, recorded {before['TA']} / {before['CTE']} / {before['YL']}")
                    if args.confidence is not None:
                        row = score_choices(labelled, held, cutoff, int(k), int(seed), [choice], config,
                                            max_escape=args.budget, escape_confidence=args.confidence)[0]
                    rows.append({**row, "setting": args.name, "variability": args.variability})
                at = np.array([r["YL_at_budget"] for r in rows])
                print(f"{args.variability} {cutoff} {method}: CTE {np.mean([r['CTE'] for r in rows]):.2f} / "
                      f"YL {np.mean([r['YL'] for r in rows]):.2f} | YL_at_budget {at.mean():.2f} ± {at.std():.2f} "
                      f"({len(rows)} seeds)", flush=True)
                out_rows += rows
    if args.csv:
        write_table(args.csv, FIELDS, out_rows)


def compare(args: argparse.Namespace) -> None:
    cells: dict[tuple[str, str, str], list[dict]] = {}
    for spec in args.csvs:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                # rescore's CSVs name their setting; an evaluation's results.csv takes NAME= from the argument
                if "YL_at_budget" not in row:
                    raise SystemExit(f"{path} has no YL_at_budget column: rescore it, or use a budget evaluation's")
                setting = row.get("setting") or name
                if not setting:
                    raise SystemExit(f"{path} has no setting column: pass it as NAME={path}")
                cells.setdefault((setting, row["cutoff"], row["method"]), []).append(row)

    def mean(key: tuple[str, str, str], field: str) -> float:
        return float(np.mean([float(r[field]) for r in cells[key]]))

    methods = sorted({m for _, _, m in cells} - {args.reference})
    places = sorted({(s, c) for s, c, _ in cells})
    print(f"YL_at_budget (mean over seeds) per cell; in brackets the chosen threshold's CTE / YL")
    print("cell | " + " | ".join([args.reference, *methods]))
    for setting, cutoff in places:
        print(f"{setting} {cutoff} | " + " | ".join(
            "n/a" if (setting, cutoff, m) not in cells else
            f"{mean((setting, cutoff, m), 'YL_at_budget'):.2f} ({mean((setting, cutoff, m), 'CTE'):.2f} / "
            f"{mean((setting, cutoff, m), 'YL'):.2f})" for m in [args.reference, *methods]))
    print(f"against {args.reference}: cells with YL_at_budget no worse | its mean difference ± SE over the cells | "
          f"mean YL_at_budget (reference's over the same cells) | the chosen thresholds: yield loss against the "
          f"reference's, and the goal's budget half")
    reference_held = sum(mean((s, c, args.reference), "CTE") <= 100 * args.budget + 1e-6
                         for s, c in places if (s, c, args.reference) in cells)
    print(f"({args.reference}'s own chosen threshold: CTE <= budget in {reference_held} of "
          f"{sum((s, c, args.reference) in cells for s, c in places)})")
    for method in methods:
        shared = [(s, c) for s, c in places if (s, c, method) in cells and (s, c, args.reference) in cells]
        diff = np.array([mean((s, c, method), "YL_at_budget") - mean((s, c, args.reference), "YL_at_budget")
                         for s, c in shared])
        own = np.mean([mean((s, c, method), "YL_at_budget") for s, c in shared])
        ref = np.mean([mean((s, c, args.reference), "YL_at_budget") for s, c in shared])
        chosen = np.array([mean((s, c, method), "YL") - mean((s, c, args.reference), "YL") for s, c in shared])
        held = [(s, c) for s, c in shared if mean((s, c, method), "CTE") <= 100 * args.budget + 1e-6]
        goal = [(s, c) for s, c in held if mean((s, c, method), "YL") <= mean((s, c, args.reference), "YL") + 1e-6]
        print(f"{method}: {int(np.sum(diff <= 1e-9))} of {len(shared)} | {diff.mean():+.2f} ± {standard_error(diff):.2f} | "
              f"{own:.2f} ({ref:.2f}) | chosen threshold: YL minus the reference's {chosen.mean():+.2f} ± "
              f"{standard_error(chosen):.2f}, no worse in {int(np.sum(chosen <= 1e-6))}; CTE <= budget in {len(held)}, "
              f"and also YL no worse in {len(goal)}")


def standard_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("rescore", help="rescore one setting's budget evaluations")
    one.add_argument("evaluations", nargs="+", metavar="BUDGET_EVAL:METHOD[,METHOD]")
    one.add_argument("--populations", type=Path, required=True)
    one.add_argument("--variability", required=True)
    one.add_argument("--name", required=True, help="the setting's name in the CSV (e.g. vgg16-typical)")
    one.add_argument("--csv", type=Path, help="write the per-seed rows here")
    one.add_argument("-k", type=int, default=4)
    one.add_argument("--budget", type=float, default=0.01)
    one.add_argument("--confidence", type=float, help="choose the threshold at this level "
                     "(egis compact --escape-confidence) instead of the folders' mean rule (their rows are "
                     "still rescored at the mean rule and checked first)")
    many = sub.add_parser("compare", help="count cells against a reference from rescore's CSVs")
    many.add_argument("csvs", nargs="+", metavar="[NAME=]CSV",
                      help="rescore's CSVs, or budget evaluations' results.csv named by setting (rows of one "
                      "NAME from several files are one setting: e.g. the baselines' and a distilled method's)")
    many.add_argument("--reference", default="da-classifier")
    many.add_argument("--budget", type=float, default=0.01, help="the budget the chosen thresholds are held to")
    args = parser.parse_args()
    (rescore if args.command == "rescore" else compare)(args)


if __name__ == "__main__":
    main()
