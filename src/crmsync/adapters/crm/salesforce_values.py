"""Salesforce's value formats, written once: record ids, base62 numbers and datetime text.

Standard library only, so that the Salesforce adapter, the local CRM (which keeps the
reference org's formats), the test fake and the demo's ids share one definition without one
adapter importing another.

Ids
    A record id is 15 case-sensitive letters and digits; its 18-character form appends one
    character per 5-character chunk telling which of the chunk's letters are upper case
    (bit ``i`` set for an upper-case character at position ``i``, the 5 bits an index into
    ``A-Z0-5``). ``salesforce_id`` adds that suffix, ``normalize_id`` turns any well-formed
    id into the 18-character form (the one the API answers with). An id is a 3-character
    key prefix naming the object, then characters the org chooses; made ids put a base62
    number (``base62``) there; ``demo_record_id`` makes the demo's ids that way.

Datetimes
    Salesforce writes a datetime as UTC text with milliseconds,
    ``2026-03-02T09:15:00.000+0000`` (``format_sf_datetime``; ``sf_instant_text`` of whole
    seconds since 1970; a year below 1000 as ``strftime`` writes it), and takes any
    ISO-8601 date-time with an offset (``parse_sf_datetime``). Datetimes are kept to the
    millisecond: ``epoch_millis`` floors or rounds an instant up to whole milliseconds,
    ``ceil_millisecond`` rounds an instant up (a window bound ``< until`` then leaves out
    nothing kept before ``until``), ``millis_text`` is the text of a millisecond count.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta

__all__ = [
    "BASE62",
    "base62",
    "ceil_millisecond",
    "demo_record_id",
    "epoch_millis",
    "format_sf_datetime",
    "millis_text",
    "normalize_id",
    "parse_sf_datetime",
    "salesforce_id",
    "sf_instant_text",
]

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
"""The digits of a base62 number, by value (Salesforce's id characters)."""

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_CHECKSUM = string.ascii_uppercase + "012345"
_UPPER_AS_BITS = str.maketrans({c: "1" if c.isupper() else "0" for c in BASE62})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# ----------------------------------------------------------------------------- ids


def salesforce_id(fifteen: str) -> str:
    """The 18-character form of a 15-character Salesforce id (adds the case checksum).

    Raises ``ValueError`` for anything but 15 ASCII letters and digits.
    """
    if len(fifteen) != 15 or not (fifteen.isascii() and fifteen.isalnum()):
        raise ValueError(f"'{fifteen}' is not a 15-character Salesforce id")
    bits = fifteen.translate(_UPPER_AS_BITS)  # "1" for upper case, position by position
    return (
        fifteen
        + _CHECKSUM[int(bits[4::-1], 2)]
        + _CHECKSUM[int(bits[9:4:-1], 2)]
        + _CHECKSUM[int(bits[14:9:-1], 2)]
    )


def normalize_id(value: str) -> str | None:
    """An id given as 15 or 18 letters and digits, as 18 characters; None if malformed.

    An 18-character id is kept as given (its suffix is not checked, as the API answers
    with the id it stores)."""
    if not _ID.fullmatch(value):
        return None
    return salesforce_id(value) if len(value) == 15 else value


_DEMO_KEY_PREFIXES = {"complaint": "500", "user": "005"}


def demo_record_id(kind: str, serial: int) -> str:
    """The demo's id of a ``complaint`` (a Case) or a ``user`` numbered ``serial`` (below
    62**12): its object's key prefix, then ``serial`` in 12 base62 digits, checksummed."""
    return salesforce_id(_DEMO_KEY_PREFIXES[kind] + base62(serial, 12))


def base62(number: int, width: int) -> str:
    """``number`` (0 or more) in base62 digits, left-padded with ``0`` to ``width``."""
    if number < 0:
        raise ValueError(f"{number} is negative")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


# ----------------------------------------------------------------------------- datetimes


def format_sf_datetime(instant: datetime) -> str:
    """Salesforce's datetime text: ``2026-03-02T09:15:00.000+0000`` (UTC, milliseconds
    floored; a year below 1000 as ``strftime`` writes it). Raises ``ValueError`` for a naive
    datetime."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone (the CRM needs aware datetimes)")
    u = instant.astimezone(UTC)
    millis = f".{u.microsecond // 1000:03d}+0000"
    if u.year < 1000:
        return u.strftime("%Y-%m-%dT%H:%M:%S") + millis
    return f"{u.year}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}{millis}"


def sf_instant_text(instant: int) -> str:
    """Salesforce's datetime text of whole seconds since 1970 (``format_sf_datetime``)."""
    return format_sf_datetime(_EPOCH + timedelta(seconds=instant))


def parse_sf_datetime(text: str) -> datetime:
    """Parse ISO-8601 date-time text with an offset (Salesforce's or ``...Z``) into UTC.

    Raises ``ValueError`` for a date, a naive date-time or malformed text.
    """
    stripped = text.strip()
    if len(stripped) <= 10:
        raise ValueError(f"'{text}' is not a date-time")
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"'{text}' has no UTC offset")
    return parsed.astimezone(UTC)


def epoch_millis(instant: datetime, *, ceil: bool = False) -> int:
    """Milliseconds since 1970 of an aware instant, floored (rounded up with ``ceil``).

    Raises ``ValueError`` for a naive datetime."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone (the CRM needs aware datetimes)")
    micros = (instant - _EPOCH) // _MICROSECOND
    return -(-micros // 1000) if ceil else micros // 1000


def millis_text(millis: int) -> str:
    """Salesforce's datetime text of a count of milliseconds since 1970."""
    return format_sf_datetime(_EPOCH + timedelta(milliseconds=millis))


def ceil_millisecond(instant: datetime) -> datetime:
    """``instant`` rounded up to a whole millisecond (kept when it is one already).

    Raises ``ValueError`` for a naive datetime."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone (the CRM needs aware datetimes)")
    micros = instant.microsecond % 1000
    return instant if micros == 0 else instant + timedelta(microseconds=1000 - micros)
