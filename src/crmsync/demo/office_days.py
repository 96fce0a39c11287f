"""A charter's calendar as tables of days for the sample generator (demo data only).

Everything comes from the charter's ``BusinessCalendar``: its opening instants per local
date (time zone, summer time and public holidays included) and its zone for local
texts. The generator only picks instants; deadlines are the calendar's own
(``BusinessCalendar.deadline``), so a sample complaint is on time or late exactly as
the engine will judge it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from crmsync.domain.business_calendar import BusinessCalendar

_DAY = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@cache
def _clock_texts() -> tuple[str, ...]:
    """``HH:MM:SS`` for every second of a day, by second."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(_DAY))


class OfficeDays:
    """Per local date from ``first`` for ``days`` days: local midnight and opening instants;
    the working days among them in order, with their opening intervals."""

    def __init__(self, calendar: BusinessCalendar, first: date, days: int) -> None:
        self.calendar = calendar
        self.zone = calendar.zone
        self.first = first
        self.first_ordinal = first.toordinal() - _EPOCH_ORDINAL  # days since 1970 of ``first``
        self.midnight: list[int] = []  # per day: the instant of local midnight
        self.first_open: list[int] = []  # per day: first opening instant, 0 when closed
        self.last_close: list[int] = []  # per day: last closing instant, 0 when closed
        self.working: list[int] = []  # day indexes of working days, in order
        self.intervals: list[list[tuple[int, int]]] = []  # per working day: [start, end)
        for i in range(days):
            day = first + timedelta(days=i)
            midnight = datetime.combine(day, time(0), tzinfo=self.zone)
            self.midnight.append(int(midnight.timestamp()))
            spans = calendar.opening_instants(day)
            if spans:
                self.working.append(i)
                self.intervals.append(spans)
                self.first_open.append(spans[0][0])
                self.last_close.append(spans[-1][1])
            else:
                self.first_open.append(0)
                self.last_close.append(0)
        self.wd_open = [self.first_open[i] for i in self.working]
        self.wd_close = [self.last_close[i] for i in self.working]
        # per day index: position in ``working`` of the first working day at or after it
        self.next_working = [0] * (days + 1)
        position = len(self.working)
        for i in range(days - 1, -1, -1):
            if self.last_close[i]:
                position -= 1
            self.next_working[i] = position
        self.next_working[days] = len(self.working)
        self.clock_text = _clock_texts()
        self.date_text = [(first + timedelta(days=i)).isoformat() + "T" for i in range(days)]

    # ------------------------------------------------------------------ days
    def day_of(self, instant: int) -> int:
        """The index of the local date of ``instant`` (clamped to the tables)."""
        i = bisect_right(self.midnight, instant) - 1
        return min(max(i, 0), len(self.midnight) - 1)

    def is_working(self, day: int) -> bool:
        return self.last_close[day] != 0

    def first_working_index(self, instant: int) -> int:
        """Position in ``working`` of ``day0`` for ``instant`` (semantics section 3): the
        first working day whose last closing is not before it."""
        return min(bisect_left(self.wd_close, instant), len(self.working) - 1)

    def last_working_index_before(self, instant: int) -> int:
        """Position in ``working`` of the last working day that opens before ``instant``."""
        return bisect_left(self.wd_open, instant) - 1

    # ------------------------------------------------------------------ placing instants
    def place(self, k: int, after: int, until: int | None, pick: Callable[[], float]) -> int:
        """An instant in the opening hours of working day ``k`` or later, strictly after
        ``after`` and, when it fits, at or before ``until``; ``pick`` gives the position."""
        last = len(self.working) - 1
        # days that close before ``after`` have no room: start at the first that may
        k = min(max(k, bisect_right(self.wd_close, after + 1), 0), last)
        if until is not None and self.wd_open[k] > until:
            until = None  # it does not fit: the next opening hours, however late
        while True:
            spans = self.intervals[k]
            if len(spans) == 1:  # one opening interval a day, the common case
                a, b = spans[0]
                a = max(a, after + 1)
                if until is not None:
                    b = min(b, until + 1)
                if a < b:
                    return a + int(pick() * (b - a))
            else:
                windows = [
                    (max(a, after + 1), b if until is None else min(b, until + 1)) for a, b in spans
                ]
                windows = [(a, b) for a, b in windows if a < b]
                if windows:
                    offset = int(pick() * sum(b - a for a, b in windows))
                    for a, b in windows:
                        if offset < b - a:
                            return a + offset
                        offset -= b - a
                    return windows[-1][1] - 1
            if k >= last:
                return max(after + 60, self.wd_close[last])
            if until is not None and self.wd_open[k + 1] > until:
                until = None  # it does not fit: the next opening hours, however late
            k += 1

    # ------------------------------------------------------------------ texts
    def utc_text(self, instant: int) -> str:
        """``YYYY-MM-DDTHH:MM:SSZ``."""
        day, second = divmod(instant, _DAY)
        index = day - self.first_ordinal
        if 0 <= index < len(self.date_text):
            return f"{self.date_text[index]}{self.clock_text[second]}Z"
        return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def local_text(self, instant: int) -> str:
        """The local wall-clock time with the zone's offset at that instant."""
        return datetime.fromtimestamp(instant, self.zone).isoformat()

    def local_date(self, instant: int) -> str:
        """The local ``YYYY-MM-DD`` of ``instant``."""
        return datetime.fromtimestamp(instant, self.zone).date().isoformat()
