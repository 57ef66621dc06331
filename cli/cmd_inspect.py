"""`egis inspect MODEL`: validate a classifier and list the weights that live on crossbars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option


def inspect(
    model: Path = typer.Argument(..., help="Customer ONNX classifier (or a handoff folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Check the model can be used and show its input contract and crossbar layers."""
    from egis.toolkit.inspect_report import format_report, inspect_model
    report = inspect_model(load_customer_model(model, layout, pixel_range, mean, std))
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def register(app: typer.Typer) -> None:
    """Add `inspect` to the egis app."""
    app.command("inspect")(inspect)
