"""``crmsync local import`` and ``crmsync local export``: records in and out of the local CRM.

Import reads JSON Lines (one ``{"Id": ..., field: value}`` object per line) or a Data
Loader CSV export (header row = API field names in any case, empty cells = null; the
delimiter ``,`` ``;`` or tab and a UTF-8 byte order mark are detected; another encoding is
named before anything is imported, or read with ``--encoding``). Bad rows are reported on
standard error with their line number, in file order, and skipped; the good ones are kept.
A quoted cell that is never closed is reported at the line where it opens and the lines
after it are read again, so it cannot swallow the rows that follow.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from crmsync.adapters.crm.local import SCHEMA_FILE, LocalCrm
from crmsync.cli.app import EXIT_BAD_INPUT, EXIT_FAILED, app, err, fail
from crmsync.cli.progress import interactive, progress
from crmsync.errors import CrmError, did_you_mean
from crmsync.ports import FieldInfo
from crmsync.private_file import PrivateFile
from crmsync.service.evaluate_stream import NESTED_TOO_DEEPLY
from crmsync.terminal import escape_controls

local_app = typer.Typer(
    name="local",
    help="The embedded local CRM (a SQLite file): import, export and delete records.",
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
    missing, or the object is neither in the local CRM's schema, a custom ``..__c`` object,
    nor one holding records: a misspelt name gets a suggestion).
    """
    kind = format.value if format is not None else _EXTENSIONS.get(file.suffix.lower())
    if kind is None:
        raise fail(f"{file}: cannot tell the format from the extension; pass --format jsonl|csv")
    chosen = _encoding(encoding)
    _check_encoding(file, chosen)
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
            _csv_rows(handle, file, fields, ignore_unknown=ignore_unknown)
            if kind == "csv"
            else _jsonl_rows(handle, file)
        )
        total = _count_lines(file) if interactive() else None
        imported, updated, bad = _import(crm, object, file, rows, total, upsert=upsert)
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
        except RecursionError:
            yield number, NESTED_TOO_DEEPLY
            continue
        if not isinstance(data, dict):
            yield number, f"not a JSON object but {type(data).__name__}"
            continue
        data.pop("attributes", None)  # the REST API's per-record metadata
        yield number, data


class _Lines:
    """The physical lines of a CSV file for ``csv.reader``, remembering which lines the
    current record took, so that a bad record spanning lines can be read again from its
    second line (an unclosed quote must not swallow the rows after it)."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._pending: deque[tuple[int, str]] = deque()
        self._next = 1
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pending:
            item = self._pending.popleft()
        else:
            text = self._handle.readline()
            if text == "":
                raise StopIteration
            item = (self._next, text)
            self._next += 1
        self.taken.append(item)
        return item[1]

    def first_line(self) -> int:
        """The line the current record started on."""
        return self.taken[0][0] if self.taken else self._next

    def again_after_first(self, *, include_first: bool = False) -> None:
        """Read the current record's lines after its first one (or all of them) again."""
        self._pending.extendleft(reversed(self.taken[0 if include_first else 1 :]))
        self.taken = []


