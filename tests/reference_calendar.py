"""A slow, obviously-correct business calendar: the oracle for the compiled one.

Written from semantics sections 2-3 alone, independently of
``crmsync.domain.business_calendar`` (which it must never import). Nothing is compiled
or searched: an instant is open iff its local wall-clock time (``zoneinfo``) lies in an
opening interval of a working local date; business minutes and hours walk the time line
one UTC minute at a time, business days walk the calendar one local date at a time.

One choice where section 3 is silent: a working day none of whose opening wall-clock
minutes exists (its only hours fall in a skipped DST hour) has no closing time, so it
is not counted as a working day for ``business_days``.

Correct only for zones whose UTC offsets are whole minutes (every zone after ~1900),
so that openness is constant inside each UTC minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_MINUTE = 60
_EPOCH = date(1970, 1, 1)
# an instant showing a wall time on a local date lies within these bounds of that date's
# naive UTC midnight (UTC offsets stay within -12h..+14h)
_BEFORE = 15 * 3600
_AFTER = 39 * 3600
# a business count that walks further than this is reported as "never ends"
_WALK_LIMIT_DAYS = 400

HolidaySource = Callable[[int], Mapping[date, str]]


class NeverEndsError(Exception):
    """The reference walked past its limit without finding enough opening time."""


class ReferenceCalendar:
    """Zone, weekly hours ``weekday -> [(start_minute, end_minute)]`` and closed dates."""

    def __init__(
        self,
        zone_name: str,
        weekly: Mapping[int, Sequence[tuple[int, int]]],
        *,
        holidays: HolidaySource | None = None,
        extra_closed: frozenset[date] = frozenset(),
        extra_open: frozenset[date] = frozenset(),
    ) -> None:
        self.zone = ZoneInfo(zone_name)
        self.weekly = {weekday: list(weekly.get(weekday, ())) for weekday in range(7)}
        self.holidays = holidays
        self.extra_closed = extra_closed
        self.extra_open = extra_open
        self._holiday_years: dict[int, Mapping[date, str]] = {}

    # ------------------------------------------------------------- the definitions
    def is_closed(self, day: date) -> bool:
        """Closed = (public holidays + extra closed dates) - extra open dates."""
        if day in self.extra_open:
            return False
        return day in self.extra_closed or day in self._holidays_of(day.year)

    def _holidays_of(self, year: int) -> Mapping[date, str]:
        if self.holidays is None:
            return {}
        if year not in self._holiday_years:
            self._holiday_years[year] = dict(self.holidays(year))
        return self._holiday_years[year]

    def is_working_day(self, day: date) -> bool:
        """A local date that has opening hours and is not closed."""
        return bool(self.weekly[day.weekday()]) and not self.is_closed(day)

    def is_open(self, instant: int) -> bool:
        """True iff the wall clock at ``instant`` is inside an interval of a working day."""
        local = datetime.fromtimestamp(instant, self.zone)
        day = local.date()
        if not self.is_working_day(day):
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.weekly[day.weekday()])

    def wall_minute_exists(self, day: date, minute: int) -> bool:
        """True iff some instant shows ``minute`` (after midnight) of ``day`` on the wall."""
        wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        for fold in (0, 1):
            instant = int(wall.replace(tzinfo=self.zone, fold=fold).timestamp())
            if datetime.fromtimestamp(instant, self.zone).replace(tzinfo=None) == wall:
                return True
        return False

    def counts_as_working_day(self, day: date) -> bool:
        """A working day that has at least one open instant (see the module docstring)."""
        return self.is_working_day(day) and any(
            self.wall_minute_exists(day, minute)
            for a, b in self.weekly[day.weekday()]
            for minute in range(a, b)
        )

    def last_closing(self, day: date) -> int:
        """End of the last open run among the instants whose wall clock is on ``day``.

        Found by walking every UTC minute that could show a wall time on ``day``.
        """
        naive_midnight = (day - _EPOCH).days * 86400
        last_open: int | None = None
        for minute in range(naive_midnight - _BEFORE, naive_midnight + _AFTER, _MINUTE):
            local = datetime.fromtimestamp(minute, self.zone)
            if local.date() == day and self.is_open(minute):
                last_open = minute
        if last_open is None:
            raise ValueError(f"{day} has no open instant, so no closing time")
        return last_open + _MINUTE

    # ------------------------------------------------------------- the deadlines
    def deadline(self, start: int, amount: int, unit: str) -> int:
        """The deadline of ``amount unit`` counted from ``start`` (semantics section 3)."""
        if unit == "minutes":
            return start + amount * 60
        if unit == "hours":
            return start + amount * 3600
        if unit in ("days", "weeks"):
            days = amount if unit == "days" else 7 * amount
            local = datetime.fromtimestamp(start, self.zone)
            day = local.date() + timedelta(days=days)
            target = datetime(
                day.year,
                day.month,
                day.day,
                local.hour,
                local.minute,
                local.second,
                tzinfo=self.zone,
                fold=0,
            )
            return int(target.timestamp())
        if unit == "business_days":
            return self.business_days(start, amount)
        if unit == "business_minutes":
            return self.business_seconds(start, amount * 60)
        if unit == "business_hours":
            return self.business_seconds(start, amount * 3600)
        raise ValueError(f"unknown unit {unit}")

    def business_seconds(self, start: int, seconds: int) -> int:
        """Earliest instant by which ``seconds`` of opening time have passed since ``start``."""
        remaining = seconds
        minute = start - start % _MINUTE
        if minute < start:  # what is left of start's own minute
            if self.is_open(minute):
                remaining -= minute + _MINUTE - start
            minute += _MINUTE
        limit = start + _WALK_LIMIT_DAYS * 86400
        while minute < limit:
            if self.is_open(minute):
                if remaining <= _MINUTE:
                    return minute + remaining
                remaining -= _MINUTE
            minute += _MINUTE
        raise NeverEndsError(f"no {seconds} s of opening time within {_WALK_LIMIT_DAYS} days")

    def opening_seconds(self, start: int, end: int) -> int:
        """Seconds of opening time in ``[start, end)``, minute by minute."""
        total = 0
        minute = start - start % _MINUTE
        while minute < end:
            if self.is_open(minute):
                total += min(minute + _MINUTE, end) - max(minute, start)
            minute += _MINUTE
        return total

    def business_days(self, start: int, n: int) -> int:
        """Last closing time of the n-th working day after ``day0`` (section 3, literally)."""
        start_day = datetime.fromtimestamp(start, self.zone).date()
        if self.counts_as_working_day(start_day) and start <= self.last_closing(start_day):
            day0 = start_day
        else:
            day0 = self.next_working_day(start_day)
        day = day0
        for _ in range(n):
            day = self.next_working_day(day)
        return self.last_closing(day)

    def next_working_day(self, day: date) -> date:
        """The first date after ``day`` that counts as a working day."""
        for offset in range(1, _WALK_LIMIT_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.counts_as_working_day(candidate):
                return candidate
        raise NeverEndsError(f"no working day within {_WALK_LIMIT_DAYS} days after {day}")
