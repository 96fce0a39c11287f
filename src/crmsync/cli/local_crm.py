"""``crmsync local import`` and ``crmsync local export``: records in and out of the local CRM.

Import reads JSON Lines (one ``{"Id": ..., field: value}`` object per line) or a Data
Loader CSV export (header row = API field names, empty cells = null). Bad rows are
reported on standard error with their line number and skipped; the good ones are kept.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crmsync.adapters.local_crm import LocalCrm
from crmsync.cli.app import EXIT_BAD_INPUT, app, err, fail
from crmsync.errors import CrmError
from crmsync.ports import FieldInfo

local_app = typer.Typer(
    name="local",
    help="The embedded local CRM (a SQLite file): import and export records.",
    no_args_is_help=True,
)
app.add_typer(local_app, name="local")

CHUNK = 500  # rows handed to the CRM at a time
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class Format(StrEnum):
    """File formats of import and export."""

    jsonl = "jsonl"
    csv = "csv"


def _default_db() -> Path:
    """``<data dir>/local-crm.sqlite3``; data dir: ``$CRMSYNC_DATA_DIR`` or ``./crmsync-data``."""
    return Path(os.environ.get("CRMSYNC_DATA_DIR") or "crmsync-data") / "local-crm.sqlite3"


DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="The local CRM file (default: $CRMSYNC_DATA_DIR/local-crm.sqlite3)."),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--format", help="jsonl or csv (default: from the file's extension)."),
]


class _BadRowError(ValueError):
    """One input row cannot be read."""


# ----------------------------------------------------------------------------- import


@local_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="JSON Lines (.jsonl, .json) or CSV (.csv) file.")],
    object: Annotated[str, typer.Option("--object", help="The object: Case, Task, User...")],
    db: DbOpt = None,
    format: FormatOpt = None,
) -> None:
    """Import records into the local CRM, keeping their Ids (new ones are made when absent).

    Exit status: 0 all rows imported; 3 some rows were bad (each reported on standard error
    with its line number, the good rows are imported); 2 nothing could be imported (the
    file cannot be read, its format or CSV header is wrong).
    """
    kind = format.value if format is not None else _EXTENSIONS.get(file.suffix.lower())
    if kind is None:
        raise fail(f"{file}: cannot tell the format from the extension; pass --format jsonl|csv")
    path = db if db is not None else _default_db()
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(open(file, encoding="utf-8-sig", newline=""))
        except OSError as exc:
            raise fail(f"{file}: cannot read ({exc.strerror})") from None
        try:
            crm = stack.enter_context(LocalCrm(path))
            fields = _declared_fields(crm, object)
        except CrmError as exc:
            raise fail(str(exc)) from None
        rows = _csv_rows(handle, file, fields) if kind == "csv" else _jsonl_rows(handle, file)
        total = _count_lines(file) if err.is_terminal else None
        imported, bad = _import(crm, object, file, rows, total)
    plural = "" if imported == 1 else "s"
    err.print(
        f"imported {imported} {object} record{plural} from {file} into {path}"
        + (f"; {bad} bad row{'' if bad == 1 else 's'} skipped" if bad else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


def _import(
    crm: LocalCrm,
    object: str,
    file: Path,
    rows: Iterator[tuple[int, dict[str, Any] | str]],
    total: int | None,
) -> tuple[int, int]:
    """Feed rows to the CRM in chunks; report bad ones; return (imported, bad)."""
    imported = bad = 0
    progress = Progress(
        TextColumn(f"importing {object}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=total is None,
    )

    def report(line: int, message: str) -> None:
        progress.console.print(
            f"{file}:{line}: {message}", highlight=False, markup=False, soft_wrap=True
        )

    with progress:
        task = progress.add_task("import", total=total)
        chunk: list[tuple[int, dict[str, Any]]] = []
        last_line = 0

        def flush() -> None:
            nonlocal imported, bad
            if not chunk:
                return
            results = crm.insert_records(object, [row for _, row in chunk])
            for (line, _), result in zip(chunk, results, strict=True):
                if result.ok:
                    imported += 1
                else:
                    bad += 1
                    report(line, f"{result.message} ({result.error_code})")
            chunk.clear()
            progress.update(task, completed=last_line)

        for line, row in rows:
            last_line = line
            if isinstance(row, str):
                bad += 1
                report(line, row)
                continue
            chunk.append((line, row))
            if len(chunk) >= CHUNK:
                flush()
        flush()
        progress.update(task, completed=total)
    return imported, bad


def _jsonl_rows(handle: TextIO, file: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, record) for each non-blank line, or (line, problem) for a bad one."""
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        if number == 1 and text.lstrip().startswith("["):
            raise fail(f"{file}: holds a JSON array; import reads JSON Lines (one object per line)")
        try:
            data = json.loads(text)
        except ValueError as exc:
            yield number, f"not valid JSON ({exc})"
            continue
        if not isinstance(data, dict):
            yield number, f"not a JSON object but {type(data).__name__}"
            continue
        data.pop("attributes", None)  # the REST API's per-record metadata
        yield number, data


