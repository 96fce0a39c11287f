"""Instants: parsing ISO-8601 values into UTC epoch seconds and formatting them back.

An instant is ``int`` seconds since the Unix epoch (UTC). Fractions of a second are
dropped (the contract's inputs carry whole seconds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from crmsync.errors import InstantError


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The instant of ``day``'s start (00:00 local, ``fold=0``) in ``zone``."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


_CACHE_LIMIT = 1 << 16
_midnights: dict[tuple[str, ZoneInfo], int] = {}  # (a date alone, zone) -> local midnight
_NOT_SHAPED: Final = -(1 << 60)
"""``_shaped_instant``'s answer for a value it leaves to ``datetime.fromisoformat``."""


def _two_digits(raw: bytes, at: int) -> int:
    """The number the two ASCII digits at ``raw[at]`` write, or -1."""
    tens = raw[at] - 48
    ones = raw[at + 1] - 48
    if 0 <= tens <= 9 and 0 <= ones <= 9:
        return tens * 10 + ones
    return -1


def _shaped_instant(value: str) -> int:
    """The epoch seconds of ``YYYY-MM-DDTHH:MM:SS`` followed by ``Z`` or ``+hh:mm``/``-hh:mm``
    (the shapes exports write), read field by field; ``_NOT_SHAPED`` for anything else,
    including a field out of range (``datetime.fromisoformat`` then decides).

    The same seconds as ``fromisoformat`` for every value it accepts (a property test
    compares them), without building a ``datetime``.
    """
    raw = value.encode()
    size = len(raw)
    if size == 20:
        if raw[19] != 90:  # Z
            return _NOT_SHAPED
        offset = 0
    elif size == 25:
        sign = raw[19]
        if (sign != 43 and sign != 45) or raw[22] != 58:  # noqa: PLR1714 - + or -, then :
            return _NOT_SHAPED
        hours = _two_digits(raw, 20)
        minutes = _two_digits(raw, 23)
        if hours < 0 or hours > 23 or minutes < 0 or minutes > 59:
            return _NOT_SHAPED
        offset = hours * 3600 + minutes * 60
        if sign == 45:
            offset = -offset
    else:
        return _NOT_SHAPED
    if raw[4] != 45 or raw[7] != 45 or raw[10] != 84 or raw[13] != 58 or raw[16] != 58:
        return _NOT_SHAPED  # - - T : :
    century = _two_digits(raw, 0)
    year = _two_digits(raw, 2)
    month = _two_digits(raw, 5)
    day = _two_digits(raw, 8)
    hour = _two_digits(raw, 11)
    minute = _two_digits(raw, 14)
    second = _two_digits(raw, 17)
    if century < 0 or year < 0 or hour < 0 or minute < 0 or second < 0:
        return _NOT_SHAPED
    year += century * 100
    if year < 1 or month < 1 or month > 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return _NOT_SHAPED
    if day > 28:  # the month's length
        if month == 2:
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            last = 29 if leap else 28
        elif month == 4 or month == 6 or month == 9 or month == 11:  # noqa: PLR1714 - hot path: no set
            last = 30
        else:
            last = 31
        if day > last:
            return _NOT_SHAPED
    # days since 1970-01-01 of a proleptic Gregorian date (years counted from March)
    march_year = year - 1 if month <= 2 else year
    era = march_year // 400
    year_of_era = march_year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second - offset


def parse_instant(value: object, zone: ZoneInfo) -> int:
    """Parse an event value: ISO date-time with offset, or a date (local midnight in ``zone``).

    Raises ``InstantError`` for a naive date-time, a malformed string or a non-string.
    """
    if type(value) is str and (len(value) == 20 or len(value) == 25):
        instant = _shaped_instant(value)  # the usual shapes, read without a datetime
        if instant != _NOT_SHAPED:
            return instant
    if not isinstance(value, str):
        raise InstantError(f"{value!r} is not an instant (expected an ISO-8601 string)")
    text = value.strip()
    if len(text) == 10:
        key = (text, zone)
        midnight = _midnights.get(key)
        if midnight is None:
            try:
                midnight = local_midnight(date.fromisoformat(text), zone)
            except ValueError as exc:
                raise InstantError(f"'{value}' is not a valid date") from exc
            if len(_midnights) >= _CACHE_LIMIT:
                _midnights.clear()
            _midnights[key] = midnight
        return midnight
    try:
        general = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InstantError(f"'{value}' is not an ISO-8601 instant") from exc
    if general.tzinfo is None:
        raise InstantError(f"'{value}' has no UTC offset (write Z or +hh:mm)")
    return int(general.timestamp() // 1)


def parse_deadline_value(value: object, zone: ZoneInfo) -> int:
    """Parse a ``target_field`` value: a date means the end of that local day (next midnight)."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise InstantError(f"'{value}' is not a valid date") from exc
        return local_midnight(day + timedelta(days=1), zone)
    return parse_instant(value, zone)


@lru_cache(maxsize=65536)
def format_instant(instant: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant_or_none(instant: int | None) -> str | None:
    """``format_instant``'s text, or None for no instant (a clock not started, no deadline)."""
    return None if instant is None else format_instant(instant)


def to_local(instant: int, zone: ZoneInfo) -> datetime:
    """The aware local date-time of ``instant`` in ``zone``."""
    return datetime.fromtimestamp(instant, zone)
