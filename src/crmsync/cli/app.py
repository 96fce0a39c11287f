"""The typer application and what every command shares (exit codes, error printing)."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.text import Text

from crmsync.cli.progress import err_console
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import check_range
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.errors import ConfigError, InstantError
from crmsync.terminal import escape_controls

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_BUSY = 5
"""Another process works the profile (it is named); nothing was done."""

app = typer.Typer(
    name="crmsync",
    help="Checks CRM complaints against published charters on a real business calendar.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    # Plain help: paragraphs re-flowed to the terminal, no type tag on flags, no boxes on a pipe.
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)
err = err_console()


def _print_version(value: bool) -> None:
    if not value:
        return
    from crmsync import __version__  # noqa: PLC0415 - only when asked
    from crmsync.domain import evaluation  # noqa: PLC0415 - only when asked

    build = "compiled" if Path(evaluation.__file__).suffix in {".so", ".pyd"} else "pure Python"
    typer.echo(f"crmsync {__version__} ({build})")
    raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version (and whether the evaluation engine is compiled) and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    """Checks CRM complaints against published charters on a real business calendar."""


def plain(text: object) -> Text:
    """User data for a rich table cell or print: shown literally, never read as markup
    (``[/]`` in a path prints as ``[/]``), control characters escaped."""
    return Text(escape_controls(str(text)))


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on standard error and return the ``Exit`` to raise.

    The message is plain text (it often echoes paths, ids and arguments): rich markup in
    it prints literally and control characters are escaped."""
    line = Text("error:", style="red") + " " + escape_controls(message, keep_newlines=True)
    err.print(line, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_charter_or_exit(path: Path) -> Charter:
    """Load a charter file; on any problem print them all and exit with status 2."""
    from crmsync.mapping.charter_file import load_charter  # noqa: PLC0415 - pydantic, on use

    try:
        return load_charter(path)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


FUTURE_NOW_SLACK = 300
"""How far (seconds) a writing command's ``--now`` may lie past this machine's clock
without ``--allow-future-now``: clocks of the machine and the CRM may disagree a little."""


def parse_now(text: str, *, writes: bool = False, allow_future: bool = False) -> int:
    """``--now``: an ISO-8601 date-time with offset, as epoch seconds; exit 2 otherwise.

    It must lie in the supported years (``domain.complaint.check_range``, 1970..2199). A
    command that writes (``writes``: flags, follow-ups, archive entries, forgetting state)
    refuses an instant later than this machine's clock (plus ``FUTURE_NOW_SLACK``) unless
    ``allow_future`` (``--allow-future-now``): what it writes as of a future instant would
    stand in the CRM, the state and the append-only archive as if that time had come."""
    try:
        if len(text.strip()) == 10:
            raise InstantError(f"'{text}' is a date; --now needs a date-time with offset")
        instant = check_range(parse_instant(text, ZoneInfo("UTC")), text)
    except InstantError as exc:
        raise fail(f"--now: {exc}") from exc
    clock = int(time.time())
    if writes and not allow_future and instant > clock + FUTURE_NOW_SLACK:
        raise fail(
            f"--now: {format_instant(instant)} is in the future (this machine's clock says "
            f"{format_instant(clock)}); this command writes as of --now, so it refuses a "
            "future instant: pass --allow-future-now to do it anyway"
        )
    return instant
