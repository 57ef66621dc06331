"""Progress reporting for long loops: the one reporter of the project.

* :func:`progress_bar` / :func:`progress_iter` -- a bar on stderr for interactive commands, so
  stdout stays clean for --json/--csv. rich ships with typer; when it is missing or output is
  disabled the loop runs silently. One bar style: description, bar, done/total, elapsed,
  remaining.
* :class:`LineProgress` -- one plain line every few steps, with rate and ETA, for jobs whose
  output goes to a log file (model training runs in the background), where a redrawn bar
  would fill the log with control characters.
"""

from __future__ import annotations

import contextlib
import sys
import time
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


class LineProgress:
    """Prints ``prefix`` + fields every ``every`` steps (and at the last), with ms/step and ETA."""

    def __init__(self, total: int, every: int = 50, done: int = 0, stream=None) -> None:
        self.total = total
        self.every = max(1, every)
        self.start_done = done
        self.t0 = time.perf_counter()
        self.stream = stream

    def step(self, done: int, text: str, force: bool = False) -> None:
        """Report after ``done`` of ``total`` steps; ``text`` describes the current state."""
        if not force and done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self.t0
        rate = elapsed / max(done - self.start_done, 1)
        eta = rate * (self.total - done)
        print(f"{text} {rate * 1000:.0f} ms/step ETA {eta / 60:.1f} min", flush=True,
              file=self.stream or sys.stdout)
