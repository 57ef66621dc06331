"""The `egis` command line: one typer app; each area registers its commands from its module.

Errors derived from EgisError become one line on stderr and exit code 2; Ctrl-C exits 130.
Writers are atomic (toolkit.io), so neither leaves half-written files behind.
"""

from __future__ import annotations

import importlib
import sys

import typer

from toolkit.errors import EgisError

app = typer.Typer(
    name="egis",
    help="Data-free post-manufacture testing of RRAM-crossbar DNN accelerators (EGIS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines `register(app: typer.Typer) -> None`. Missing modules are skipped so
# the app stays usable while areas are being built.
COMMAND_MODULES = (
    "cli.cmd_inspect",
    "cli.cmd_duts",
    "cli.cmd_label",
    "cli.cmd_synthesize",
    "cli.cmd_compact",
    "cli.cmd_test",
    "cli.cmd_evaluate",
    "cli.cmd_demo",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console entry point with the one-line error contract (typer handles usage errors)."""
    try:
        app()
    except EgisError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
