"""``crmsync local import`` and ``crmsync local export``: records in and out of the local CRM.

Import reads JSON Lines or a Data Loader CSV export (``crmsync.inputs.data_loader``). Bad
rows are reported on standard error with their line number, in file order, and skipped;
the good ones are kept.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from crmsync.adapters.crm.local import LocalCrm, refuse_unknown_object, schema_objects
from crmsync.cli.app import EXIT_BAD_INPUT, EXIT_FAILED, PlainCommand, err, fail
from crmsync.cli.profile import load_profile
from crmsync.cli.progress import interactive, progress
from crmsync.errors import CrmError, InputFileError, did_you_mean
from crmsync.inputs.data_loader import (
    EXTENSIONS,
    check_decodes,
    codec_for,
    csv_rows,
    jsonl_rows,
)
from crmsync.ports import FieldInfo
from crmsync.private_file import PrivateFile
from crmsync.terminal import escape_controls

COMMANDS = typer.Typer(
    help="The embedded local CRM (a SQLite file): import, export and delete records.",
    no_args_is_help=True,
)
"""``crmsync local ...``, registered by the local CRM's wiring (``CrmWiring.commands``)."""

CHUNK = 500  # rows handed to the CRM at a time


class Format(StrEnum):
    """File formats of import and export."""

    jsonl = "jsonl"
    csv = "csv"


def _default_db() -> Path:
    """The local CRM of the settings: ``local-crm.sqlite3`` in the data directory of
    CRMSYNC_DATA_DIR, crmsync.toml or the profile CRMSYNC_PROFILE names."""
    from crmsync.bootstrap import local_crm_path  # noqa: PLC0415 - the root, on use

    return local_crm_path(load_profile())


DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="The local CRM file (default: local-crm.sqlite3 in the settings' data "
        "directory: CRMSYNC_DATA_DIR, crmsync.toml or the profile's).",
    ),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--format", help="jsonl or csv (default: from the file's extension)."),
]


# ----------------------------------------------------------------------------- import


