"""The business calendar of a charter (semantics sections 2-3), compiled for fast deadlines.

Opening time is the set of instants whose *local wall-clock time* lies inside an opening
interval of a working day. On a DST change this is exact: a wall-clock hour that is
skipped is not open, a wall-clock hour that repeats is open twice. The calendar is
compiled lazily, a span of whole years at a time, into

* the working days in order, each with its last closing instant, and
* the opening intervals as UTC instants with a cumulative index of opening seconds,

so that a business deadline costs two binary searches, never a walk over days.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crmsync.domain.durations import Duration, Unit
from crmsync.errors import CalendarError

HolidaySource = Callable[[int], Mapping[date, str]]
"""Returns the public holidays (date -> name) of one calendar year."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SEARCH_YEARS = 12  # how far ahead a business deadline may look before the calendar is "closed"


@dataclass(frozen=True, slots=True)
class OpeningInterval:
    """Opening hours ``[start, end)`` in minutes after local midnight (end may be 1440)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end <= 1440):
            raise ValueError(f"opening interval {self} must satisfy 00:00 <= start < end <= 24:00")

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )

    @classmethod
    def parse(cls, text: str) -> OpeningInterval:
        """Parse ``HH:MM-HH:MM`` (closing up to 24:00, after opening); ``ValueError`` says why."""
        shape = _HOURS_SHAPE.match(text)
        if not shape:
            raise ValueError(
                f"'{text}' is not opening hours: write 'HH:MM-HH:MM', e.g. '09:00-17:00'"
            )
        h1, m1, h2, m2 = (int(g) for g in shape.groups())
        if h1 > 23 or m1 > 59:
            raise ValueError(f"'{text}': opening time {h1:02d}:{m1:02d} is not a time of day")
        if h2 * 60 + m2 > 1440 or m2 > 59:
            raise ValueError(
                f"'{text}': closing time {h2:02d}:{m2:02d} is not a time of day "
                "(a day ends at 24:00)"
            )
        if h2 * 60 + m2 <= h1 * 60 + m1:
            raise ValueError(f"'{text}': the closing time must be after the opening time")
        return cls(h1 * 60 + m1, h2 * 60 + m2)


_HOURS_SHAPE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$", re.ASCII)
OPENING_HOURS_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
"""What ``OpeningInterval.parse`` accepts but the closing-after-opening rule, as a regular
expression (for the charter JSON Schema)."""


def overlaps(
    intervals: Iterable[OpeningInterval],
) -> list[tuple[OpeningInterval, OpeningInterval]]:
    """The neighbours (in start order) among one day's intervals that overlap.

    Intervals that only touch (``09:00-12:00``, ``12:00-17:00``) do not overlap.
    """
    ordered = sorted(intervals, key=lambda i: i.start)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b.start < a.end]


def _no_holidays(_year: int) -> Mapping[date, str]:
    return {}


class BusinessCalendar:
    """An IANA zone, weekly opening hours and closed dates; computes deadlines exactly."""

    def __init__(
        self,
        zone: ZoneInfo,
        weekly_hours: Mapping[int, Sequence[OpeningInterval]],
        *,
        holidays: HolidaySource = _no_holidays,
        extra_closed: Mapping[date, str] | None = None,
        extra_open: frozenset[date] = frozenset(),
    ) -> None:
        """``weekly_hours`` maps ``date.weekday()`` (0 = Monday) to sorted, disjoint intervals."""
        self.zone = zone
        self.weekly_hours: dict[int, tuple[OpeningInterval, ...]] = {}
        for weekday in range(7):
            intervals = tuple(sorted(weekly_hours.get(weekday, ()), key=lambda i: i.start))
            for before, after in overlaps(intervals):
                raise ValueError(
                    f"opening intervals {before} and {after} on {WEEKDAYS[weekday]} overlap"
                )
            self.weekly_hours[weekday] = intervals
        if not any(self.weekly_hours.values()):
            raise ValueError("the calendar has no opening hours on any weekday")
        self._holidays = holidays
        self._extra_closed = dict(extra_closed or {})
        self._extra_open = extra_open
        self._holiday_years: dict[int, Mapping[date, str]] = {}
        self._lo: int | None = None  # first compiled year
        self._hi: int | None = None  # last compiled year
        self._covered_from = 1 << 62  # instants from here on are inside the compiled span
        self._covered_to = -(1 << 62)  # instants before here are inside the compiled span
        # working days
        self._wd_date: list[date] = []
        self._wd_close: list[int] = []
        self._wd_next: list[int] = []  # per working day: lower bound of the next date's start
        # opening intervals (UTC instants) and cumulative opening seconds at each end
        self._iv_start: list[int] = []
        self._iv_end: list[int] = []
        self._iv_cum_end: list[int] = []

    # ------------------------------------------------------------------ closed dates
    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is closed (holiday name, extra closure) or ``None`` if not closed."""
        if day in self._extra_open:
            return None
        if day in self._extra_closed:
            return self._extra_closed[day]
        year = self._holiday_years.get(day.year)
        if year is None:
            year = self._holiday_years[day.year] = dict(self._holidays(day.year))
        return year.get(day)

    def is_working_day(self, day: date) -> bool:
        """A local date that has opening hours and is not closed."""
        return bool(self.weekly_hours[day.weekday()]) and self.closed_reason(day) is None

    def opening_instants(self, day: date) -> list[tuple[int, int]]:
        """The UTC ``[start, end)`` instants at which ``day``'s wall clock is inside its hours.

        Empty for a day that is not a working day.
        """
        if not self.is_working_day(day):
            return []
        return self._wall_intervals(day, self.weekly_hours[day.weekday()])

    def _wall_intervals(
        self, day: date, intervals: Sequence[OpeningInterval]
    ) -> list[tuple[int, int]]:
        naive_midnight = (day.toordinal() - _EPOCH_ORDINAL) * _DAY
        # every UTC offset segment that can touch this local day (offsets lie in -12h..+14h)
        lo, hi = naive_midnight - 15 * 3600, naive_midnight + _DAY + 13 * 3600
        result: list[tuple[int, int]] = []
        for seg_lo, seg_hi, offset in self._offset_segments(lo, hi):
            for interval in intervals:
                a = naive_midnight + interval.start * 60 - offset
                b = naive_midnight + interval.end * 60 - offset
                a, b = max(a, seg_lo), min(b, seg_hi)
                if a < b:
                    result.append((a, b))
        result.sort()
        merged: list[tuple[int, int]] = []
        for a, b in result:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def _offset(self, instant: int) -> int:
        offset = datetime.fromtimestamp(instant, self.zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())

    def _offset_segments(self, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """Split ``[lo, hi)`` into runs of constant UTC offset: ``(start, end, offset)``."""
        segments: list[tuple[int, int, int]] = []
        start, offset = lo, self._offset(lo)
        probe = lo
        step = 12 * 3600  # no zone changes its offset twice within 12 hours
        while probe < hi - 1:
            # probe up to the last second, hi - 1: a change in the final step counts too
            nxt = min(probe + step, hi - 1)
            nxt_offset = self._offset(nxt)
            if nxt_offset != offset:
                # binary search the first second with the new offset in (probe, nxt]
                a, b = probe, nxt
                while b - a > 1:
                    mid = (a + b) // 2
                    if self._offset(mid) == offset:
                        a = mid
                    else:
                        b = mid
                segments.append((start, b, offset))
                start, offset = b, self._offset(b)
                probe = b
                continue
            probe = nxt
        segments.append((start, hi, offset))
        return segments

    # ------------------------------------------------------------------ compilation
    def _compile(self, lo: int, hi: int) -> None:
        """Compile the years ``lo..hi``, which lie just before or just after the compiled span."""
        wd_date: list[date] = []
        wd_close: list[int] = []
        wd_next: list[int] = []
        spans: list[tuple[int, int]] = []
        day = date(lo, 1, 1)
        last = date(hi, 12, 31)
        one = timedelta(days=1)
        while day <= last:
            day_spans = self.opening_instants(day)
            if day_spans:
                wd_date.append(day)
                wd_close.append(day_spans[-1][1])
                wd_next.append(self._next_day_from(day))
                spans.extend(day_spans)
            day += one
        old_spans = list(zip(self._iv_start, self._iv_end, strict=True))
        if self._lo is None or self._hi is None:
            pass
        elif hi + 1 == self._lo:  # new years first
            wd_date += self._wd_date
            wd_close += self._wd_close
            wd_next += self._wd_next
            spans += old_spans
            hi = self._hi
        elif lo == self._hi + 1:  # new years last
            wd_date = self._wd_date + wd_date
            wd_close = self._wd_close + wd_close
            wd_next = self._wd_next + wd_next
            spans = old_spans + spans
            lo = self._lo
        else:
            raise AssertionError(f"years {lo}-{hi} do not adjoin {self._lo}-{self._hi}")
        if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
            # a fall-back across midnight (e.g. America/Goose_Bay until 2010: 00:01 -> 23:01)
            # interleaves two days' instants; the index needs them in time order
            spans.sort()
        iv_start: list[int] = []
        iv_end: list[int] = []
        iv_cum_end: list[int] = []
        total = 0
        for a, b in spans:
            total += b - a
            iv_start.append(a)
            iv_end.append(b)
            iv_cum_end.append(total)
        self._lo, self._hi = lo, hi
        self._covered_from = (date(lo, 1, 1).toordinal() - _EPOCH_ORDINAL + 2) * _DAY
        self._covered_to = (date(hi, 12, 31).toordinal() - _EPOCH_ORDINAL - 1) * _DAY
        self._wd_date, self._wd_close, self._wd_next = wd_date, wd_close, wd_next
        self._iv_start, self._iv_end, self._iv_cum_end = iv_start, iv_end, iv_cum_end

    def _next_day_from(self, day: date) -> int:
        """A lower bound of the first instant whose local date is after ``day``.

        Local midnight of the next day with ``fold=0`` is that instant unless midnight is
        skipped, when ``fold=1`` (the offset after the change) is earlier: take the minimum.
        """
        midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        return min(int(midnight.timestamp()), int(midnight.replace(fold=1).timestamp()))

    def _cover(self, instant: int) -> None:
        """Make sure the compiled span starts at least a day before ``instant``."""
        if instant >= self._covered_from:
            return
        year = datetime.fromtimestamp(instant - 2 * _DAY, self.zone).year
        if self._lo is None or self._hi is None:
            self._compile(year, year + 1)
        elif year < self._lo:
            self._compile(year, self._lo - 1)

    def _extend(self, start: int) -> None:
        """Compile one more year, unless that goes past the search limit from ``start``."""
        assert self._lo is not None and self._hi is not None
        if self._hi + 1 > datetime.fromtimestamp(start, self.zone).year + _SEARCH_YEARS:
            raise CalendarError(
                f"no working time within {_SEARCH_YEARS} years: the calendar is closed for good"
            )
        self._compile(self._hi + 1, self._hi + 1)

    # ------------------------------------------------------------------ deadlines
    def deadline(self, start: int, duration: Duration) -> int:
        """The deadline of ``duration`` counted from ``start`` (semantics section 3)."""
        unit, n = duration.unit, duration.amount
        if unit is Unit.MINUTES:
            return start + n * 60
        if unit is Unit.HOURS:
            return start + n * 3600
        if unit is Unit.DAYS or unit is Unit.WEEKS:
            days = n if unit is Unit.DAYS else 7 * n
            local = datetime.fromtimestamp(start, self.zone).replace(tzinfo=None)
            return int((local + timedelta(days=days)).replace(tzinfo=self.zone).timestamp())
        if unit is Unit.BUSINESS_DAYS:
            return self._business_days(start, n)
        return self._business_seconds(start, n * (60 if unit is Unit.BUSINESS_MINUTES else 3600))

    def first_working_day_index(self, start: int) -> int:
        """Index of ``day0`` for ``start`` in the compiled working days (see ``working_day``)."""
        self._cover(start)
        while True:
            i = bisect_left(self._wd_close, start)
            if i < len(self._wd_close) and start >= self._wd_next[i]:
                # start is not before that day's last closing, yet may be on a later local
                # date: a day closing at 24:00 (start is the next midnight), or a fall-back
                # across midnight. day0 is never before start's own local date.
                start_day = datetime.fromtimestamp(start, self.zone).date()
                while i < len(self._wd_close) and self._wd_date[i] < start_day:
                    i += 1
            if i < len(self._wd_close):
                return i
            self._extend(start)

    def working_day(self, index: int, start: int) -> tuple[date, int]:
        """The compiled working day at ``index`` (extending as needed): ``(date, last close)``."""
        while index >= len(self._wd_close):
            self._extend(start)
        return self._wd_date[index], self._wd_close[index]

    def _business_days(self, start: int, n: int) -> int:
        i = self.first_working_day_index(start)
        return self.working_day(i + n, start)[1]

    def _opened_before(self, instant: int) -> int:
        """Opening seconds of the compiled span before ``instant`` (which it must cover)."""
        k = bisect_right(self._iv_end, instant)  # intervals wholly at or before instant
        before = self._iv_cum_end[k - 1] if k else 0
        if k < len(self._iv_start) and self._iv_start[k] < instant:
            before += instant - self._iv_start[k]
        return before

    def opening_seconds(self, start: int, end: int) -> int:
        """Seconds of opening time in ``[start, end)`` (0 when ``end <= start``).

        The measure that ``business_minutes`` counts: two lookups in the compiled index.
        """
        if end <= start:
            return 0
        self._cover(start)
        while end >= self._covered_to:
            self._extend(end)
        return self._opened_before(end) - self._opened_before(start)

    def after_opening_seconds(self, start: int, seconds: int) -> int:
        """The earliest instant by which ``seconds`` of opening time have passed since
        ``start`` (section 3's business-minute rule, to the second); ``start`` itself
        when ``seconds`` is 0 (a pause wholly outside opening hours moves nothing)."""
        if seconds <= 0:
            return start
        return self._business_seconds(start, seconds)

    def _business_seconds(self, start: int, seconds: int) -> int:
        self._cover(start)
        while True:
            target = self._opened_before(start) + seconds
            if self._iv_cum_end and self._iv_cum_end[-1] >= target:
                m = bisect_left(self._iv_cum_end, target)
                return self._iv_end[m] - (self._iv_cum_end[m] - target)
            self._extend(start)
