"""The typer application and what every command shares (exit codes, error printing)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup

from crmsync.cli.progress import err_console
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import check_range
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.errors import ConfigError, InstantError
from crmsync.terminal import escape_controls

if TYPE_CHECKING:
    from typer._click import Command  # typer's own click: what its groups hold

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_BUSY = 5
"""Another process works the profile (it is named); nothing was done."""

# What an option's value is, by option name: the placeholder help shows (``--now INSTANT``).
_PLACEHOLDERS = {
    "now": "INSTANT",
    "date_from": "DATE",
    "date_to": "DATE",
    "from_": "DATE|INSTANT",
    "to": "DATE|INSTANT",
    "wait": "DURATION",
    "keep_closed": "DURATION|never",
    "keep_runs": "DURATION|never",
    "input": "FILE|-",
    "output": "FILE",
    "out": "DIR",
    "encoding": "CODEC",
    "id": "ID",
    "complaint_id": "ID",
    "complaint": "ID",
    "owner": "USER_ID",
    "clock": "CLOCK",
    "by": "ATTRIBUTE",
    "object": "OBJECT",
    "charter": "FILE",
    "port": "PORT",
}
_BY_TYPE = {"Path": "FILE", "int": "N", "float": "NUMBER"}


def _placeholder(param: Any) -> str:
    """A readable placeholder for ``param``'s value: its meaning by name, else its choices
    (``json|csv``), else its kind (``FILE``, ``N``), else its name in capitals."""
    name = param.name or ""
    if name in _PLACEHOLDERS and not isinstance(param, TyperArgument):
        return _PLACEHOLDERS[name]
    described = getattr(param, "type_descriptor", None)
    choices = getattr(described, "choices", None)
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    if isinstance(param, TyperArgument):
        return name.upper()
    bare = param.bare_type() if hasattr(param, "bare_type") else ""
    return _BY_TYPE.get(bare, name.upper() or "TEXT")


class _PlainArgument(TyperArgument):
    """An argument shown by its placeholder alone, in help and in the usage line."""

    def display_type_rich(self, ctx: typer.Context) -> str | None:  # type: ignore[override]
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"


class PlainCommand(TyperCommand):
    """Every command's class: readable placeholders (``--now INSTANT``, ``FILE``) instead
    of typer's type tags (``<str>``, ``<list[Path]>``, ``{id}``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if getattr(param, "is_flag", False) or param.metavar is not None:
                continue
            param.metavar = _placeholder(param)
            if isinstance(param, TyperArgument):
                param.__class__ = _PlainArgument  # the same argument, shown plainly


class _CrmCommands(MutableMapping[str, "Command"]):
    """The root's commands: the CLI's own, then each registered CRM's commands
    (``CrmWiring.commands``, as ``crmsync NAME ...``). The CRMs' are looked up in the
    composition root only when a name that is not the CLI's own is asked for or the
    commands are listed: ``crmsync healthcheck`` loads no CRM."""

    def __init__(self, own: MutableMapping[str, Command]) -> None:
        self._own = own
        self._crms: dict[str, Command] | None = None

    def _crm_groups(self) -> dict[str, Command]:
        if self._crms is None:
            from crmsync.bootstrap import crm_commands  # noqa: PLC0415 - the root, on use

            modules = crm_commands()
            clash = sorted(set(modules) & set(self._own))
            if clash:
                raise RuntimeError(f"a CRM is named like a crmsync command: {', '.join(clash)}")
            self._crms = {name: _crm_group(name, module) for name, module in modules.items()}
        return self._crms

    def __getitem__(self, name: str) -> Command:
        if name in self._own:
            return self._own[name]
        return self._crm_groups()[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._own[name] = command

    def __delitem__(self, name: str) -> None:
        del self._own[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._own, *self._crm_groups()])

    def __len__(self) -> int:
        return len(self._own) + len(self._crm_groups())


def _crm_group(name: str, module: str) -> Command:
    """The ``COMMANDS`` of ``module`` as the group ``crmsync NAME``, built as
    ``app.add_typer`` builds a group (the same help, placeholders and exit statuses)."""
    holder = typer.Typer(rich_markup_mode=app.rich_markup_mode, pretty_exceptions_enable=False)
    holder.add_typer(importlib.import_module(module).COMMANDS, name=name)
    return typer.main.get_group(holder).commands[name]


class _RootGroup(TyperGroup):
    """``crmsync``: its commands are the CLI's own and the registered CRMs'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _CrmCommands(self.commands)


app = typer.Typer(
    name="crmsync",
    cls=_RootGroup,
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
    """Checks CRM complaints against published charters on a real business calendar.

    Exit status of every command: 0 done; 1 failed (the CRM, the state store or the
    archive); 2 bad arguments or configuration (nothing done); 3 some records were bad
    input (named; the rest done); 4 the archive is damaged; 5 another process works the
    profile. Each command's help says which of them it uses."""


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


def parse_now(
    text: str, *, writes: bool = False, allow_future: bool = False, flag: str = "--now"
) -> int:
    """``--now`` (or the instant option ``flag``): an ISO-8601 date-time with offset, as
    epoch seconds; exit 2 otherwise, naming ``flag``.

    It must lie in the supported years (``domain.complaint.check_range``, 1970..2199). A
    command that writes (``writes``: flags, follow-ups, archive entries, forgetting state)
    refuses an instant later than this machine's clock (plus ``FUTURE_NOW_SLACK``) unless
    ``allow_future`` (``--allow-future-now``): what it writes as of a future instant would
    stand in the CRM, the state and the append-only archive as if that time had come."""
    try:
        if len(text.strip()) == 10:
            raise InstantError(f"'{text}' is a date; {flag} needs a date-time with offset")
        instant = check_range(parse_instant(text, ZoneInfo("UTC")), text)
    except InstantError as exc:
        raise fail(f"{flag}: {exc}") from exc
    clock = int(time.time())
    if writes and not allow_future and instant > clock + FUTURE_NOW_SLACK:
        raise fail(
            f"--now: {format_instant(instant)} is in the future (this machine's clock says "
            f"{format_instant(clock)}); this command writes as of --now, so it refuses a "
            "future instant: pass --allow-future-now to do it anyway"
        )
    return instant
