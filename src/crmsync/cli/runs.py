"""``crmsync runs``: the jobs the replicas of a shared queue ran, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from crmsync.cli.app import PlainCommand, app, fail, parse_now
from crmsync.cli.options import TableFormatOpt, wants_json
from crmsync.cli.profile import load_settings
from crmsync.cli.progress import out_console
from crmsync.errors import ConfigError, CrmSyncError
from crmsync.ports import RunRow


class JobKind(StrEnum):
    SYNC = "sync"
    ARCHIVE = "archive"
    REPORT = "report"
    PRUNE = "prune"


COLUMNS = (
    "profile",
    "kind",
    "replica",
    "started_at",
    "finished_at",
    "status",
    "records_read",
    "flags_written",
    "tasks_created",
    "tasks_completed",
    "error",
)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_as_dict(row: RunRow) -> dict[str, object]:
    """One job as ``--format json`` prints it (instants in UTC with ``Z``)."""
    out: dict[str, object] = {name: getattr(row, name) for name in COLUMNS}
    out["started_at"] = _instant(row.started_at)
    out["finished_at"] = _instant(row.finished_at)
    return out


@app.command("runs", cls=PlainCommand)
def runs_cmd(
    profile: Annotated[
        str | None, typer.Option("--profile", help="Only this profile's jobs.")
    ] = None,
    kind: Annotated[
        JobKind | None,
        typer.Option("--kind", metavar="sync|archive|report|prune", help="Only jobs of this kind."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only jobs started at or after this ISO-8601 instant."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many jobs.")] = 1000,
    output: TableFormatOpt = None,
) -> None:
    """List the jobs the replicas of the shared queue ran (state on PostgreSQL), newest
    first: profile, kind, replica, start and end, status, counts and error.

    Exit status: 0 listed (perhaps none); 1 the state store failed; 2 bad options or a
    state store that is not PostgreSQL."""
    from crmsync.bootstrap import open_queue_tables  # noqa: PLC0415 - the root, on use

    start = None if since is None else datetime.fromtimestamp(parse_now(since, flag="--since"), UTC)
    settings = load_settings()
    try:
        tables = open_queue_tables(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:
        raise fail(str(exc), code=1) from exc
    try:
        rows = tables.runs(
            profile=profile, kind=None if kind is None else kind.value, since=start, limit=limit
        )
    except CrmSyncError as exc:
        raise fail(str(exc), code=1) from exc
    finally:
        tables.close()
    if wants_json(output, False):
        for row in rows:
            typer.echo(json.dumps(run_as_dict(row), ensure_ascii=False))
        return
    _table(rows)


def _table(rows: list[RunRow]) -> None:
    from rich.table import Table  # noqa: PLC0415 - only for a table

    table = Table(box=None)
    whole = {"kind", "started_at", "finished_at", "status"}
    for column in COLUMNS:  # a narrow terminal folds a value, never cuts it short
        table.add_column(column, overflow="fold", no_wrap=column in whole)
    for row in rows:
        shown = run_as_dict(row)
        for name in ("started_at", "finished_at"):  # to the second on a screen
            value = shown[name]
            shown[name] = None if value is None else f"{str(value)[:19]}Z"
        table.add_row(*("" if shown[c] is None else str(shown[c]) for c in COLUMNS))
    out_console().print(table)
