"""Progress reporting for long loops, on stderr, so stdout stays clean for --json/--csv.

rich ships with typer; when it is missing or output is disabled the loop runs silently.
One bar style for every command: description, bar, done/total, elapsed, remaining.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: update(completed=None, total=None, description=None, advance=0): moves the bar.
Updater = Callable[..., None]


def _noop(**_fields: object) -> None:
    return None


@contextlib.contextmanager
def progress_bar(description: str = "", total: int | None = None,
                 enabled: bool = True) -> Iterator[Updater]:
    """A bar on stderr; yields ``update(**fields)`` (rich's task fields: completed, total,
    description, advance). Disabled or without rich, ``update`` does nothing."""
    if not enabled:
        yield _noop
        return
    try:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
    except ImportError:  # pragma: no cover - rich comes with typer
        yield _noop
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda **fields: bar.update(task, **fields)


def progress_iter(items: Iterable[T], total: int | None = None, description: str = "",
                  enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar with rate and ETA on stderr."""
    with progress_bar(description, total, enabled) as update:
        for item in items:
            yield item
            update(advance=1)
