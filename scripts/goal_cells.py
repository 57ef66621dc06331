"""Issue #18's goal, cell by cell, computed from evaluations instead of copied by hand.

For one data-free method at K = 4, per setting and cutoff: TA minus the dataset-aware
classifier's, TA minus the best noise baseline's (uniform, Gaussian or untrained generator,
whichever is highest among those the run measured, named in each line), and with the 1% budget the method's CTE / YL against the
dataset-aware test's. Then the counts the goal is read by:
- TA within 1 point of the dataset-aware test, and at least 2 points above the best noise;
- with the budget, CTE <= 1% at a yield loss no worse than the dataset-aware test's.

A setting is ``NAME=EVAL[+EVAL...]`` with an optional ``@BUDGET[+BUDGET...]``: evaluation
folders (their summary.json) whose rows are merged, e.g. the run's own evaluation plus a
separate ``--methods egis-tv`` one on the same chips. ``EVAL:METHOD,METHOD`` takes only those
methods' rows from a folder (e.g. the baselines of one evaluation and EGIS from another).

    python scripts/goal_cells.py --method egis-tv \\
        "vgg16 typical=runs/seed_vgg16_f3/eval_typical+runs/seed_vgg16_f3_tv/eval_tv_typical@runs/seed_vgg16_f3/eval_typical_budget1+runs/seed_vgg16_f3_tv/eval_tv_typical_budget1"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from egis.sweep import scored_chips  # noqa: E402
from scripts.fidelity_tables import merged_summary  # noqa: E402

NOISE = ("uniform", "gaussian", "untrained")
REFERENCE = "da-classifier"
K = 4
BUDGET = 0.01
TOLERANCE = 1e-6   # summary figures are means of 3 seeds: a figure on a bound counts as on it


def cells(folders: str, budget: float | None) -> dict[tuple[str, str, str], dict]:
    """(variability, cutoff, method) -> the K = 4 summary entry, over the merged folders.

    The folders must hold the same model and chips (sweep.json's provenance), and have been
    scored under ``budget`` (None: no budget) with no confidence level."""
    entries, only, first = [], [], None
    for part in folders.split("+"):
        folder, _, methods = part.partition(":")
        only.append({m for m in methods.split(",") if m} or None)
        sweep = json.loads((Path(folder) / "sweep.json").read_text())
        # the chips the rows are scored on; unlabelled chips (egis-distil) are an input, not the chips
        same = {"model_sha256": sweep["provenance"]["model_sha256"],
                "populations": scored_chips(sweep["provenance"]["populations"])}
        if first is not None and same != first:
            raise SystemExit(f"{folder} holds other chips or another model than {folders.split('+')[0].partition(':')[0]}")
        first = same
        config = sweep["config"]
        if config.get("max_escape") != budget or config.get("escape_confidence") is not None:
            raise SystemExit(f"{folder} was scored with max_escape {config.get('max_escape')}, escape_confidence "
                             f"{config.get('escape_confidence')}; expected {budget} and None")
        entries.append(str(Path(folder) / "summary.json"))
    return {(e["variability"], e["cutoff"], e["method"]): e for e in merged_summary(entries, only) if e["k"] == K}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", metavar="NAME=EVAL[+EVAL][@BUDGET[+BUDGET]]")
    parser.add_argument("--method", default="egis")
    args = parser.parse_args()
    counts = {"ta_within_1": 0, "noise_plus_2": 0, "both": 0, "ta_cells": 0, "budget_met": 0,
              "budget_cte": 0, "budget_cells": 0, "real_plus_2": 0, "skipped": 0}
    print(f"method {args.method}, K = {K}: TA - dataset-aware | TA - best noise (which) | budget CTE / YL "
          f"against dataset-aware CTE / YL")
    for setting in args.settings:
        name, _, spec = setting.partition("=")
        plain, _, budget = spec.partition("@")
        rows = cells(plain, None)
        budget_rows = cells(budget, BUDGET) if budget else {}
        for variability, cutoff in sorted({(v, c) for v, c, m in rows if m == args.method}):
            own = rows[(variability, cutoff, args.method)]
            real = rows.get((variability, cutoff, REFERENCE))
            noise = [rows[(variability, cutoff, n)] for n in NOISE if (variability, cutoff, n) in rows]
            if real is None or not noise:
                print(f"{name} {variability} {cutoff}: not counted (no dataset-aware or no noise row)")
                counts["skipped"] += 1
                continue
            best = max(noise, key=lambda e: e["TA"])
            to_real, to_noise = own["TA"] - real["TA"], own["TA"] - best["TA"]
            within, above = to_real >= -1.0 - TOLERANCE, to_noise >= 2.0 - TOLERANCE
            counts["ta_cells"] += 1
            counts["ta_within_1"] += within
            counts["noise_plus_2"] += above
            counts["both"] += within and above
            counts["real_plus_2"] += real["TA"] - best["TA"] >= 2.0 - TOLERANCE
            noise_names = "/".join(e["method"] for e in noise)
            line = (f"{name} {variability} {cutoff}: {to_real:+.2f} | {to_noise:+.2f} ({best['method']} of "
                    f"{noise_names})")
            b_own = budget_rows.get((variability, cutoff, args.method))
            b_real = budget_rows.get((variability, cutoff, REFERENCE))
            if b_own is not None and b_real is not None:
                counts["budget_cells"] += 1
                held = b_own["CTE"] <= 100 * BUDGET + TOLERANCE
                counts["budget_cte"] += held
                met = held and b_own["YL"] <= b_real["YL"] + TOLERANCE
                counts["budget_met"] += met
                line += (f" | {b_own['CTE']:.2f} / {b_own['YL']:.2f} against {b_real['CTE']:.2f} / "
                         f"{b_real['YL']:.2f}{' (met)' if met else ''}")
            print(line)
    c = counts
    print(f"TA within 1 point of the dataset-aware test: {c['ta_within_1']} of {c['ta_cells']}; at least 2 above "
          f"the best noise: {c['noise_plus_2']} of {c['ta_cells']}; both: {c['both']} of {c['ta_cells']} "
          f"(the dataset-aware test itself is 2 above noise in {c['real_plus_2']})"
          + (f"; {c['skipped']} cells not counted" if c["skipped"] else ""))
    if c["budget_cells"]:
        print(f"1% budget: CTE <= 1% in {c['budget_cte']} of {c['budget_cells']}; also at a yield loss no worse "
              f"than the dataset-aware test's: {c['budget_met']} of {c['budget_cells']}")


if __name__ == "__main__":
    main()
