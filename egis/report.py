"""report.md (and a self-contained HTML rendering) of an evaluation run.

The markdown is written by us, in a small subset (headings, paragraphs, pipe tables, images,
code blocks), so the HTML rendering needs no extra dependency.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Sequence

from egis.evaluate import METRICS
from toolkit.io import atomic_open

SEED_TABLE_II = {  # the seed paper's Table II, VGG16 CIFAR-10, K=4, TA %
    "typical": {"EGIS": (89.9, 92.1, 91.8), "[6]": (87.7, 93.3, 93.9)},
    "extreme": {"EGIS": (100.0, 100.0, 100.0), "[6]": (100.0, 100.0, 100.0)},
}
METHOD_TITLES = {"egis": "EGIS", "egis-random": "EGIS, random K (no annealing)",
                 "gaussian": "Gaussian noise + annealing", "uniform": "uniform noise + annealing",
                 "untrained": "untrained generator + annealing",
                 "da-regressor": "dataset-aware [6] (regressor)", "da-classifier": "dataset-aware (classifier)"}


def fmt(entry: dict[str, Any], metric: str) -> str:
    return f"{entry[metric]:.1f} ± {entry[metric + '_std']:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_table(summary: list[dict[str, Any]], variability: str, k: int, cutoffs: Sequence[str],
                   methods: Sequence[str]) -> str:
    """Table II analogue: TA / CTE / BTE / YL per method and cutoff at one K."""
    index = {(e["variability"], e["cutoff"], e["k"], e["method"]): e for e in summary}
    rows = []
    for method in methods:
        cells = []
        for cutoff in cutoffs:
            entry = index.get((variability, cutoff, k, method))
            cells.append("n/a" if entry is None else
                         f"{fmt(entry, 'TA')} / {entry['CTE']:.1f} / {entry['BTE']:.1f} / {entry['YL']:.1f}")
        if any(cell != "n/a" for cell in cells):
            rows.append([METHOD_TITLES.get(method, method), *cells])
    return table(["method", *[f"{c}: TA / CTE / BTE / YL" for c in cutoffs]], rows)


def k_table(summary: list[dict[str, Any]], variability: str, method: str = "egis") -> str:
    rows = [[e["cutoff"], e["k"], e["seeds"], *[fmt(e, m) for m in METRICS]]
            for e in summary if e["variability"] == variability and e["method"] == method]
    return table(["cutoff", "K", "seeds", *METRICS], rows)


def markdown_to_html(markdown: str, title: str) -> str:
    """Render our own markdown subset to one HTML page (images stay relative links)."""
    out, in_table, in_code = [], False, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line))
            continue
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if all(re.fullmatch(r"-+", c) for c in cells):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        image = re.fullmatch(r"!\[(.*)\]\((.*)\)", line.strip())
        heading = re.match(r"(#+) (.*)", line)
        if image:
            out.append(f'<p><img alt="{html.escape(image.group(1))}" src="{html.escape(image.group(2))}"></p>')
        elif heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif line.strip():
            text = html.escape(line)
            text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
            text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
            out.append(f"<p>{text}</p>")
    if in_table:
        out.append("</table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;} table{border-collapse:collapse;"
             "margin:1em 0;} td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;} img{max-width:100%;}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def write_report(out_dir: Path, markdown: str, title: str) -> None:
    with atomic_open(out_dir / "report.md") as handle:
        handle.write(markdown)
    with atomic_open(out_dir / "report.html") as handle:
        handle.write(markdown_to_html(markdown, title))
