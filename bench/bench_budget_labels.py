"""What an escape budget costs against the number of labelled chips (issue #18: the budget's
threshold is chosen from the customer's pass/fail labels alone).

At a 1% budget the threshold rests on about 1% of the labelled chips: 10 of 1000, 2.5 of 250.
bench_budget_ranking.py showed the chosen threshold's yield loss on the customer-style models
(200-250 labelled chips) at 1.2-2.4 times what the same detectors need in hindsight (method
means). This bench
measures that cost directly on a full-protocol run: the K = 4 images a finished budget
evaluation chose (held fixed), the detector refitted on D labelled chips drawn at random (the
cutoff A_p recomputed on them, as the customer would), the threshold chosen by the shipped
rule (egis.escape) through the product's scoring (egis.evaluate.score_choices), and the
evaluation chips' CTE / YL with YL_at_budget (hindsight) beside them. Distilled methods refit
their teacher on the D chips too; the unlabelled chips stay. Nothing is simulated.

    python bench/bench_budget_labels.py runs/seed_vgg16_f3/eval_typical_budget1:da-classifier \\
        runs/distil/tv_vgg16_typical/eval_typical_budget1:egis-tv-distil \\
        --populations runs/seed_vgg16_f3/pops --variability typical [--chips 250,500,1000] [--draws 3] \\
        [--name vgg16-typical --csv-prefix out/labels_vgg16_typical]
    python bench/bench_budget_ranking.py compare out/labels_*_D250.csv    # the cells against the reference
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_budget_ranking import FIELDS, method_choices  # noqa: E402  (bench/ is the script's own folder)

from egis.compaction import BoosterConfig  # noqa: E402
from egis.evaluate import score_choices, write_table  # noqa: E402
from egis.responses import ChipResponses  # noqa: E402


def subset(labelled: ChipResponses, chips: np.ndarray) -> ChipResponses:
    """The labelled chips ``chips`` only (their responses and accuracies; the unlabelled chips
    unchanged), so the product's scoring fits, thresholds and cuts on them alone."""
    out = ChipResponses({name: np.asarray(arr)[chips] for name, arr in labelled.logits.items()},
                        labelled.accuracy[chips])
    out.unlabelled = labelled.unlabelled
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("evaluations", nargs="+", metavar="BUDGET_EVAL:METHOD")
    parser.add_argument("--populations", type=Path, required=True)
    parser.add_argument("--variability", required=True)
    parser.add_argument("--chips", default="250,500,1000", help="labelled-chip counts D")
    parser.add_argument("--draws", type=int, default=3, help="random draws of D chips per count")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--budget", type=float, default=0.01)
    parser.add_argument("--name", help="the setting's name in the CSVs (e.g. vgg16-typical)")
    parser.add_argument("--csv-prefix", help="write PREFIX_D<count>.csv per count: every (seed, draw) row, "
                        "in bench_budget_ranking.py's columns, so its compare reads them")
    args = parser.parse_args()
    if args.csv_prefix and not args.name:
        parser.error("--csv-prefix needs --name")
    written: dict[int, list[dict]] = {}
    pops = args.populations / args.variability
    config = BoosterConfig()
    counts = [int(c) for c in args.chips.split(",")]
    print(f"{pops}, K = {args.k}, budget {args.budget:.2%}: the chosen threshold's CTE / YL and the hindsight "
          f"YL_at_budget on the evaluation chips, mean over the seeds' choices x {args.draws} draws of D labelled chips")
    for spec in args.evaluations:
        folder, _, method = spec.partition(":")
        evaluation = Path(folder)
        cutoffs = json.loads((evaluation / "sweep.json").read_text())["config"]["cutoffs"]
        choices = json.loads((evaluation / "choices.json").read_text())["choices"]
        mine, labelled, held = method_choices(evaluation, pops, choices, args.variability, args.k, method)
        total = len(labelled.accuracy)
        for cutoff in cutoffs:
            started = time.perf_counter()
            line = []
            for d in counts:
                if d > total:
                    raise SystemExit(f"--chips {d}: the run has {total} labelled chips")
                rows = []
                for draw in range(args.draws if d < total else 1):
                    chips = np.sort(np.random.default_rng([d, draw]).choice(total, d, replace=False))
                    part = subset(labelled, chips)
                    for key, choice in sorted(mine.items()):
                        _, c, k, seed, _ = key.split("|")
                        if c == cutoff:
                            rows += [(r, draw) for r in score_choices(part, held, cutoff, int(k), int(seed),
                                                                      [choice], config, max_escape=args.budget)]
                written.setdefault(d, []).extend({**r, "setting": args.name, "variability": args.variability,
                                                  "seed": 100 * r["seed"] + draw_of}
                                                 for r, draw_of in rows)
                scored = [r for r, _ in rows]
                line.append(f"D={d}: {np.mean([r['CTE'] for r in scored]):.2f} / {np.mean([r['YL'] for r in scored]):.2f}"
                            f" | {np.mean([r['YL_at_budget'] for r in scored]):.2f}")
            print(f"{args.variability} {cutoff} {method}: " + " || ".join(line)
                  + f" ({time.perf_counter() - started:.0f} s)", flush=True)
    for d, rows in written.items() if args.csv_prefix else ():
        write_table(Path(f"{args.csv_prefix}_D{d}.csv"), FIELDS, rows)


if __name__ == "__main__":
    main()
