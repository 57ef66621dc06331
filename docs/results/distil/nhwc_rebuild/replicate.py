"""How much does a goal cell move between two builds of the NHWC model and its chips?

The earlier build's rows (docs/results/egis_tv, docs/results/distil) against the rebuild's
(this folder), per method, variability and cutoff: the method's mean TA over 3 seeds minus the
dataset-aware test's on the same chips, in each build. Both builds ran the same commands; the
model was retrained (train_nhwc.py, same seed) and the chips drawn again in this session.

    .venv/bin/python docs/results/distil/nhwc_rebuild/replicate.py
"""
import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OLD = {"typical": [HERE.parents[1] / "egis_tv/nhwc_typical_results.csv", HERE.parent / "nhwc_typical_results.csv",
                   HERE.parent / "tv_nhwc_typical_results.csv"],
       "extreme": [HERE.parent / "fidelity_nhwc_extreme_results.csv", HERE.parent / "nhwc_extreme_results.csv",
                   HERE.parent / "tv_nhwc_extreme_results.csv"]}
NEW = {v: [HERE / f"fidelity_nhwc_{v}_results.csv", HERE / f"nhwc_{v}_results.csv", HERE / f"tv_nhwc_{v}_results.csv"]
       for v in ("typical", "extreme")}
METHODS = ("egis", "egis-tv", "uniform", "egis-distil", "egis-tv-distil")


def mean_ta(paths: list[Path]) -> dict[tuple[str, str], float]:
    ta: dict[tuple[str, str], list[float]] = {}
    for path in paths:
        for row in csv.DictReader(open(path)):
            if row["k"] == "4":
                ta.setdefault((row["method"], row["cutoff"]), []).append(float(row["TA"]))
    return {key: float(np.mean(values)) for key, values in ta.items()}


def main() -> None:
    moves, da_moves, flips = [], [], 0
    print("variability cutoff method: (TA - dataset-aware) earlier build -> rebuild")
    for v in ("typical", "extreme"):
        old, new = mean_ta(OLD[v]), mean_ta(NEW[v])
        for cutoff in ("A50", "A60", "A70"):
            da_moves.append(new[("da-classifier", cutoff)] - old[("da-classifier", cutoff)])
            print(f"{v} {cutoff} dataset-aware TA: {old[('da-classifier', cutoff)]:.2f} -> "
                  f"{new[('da-classifier', cutoff)]:.2f}")
            for m in METHODS:
                a = old[(m, cutoff)] - old[("da-classifier", cutoff)]
                b = new[(m, cutoff)] - new[("da-classifier", cutoff)]
                moves.append(b - a)
                flips += (a >= -1) != (b >= -1)
                print(f"{v} {cutoff} {m}: {a:+.2f} -> {b:+.2f}")
    moves = np.array(moves)
    print(f"rebuild minus earlier build of (TA - dataset-aware), {len(moves)} method-cells: mean {moves.mean():+.2f}, "
          f"sd {moves.std(ddof=1):.2f}; sd / sqrt(2), one build's spread of a cell: {moves.std(ddof=1) / np.sqrt(2):.2f}")
    print(f"'within 1 point of the dataset-aware test' holds in one build and not the other: {flips} of {len(moves)}")
    print(f"the dataset-aware test's TA, rebuild minus earlier build: mean {np.mean(da_moves):+.2f}, "
          f"sd {np.std(da_moves, ddof=1):.2f} (6 cells)")


if __name__ == "__main__":
    main()
