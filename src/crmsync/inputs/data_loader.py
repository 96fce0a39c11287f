"""Records to import: JSON Lines (one ``{"Id": ..., field: value}`` object per line) or a
Data Loader CSV export (header row = API field names in any case, empty cells = null; the
delimiter ``,`` ``;`` or tab and a UTF-8 byte order mark are detected; another encoding is
named before anything is read, or read with the codec given).

Rows come out as ``(line, record)``, or ``(line, problem)`` for a bad row, in file order; a
problem with the file as a whole (encoding, header, a JSON array) is an ``InputFileError``
naming the file and line. A quoted cell that is never closed is reported at the line where
it opens and the lines after it are read again, so it cannot swallow the rows that follow.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from crmsync.domain.unicode_text import lone_surrogate_at, lone_surrogate_problem
from crmsync.errors import InputFileError
from crmsync.inputs.encoding import refuse_wide_text
from crmsync.ports import FieldInfo
from crmsync.service.evaluate_stream import NESTED_TOO_DEEPLY

EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
"""The format of an input file by its extension."""
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class _BadRowError(ValueError):
    """One input row cannot be read."""


def jsonl_rows(handle: TextIO, file: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, record) for each non-blank line, or (line, problem) for a bad one."""
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        if number == 1 and text.lstrip().startswith("["):
            raise InputFileError(
                f"{file}: holds a JSON array; import reads JSON Lines (one object per line)"
            )
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
        where = lone_surrogate_at(data) if "\\u" in text else None  # only an escape spells one
        if where is not None:
            yield number, lone_surrogate_problem(where)
            continue
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


def csv_rows(
    handle: TextIO,
    file: Path,
    fields: Mapping[str, FieldInfo] | None,
    *,
    ignore_unknown: bool = False,
    warn: Callable[[str], None] = lambda _message: None,
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, record) for each CSV row (its first line), or (line, problem) for a bad one,
    in file order. A record that spans lines yet has the wrong number of cells, or that
    runs to the end of the file inside quotes, is an unclosed quote: reported at its first
    line, and the lines after that line are read again."""
    lines = _Lines(handle)
    try:
        first = next(lines, None)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{file}:1: cannot be decoded ({exc.reason})") from exc
    if first is None or not first.strip():
        raise InputFileError(
            f"{file}:1: no CSV header row (the file is empty); nothing was imported"
        )
    delimiter = _delimiter(first)
    lines.again_after_first(include_first=True)  # the csv reader reads the header too

    def reader() -> Iterator[list[str]]:
        return csv.reader(lines, delimiter=delimiter, strict=True)

    rows = reader()
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise InputFileError(f"{file}:1: not a CSV header ({exc})") from exc
    if header is None:
        return
    names = _header_names(file, [h.strip() for h in header], fields, ignore_unknown, warn)
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
    ignore_unknown: bool,
    warn: Callable[[str], None],
) -> list[str | None]:
    """The header's API names (matched case-insensitively against a declared schema, as
    Data Loader writes them upper case; None for a column skipped by ``ignore_unknown``,
    listed once in a warning); unknown, blank or repeated names raise ``InputFileError``."""
    if any(not h for h in header):
        raise InputFileError(f"{file}:1: the header has a blank column name")
    names: list[str | None] = list(header)
    if fields is not None:
        by_lower = {name.lower(): name for name in fields}
        unknown = [h for h in header if h.lower() not in by_lower]
        if unknown and not ignore_unknown:
            raise InputFileError(
                f"{file}:1: not fields of this object: {', '.join(unknown)} "
                "(--ignore-unknown skips them)"
            )
        if unknown:
            warn(
                f"{file}:1: warning: skipping {len(unknown)} column"
                f"{'' if len(unknown) == 1 else 's'} that are not fields of this object: "
                f"{', '.join(unknown)}"
            )
        names = [by_lower.get(h.lower()) for h in header]
    known = [n for n in names if n is not None]
    repeated = sorted({n for n in known if known.count(n) > 1})
    if repeated:
        raise InputFileError(f"{file}:1: repeated columns: {', '.join(repeated)}")
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


def codec_for(given: str | None) -> str:
    """The codec to read with: UTF-8 (a byte order mark skipped) unless ``--encoding``."""
    if given is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(given).name
    except LookupError as exc:
        raise InputFileError(f"--encoding: unknown encoding '{given}'") from exc
    return "utf-8-sig" if name == "utf-8" else name


def check_decodes(file: Path, encoding: str) -> None:
    """Raise ``InputFileError`` when the file does not decode (checked before anything is
    imported): the line of the
    first undecodable byte, and the encoding to pass (a UTF-16 byte order mark is named)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with open(file, "rb") as handle:
            head = handle.read(4)
            if encoding == "utf-8-sig":
                refuse_wide_text(str(file), head, "save it as UTF-8 or pass --encoding {encoding}")
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
                    raise InputFileError(
                        f"{file}:{at}: byte 0x{byte} is not {encoding.removesuffix('-sig')}; "
                        f"{hint}; nothing was imported"
                    ) from exc
                line += chunk.count(b"\n")
                chunk = handle.read(1 << 20)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{file}: ends inside a character ({exc.reason}); pass the file's encoding "
            "with --encoding; nothing was imported"
        ) from exc
    except OSError as exc:
        raise InputFileError(f"{file}: cannot read ({exc.strerror})") from exc