def _delimiter(first_line: str) -> str:
    """The header's delimiter: whichever of ``,`` ``;`` tab occurs most outside quotes."""
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(
    handle: TextIO,
    file: Path,
    fields: Mapping[str, FieldInfo] | None,
    *,
    ignore_unknown: bool = False,
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, record) for each CSV row (its first line), or (line, problem) for a bad one,
    in file order. A record that spans lines yet has the wrong number of cells, or that
    runs to the end of the file inside quotes, is an unclosed quote: reported at its first
    line, and the lines after that line are read again."""
    lines = _Lines(handle)
    try:
        first = next(lines, None)
    except UnicodeDecodeError as exc:
        raise fail(f"{file}:1: cannot be decoded ({exc.reason})") from exc
    if first is None or not first.strip():
        raise fail(f"{file}:1: no CSV header row (the file is empty); nothing was imported")
    delimiter = _delimiter(first)
    lines.again_after_first(include_first=True)  # the csv reader reads the header too

    def reader() -> Iterator[list[str]]:
        return csv.reader(lines, delimiter=delimiter, strict=True)

    rows = reader()
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise fail(f"{file}:1: not a CSV header ({exc})") from exc
    if header is None:
        return
    names = _header_names(file, [h.strip() for h in header], fields, ignore_unknown)
    while True:
        lines.taken = []
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            line = lines.first_line()
            if len(lines.taken) > 1 or "end of data" in str(exc):
                yield line, "unclosed quote: a quoted cell opened on this line is never closed"
            else:
                yield line, f"not valid CSV ({exc})"
            lines.again_after_first()
            rows = reader()
            continue
        line = lines.first_line()
        if not cells or cells == [""]:
            continue
        if len(cells) != len(names):
            if len(lines.taken) > 1:
                yield (
                    line,
                    f"unclosed quote: the row reads as lines {line}-{lines.taken[-1][0]} with "
                    f"{len(cells)} cells but the header has {len(names)}",
                )
                lines.again_after_first()
                rows = reader()
                continue
            yield line, f"has {len(cells)} cells but the header has {len(names)}"
            continue
        try:
            yield (
                line,
                {
                    name: _cell(name, cell, fields.get(name) if fields is not None else None)
                    for name, cell in zip(names, cells, strict=True)
                    if name is not None
                },
            )
        except _BadRowError as exc:
            yield line, str(exc)


def _header_names(
    file: Path,
    header: list[str],
    fields: Mapping[str, FieldInfo] | None,
    ignore_unknown: bool = False,
) -> list[str | None]:
    """The header's API names (matched case-insensitively against a declared schema, as
    Data Loader writes them upper case; None for a column skipped by ``ignore_unknown``,
    listed once in a warning); unknown, blank or repeated names exit 2."""
    if any(not h for h in header):
        raise fail(f"{file}:1: the header has a blank column name")
    names: list[str | None] = list(header)
    if fields is not None:
        by_lower = {name.lower(): name for name in fields}
        unknown = [h for h in header if h.lower() not in by_lower]
        if unknown and not ignore_unknown:
            raise fail(
                f"{file}:1: not fields of this object: {', '.join(unknown)} "
                "(--ignore-unknown skips them)"
            )
        if unknown:
            err.print(
                f"{file}:1: warning: skipping {len(unknown)} column"
                f"{'' if len(unknown) == 1 else 's'} that are not fields of this object: "
                f"{', '.join(unknown)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        names = [by_lower.get(h.lower()) for h in header]
    known = [n for n in names if n is not None]
    repeated = sorted({n for n in known if known.count(n) > 1})
    if repeated:
        raise fail(f"{file}:1: repeated columns: {', '.join(repeated)}")
    return names


def _cell(name: str, text: str, info: FieldInfo | None) -> Any:
    """A CSV cell as a field value: empty is null; numbers and booleans by the field type."""
    if text == "":
        return None
    kind = info.type if info is not None else "string"
    if kind == "double":
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError as exc:
            raise _BadRowError(f"{name}: '{text}' is not a number") from exc
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


def _encoding(given: str | None) -> str:
    """The codec to read with: UTF-8 (a byte order mark skipped) unless ``--encoding``."""
    if given is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(given).name
    except LookupError as exc:
        raise fail(f"--encoding: unknown encoding '{given}'") from exc
    return "utf-8-sig" if name == "utf-8" else name


def _check_encoding(file: Path, encoding: str) -> None:
    """Exit 2 before anything is imported when the file does not decode: the line of the
    first undecodable byte, and the encoding to pass (a UTF-16 byte order mark is named)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with open(file, "rb") as handle:
            head = handle.read(4)
            if encoding == "utf-8-sig" and head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                raise fail(
                    f"{file}: is UTF-16 (it starts with a UTF-16 byte order mark); "
                    "save it as UTF-8 or pass --encoding utf-16"
                )
            chunk = head
            while chunk:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = line + chunk[: exc.start].count(b"\n")
                    byte = chunk[exc.start : exc.start + 1].hex()
                    hint = (
                        "it may be Windows-1252 or Latin-1: pass --encoding cp1252 (or save "
                        "the file as UTF-8)"
                        if encoding == "utf-8-sig"
                        else "pass the file's encoding with --encoding"
                    )
                    raise fail(
                        f"{file}:{at}: byte 0x{byte} is not {encoding.removesuffix('-sig')}; "
                        f"{hint}; nothing was imported"
                    ) from exc
                line += chunk.count(b"\n")
                chunk = handle.read(1 << 20)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise fail(
            f"{file}: ends inside a character ({exc.reason}); pass the file's encoding "
            "with --encoding; nothing was imported"
        ) from exc
    except OSError as exc:
        raise fail(f"{file}: cannot read ({exc.strerror})") from exc


def _check_object(path: Path, object: str) -> None:
    """Exit 2, nothing created, for an object the local CRM does not know: not in its
    schema, no custom object (``..__c``) and holding no records in the file at ``path``
    (a misspelt ``--object Kase`` would otherwise become a new object)."""
    known = _local_objects()
    if object in known or object.endswith("__c"):
        return
    if path.is_file():
        try:
            with LocalCrm(path) as crm:
                crm.describe(object)  # an object without a schema that already holds records
            return
        except CrmError:
            pass  # not there either (an unreadable file is named when it is opened)
    raise fail(
        f"--object: the local CRM has no object '{object}'{did_you_mean(object, known)}; "
        f"its objects are {', '.join(known)} and custom objects (named ..__c)"
    )


def _local_objects() -> list[str]:
    """The objects the local CRM's schema lists (``local_schema.json``), in its order."""
    return list(json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["objects"])


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
            raise fail(f"{exc}{did_you_mean(object, _local_objects())}") from exc
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


@local_app.command("delete")
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
