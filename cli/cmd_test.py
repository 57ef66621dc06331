"""`egis test`: judge chips with a test bundle. Stays light: onnx, onnxruntime, numpy.

Chips are ONNX files (`egis duts export` or a behavioural model of a real chip),
`plugin:NAME:TARGET` hardware adapters, and/or a range of a simulated population.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from egis.toolkit.errors import BundleError


def test_command(
    bundle_dir: Path = typer.Argument(..., metavar="BUNDLE_DIR", help="Test bundle (egis compact)."),
    chips: Optional[list[str]] = typer.Argument(None, metavar="CHIP...",
                                                help="Chips: ONNX files, folders, globs or chip-list files of them, adapter:NAME:TARGET."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (chip,pass,pass_probability,elapsed_ms,reason)."),
    population: Optional[Path] = typer.Option(None, "--population", help="Also test chips of this population spec."),
    chip_range: Optional[str] = typer.Option(None, "--chips", help="Chips of --population: START:STOP or N (the first N); default all."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model of --population (default: path in the spec)."),
    threads: int = typer.Option(1, "--threads", min=1, help="onnxruntime threads per session."),
    allow_unknown: bool = typer.Option(False, "--allow-unknown",
                                       help="Judge chips whose responses lie far outside the labelled chips' "
                                            "(the bundle's guard) with the detector anyway; default FAIL. "
                                            "Non-finite responses always FAIL."),
    trust: Optional[Path] = typer.Option(None, "--trust", metavar="PUB.pem",
                                         help="Accept only bundles signed by this key (egis keys new; "
                                              "egis compact --sign): unsigned, foreign-signed or altered "
                                              "bundles are refused."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Simulate --population chips on this many processes first."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS",
                                      help="Simulate --population chips on a Ray cluster first (or $EGIS_RAY_ADDRESS)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar on stderr."),
) -> None:
    """Print pass/fail and P(pass) for every chip."""
    from egis.toolkit.chips import expand_chip_refs, open_chip
    from egis.toolkit.progress import progress_iter
    from egis.toolkit.tester import Tester

    if as_json and as_csv:
        raise BundleError("choose one of --json and --csv")
    tester = Tester(bundle_dir, threads=threads, allow_unknown=allow_unknown, trust=trust)
    budget = tester.bundle.manifest.get("escape_budget")
    if isinstance(budget, dict) and not quiet:
        level = budget.get("confidence")
        held = f" at {100 * float(level):g}% confidence" if isinstance(level, (int, float)) else ""
        typer.echo(f"escape budget {100 * float(budget.get('max_escape', 0)):g}%{held}: pass when P(pass) >= "
                   f"{tester.pass_threshold:.4f} (held-out escapes {100 * float(budget.get('validation_escape', 0)):.1f}%, "
                   f"yield loss {100 * float(budget.get('validation_yield_loss', 0)):.1f}%)", err=True)
    manifest = tester.bundle.manifest
    todo = [open_chip(spec, manifest, threads=threads)
            for arg in (chips or []) for spec in expand_chip_refs(arg)]
    if population is not None:
        from egis.toolkit.population import parse_chip_range
        from egis.toolkit.chips import PopulationChips
        from egis.toolkit.population import PopulationSpec

        count = PopulationSpec.load(population).count
        chips_of_population = PopulationChips(population, model, manifest, parse_chip_range(chip_range, count),
                                              threads=threads)
        import os

        if workers or ray or os.environ.get("EGIS_RAY_ADDRESS") or os.environ.get("EGIS_WORKERS"):
            from egis.toolkit.runner import get_runner

            chips_of_population.prefetch(tester.stimulus, get_runner(workers, ray), progress=not quiet)
        todo.extend(chips_of_population)
    elif chip_range is not None or model is not None:
        raise BundleError("--chips and --model apply to --population")
    if not todo:
        raise BundleError("no chips to test: give CHIP files or --population")
    # a population range simulates every chip: seconds to minutes, so show progress
    chips_iter = progress_iter(todo, len(todo), "testing chips", enabled=not quiet and len(todo) > 1)
    verdicts = [tester.test(chip) for chip in chips_iter]
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in verdicts], indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["chip", "pass", "pass_probability", "elapsed_ms", "reason"])
        for v in verdicts:
            proba = "" if v.pass_probability is None else f"{v.pass_probability:.6f}"
            writer.writerow([v.chip, int(v.passed), proba, f"{v.elapsed_ms:.3f}", v.reason])
    else:
        width = max(len(v.chip) for v in verdicts)
        for v in verdicts:
            proba = "    -" if v.pass_probability is None else f"{v.pass_probability:.4f}"
            typer.echo(f"{v.chip:<{width}}  {'PASS' if v.passed else 'FAIL'}  p(pass)={proba}  "
                       f"{v.elapsed_ms:.2f} ms" + (f"  {v.reason}" if v.reason else ""))
    passed = sum(v.passed for v in verdicts)
    unjudged = sum(v.pass_probability is None for v in verdicts)
    typer.echo(f"{passed}/{len(verdicts)} pass" + (f"; {unjudged} failed without judgement "
                                                   "(see reason)" if unjudged else ""), err=True)


def register(app: typer.Typer) -> None:
    app.command("test")(test_command)
