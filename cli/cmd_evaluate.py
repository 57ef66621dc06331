"""`egis evaluate`: EGIS against its baselines on held-out evaluation chips, with a report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option

from egis.methods import DEFAULT_METHODS, METHODS, get_method, needs_unlabelled, stimulus_parts
from egis.toolkit.errors import DataError


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DataError(f"{what} must be a comma-separated list of integers, got '{text}'") from None
    if not values:
        raise DataError(f"{what} is empty")
    return values


def evaluate(
    model: Path = typer.Argument(..., help="Customer ONNX classifier."),
    sid: Path = typer.Option(..., "--sid", help="Synthetic image set (egis synthesize)."),
    sid_va: Optional[Path] = typer.Option(None, "--sid-va",
                                          help="Variation-aware set (egis synthesize --variation) for method egis-va."),
    sid_tv: Optional[Path] = typer.Option(None, "--sid-tv",
                                          help="Set made with the total-variation prior (egis synthesize --tv-weight) "
                                               "for methods egis-tv and egis-tv-distil, and the second half of "
                                               "egis-both-distil's pool."),
    populations: Path = typer.Option(..., "--populations", help="Folder with <variability>/{labelled,evaluation}{.json,_accuracy.csv} (and unlabelled.json, the fab's unlabelled chips, for the distilled methods egis-distil, egis-tv-distil and egis-both-distil)."),
    output: Path = typer.Option(..., "-o", "--output", help="Report folder."),
    real: Optional[str] = typer.Option(None, "--real", help="Real images for the dataset-aware baseline: DATA or builtin:digits."),
    real_subdir: Optional[str] = typer.Option(None, help="Folder inside --real holding <class>/ (e.g. test)."),
    variability: str = typer.Option("typical,extreme", help="Sub-folders of --populations to evaluate."),
    k: str = typer.Option("2,4,8,16", "-k", "--k", help="K values for EGIS."),
    baseline_k: str = typer.Option("4", help="K values at which every baseline runs too."),
    cutoffs: str = typer.Option("A50,A60,A70", help="Cutoffs (computed on the labelled chips)."),
    seeds: int = typer.Option(3, "--seed-count", min=1, help="Seeds per setting (spread is reported over them)."),
    images: int = typer.Option(1024, min=16, help="Images per stimulus set (egis-both-distil's pool: this many "
                                                  "of each of its two sets)."),
    trials: int = typer.Option(5, min=1, help="Validation splits per annealing reward."),
    methods: str = typer.Option(",".join(DEFAULT_METHODS), help="Methods to compare (registry: egis/methods.py; "
                                "the distilled methods (egis-distil, egis-tv-distil, egis-both-distil), not in the "
                                "default, also need <variability>/unlabelled.json)."),
    max_escape: Optional[str] = typer.Option(None, "--max-escape", metavar="P",
                                             help="Escape budget for every classifier detector (as egis compact "
                                                  "--max-escape): shows the CTE/YL trade-off per method."),
    escape_confidence: Optional[str] = typer.Option(None, "--escape-confidence", metavar="C",
                                                    help="With --max-escape: hold the budget at confidence C, "
                                                         "as egis compact --escape-confidence (e.g. 75%)."),
    chance: int = typer.Option(0, "--chance", min=0, metavar="R",
                               help="Also score R random K-sets of each stimulus set the classifier methods "
                                    "chose from (headline K, same budget) on the evaluation chips, and place "
                                    "every choice against that chance level (chance.csv, the report). "
                                    "Recomputed on each run; 100 is a good R."),
    responses: Optional[Path] = typer.Option(None, "--responses", metavar="DIR",
                                             help="Folder of the chips' simulated responses, one file per stimulus "
                                                  "set (default: OUTPUT/cache). Evaluations of the same populations "
                                                  "that share it simulate only the sets they add."),
    report_only: bool = typer.Option(False, "--report-only", help="Rebuild the report from results.csv; compute nothing new."),
    name: Optional[str] = typer.Option(None, help="Model name in the report (default: file's folder)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bars."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Sweep K, cutoffs, variability and seeds; write results.csv, report.md and report.html."""
    from egis.escape import parse_escape_options
    from egis.report import build_report
    from egis.stimuli import EVALUATION_SEED, check_sid_variant, load_real_images, load_stimuli, variants_used
    from egis.sweep import SweepConfig, check_unlabelled_population, run_sweep
    from egis.toolkit.model import load_model

    from egis.toolkit.io import check_output_dir

    check_output_dir(output)
    if responses is not None:
        check_output_dir(responses)
    loaded = load_customer_model(model, layout, pixel_range, mean, std)
    variabilities = [v for v in variability.split(",") if v]
    for v in variabilities:
        if not (populations / v / "labelled.json").exists():
            raise DataError(f"{populations / v} has no labelled.json (see egis evaluate --help)")
    chosen = [m for m in methods.split(",") if m]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        raise DataError(f"unknown method '{unknown[0]}'; choose from {', '.join(METHODS)}")
    # each loss variant's method, its set's option here, and the synthesize flag that makes it
    variants = (("egis-va", sid_va, "--sid-va", "--variation"), ("egis-tv", sid_tv, "--sid-tv", "--tv-weight"))
    variant_sids = {name: path for name, path, _, _ in variants if path is not None}
    for stimulus, path, option, how in variants:
        # egis-tv, egis-tv-distil, and egis-both-distil, whose pool holds the prior's images
        users = [m for m in chosen if stimulus in stimulus_parts(get_method(m).stimulus)]
        if users and path is None:
            raise DataError(f"method {users[0]} needs {option} (a set made by egis synthesize {how})")
    for stimulus, path in variant_sids.items():
        check_sid_variant(stimulus, path)
    if needs_unlabelled(chosen):
        for v in variabilities:
            check_unlabelled_population(populations, v)
    for stimulus in sorted(set(variant_sids) - set(variants_used(chosen, variant_sids))):
        typer.echo(f"note: the {stimulus} set ({variant_sids[stimulus]}) is not used: no {stimulus} or "
                   f"egis-select method is evaluated", err=True)
    budget, confidence = parse_escape_options(max_escape, escape_confidence)
    config = SweepConfig(ks=_ints(k, "--k"), cutoffs=[c for c in cutoffs.split(",") if c],
                         seeds=list(range(seeds)), baseline_ks=_ints(baseline_k, "--baseline-k"),
                         trials=trials, images=images, methods=chosen,
                         max_escape=budget, escape_confidence=confidence, chance=chance)
    output.mkdir(parents=True, exist_ok=True)
    real_pixels = load_real_images(real, loaded, real_subdir) if real else None
    stimuli = load_stimuli(loaded, sid, real_pixels, images, seed=EVALUATION_SEED, work_dir=output, methods=chosen,
                           variant_sids=variant_sids)
    if report_only:
        from egis.evaluate import read_rows

        rows, timings, showcase = read_rows(output / "results.csv"), {}, {}
        if not rows:
            raise DataError(f"{output / 'results.csv'} holds no results to report")
    else:
        rows, timings, showcase = run_sweep(loaded, populations, variabilities, stimuli, output, config,
                                            progress=not quiet, log=lambda line: typer.echo(line, err=True),
                                            cache_dir=responses)
    command = "egis " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = build_report(loaded, name or model.parent.name, sid, populations, variabilities, rows, timings,
                          showcase, stimuli, output, config, command)
    typer.echo(f"{report}: {len(rows)} result rows")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
