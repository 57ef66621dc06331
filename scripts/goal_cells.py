"""Issue #18's goal, cell by cell, computed from evaluations instead of copied by hand.

For one data-free method at K = 4, per setting and cutoff: TA minus the dataset-aware
classifier's, TA minus the best noise baseline's (uniform, Gaussian or untrained generator,
whichever is highest in that cell), and with the 1% budget the method's CTE / YL against the
dataset-aware test's. Then the counts the goal is read by:
- TA within 1 point of the dataset-aware test, and at least 2 points above the best noise;
- with the budget, CTE <= 1% at a yield loss no worse than the dataset-aware test's.

A setting is ``NAME=EVAL[+EVAL...]`` with an optional ``@BUDGET[+BUDGET...]``: evaluation
folders (their summary.json) whose rows are merged, e.g. the run's own evaluation plus a
separate ``--methods egis-tv`` one on the same chips.

    python scripts/goal_cells.py --method egis-tv \\
        "vgg16 typical=runs/seed_vgg16_f3/eval_typical+runs/seed_vgg16_f3_tv/eval_tv_typical@runs/seed_vgg16_f3/eval_typical_budget1+runs/seed_vgg16_f3_tv/eval_tv_typical_budget1"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

sys_path = Path(__file__).resolve().parents[1]
import sys  # noqa: E402

sys.path.insert(0, str(sys_path))
from scripts.fidelity_tables import merged_summary  # noqa: E402

NOISE = ("uniform", "gaussian", "untrained")
REFERENCE = "da-classifier"
K = 4


def cells(folders: str) -> dict[tuple[str, str, str], dict]:
    """(variability, cutoff, method) -> the K = 4 summary entry, over the merged folders."""
    entries = merged_summary([str(Path(f) / "summary.json") for f in folders.split("+")])
    return {(e["variability"], e["cutoff"], e["method"]): e for e in entries if e["k"] == K}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", metavar="NAME=EVAL[+EVAL][@BUDGET[+BUDGET]]")
    parser.add_argument("--method", default="egis")
    args = parser.parse_args()
    counts = {"ta_within_1": 0, "noise_plus_2": 0, "both": 0, "ta_cells": 0, "budget_met": 0,
              "budget_cte": 0, "budget_cells": 0, "real_plus_2": 0}
    print(f"method {args.method}, K = {K}: TA - dataset-aware | TA - best noise (which) | budget CTE / YL "
          f"against dataset-aware CTE / YL")
    for setting in args.settings:
        name, _, spec = setting.partition("=")
        plain, _, budget = spec.partition("@")
        rows = cells(plain)
        budget_rows = cells(budget) if budget else {}
        for variability, cutoff in sorted({(v, c) for v, c, m in rows if m == args.method}):
            own = rows[(variability, cutoff, args.method)]
            real = rows.get((variability, cutoff, REFERENCE))
            noise = [rows[(variability, cutoff, n)] for n in NOISE if (variability, cutoff, n) in rows]
            if real is None or not noise:
                continue
            best = max(noise, key=lambda e: e["TA"])
            to_real, to_noise = own["TA"] - real["TA"], own["TA"] - best["TA"]
            counts["ta_cells"] += 1
            counts["ta_within_1"] += to_real >= -1.0
            counts["noise_plus_2"] += to_noise >= 2.0
            counts["both"] += to_real >= -1.0 and to_noise >= 2.0
            counts["real_plus_2"] += real["TA"] - best["TA"] >= 2.0
            line = f"{name} {variability} {cutoff}: {to_real:+.2f} | {to_noise:+.2f} ({best['method']})"
            b_own = budget_rows.get((variability, cutoff, args.method))
            b_real = budget_rows.get((variability, cutoff, REFERENCE))
            if b_own is not None and b_real is not None:
                counts["budget_cells"] += 1
                counts["budget_cte"] += b_own["CTE"] <= 1.0
                met = b_own["CTE"] <= 1.0 and b_own["YL"] <= b_real["YL"]
                counts["budget_met"] += met
                line += (f" | {b_own['CTE']:.1f} / {b_own['YL']:.1f} against {b_real['CTE']:.1f} / "
                         f"{b_real['YL']:.1f}{' (met)' if met else ''}")
            print(line)
    c = counts
    print(f"TA within 1 point of the dataset-aware test: {c['ta_within_1']} of {c['ta_cells']}; at least 2 above "
          f"the best noise: {c['noise_plus_2']} of {c['ta_cells']}; both: {c['both']} of {c['ta_cells']} "
          f"(the dataset-aware test itself is 2 above noise in {c['real_plus_2']})")
    if c["budget_cells"]:
        print(f"1% budget: CTE <= 1% in {c['budget_cte']} of {c['budget_cells']}; also at a yield loss no worse "
              f"than the dataset-aware test's: {c['budget_met']} of {c['budget_cells']}")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
