"""Annealing against chance, pooled over runs and cutoffs (issue #18).

Reads CSVs written by ``bench/bench_chance_level.py --csv`` (one run, one stimulus set each)
and prints, per method, the mean of (annealed TA - chance TA) over every (run, cutoff, seed),
its standard error, and in how many (run, cutoff) cells the mean over seeds exceeds the
seeds' own spread (population sd over the 3 seeds): the issue's "beats random K by more than
the seeds' spread". The SE treats the seeds as independent, which they are not quite (a
cell's seeds share its evaluation chips and chance mean), so read it as a rough scale; the
``egis-random`` row (random K-sets, no selection at all) is the control that shows how often
luck alone passes these tests.

    python scripts/chance_pooled.py docs/results/*seed_f3*/chance_level.csv \
        docs/results/stimulus_information/chance_*.csv
    # the chance levels themselves (TA, CTE, YL; CSVs written before those columns show "-"),
    # one row per CSV and cutoff, with the budget the sets were scored under
    python scripts/chance_pooled.py --levels docs/results/egis_tv/chance_budget/*.csv
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

import numpy as np


def main(paths: list[str]) -> None:
    deltas: dict[str, list[float]] = defaultdict(list)
    cells: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for path in paths:
        with open(path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["method"] != "chance"]
        per_cell: dict[tuple[str, str], list[float]] = defaultdict(list)
        for row in rows:
            per_cell[(row["method"], row["cutoff"])].append(float(row["minus_chance"]))
        for (method, _), values in per_cell.items():
            deltas[method] += values
            cells[method].append((float(np.mean(values)), float(np.std(values))))
    print("method | (run, cutoff, seed) | mean minus chance | SE | cells beyond the seeds' spread")
    for method in sorted(deltas):
        values = np.asarray(deltas[method])
        beyond = sum(1 for mean, sd in cells[method] if mean > sd)   # sd >= 0, so mean > 0 too
        print(f"{method} | {len(values)} | {values.mean():+.2f} | {values.std(ddof=1) / np.sqrt(len(values)):.2f} | "
              f"{beyond} of {len(cells[method])}")


def levels(paths: list[str]) -> None:
    """The chance rows: mean TA (sd over sets), mean CTE and YL, and the escape budget."""
    def cell(row: dict[str, str], name: str) -> str:
        return f"{float(row[name]):.2f}" if row.get(name) else "-"

    print("file | cutoff | chance TA (sd over sets) | CTE | YL | escape budget")
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row["method"] == "chance":
                    print(f"{path.rsplit('/', 1)[-1]} | {row['cutoff']} | {cell(row, 'TA')} ({cell(row, 'sd_over_sets')}) "
                          f"| {cell(row, 'CTE')} | {cell(row, 'YL')} | {row.get('max_escape') or '-'}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if sys.argv[1] == "--levels":
        levels(sys.argv[2:])
    else:
        main(sys.argv[1:])