def _csv_rows(
    handle: TextIO, file: Path, fields: Mapping[str, FieldInfo] | None
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, record) for each CSV row (its first line), or (line, problem) for a bad one."""
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise fail(f"{file}:1: not a CSV header ({exc})") from None
    if header is None:
        return
    names = _header_names(file, [h.strip() for h in header], fields)
    previous = reader.line_num
    while True:
        line = previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            previous = reader.line_num
            yield line, f"not valid CSV ({exc})"
            continue
        previous = reader.line_num
        if not cells or cells == [""]:
            continue
        if len(cells) != len(names):
            yield line, f"has {len(cells)} cells but the header has {len(names)}"
            continue
        try:
            yield (
                line,
                {
                    name: _cell(name, cell, fields.get(name) if fields is not None else None)
                    for name, cell in zip(names, cells, strict=True)
                },
            )
        except _BadRowError as exc:
            yield line, str(exc)


def _header_names(
    file: Path, header: list[str], fields: Mapping[str, FieldInfo] | None
) -> list[str]:
    """The header's API names (matched case-insensitively against a declared schema, as
    Data Loader writes them upper case); unknown, blank or repeated names exit 2."""
    if fields is not None:
        by_lower = {name.lower(): name for name in fields}
        unknown = [h for h in header if h.lower() not in by_lower]
        if unknown:
            raise fail(f"{file}:1: not fields of this object: {', '.join(unknown)}")
        header = [by_lower[h.lower()] for h in header]
    if any(not h for h in header):
        raise fail(f"{file}:1: the header has a blank column name")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise fail(f"{file}:1: repeated columns: {', '.join(repeated)}")
    return header


def _cell(name: str, text: str, info: FieldInfo | None) -> Any:
    """A CSV cell as a field value: empty is null; numbers and booleans by the field type."""
    if text == "":
        return None
    kind = info.type if info is not None else "string"
    if kind == "double":
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise _BadRowError(f"{name}: '{text}' is not a number") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise _BadRowError(f"{name}: '{text}' is not a finite number")
        return number
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _BadRowError(f"{name}: '{text}' is not true or false")
    return text


def _declared_fields(crm: LocalCrm, object: str) -> dict[str, FieldInfo] | None:
    """The object's declared schema, or None when it takes any field."""
    if not crm.has_schema(object):
        return None
    return crm.describe(object)


def _count_lines(file: Path) -> int:
    with open(file, "rb") as handle:
        return sum(1 for _ in handle)


# ----------------------------------------------------------------------------- export


@local_app.command("export")
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

    The output imports again with ``crmsync local import``. Exit status 2 when the local CRM
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
            raise fail(str(exc)) from None
        try:
            sink: TextIO = (
                stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
                if output is not None
                else sys.stdout
            )
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
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
    where = output if output is not None else "standard output"
    err.print(
        f"exported {count} {object} record{'' if count == 1 else 's'} to {where}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


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