@COMMANDS.command("import", cls=PlainCommand)
def import_cmd(  # noqa: PLR0917 - one parameter per command-line option
    file: Annotated[Path, typer.Argument(help="JSON Lines (.jsonl, .json) or CSV (.csv) file.")],
    object: Annotated[str, typer.Option("--object", help="The object: Case, Task, User...")],
    db: DbOpt = None,
    format: FormatOpt = None,
    upsert: Annotated[
        bool,
        typer.Option("--upsert", help="Update the record of a row whose Id exists (else refused)."),
    ] = False,
    ignore_unknown: Annotated[
        bool,
        typer.Option(
            "--ignore-unknown",
            help="Skip CSV columns that are not fields of the object (listed once).",
        ),
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="The file's encoding (default UTF-8, BOM or not)."),
    ] = None,
) -> None:
    """Import records into the local CRM, keeping their Ids (new ones are made when absent).

    Exit status: 0 all rows imported (a file without records, such as a header-only CSV,
    says on standard error that nothing was imported); 3 some rows were bad (each reported
    on standard error with its line number, the good rows are imported); 2 nothing could be
    imported (the file cannot be read or decoded, its format or CSV header is wrong or
    missing, or the object is neither in the local CRM's schema, a custom object (named ..__c),
    nor one holding records: a misspelt name gets a suggestion).
    """
    kind = format.value if format is not None else EXTENSIONS.get(file.suffix.lower())
    if kind is None:
        raise fail(f"{file}: cannot tell the format from the extension; pass --format jsonl|csv")
    try:
        chosen = codec_for(encoding)
        check_decodes(file, chosen)
    except InputFileError as exc:
        raise fail(str(exc)) from exc
    path = db if db is not None else _default_db()
    _check_object(path, object)
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(open(file, encoding=chosen, newline=""))
        except OSError as exc:
            raise fail(f"{file}: cannot read ({exc.strerror})") from exc
        try:
            crm = stack.enter_context(LocalCrm(path))
            fields = _declared_fields(crm, object)
        except CrmError as exc:
            raise fail(str(exc)) from exc
        rows = (
            csv_rows(handle, file, fields, ignore_unknown=ignore_unknown, warn=_warn)
            if kind == "csv"
            else jsonl_rows(handle, file)
        )
        total = _count_lines(file) if interactive() else None
        try:
            imported, updated, bad = _import(crm, object, file, rows, total, upsert=upsert)
        except InputFileError as exc:  # the file as a whole: its header, a JSON array
            raise fail(str(exc)) from exc
    plural = "" if imported == 1 else "s"
    err.print(
        f"{file}: warning: the file holds no records; nothing was imported into {path}"
        if imported == bad == 0
        else f"imported {imported} {object} record{plural} from {file} into {path}"
        + (f" ({updated} updated by Id)" if updated else "")
        + (f"; {bad} bad row{'' if bad == 1 else 's'} skipped" if bad else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


def _warn(message: str) -> None:
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def _import(
    crm: LocalCrm,
    object: str,
    file: Path,
    rows: Iterator[tuple[int, dict[str, Any] | str]],
    total: int | None,
    *,
    upsert: bool = False,
) -> tuple[int, int, int]:
    """Feed rows to the CRM in chunks; report bad ones in file order; return (imported,
    of them updated by Id, bad)."""
    imported = updated = bad = 0

    def report(line: int, message: str) -> None:
        # through sys.stderr, so that it prints above the progress line on a terminal
        print(escape_controls(f"{file}:{line}: {message}"), file=sys.stderr)

    with progress(f"importing {object}: lines", total=total) as tracker:
        chunk: list[tuple[int, dict[str, Any]]] = []
        last_line = shown = 0

        problems: list[tuple[int, str]] = []  # reading problems of rows in the chunk

        def flush() -> None:
            nonlocal imported, updated, bad, shown
            results = crm.insert_records(object, [row for _, row in chunk], upsert=upsert)
            found = list(problems)
            for (line, _), result in zip(chunk, results, strict=True):
                if result.ok:
                    imported += 1
                    updated += 0 if result.created else 1
                else:
                    hint = ""
                    if result.error_code == "DUPLICATE_VALUE" and "Id" in result.fields:
                        hint = "; --upsert updates it"
                    found.append((line, f"{result.message} ({result.error_code}){hint}"))
            for line, message in sorted(found, key=lambda item: item[0]):
                bad += 1
                report(line, message)
            chunk.clear()
            problems.clear()
            tracker.advance(last_line - shown)
            shown = last_line

        for line, row in rows:
            last_line = line
            if isinstance(row, str):
                problems.append((line, row))
            else:
                chunk.append((line, row))
            if len(chunk) + len(problems) >= CHUNK:
                flush()
        flush()
    return imported, updated, bad


def _check_object(path: Path, object: str) -> None:
    """Exit 2, nothing created, for an object the local CRM does not take records of."""
    try:
        refuse_unknown_object(path, object)
    except CrmError as exc:
        raise fail(f"--object: {exc}") from exc


def _declared_fields(crm: LocalCrm, object: str) -> dict[str, FieldInfo] | None:
    """The object's declared schema, or None when it takes any field."""
    if not crm.has_schema(object):
        return None
    return crm.describe(object)


def _count_lines(file: Path) -> int:
    with open(file, "rb") as handle:
        return sum(1 for _ in handle)


# ----------------------------------------------------------------------------- export


@COMMANDS.command("export", cls=PlainCommand)
def export_cmd(
    object: Annotated[str, typer.Argument(help="The object to export: Case, Task...")],
    format: FormatOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here instead of standard output."),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export every record of OBJECT (all fields) as JSON Lines or CSV, in insertion order.

    The output imports again with 'crmsync local import'. Exit status 2 when the local CRM
    file or the object does not exist.
    """
    path = db if db is not None else _default_db()
    if not path.is_file():
        raise fail(f"no local CRM at {path} (import records first, or pass --db)")
    kind = format.value if format is not None else None
    if kind is None:
        kind = "csv" if output is not None and output.suffix.lower() == ".csv" else "jsonl"
    count = 0
    with ExitStack() as stack:
        try:
            crm = stack.enter_context(LocalCrm(path))
            columns = list(crm.describe(object))
        except CrmError as exc:
            raise fail(f"{exc}{did_you_mean(object, schema_objects())}") from exc
        try:
            written = PrivateFile.open(output, newline="") if output is not None else None
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from exc
        sink: TextIO = written.handle if written is not None else sys.stdout
        if written is not None:
            # after a failure: no partial export, the old file kept, the write's error reported
            stack.callback(written.discard)
        where = output if output is not None else "standard output"
        try:
            if kind == "csv":
                writer = csv.writer(sink)
                writer.writerow(columns)
                for record in crm.export_records(object):
                    writer.writerow([_csv_text(record.fields.get(c)) for c in columns])
                    count += 1
            else:
                for record in crm.export_records(object):
                    sink.write(json.dumps(record.fields, ensure_ascii=False) + "\n")
                    count += 1
            sink.flush()
            if written is not None:
                written.commit()
        except OSError as exc:
            raise fail(f"cannot write {where}: {exc.strerror or exc}", EXIT_FAILED) from exc
    err.print(
        f"exported {count} {object} record{'' if count == 1 else 's'} to {where}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


# ----------------------------------------------------------------------------- delete


@COMMANDS.command("delete", cls=PlainCommand)
def delete_cmd(
    object: Annotated[str, typer.Argument(help="The object of the records: Case, Task...")],
    ids: Annotated[list[str], typer.Argument(help="The ids of the records to delete.")],
    db: DbOpt = None,
) -> None:
    """Delete records from the local CRM, as a person deletes them in a CRM: the next sync
    cycle sees the deletion and forgets the complaint (its archived versions stay).

    Exit status 0; 3 when some ids are not records of OBJECT (each named, the others
    deleted); 2 when the local CRM file does not exist.
    """
    path = db if db is not None else _default_db()
    if not path.is_file():
        raise fail(f"no local CRM at {path} (import records first, or pass --db)")
    try:
        with LocalCrm(path) as crm:
            results = crm.delete_records(object, ids)
    except CrmError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    missing = [r for r in results if not r.ok]
    for result in missing:
        err.print(
            f"{escape_controls(result.ref)}: {result.error_code}: no {object} with this id",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    done = len(results) - len(missing)
    err.print(
        f"deleted {done} {object} record{'' if done == 1 else 's'}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if missing:
        raise typer.Exit(EXIT_BAD_INPUT)


def _csv_text(value: Any) -> str:
    """A field value as Data Loader writes it: null empty, booleans ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)
