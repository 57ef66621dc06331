"""Print the markdown tables of docs/results.md from docs/results/<model>/summary.json.

Usage: python scripts/results_tables.py digits cifar10_vgg16 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLES = {"egis": "EGIS", "egis-random": "EGIS, random K", "gaussian": "Gaussian noise",
          "uniform": "uniform noise", "untrained": "untrained generator",
          "da-regressor": "dataset-aware [6] (regressor)", "da-classifier": "dataset-aware (classifier)"}


def main() -> None:
    for model in sys.argv[1:]:
        path = ROOT / "docs/results" / model / "summary.json"
        if not path.exists():
            print(f"\n(no results for {model})")
            continue
        summary = json.loads(path.read_text())
        cutoffs = sorted({e["cutoff"] for e in summary})
        for variability in sorted({e["variability"] for e in summary}, reverse=True):
            print(f"\n**{model}, {variability} variation, K = 4** (TA ± std over seeds / CTE / YL, % of evaluation chips)\n")
            print("| method | " + " | ".join(cutoffs) + " |")
            print("|---|" + "---|" * len(cutoffs))
            for method in TITLES:
                cells = []
                for cutoff in cutoffs:
                    e = next((e for e in summary if e["variability"] == variability and e["cutoff"] == cutoff
                              and e["k"] == 4 and e["method"] == method), None)
                    cells.append("" if e is None else
                                 f"{e['TA']:.1f} ± {e['TA_std']:.1f} / {e['CTE']:.1f} / {e['YL']:.1f}")
                if any(cells):
                    print(f"| {TITLES[method]} | " + " | ".join(cells) + " |")
            ks = sorted({e["k"] for e in summary if e["variability"] == variability and e["method"] == "egis"})
            if len(ks) > 1:
                print(f"\n**{model}, {variability}: EGIS TA ± std per K**\n")
                print("| cutoff | " + " | ".join(f"K={k}" for k in ks) + " |")
                print("|---|" + "---|" * len(ks))
                for cutoff in cutoffs:
                    row = []
                    for k in ks:
                        e = next((e for e in summary if e["variability"] == variability and e["cutoff"] == cutoff
                                  and e["k"] == k and e["method"] == "egis"), None)
                        row.append("" if e is None else f"{e['TA']:.1f} ± {e['TA_std']:.1f} ({e['seeds']})")
                    print(f"| {cutoff} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
