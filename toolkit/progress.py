"""Progress reporting for long loops, on stderr, so stdout stays clean for --json/--csv.

rich ships with typer; when it is missing or output is disabled the loop runs silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_iter(items: Iterable[T], total: int | None = None, description: str = "",
                  enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar with rate and ETA on stderr."""
    if not enabled:
        yield from items
        return
    try:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
    except ImportError:  # pragma: no cover - rich comes with typer
        yield from items
        return
    console = Console(file=sys.stderr)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
