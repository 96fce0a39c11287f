"""What the commands show while they work, and where: the one progress helper.

Data goes to standard output, logs and progress to standard error, never mixed. On a
terminal a long command shows a live progress line on standard error and ends with a
summary; off a terminal (a pipe, a file, CI) it shows no progress at all and nothing it
prints is wrapped or coloured, so the output stays machine-readable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

# Off a terminal rich would wrap at 80 columns; this is wide enough that nothing wraps.
_UNWRAPPED = 1_000_000


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, soft_wrap=stderr)
    return Console(
        stderr=stderr,
        width=_UNWRAPPED,
        soft_wrap=True,
        no_color=True,
        highlight=False,
        emoji=False,
    )


def out_console() -> Console:
    """The console for a command's data on standard output: wrapped to the terminal on
    one, never wrapped (and without colour) on a pipe or in a file."""
    return _console(stderr=False)


def err_console() -> Console:
    """The console for messages on standard error: error lines are never wrapped."""
    return _console(stderr=True)


def interactive() -> bool:
    """Whether a person watches standard error (progress and summaries are for them)."""
    return sys.stderr.isatty()


class Tracker(Protocol):
    """What a command tells the progress line: ``advance`` by a count of items done (and
    optionally a new description); ``total`` once the number of items is known."""

    def advance(self, count: int = 1, *, description: str | None = None) -> None: ...

    def total(self, total: int | None) -> None: ...


class _Live:
    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar = bar
        self._task = task

    def advance(self, count: int = 1, *, description: str | None = None) -> None:
        if description is None:
            self._bar.advance(self._task, count)
        else:
            self._bar.update(self._task, advance=count, description=description)

    def total(self, total: int | None) -> None:
        self._bar.update(self._task, total=total)


class _Quiet:
    def advance(self, count: int = 1, *, description: str | None = None) -> None:
        return None

    def total(self, total: int | None) -> None:
        return None


class _Done(ProgressColumn):
    """The count done so far, once there is one (a spinner alone until then)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.completed:,.0f}" if task.completed else "")


@contextmanager
def progress(
    description: str, *, total: int | None = None, data_to: IO[str] | None = None
) -> Iterator[Tracker]:
    """A live progress line on standard error while the block runs, removed at its end.

    With ``total`` it is a bar with ``done/total``; without, a spinner with the count
    done. Only on a terminal, and not when the command writes its data (``data_to``) to
    that terminal too: elsewhere the tracker does nothing. Log lines written while it
    shows are printed above it.
    """
    if not interactive() or (data_to is not None and data_to.isatty()):
        yield _Quiet()
        return
    columns = (
        (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        if total is not None
        else (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            _Done(),
        )
    )
    with Progress(*columns, TimeElapsedColumn(), console=err_console(), transient=True) as bar:
        yield _Live(bar, bar.add_task(description, total=total))


def summary(text: str) -> None:
    """A command's closing line for a person on standard error (nothing off a terminal,
    where the command's data and its JSON log lines say it all)."""
    if interactive():
        err_console().print(text, highlight=False, markup=False)
