"""report.md (and a self-contained HTML rendering) of an evaluation run.

The markdown is written by us, in a small subset (headings, paragraphs, pipe tables, images,
code blocks), so the HTML rendering needs no extra dependency.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from egis.methods import METHOD_TITLES
from egis.metrics import METRICS
from egis.toolkit.io import atomic_open

if TYPE_CHECKING:
    import numpy as np

    from egis.compaction import CompactionResult
    from egis.sweep import SweepConfig
    from egis.toolkit.model import LoadedModel

SEED_TABLE_II = {  # the seed paper's Table II, VGG16 CIFAR-10, K=4, TA %
    "typical": {"EGIS": (89.9, 92.1, 91.8), "[6]": (87.7, 93.3, 93.9)},
    "extreme": {"EGIS": (100.0, 100.0, 100.0), "[6]": (100.0, 100.0, 100.0)},
}
def fmt(entry: dict[str, Any], metric: str) -> str:
    return f"{entry[metric]:.1f} ± {entry[metric + '_std']:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def method_rows(summary: list[dict[str, Any]], variability: str, k: int, cutoffs: Sequence[str],
                methods: Sequence[str], cell: Callable[[dict[str, Any]], str | None]) -> list[list[str]]:
    """One row per method that has an entry: its title, then ``cell(entry)`` per cutoff ("n/a"
    where the entry is missing or ``cell`` gives None)."""
    index = {(e["variability"], e["cutoff"], e["k"], e["method"]): e for e in summary}
    rows = []
    for method in methods:
        cells = []
        for cutoff in cutoffs:
            entry = index.get((variability, cutoff, k, method))
            cells.append((None if entry is None else cell(entry)) or "n/a")
        if any(c != "n/a" for c in cells):
            rows.append([METHOD_TITLES.get(method, method), *cells])
    return rows


def headline_table(summary: list[dict[str, Any]], variability: str, k: int, cutoffs: Sequence[str],
                   methods: Sequence[str]) -> str:
    """Table II analogue: TA / CTE / BTE / YL per method and cutoff at one K."""
    rows = method_rows(summary, variability, k, cutoffs, methods, lambda entry:
                       f"{fmt(entry, 'TA')} / {entry['CTE']:.1f} / {entry['BTE']:.1f} / {entry['YL']:.1f}")
    return table(["method", *[f"{c}: TA / CTE / BTE / YL" for c in cutoffs]], rows)


def budget_ranking_table(summary: list[dict[str, Any]], variability: str, k: int, cutoffs: Sequence[str],
                         methods: Sequence[str]) -> str:
    """Under an escape budget: per method and cutoff, the yield loss its detector would need to
    hold the budget's critical escapes on the evaluation chips with a threshold picked in
    hindsight (egis.metrics.least_yield_loss: the detectors' ranking, compared fairly), next
    to the CTE / YL the threshold chosen on the labelled chips gave."""
    rows = method_rows(summary, variability, k, cutoffs, methods, lambda entry: None if "YL_at_budget" not in entry
                       else f"{entry['YL_at_budget']:.2f} ± {entry['YL_at_budget_std']:.2f} "
                            f"({entry['CTE']:.1f} / {entry['YL']:.1f})")
    return table(["method", *[f"{c}: YL at the budget (chosen CTE / YL)" for c in cutoffs]], rows)


def k_table(summary: list[dict[str, Any]], variability: str, method: str = "egis") -> str:
    rows = [[e["cutoff"], e["k"], e["seeds"], *[fmt(e, m) for m in METRICS]]
            for e in summary if e["variability"] == variability and e["method"] == method]
    return table(["cutoff", "K", "seeds", *METRICS], rows)


def budget_section(summary: list[dict[str, Any]], variability: str, config: SweepConfig) -> list[str]:
    """The budget's ranking table, under an escape budget (nothing without one)."""
    from egis.sweep import headline_k

    if config.max_escape is None:
        return []
    level = ("" if config.escape_confidence is None else
             f", thresholds held at {config.escape_confidence:.0%} confidence")
    return [f"### At the {config.max_escape:.2%} escape budget (K = {headline_k(config)}{level}): "
            f"the detectors' ranking", "",
            "The yield loss each detector needs to keep critical escapes within the budget on the evaluation "
            "chips, its threshold picked in hindsight on them (mean ± std over seeds): how well it ranks "
            "chips near the cutoff, free of how well the threshold was chosen from the labelled chips. In "
            "brackets, the CTE / YL the chosen threshold gave.", "",
            budget_ranking_table(summary, variability, headline_k(config), config.cutoffs, config.methods), ""]


def unlabelled_note(base: Path, methods: Sequence[str]) -> list[str]:
    """Where egis-distil's unlabelled chips came from (nothing when no method uses them)."""
    import json

    from egis.methods import needs_unlabelled
    from egis.sweep import UNLABELLED
    from egis.toolkit.population import PopulationSpec

    if not needs_unlabelled(methods) or not (base / UNLABELLED).exists():
        return []
    spec = PopulationSpec.load(base / UNLABELLED)
    return [f"Unlabelled chips (egis-distil's teacher labels them): {spec.count} chips of `{spec.plugin}` "
            f"{json.dumps(spec.params)}, seed {spec.seed}.", ""]


def chance_section(path: Path, variability: str, cutoffs: Sequence[str]) -> list[str]:
    """The report's lines on the chance level (``egis evaluate --chance``, chance.csv): each
    stimulus set's level and each method's TA minus its set's level, over the seeds."""
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as handle:
        entries = [r for r in csv.DictReader(handle) if r["variability"] == variability]
    if not entries:
        return []
    k = entries[0]["k"]
    for r in entries:                      # chance.csv files written before egis-distil: the seed's detector
        r["detector"] = r.get("detector") or "classifier"
    levels = sorted({(r["stimulus"], r["detector"]) for r in entries if r["method"] == "chance"})
    methods = sorted({r["method"] for r in entries if r["method"] != "chance"})
    body = []
    for name, kind in levels:
        of_level = [r for r in entries if r["method"] == "chance" and r["stimulus"] == name and r["detector"] == kind]
        cells = []
        for cutoff in cutoffs:
            level = next((r for r in of_level if r["cutoff"] == cutoff), None)
            cells.append("-" if level is None else f"{float(level['TA']):.2f} ± {float(level['TA_se']):.2f} / "
                         f"{float(level['CTE']):.1f} / {float(level['YL']):.1f}")
        detector = "" if kind == "classifier" else f", {kind} detector"
        body.append([f"chance: {name}{detector} ({of_level[0]['sets']} random sets)", *cells])
    for method in methods:
        cells = []
        for cutoff in cutoffs:
            placed = [r for r in entries if r["method"] == method and r["cutoff"] == cutoff]
            if not placed:
                cells.append("-")
                continue
            minus = np.array([float(r["minus_chance"]) for r in placed])
            cells.append(f"{minus.mean():+.2f} ± {minus.std():.2f} (percentiles "
                         + " ".join(f"{float(r['percentile']):.0f}" for r in placed) + ")")
        body.append([method, *cells])
    return [f"### Against chance (K = {k})", "",
            "Random K-sets of the same images, scored on the evaluation chips as a choice is. Chance rows: mean "
            "TA ± its standard error / CTE / YL; method rows: TA minus its set's chance level, mean ± sd over "
            "the seeds, and each seed's percentile among the random sets.", "",
            table(["set / method", *cutoffs], body), ""]


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


def adaptive_note(which: str, meta: dict[str, Any]) -> str:
    """One sentence on how a population's accuracies were measured when adaptive labelling
    made them (``egis label --adaptive``), so estimates are never read as exact accuracies."""
    record = meta.get("adaptive") if isinstance(meta, dict) else None
    if not isinstance(record, dict):
        return ""
    points = ", ".join(f"{float(t):.4f}" for t in sorted(record.get("decided_at", {}).values()))
    margin = float(record.get("margin", 0.0))
    return (f"{which} chips: adaptive labelling, {record.get('exact_chips', '?')} of {meta.get('count', '?')} "
            f"chips measured on all {meta.get('images', '?')} images, the rest on the first "
            f"{record.get('first', '?')} and placed against {points}"
            + (f" and each minus {margin:g}" if margin else "")
            + f" at confidence {record.get('confidence', '?')} per chip and point "
            f"({100 * float(record.get('images_saved', 0)):.1f}% of chip-images saved). Metrics that only compare "
            "accuracies with those points equal the exhaustive ones up to that confidence; the accuracy "
            "statistics above, the histogram and the regressor method (da-regressor) use the estimates.")


def build_report(model: LoadedModel, model_name: str, sid_dir: Path, pops_dir: Path,
                 variabilities: Sequence[str], rows: list[dict[str, Any]], timings: dict[str, float],
                 showcase: dict[str, CompactionResult], stimuli: dict[str, np.ndarray],
                 out_dir: Path, config: SweepConfig, command: str) -> Path:
    """Figures + report.md + report.html for a finished (or partial) sweep."""
    import json
    import shutil

    import numpy as np

    from egis import plots, report_plots
    from egis.evaluate import summarize
    from egis.sweep import headline_k
    from egis.toolkit.io import read_json, write_json
    from egis.toolkit.labels import Cutoff, read_labels
    from egis.toolkit.population import PopulationSpec

    summary = summarize(rows)
    write_json(out_dir / "summary.json", summary)
    lines = [f"# EGIS evaluation: {model_name}", "",
             f"Model `{model_name}` (sha256 `{model.sha256[:16]}`), {model.num_classes} classes. "
             f"Stimulus sets of {config.images} images each (a pool of several sets, such as "
             f"egis-both, that many of each); annealing with {config.trials} validation "
             f"splits; seeds {list(config.seeds)}; metrics are mean ± std over seeds, in % of the "
             f"evaluation chips (TA accuracy, TE escapes = CTE critical + BTE benign, YL yield loss).", "",
             "Regenerate:", "", "```", command, "```", ""]
    for variability in variabilities:
        labelled = read_labels(pops_dir / variability / "labelled_accuracy.csv")
        evaluation = read_labels(pops_dir / variability / "evaluation_accuracy.csv")
        stats_lab, stats_eval = labelled.accuracies, evaluation.accuracies
        spec = PopulationSpec.load(pops_dir / variability / "labelled.json")
        thresholds = {c: Cutoff.parse(c).threshold(stats_lab) for c in config.cutoffs}
        report_plots.accuracy_histogram(out_dir / f"accuracy_{variability}.png",
                                        {"labelled": stats_lab, "evaluation": stats_eval}, thresholds,
                                        f"{model_name}, {variability}: chip accuracy")
        lines += [f"## {variability} variation", "",
                  f"Plugin `{spec.plugin}` {json.dumps(spec.params)}; {len(stats_lab)} labelled + "
                  f"{len(stats_eval)} evaluation chips. Labelled-chip accuracy: mean {stats_lab.mean():.4f}, "
                  f"std {stats_lab.std():.4f}, min {stats_lab.min():.4f}; cutoffs "
                  + ", ".join(f"{c} = {t:.4f}" for c, t in thresholds.items()) + ".", "",
                  *unlabelled_note(pops_dir / variability, config.methods),
                  *[line + "\n" for line in (adaptive_note("Labelled", labelled.meta),
                                             adaptive_note("Evaluation", evaluation.meta)) if line],
                  f"![chip accuracy histogram](accuracy_{variability}.png)", "",
                  f"### Table II analogue (K = {headline_k(config)}): TA ± std / CTE / BTE / YL, %", "",
                  headline_table(summary, variability, headline_k(config), config.cutoffs, config.methods), "",
                  *budget_section(summary, variability, config),
                  "### EGIS for every K", "", k_table(summary, variability), "",
                  *chance_section(out_dir / "chance.csv", variability, config.cutoffs)]
        egis_rows = [e for e in summary if e["variability"] == variability and e["method"] == "egis"]
        if egis_rows:
            groups = [f"{e['cutoff']} K={e['k']}" for e in egis_rows]
            report_plots.grouped_bars(
                out_dir / f"fig5_{variability}.png", groups,
                {m: [e[m] for e in egis_rows] for m in ("TA", "CTE", "BTE", "YL")},
                {m: [e[f"{m}_std"] for e in egis_rows] for m in ("TA", "CTE", "BTE", "YL")},
                f"{model_name}, {variability}: EGIS per K and cutoff (Fig. 5 analogue)")
            lines += [f"![Fig. 5 analogue](fig5_{variability}.png)", ""]
        result = showcase.get(variability)
        if result is not None:
            its = [s.iteration for s in result.history]
            plots.line_plot(out_dir / f"reward_{variability}.png",
                            {"best": (its, [s.best for s in result.history]),
                             "current": (its, [s.current for s in result.history])},
                            title=f"annealing reward ({variability}, {config.cutoffs[0]}, "
                                  f"K={headline_k(config)}, seed {config.seeds[0]})",
                            xlabel="iteration", ylabel="mean validation accuracy")
            images = stimuli["egis"][result.indices]
            plots.image_grid(out_dir / f"cid_{variability}.png", images, [str(i) for i in result.indices],
                             layout=model.contract.layout, vmin=model.contract.pixel_min,
                             vmax=model.contract.pixel_max, title="compact image set (CID)")
            lines += ["### Compaction of one run", "",
                      f"Reward (best {result.reward:.4f} from initial {result.initial_reward:.4f}) and the "
                      f"chosen images:", "", f"![reward](reward_{variability}.png)", "",
                      f"![CID](cid_{variability}.png)", ""]
    sid_meta = read_json(Path(sid_dir) / "meta.json")
    timings_path = Path(sid_dir) / "timings.json"
    sid_timings = read_json(timings_path) if timings_path.exists() else {}
    for name in ("entropy.png", "grid.png"):
        if (Path(sid_dir) / name).exists():
            shutil.copyfile(Path(sid_dir) / name, out_dir / f"sid_{name}")
    training = sid_meta.get("training", {})
    lines += ["## Synthesis", "",
              f"H_c {training.get('final_h_c', float('nan')):.4f}, H_s {training.get('final_h_s', float('nan')):.4f} "
              f"(log M = {np.log(model.num_classes):.4f}) after {training.get('iterations')} iterations; "
              f"class histogram of the SID: {sid_meta.get('set', {}).get('class_histogram')}.", "",
              "![entropy](sid_entropy.png)", "", "![SID samples](sid_grid.png)", "",
              "## Run time", "",
              table(["stage", "seconds"],
                    [["synthesis (generator training + sampling)", f"{sid_timings.get('wall_time_s', float('nan')):.1f}"]]
                    + [[name, f"{seconds:.1f}"] for name, seconds in timings.items()]), ""]
    write_report(out_dir, "\n".join(lines), f"EGIS evaluation: {model_name}")
    return out_dir / "report.md"
