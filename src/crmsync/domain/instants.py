"""Instants: parsing ISO-8601 values into UTC epoch seconds and formatting them back.

An instant is ``int`` seconds since the Unix epoch (UTC). Fractions of a second are
dropped (the contract's inputs carry whole seconds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from crmsync.errors import InstantError


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The instant of ``day``'s start (00:00 local, ``fold=0``) in ``zone``."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_CACHE_LIMIT = 1 << 16
_offsets: dict[tzinfo, int] = {}  # a parsed offset -> its seconds east of UTC
_midnights: dict[tuple[str, ZoneInfo], int] = {}  # (a date alone, zone) -> local midnight


def _offset_seconds(zone: tzinfo, parsed: datetime) -> int:
    offset = _offsets.get(zone)
    if offset is None:
        delta = parsed.utcoffset()
        assert delta is not None  # an aware date-time from fromisoformat
        offset = _offsets[zone] = delta.days * 86400 + delta.seconds
    return offset


def parse_instant(value: object, zone: ZoneInfo) -> int:
    """Parse an event value: ISO date-time with offset, or a date (local midnight in ``zone``).

    Raises ``InstantError`` for a naive date-time, a malformed string or a non-string.
    """
    if type(value) is str and (len(value) == 20 or len(value) == 25):
        # fast path for YYYY-MM-DDTHH:MM:SS followed by Z or +hh:mm, the usual shapes:
        # the epoch seconds from the fields, the same whole seconds as the general path
        try:
            parsed: datetime | None = datetime.fromisoformat(value)
        except ValueError:
            parsed = None  # the general path below says what is wrong
        if parsed is not None and parsed.microsecond == 0:
            parsed_zone = parsed.tzinfo
            if parsed_zone is not None:
                return (
                    (parsed.toordinal() - _EPOCH_ORDINAL) * 86400
                    + parsed.hour * 3600
                    + parsed.minute * 60
                    + parsed.second
                    - _offset_seconds(parsed_zone, parsed)
                )
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
