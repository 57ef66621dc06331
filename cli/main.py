"""The `egis` command line: one typer app; each area registers its commands from its module.

Errors derived from EgisError become one line on stderr and exit code 2; Ctrl-C exits 130.
Writers are atomic (toolkit.io), so neither leaves half-written files behind.
"""

from __future__ import annotations

import importlib
import sys

import typer

from egis.toolkit.errors import EgisError

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
    "egis.cli.cmd_inspect",
    "egis.cli.cmd_duts",
    "egis.cli.cmd_label",
    "egis.cli.cmd_synthesize",
    "egis.cli.cmd_measure",
    "egis.cli.cmd_compact",
    "egis.cli.cmd_test",
    "egis.cli.cmd_evaluate",
    "egis.cli.cmd_demo",
    "egis.cli.cmd_keys",
    "egis.cli.cmd_handoff",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


# Spellings of an earlier release, rewritten to today's before parsing (hidden from --help,
# one deprecation line on stderr). Kept for one release; tests/test_cli_dialect.py covers them.
LEGACY_OPTIONS: dict[str, dict[str, str]] = {
    "compact": {"--out": "--output"},
    "synthesize": {"--out": "--output"},
    "demo": {"--out": "--output"},
    "test": {"--range": "--chips"},
    "evaluate": {"--seeds": "--seed-count"},
}
DEBUG_ENV = "EGIS_DEBUG"


class Interrupted(BaseException):
    """Ctrl-C, raised by our SIGINT handler. A BaseException that is not a KeyboardInterrupt,
    so neither click's standalone handler ("Aborted!", exit 1) nor a library's ``except
    Exception`` can swallow it or turn it into another error."""


def translate_legacy(argv: list[str], warn=None) -> list[str]:
    """``argv`` with legacy option spellings of its command replaced (see LEGACY_OPTIONS)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    table = LEGACY_OPTIONS.get(command or "", {})
    out = []
    for arg in argv:
        if arg == "--":
            out += argv[len(out):]
            break
        name, sep, value = arg.partition("=")
        if name in table:
            if warn is not None:
                warn(f"warning: {command} {name} is deprecated; use {table[name]}")
            arg = table[name] + sep + value
        out.append(arg)
    return out


def _where(exc: BaseException) -> str:
    """'file:line' of the innermost frame of this project's code in the traceback."""
    import os

    import egis
    import egis.models
    import egis.plugins
    import egis.toolkit

    roots = [p.rstrip(os.sep) + os.sep for pkg in (egis, egis.toolkit, egis.plugins, egis.models, app_package())
             for p in pkg.__path__]
    tb, where = exc.__traceback__, ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(filename.startswith(root) for root in roots):
            where = f"{os.path.basename(os.path.dirname(filename))}/{os.path.basename(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def app_package():
    import egis.cli

    return egis.cli


def describe_unexpected(exc: BaseException) -> str:
    """One line for an exception no command turned into an EgisError."""
    if isinstance(exc, OSError) and (exc.filename or exc.strerror):
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror or exc}"
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    where = _where(exc)
    return (f"unexpected {type(exc).__name__}{': ' + text if text else ''}"
            f"{' (at ' + where + ')' if where else ''}; set {DEBUG_ENV}=1 for the traceback")


def main(argv: list[str] | None = None) -> None:
    """Console entry point with the one-line error contract.

    EgisError -> its message, exit 2; any other exception -> one line naming the file or the
    problem, exit 2 (the traceback only with --debug or EGIS_DEBUG=1); Ctrl-C -> "interrupted",
    exit 130, also when a library turned the interrupt into an error of its own.
    """
    import os
    import signal

    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    args = translate_legacy(args, warn=lambda line: typer.echo(line, err=True))
    interrupted = False

    def on_sigint(_signum, _frame):
        nonlocal interrupted
        interrupted = True
        raise Interrupted()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        app(args=args, prog_name="egis")
    except SystemExit:
        raise
    except (Interrupted, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except EgisError as exc:
        if interrupted:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except BaseException as exc:  # noqa: BLE001 - the one-line contract covers every failure
        if interrupted:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        if debug:
            raise
        typer.echo(f"error: {describe_unexpected(exc)}", err=True)
        sys.exit(2)
    finally:
        signal.signal(signal.SIGINT, previous)
