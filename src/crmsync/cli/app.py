"""The typer application and what every command shares (exit codes, error printing)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from crmsync.domain.charter import Charter
from crmsync.domain.instants import InstantError, parse_instant
from crmsync.errors import ConfigError

EXIT_BAD_INPUT = 3
EXIT_USAGE = 2
EXIT_BUSY = 5
"""Another process works the profile (it is named); nothing was done."""

app = typer.Typer(
    name="crmsync",
    help="Checks CRM complaints against published charters on a real business calendar.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on standard error and return the ``Exit`` to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def load_charter_or_exit(path: Path) -> Charter:
    """Load a charter file; on any problem print them all and exit with status 2."""
    from crmsync.mapping.charter_file import load_charter  # noqa: PLC0415 - pydantic, on use

    try:
        return load_charter(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def parse_now(text: str) -> int:
    """``--now``: an ISO-8601 date-time with offset, as epoch seconds; exit 2 otherwise."""
    try:
        if len(text.strip()) == 10:
            raise InstantError(f"'{text}' is a date; --now needs a date-time with offset")
        return parse_instant(text, ZoneInfo("UTC"))
    except InstantError as exc:
        raise fail(f"--now: {exc}") from None
