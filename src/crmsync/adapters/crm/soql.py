"""SOQL text built from caller-given names and values: every literal escaped, every name checked.

The Salesforce adapter never pastes a value into SOQL by hand; it goes through ``literal``.
Field and object names come from the mapping file and are checked against the API-name
pattern (letters, digits, underscores; dotted for relationships) before they are used.

Escaping follows the SOQL reference: inside a quoted string the characters ``\\``, ``'``,
``"``, newline, carriage return, tab, backspace and form feed are written as backslash
sequences. Date-times are UTC with milliseconds (``2026-03-02T09:15:00.000Z``), dates
``YYYY-MM-DD``, booleans ``true``/``false``, missing values ``null``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

from crmsync.errors import QueryValueError
from crmsync.ports import FieldFilter

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_RE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")


def name(text: str) -> str:
    """An object or field API name, checked; raises ``QueryValueError`` for anything else."""
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise QueryValueError(f"'{text}' is not a Salesforce API name")
    return text


def escape(text: str) -> str:
    """``text`` escaped for use inside a single-quoted SOQL string (quotes not added)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def datetime_literal(instant: datetime) -> str:
    """An aware datetime as a SOQL dateTime literal in UTC with milliseconds (floored)."""
    if instant.tzinfo is None:
        raise QueryValueError(f"{instant!r} has no time zone")
    u = instant.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S") + f".{u.microsecond // 1000:03d}Z"


def literal(value: object) -> str:
    """The SOQL literal of a Python value (text, number, bool, None, date, datetime)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryValueError(f"{value!r} is not a finite number")
        return repr(value)
    if isinstance(value, datetime):
        return datetime_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + escape(value) + "'"
    raise QueryValueError(f"a {type(value).__name__} cannot be a SOQL value")


def condition(f: FieldFilter) -> str | None:
    """The SOQL condition of a filter; None when it can match nothing (``in`` no values)."""
    field = name(f.field)
    if f.op == "=":
        return f"{field} = {literal(f.value)}"
    if f.op == "!=":
        return f"{field} != {literal(f.value)}"
    if f.op == "in":
        if isinstance(f.value, str | bytes):
            raise QueryValueError(f"filter on {f.field}: 'in' needs a collection of values")
        values = list(dict.fromkeys(f.value))
        if not values:
            return None
        return f"{field} IN ({', '.join(literal(v) for v in values)})"
    raise QueryValueError(f"filter on {f.field}: unknown operator '{f.op}'")


def select(
    object: str,
    fields: Sequence[str],
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
) -> str:
    """``SELECT fields FROM object [WHERE a AND b] [ORDER BY x, y]``; names are checked,
    ``where`` items are conditions made by this module."""
    text = f"SELECT {', '.join(name(f) for f in fields)} FROM {name(object)}"
    if where:
        text += " WHERE " + " AND ".join(where)
    if order_by:
        text += " ORDER BY " + ", ".join(name(f) for f in order_by)
    return text


def select_in_chunks(
    object: str,
    fields: Sequence[str],
    key: str,
    values: Sequence[str],
    where: Sequence[str] = (),
    *,
    max_length: int,
    max_values: int | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Queries ``... WHERE key IN (chunk) AND where...`` covering ``values`` in order, each
    at most ``max_length`` characters (and ``max_values`` values); yields (soql, chunk)."""
    head = f"SELECT {', '.join(name(f) for f in fields)} FROM {name(object)} WHERE {name(key)} IN ("
    tail = ")" + "".join(f" AND {w}" for w in where)
    budget = max_length - len(head) - len(tail)
    chunk: list[str] = []
    used = 0
    for value in values:
        item = literal(value)
        cost = len(item) + (2 if chunk else 0)
        if len(item) > budget:
            raise QueryValueError(f"value {value!r} is too long for one SOQL statement")
        if chunk and (used + cost > budget or (max_values and len(chunk) >= max_values)):
            yield head + ", ".join(literal(v) for v in chunk) + tail, chunk
            chunk, used, cost = [], 0, len(item)
        chunk.append(value)
        used += cost
    if chunk:
        yield head + ", ".join(literal(v) for v in chunk) + tail, chunk
