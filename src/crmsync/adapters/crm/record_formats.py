"""How a CRM writes ids and datetimes, for the stores that keep its records (the local CRM).

A ``RecordFormat`` is named by a schema data file (``"format"``, default ``salesforce``):

- ``salesforce``: 18-character ids (15 accepted), made as the object's key prefix, ``LC``
  and a base62 number with the checksum; datetimes as ``2026-03-02T09:15:00.000+0000``,
  any ISO-8601 date-time with an offset accepted.
- ``dataverse``: GUID ids in lower case, made from the object's key prefix (up to 8 hex
  digits) and the number; datetimes as ``2026-03-02T09:15:00.000Z``, only UTC ``Z`` text
  accepted (as the Web API takes it), or a date alone (its midnight UTC).

Both keep datetimes to the millisecond in fixed-width text, so that text order is time
order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crmsync.adapters.crm.salesforce_values import (
    base62,
    demo_record_id,
    epoch_millis,
    format_sf_datetime,
    millis_text,
    normalize_id,
    parse_sf_datetime,
    salesforce_id,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UTC_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z)?")
_SF_ID_MARK = "LC"  # characters 4-5 of made Salesforce ids (a pod id there): never hand-written


@dataclass(frozen=True, slots=True)
class RecordFormat:
    """A CRM's id and datetime text.

    ``instant_text(instant)`` is the stored text of an aware instant (milliseconds
    floored), ``millis_text(millis)`` that of a count of milliseconds since 1970;
    ``parse_datetime(text)`` reads a written value into UTC (``ValueError`` when the CRM
    would refuse it); ``normalize_id(text)`` is the stored form of an id, None when
    malformed; ``made_id(key_prefix, number)`` the id made for a record's number.
    """

    name: str
    instant_text: Callable[[datetime], str]
    millis_text: Callable[[int], str]
    parse_datetime: Callable[[str], datetime]
    normalize_id: Callable[[str], str | None]
    made_id: Callable[[str, int], str]


def _sf_made_id(prefix: str, number: int) -> str:
    return salesforce_id(prefix + _SF_ID_MARK + base62(number, 10))


SALESFORCE = RecordFormat(
    name="salesforce",
    instant_text=format_sf_datetime,
    millis_text=millis_text,
    parse_datetime=parse_sf_datetime,
    normalize_id=normalize_id,
    made_id=_sf_made_id,
)


def _dv_instant_text(instant: datetime) -> str:
    return _dv_millis_text(epoch_millis(instant))


def _dv_millis_text(millis: int) -> str:
    u = _EPOCH + timedelta(milliseconds=millis)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def _dv_parse_datetime(text: str) -> datetime:
    stripped = text.strip()
    if not _UTC_TEXT.fullmatch(stripped):
        raise ValueError(f"'{text}' is not a UTC date-time (YYYY-MM-DDTHH:MM:SSZ)")
    head, _, fraction = stripped.removesuffix("Z").partition(".")
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return datetime.fromisoformat(head).replace(tzinfo=UTC, microsecond=micros)


def _dv_normalize_id(value: str) -> str | None:
    return value.lower() if _GUID.fullmatch(value) else None


def _dv_made_id(prefix: str, number: int) -> str:
    mark = int(prefix, 16) if re.fullmatch(r"[0-9a-fA-F]{1,8}", prefix) else 0
    return f"{mark:08x}-0000-4000-8000-{number:012x}"


DATAVERSE = RecordFormat(
    name="dataverse",
    instant_text=_dv_instant_text,
    millis_text=_dv_millis_text,
    parse_datetime=_dv_parse_datetime,
    normalize_id=_dv_normalize_id,
    made_id=_dv_made_id,
)

FORMATS = {f.name: f for f in (SALESFORCE, DATAVERSE)}
"""Every format by the name a schema file gives."""


_DEMO_KINDS = {"complaint": 0xC0, "user": 0x05}


def demo_id(record_format: RecordFormat, kind: str, serial: int) -> str:
    """The demo's id of a ``complaint`` or a ``user`` numbered ``serial`` (below 62**12) in
    ``record_format``: a Salesforce Case or User id, or a GUID marked by its kind."""
    if record_format.name == "salesforce":
        return demo_record_id(kind, serial)
    digits = f"{serial:024x}"
    return f"{_DEMO_KINDS[kind]:08x}-{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"
