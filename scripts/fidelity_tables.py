"""Markdown tables (TA ± std / CTE / YL per method and cutoff) from an evaluation's summary.json,
and (with --paired) whether annealing beats random K of the same images by more than the spread
over seeds: per cutoff, the seed-by-seed TA difference of each annealing method against
``egis-random``, from the evaluation's results.csv.

    python scripts/fidelity_tables.py runs/eval18_digits/summary.json A50,A70
    python scripts/fidelity_tables.py runs/fidelity_smoothed/eval_typical/summary.json A50,A60,A70 --paired
    # methods evaluated separately on the same chips (e.g. egis-tv), in one table (--paired and
    # egis-select's choices still read the first evaluation's results.csv only):
    python scripts/fidelity_tables.py runs/seed_vgg16_f3/eval_typical/summary.json A50,A60,A70 \
        --also runs/seed_vgg16_f3_tv/eval_tv_typical/summary.json
"""

from __future__ import annotations

import json
import sys

from egis.methods import METHOD_TITLES
from egis.sweep import headline_of


def merged_summary(paths: list[str], only: list[set[str] | None] | None = None) -> list[dict]:
    """The entries of several evaluations' summary.json files (of ``only[i]``'s methods alone
    where given); a (variability, cutoff, K, method) measured in two of them is refused rather
    than shown twice."""
    entries, seen = [], {}
    for path, methods in zip(paths, only or [None] * len(paths)):
        held = json.load(open(path))
        absent = sorted((methods or set()) - {e["method"] for e in held})
        if absent:
            raise SystemExit(f"{path} holds no {absent[0]} rows")
        for e in held:
            if methods is not None and e["method"] not in methods:
                continue
            key = (e["variability"], e["cutoff"], e["k"], e["method"])
            if key in seen:
                raise SystemExit(f"{key} is in both {seen[key]} and {path}")
            seen[key] = path
            entries.append(e)
    return entries


def tables(path: str | list[str], cutoffs: list[str]) -> str:
    summary = merged_summary([path] if isinstance(path, str) else path)
    out = []
    for variability in sorted({e["variability"] for e in summary}, key=lambda v: (v != "typical", v)):
        rows = [e for e in summary if e["variability"] == variability]
        k = headline_of(sorted({e["k"] for e in rows}))
        out += [f"\n{variability} variation, K = {k} (TA ± std over seeds / CTE / YL, % of evaluation chips):\n",
                "| method | " + " | ".join(cutoffs) + " |", "|---|" + "---|" * len(cutoffs)]
        for method, title in METHOD_TITLES.items():
            cells = []
            for cutoff in cutoffs:
                e = next((e for e in rows if e["method"] == method and e["cutoff"] == cutoff and e["k"] == k), None)
                cells.append("n/a" if e is None else f"{e['TA']:.1f} ± {e['TA_std']:.1f} / {e['CTE']:.1f} / {e['YL']:.1f}")
            if any(cell != "n/a" for cell in cells):
                out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def paired(results_csv: str, cutoffs: list[str], reference: str = "egis-random") -> str:
    """TA(method) - TA(reference), mean ± std over the seeds, per cutoff (same chips, same seeds)."""
    import csv
    import statistics

    rows = list(csv.DictReader(open(results_csv)))
    ta = {(r["variability"], r["cutoff"], r["k"], r["seed"], r["method"]): float(r["TA"]) for r in rows}
    from egis.methods import get_method

    same_images = get_method(reference).stimulus   # only methods choosing among the same images
    methods = [m for m in METHOD_TITLES if m != reference and m in {r["method"] for r in rows}
               and get_method(m).stimulus == same_images]
    out = [f"\nTA minus {reference} (same images, chips and seeds; mean ± std over seeds, points):\n",
           "| variability | method | " + " | ".join(cutoffs) + " |", "|---|---|" + "---|" * len(cutoffs)]
    for variability in sorted({r["variability"] for r in rows}):
        for method in methods:
            cells = []
            for cutoff in cutoffs:
                diffs = [value - ta[(v, c, k, s, reference)] for (v, c, k, s, m), value in ta.items()
                         if (v, c, m) == (variability, cutoff, method) and (v, c, k, s, reference) in ta]
                cells.append("n/a" if not diffs else
                             f"{statistics.mean(diffs):+.1f} ± {statistics.pstdev(diffs):.1f}")
            out.append(f"| {variability} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def choices(results_csv: str, cutoffs: list[str]) -> str:
    """Which candidate egis-select chose, per variability and cutoff (over seeds)."""
    import csv
    from collections import Counter

    rows = [r for r in csv.DictReader(open(results_csv)) if r["method"] == "egis-select"]
    if not rows:
        return ""
    out = ["\negis-select's choices (candidate: seeds):\n", "| variability | " + " | ".join(cutoffs) + " |",
           "|---|" + "---|" * len(cutoffs)]
    for variability in sorted({r["variability"] for r in rows}):
        cells = []
        for cutoff in cutoffs:
            count = Counter(r.get("choice", "") for r in rows if (r["variability"], r["cutoff"]) == (variability, cutoff))
            cells.append(", ".join(f"{name}: {n}" for name, n in sorted(count.items())) or "n/a")
        out.append(f"| {variability} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    cut = sys.argv[2].split(",")
    if sys.argv[-1] == "--also":
        raise SystemExit("--also needs a summary.json")
    also = [sys.argv[i + 1] for i, arg in enumerate(sys.argv) if arg == "--also"]
    print(tables([sys.argv[1], *also], cut))
    results = str(__import__("pathlib").Path(sys.argv[1]).with_name("results.csv"))
    if "--paired" in sys.argv[3:]:
        print(paired(results, cut))
    print(choices(results, cut))
