"""Would choosing the pool per cell with the labelled chips help? (2026-12-06, exploratory)

egis-tv-distil misses the goal's TA half by more than a point only at A50 on the raw-pixel
models, where egis-distil (the seed's images) does better. This picks, per (cell, seed), the
distilled method whose annealing reward (agreement with its teacher over the unlabelled chips,
known before any evaluation chip) is higher, and prints the picked TA against each method's,
from the committed results CSVs of docs/results/distil. Nothing is simulated.

    python docs/results/distil/pool_choice.py
"""
import csv
import glob
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["k"] == "4"]


settings = [(Path(f).name[3:-len("_results.csv")], rows(Path(f)) + rows(HERE / Path(f).name[3:]))
            for f in sorted(glob.glob(str(HERE / "tv_*_results.csv")))]
settings += [(f"digits_{v}", rows(HERE / f"digits_{v}_results.csv")) for v in ("typical", "extreme")]
gains = []
for name, rs in settings:
    for cutoff in sorted({r["cutoff"] for r in rs}):
        by: dict[str, dict[str, tuple[float, float]]] = {}
        for r in rs:
            if r["cutoff"] == cutoff and r["method"] in ("egis-distil", "egis-tv-distil"):
                by.setdefault(r["method"], {})[r["seed"]] = (float(r["reward"]), float(r["TA"]))
        seed_pool, prior = by["egis-distil"], by["egis-tv-distil"]
        # the higher reward's TA; a tie keeps egis-tv-distil (never the TA itself as a tie-break)
        picked = [(seed_pool[s] if seed_pool[s][0] > prior[s][0] else prior[s])[1] for s in sorted(seed_pool)]
        ta = {m: np.mean([v[1] for v in by[m].values()]) for m in by}
        gains.append(np.mean(picked) - ta["egis-tv-distil"])
        print(f"{name} {cutoff}: egis-distil {ta['egis-distil']:.2f} | egis-tv-distil {ta['egis-tv-distil']:.2f} "
              f"| picked by reward {np.mean(picked):.2f}")
gains = np.array(gains)
print(f"{len(gains)} cells: picked minus egis-tv-distil {gains.mean():+.2f} ± {gains.std(ddof=1) / np.sqrt(len(gains)):.2f} "
      f"(better in {int(np.sum(gains > 1e-9))}, worse in {int(np.sum(gains < -1e-9))})")
