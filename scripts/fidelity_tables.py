"""Markdown tables (TA ± std / CTE / YL per method and cutoff) from an evaluation's summary.json.

    python scripts/fidelity_tables.py runs/eval18_digits/summary.json A50,A70
"""

from __future__ import annotations

import json
import sys

from egis.methods import METHOD_TITLES


def tables(path: str, cutoffs: list[str]) -> str:
    summary = json.load(open(path))
    out = []
    for variability in sorted({e["variability"] for e in summary}, key=lambda v: (v != "typical", v)):
        rows = [e for e in summary if e["variability"] == variability]
        k = sorted({e["k"] for e in rows})
        out += [f"\n{variability} variation, K = {k[0]} (TA ± std over seeds / CTE / YL, % of evaluation chips):\n",
                "| method | " + " | ".join(cutoffs) + " |", "|---|" + "---|" * len(cutoffs)]
        for method, title in METHOD_TITLES.items():
            cells = []
            for cutoff in cutoffs:
                e = next((e for e in rows if e["method"] == method and e["cutoff"] == cutoff and e["k"] == k[0]), None)
                cells.append("n/a" if e is None else f"{e['TA']:.1f} ± {e['TA_std']:.1f} / {e['CTE']:.1f} / {e['YL']:.1f}")
            if any(cell != "n/a" for cell in cells):
                out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    print(tables(sys.argv[1], sys.argv[2].split(",")))
