"""Chance level, measured: where do the chosen K images sit among random K-sets of the same
images, on the evaluation chips? (issue #18: compaction whose choice beats chance, measurably)

`egis evaluate`'s "EGIS images, random K" row is one random set per seed, 3 in all: on 1000
evaluation chips a single random set's TA varies by about a point from set to set, so
"annealing minus random K" carries that noise twice. This bench measures the chance level
itself: R random K-sets of the stimulus set (default 100), each scored exactly as the
evaluation scores a choice (the ONNX detector fitted on the labelled chips, egis.evaluate.
predict_with), on the same evaluation chips. It then places every choice the run made on
that stimulus set (choices.json, e.g. egis, egis-random, egis-cv) against that distribution:
TA minus the chance mean, per seed, and the percentile among the random sets. ``--stimulus``
picks the set: the SID (default), the prior's SID, real images, or one of the noise baselines, whose candidates differ far
more from image to image, to see whether annealing beats chance where there is something to
choose. Pointed (``--eval``) at an evaluation scored with an escape budget (``egis evaluate
--max-escape``), every set is scored under that budget as the evaluation scored it, and the
chance level's mean CTE and YL say what the budget costs with a stimulus set without the luck
of one annealed choice.

Reads a finished seed-protocol run (scripts/seed_protocol.sh): the labelled chips' responses
from its cache (no simulation); the evaluation chips are measured on the random sets' images
and cached under RUN/chance_cache (about R x K images x 1000 chips; ~1 min on VGG16 at R = 100).
The chosen sets' TA, CTE and YL are recomputed here and must equal results.csv's (printed as a check).

    python bench/bench_chance_level.py runs/seed_vgg16_f3 --model models/cifar10_vgg16/model.onnx
        [--variability typical] [--stimulus egis] [-k 4] [--sets 100]
    python bench/bench_chance_level.py runs/seed_vgg16_f3 --model ... --stimulus egis-tv --sid-tv SID \
        --eval runs/seed_vgg16_f3_tv/eval_tv_typical
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

from egis.chance import CHANCE_SEED, SCORES, chance_level, random_sets  # noqa: E402
from egis.compaction import BoosterConfig  # noqa: E402
from egis.evaluate import predict_with, setting_labels  # noqa: E402
from egis.metrics import test_metrics  # noqa: E402
from egis.responses import ChipResponses, chip_responses_on, evaluation_responses  # noqa: E402
from egis.escape import parse_escape_options  # noqa: E402
from egis.stimuli import EVALUATION_SEED, load_real_images, load_stimuli  # noqa: E402
from egis.toolkit.labels import read_labels  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402




def cached_labelled(eval_dir: Path, run: Path, variability: str, stimulus: str) -> ChipResponses:
    """The labelled chips' responses to one stimulus set (the evaluation's cache) and accuracies."""
    cached = evaluation_responses(eval_dir, run / "pops" / variability / "labelled.json").logits
    accuracy = read_labels(run / "pops" / variability / "labelled_accuracy.csv").accuracies
    return ChipResponses({stimulus: np.ascontiguousarray(cached[stimulus])}, accuracy)


STIMULI = ("egis", "egis-tv", "uniform", "gaussian", "untrained", "real")
METHOD_OF = {"real": "da-classifier"}   # the method that builds a stimulus set of another name


def stimulus_images(run: Path, eval_dir: Path, stimulus: str, model, n: int,
                    sid_tv: Path | None, real: str | None, real_subdir: str | None) -> np.ndarray:
    """The first ``n`` images of a stimulus set exactly as the evaluation built them (the same
    call, egis.stimuli.load_stimuli, with the evaluation's seed and folder). The check against
    results.csv below fails if they are not the same images."""
    variants = {"egis-tv": sid_tv} if sid_tv is not None else {}
    real_pixels = load_real_images(real, model, real_subdir) if real else None
    return load_stimuli(model, run / "sid", real_pixels, n, seed=EVALUATION_SEED, work_dir=eval_dir,
                        methods=(METHOD_OF.get(stimulus, stimulus),), variant_sids=variants)[stimulus]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--variability", default="typical")
    parser.add_argument("--stimulus", default="egis", choices=STIMULI,
                        help="egis: the run's sid/; egis-tv: --sid-tv; uniform, gaussian: the evaluation's "
                             "noise images; untrained: the evaluation's stimuli/untrained")
    parser.add_argument("--sid-tv", type=Path, help="the prior's set, for --stimulus egis-tv")
    parser.add_argument("--real", help="the evaluation's --real, for --stimulus real")
    parser.add_argument("--real-subdir", help="the evaluation's --real-subdir")
    parser.add_argument("--max-escape", metavar="P",
                        help="check that the --eval evaluation was scored with this escape budget (its "
                             "sweep.json's budget and confidence are what every set is scored with)")
    parser.add_argument("--eval", type=Path, dest="eval_dir",
                        help="the evaluation folder that chose the images (default RUN/eval_<variability>)")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=CHANCE_SEED)
    parser.add_argument("--csv", type=Path, help="also write every figure as CSV rows here")
    args = parser.parse_args()

    if args.stimulus == "egis-tv" and args.sid_tv is None:
        parser.error("--stimulus egis-tv needs --sid-tv")
    if args.stimulus == "real" and args.real is None:
        parser.error("--stimulus real needs --real")
    eval_config = json.loads(((args.eval_dir or args.run / f"eval_{args.variability}") / "sweep.json")
                             .read_text())["config"]
    budget, confidence = eval_config.get("max_escape"), eval_config.get("escape_confidence")
    if args.max_escape is not None and parse_escape_options(args.max_escape, None)[0] != budget:
        parser.error(f"--max-escape {args.max_escape}, but the evaluation was scored with max_escape {budget}")
    eval_dir = args.eval_dir or args.run / f"eval_{args.variability}"
    model = load_model(args.model)
    labelled = cached_labelled(eval_dir, args.run, args.variability, args.stimulus)
    n = labelled.logits[args.stimulus].shape[1]
    images = stimulus_images(args.run, eval_dir, args.stimulus, model, n, args.sid_tv, args.real, args.real_subdir)
    choices = json.loads((eval_dir / "choices.json").read_text())["choices"]
    chosen = {key: c for key, c in choices.items()
              if c["stimulus"] == args.stimulus and key.split("|")[0] == args.variability
              and int(key.split("|")[2]) == args.k}
    drawn = random_sets(n, args.k, args.sets, args.seed)
    wanted = sorted({int(i) for s in drawn for i in s} | {i for c in chosen.values() for i in c["indices"]})
    base = args.run / "pops" / args.variability
    evaluation, images_measured = chip_responses_on(model, base / "evaluation.json", base / "evaluation_accuracy.csv",
                                             {args.stimulus: images}, {args.stimulus: wanted},
                                             args.run / "chance_cache", progress=True)
    rows = {}
    results = eval_dir / "results.csv"
    with open(results, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["variability"] != args.variability:
                continue
            rows[(row["cutoff"], int(row["k"]), int(row["seed"]), row["method"])] = {
                name: float(row[name]) for name in SCORES}
    config = BoosterConfig()
    table: list[dict[str, object]] = []
    mismatches = 0
    print(f"{args.run} {args.variability}, {args.stimulus} N = {n}, K = {args.k}: {args.sets} random sets, "
          + (f"escape budget {budget:.1%}, " if budget is not None else "")
          + (f"held at confidence {confidence:.0%}, " if confidence is not None else "")
          + f"{len(evaluation.accuracy)} evaluation chips ({images_measured} images measured)")
    for cutoff in sorted({key.split("|")[1] for key in chosen}):
        threshold, labels = setting_labels(labelled, cutoff)

        def scores(indices: list[int], method: str) -> dict[str, float]:
            predicted = predict_with(method, labelled, evaluation, indices, labels, threshold, config,
                                     max_escape=budget, stimulus=args.stimulus, escape_confidence=confidence)
            metrics = test_metrics(predicted, evaluation.accuracy, threshold)
            return {name: metrics[name] for name in SCORES}

        # random sets are scored by the classifier, as every data-free method and da-classifier is
        level = chance_level(labelled, evaluation, args.stimulus, cutoff, args.k, drawn, config,
                             max_escape=budget, escape_confidence=confidence)
        chance = level.scores["TA"]
        chance_of = {name: float(np.mean(level.scores[name])) for name in SCORES}
        table.append({"cutoff": cutoff, "method": "chance", "seed": "", "TA": round(float(chance.mean()), 4),
                      "minus_chance": 0.0, "percentile": "", "sd_over_sets": round(float(chance.std(ddof=1)), 4),
                      "sets": len(chance), "CTE": round(chance_of["CTE"], 4), "YL": round(chance_of["YL"], 4),
                      "max_escape": "" if budget is None else budget})
        print(f"{cutoff}: chance TA {chance.mean():.2f} +- {chance.std(ddof=1) / np.sqrt(len(chance)):.2f} "
              f"(sd over sets {chance.std(ddof=1):.2f}, 5-95% {np.percentile(chance, 5):.1f}-"
              f"{np.percentile(chance, 95):.1f}); CTE {chance_of['CTE']:.2f}, YL {chance_of['YL']:.2f}")
        methods = sorted({key.split("|")[4] for key in chosen if key.split("|")[1] == cutoff})
        for method in methods:
            seeds = sorted(int(key.split("|")[3]) for key in chosen
                           if key.split("|")[1] == cutoff and key.split("|")[4] == method)
            per_seed = [scores(chosen[f"{args.variability}|{cutoff}|{args.k}|{s}|{method}"]["indices"], method)
                        for s in seeds]
            values = [m["TA"] for m in per_seed]
            deltas = np.array(values) - chance.mean()
            recorded = [rows.get((cutoff, args.k, s, method)) for s in seeds]
            # results.csv keeps 6 significant digits
            same = all(r is not None and all(abs(m[name] - r[name]) <= 1e-5 * max(1.0, abs(r[name]))
                                             for name in SCORES)
                       for m, r in zip(per_seed, recorded))
            mismatches += not same
            percentiles = [float(np.mean(chance < v) * 100) for v in values]
            table.extend({"cutoff": cutoff, "method": method, "seed": seed, "TA": round(m["TA"], 4),
                          "minus_chance": round(float(m["TA"] - chance.mean()), 4), "percentile": p,
                          "sd_over_sets": "", "sets": "", "CTE": round(m["CTE"], 4), "YL": round(m["YL"], 4),
                          "max_escape": "" if budget is None else budget}
                         for seed, m, p in zip(seeds, per_seed, percentiles))
            print(f"  {method}: TA {' '.join(f'{v:.1f}' for v in values)}; minus chance "
                  f"{deltas.mean():+.2f} +- {deltas.std():.2f} over seeds; percentile "
                  f"{' '.join(f'{p:.0f}' for p in percentiles)}; CTE {np.mean([m['CTE'] for m in per_seed]):.2f}, "
                  f"YL {np.mean([m['YL'] for m in per_seed]):.2f}; equals results.csv: {same}")
    if args.csv:
        from egis.toolkit.io import atomic_open

        with atomic_open(args.csv) as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    if mismatches:
        raise SystemExit(f"{mismatches} recomputed TA / CTE / YL differ from {results}: the chance level is not "
                         f"comparable with that run (other chips, labels or code)")


if __name__ == "__main__":
    main()
