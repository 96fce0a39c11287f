"""The figures a report's charts show beyond its rows, counted here so that the page only
draws them: counts of several rows added up (all groups of a clock, all clocks of a
period), their achievement by ``report.achievement``'s rule, and response times as a
share of a clock's target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crmsync.domain.charter import Charter
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.report import achievement

COUNTS = ("due", "met", "late", "overdue", "open", "breached")
"""The fields of a row that add up over rows (percentiles do not)."""


def added(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The ``COUNTS`` of ``rows`` added up."""
    out = dict.fromkeys(COUNTS, 0)
    for row in rows:
        for name in COUNTS:
            out[name] += row[name]
    return out


def achievement_of(rows: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """The achievement of ``rows`` taken together (``achievement`` of their added counts)
    and the instances it stands for (met + late + overdue)."""
    met = late = overdue = 0
    for row in rows:
        met, late, overdue = met + row["met"], late + row["late"], overdue + row["overdue"]
    return achievement(met, late, overdue), met + late + overdue


def average_working_day(charter: Charter) -> int:
    """Seconds of opening time in an average working day of the charter's week."""
    weekly = charter.calendar.weekly_hours
    days = [sum(i.end - i.start for i in hours) * 60 for hours in weekly.values() if hours]
    return sum(days) // len(days)


_SECONDS = {
    Unit.MINUTES: 60,
    Unit.HOURS: 3600,
    Unit.DAYS: 86400,
    Unit.WEEKS: 7 * 86400,
    Unit.BUSINESS_MINUTES: 60,
    Unit.BUSINESS_HOURS: 3600,
}


def target_seconds(charter: Charter, duration: Duration) -> tuple[int, bool]:
    """A target as seconds, and whether it counts opening time (business units); a
    ``business_days`` target counts an average working day's opening hours."""
    if duration.unit is Unit.BUSINESS_DAYS:
        return duration.amount * average_working_day(charter), True
    return duration.amount * _SECONDS[duration.unit], duration.unit.is_business


def response_shares(charter: Charter, row: Mapping[str, Any]) -> tuple[float, float] | None:
    """A row's median and 90th percentile response time as a percentage of its clock's
    target, in the target's kind of time (opening time for business units); None when
    nothing closed or the clock has no duration target."""
    target = charter.clock(row["clock"]).measure
    if target is None or row["elapsed_p50_s"] is None:
        return None
    seconds, business = target_seconds(charter, target)
    kind = "business" if business else "elapsed"
    return 100 * row[f"{kind}_p50_s"] / seconds, 100 * row[f"{kind}_p90_s"] / seconds
