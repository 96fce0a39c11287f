"""The options more than one command takes, declared once (name, short form, help).

``CharterOpt``, ``AllowFutureNowOpt`` and ``WorkersOpt`` are whole declarations; ``input_option``,
``output_option`` and ``now_option`` keep the name and short form and take the help
text, which says what the command does with the option.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

CharterOpt = Annotated[
    Path | None,
    typer.Option(
        "--charter",
        "-c",
        help="Charter YAML file (default: the settings' charter: CRMSYNC_CHARTER, crmsync.toml "
        "or the profile's).",
    ),
]
AllowFutureNowOpt = Annotated[
    bool,
    typer.Option(
        "--allow-future-now",
        help="Accept a --now later than this machine's clock (refused otherwise: what the "
        "command writes would stand as if that time had come).",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Worker processes (default: one per core for large inputs)."
    ),
]


def input_option(help: str) -> Any:
    """``--input`` / ``-i``: JSON Lines of canonical complaints, ``-`` for standard input."""
    return typer.Option("--input", "-i", help=help)


def output_option(help: str) -> Any:
    """``--output`` / ``-o``: the file to write instead of standard output."""
    return typer.Option("--output", "-o", help=help)


def now_option(help: str) -> Any:
    """``--now``: the instant the command works as of (ISO-8601 with offset)."""
    return typer.Option("--now", help=help)


class TableOrJson(StrEnum):
    """``--format`` of a command that prints a table or JSON."""

    TABLE = "table"
    JSON = "json"


TableFormatOpt = Annotated[
    TableOrJson | None,
    typer.Option(
        "--format",
        metavar="table|json",
        help="table or json (one object per line); default: a table on a terminal, JSON "
        "on a pipe or into a file.",
    ),
]
JsonAliasOpt = Annotated[
    bool, typer.Option("--json", hidden=True, help="Deprecated: the same as --format json.")
]


def wants_json(chosen: TableOrJson | None, json_alias: bool) -> bool:
    """Whether to print JSON: ``--format json`` or the old ``--json``; without either,
    when standard output is not a terminal (a pipe or a file gets JSON lines, a person a
    table)."""
    if json_alias or chosen is TableOrJson.JSON:
        return True
    return chosen is None and not sys.stdout.isatty()
