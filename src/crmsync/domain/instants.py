"""Instants: parsing ISO-8601 values into UTC epoch seconds and formatting them back.

An instant is ``int`` seconds since the Unix epoch (UTC). Fractions of a second are
dropped (the contract's inputs carry whole seconds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


class InstantError(ValueError):
    """A value is not an instant the contract accepts."""


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The instant of ``day``'s start (00:00 local, ``fold=0``) in ``zone``."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


def parse_instant(value: object, zone: ZoneInfo) -> int:
    """Parse an event value: ISO date-time with offset, or a date (local midnight in ``zone``).

    Raises ``InstantError`` for a naive date-time, a malformed string or a non-string.
    """
    if type(value) is str and len(value) == 20 and value[19] == "Z":
        # fast path for the usual YYYY-MM-DDTHH:MM:SSZ, same result as below: whole
        # seconds, so the float timestamp is exact and int() needs no flooring
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            pass  # the general path below says what is wrong
    if not isinstance(value, str):
        raise InstantError(f"{value!r} is not an instant (expected an ISO-8601 string)")
    text = value.strip()
    if len(text) == 10:
        try:
            return local_midnight(date.fromisoformat(text), zone)
        except ValueError:
            raise InstantError(f"'{value}' is not a valid date") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError(f"'{value}' is not an ISO-8601 instant") from None
    if parsed.tzinfo is None:
        raise InstantError(f"'{value}' has no UTC offset (write Z or +hh:mm)")
    return int(parsed.timestamp() // 1)


def parse_deadline_value(value: object, zone: ZoneInfo) -> int:
    """Parse a ``target_field`` value: a date means the end of that local day (next midnight)."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise InstantError(f"'{value}' is not a valid date") from None
        return local_midnight(day + timedelta(days=1), zone)
    return parse_instant(value, zone)


@lru_cache(maxsize=65536)
def format_instant(instant: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_local(instant: int, zone: ZoneInfo) -> datetime:
    """The aware local date-time of ``instant`` in ``zone``."""
    return datetime.fromtimestamp(instant, zone)
