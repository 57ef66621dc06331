"""`egis inspect MODEL`: validate a classifier and list the weights that live on crossbars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def inspect(
    model: Path = typer.Argument(..., help="Customer ONNX classifier."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    layout: Optional[str] = typer.Option(None, "--layout", metavar="NCHW|NHWC",
                                         help="Input layout, when detection guesses wrong."),
) -> None:
    """Check the model can be used and show its input contract and crossbar layers."""
    from egis.toolkit.inspect_report import format_report, inspect_model
    from egis.toolkit.model import load_model

    report = inspect_model(load_model(model, layout=layout))
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def register(app: typer.Typer) -> None:
    """Add `inspect` to the egis app."""
    app.command("inspect")(inspect)
