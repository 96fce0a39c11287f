"""The page shows the domain's achievement, never a figure of its own: counts added over
groups go through ``domain.report.achievement`` (half up), not Python's ``round``
(half to even on binary floats), which disagree for 1 of 16 (6.25: 6.3 against 6.2)."""

from __future__ import annotations

from typing import Any

from crmsync.domain.durations import Duration, Unit
from crmsync.service.report_html import (
    _combined_points,
    _total_achievement,
    duration_words,
    partial_periods,
    period_labels,
)


def row(period: str, group: str, met: int, late: int, overdue: int) -> dict[str, Any]:
    return {
        "clock": "c",
        "period": period,
        "group": group,
        "met": met,
        "late": late,
        "overdue": overdue,
        "breached": late + overdue,
        "open": 0,
    }


def test_a_clock_over_all_groups_rounds_half_up() -> None:
    """Groups a (1 met, 7 overdue) and b (8 late): 1 met of 16 closed or overdue = 6.25 % -> 6.3."""
    totals = [row("all", "a", 1, 0, 7), row("all", "b", 0, 8, 0)]
    assert _total_achievement(totals) == {"c": 6.3}


def test_a_period_over_all_groups_rounds_half_up_and_skips_nothing_closed() -> None:
    """2026-01: 1 of 16 -> 6.3 (n = 16); 2026-02: 3 met of 8 = 37.5 (n = 8); 2026-03: only
    open -> no point."""
    rows = [
        row("2026-01", "a", 1, 7, 0),
        row("2026-01", "b", 0, 0, 8),
        row("2026-02", "a", 3, 5, 0),
        row("2026-03", "a", 0, 0, 0),
    ]
    assert _combined_points(rows, "c") == {"2026-01": (6.3, 16), "2026-02": (37.5, 8)}


def test_partial_periods_at_the_range_edges() -> None:
    """15 Jan..31 Dec per month: January is part of a month, December whole; per quarter
    1 Jan..15 Mar: Q1 is cut at its end; per ISO week Wed 7 Jan..Sun 11 Jan: W02 is part
    (it began Monday 5 Jan); per year or all: nothing partial when the year is whole."""

    def doc(period: str, first: str, last: str) -> dict[str, Any]:
        return {"period": period, "from": first, "to": last}

    assert partial_periods(doc("month", "2026-01-15", "2026-12-31")) == {"2026-01"}
    assert partial_periods(doc("quarter", "2026-01-01", "2026-03-15")) == {"2026-Q1"}
    assert partial_periods(doc("week", "2026-01-07", "2026-01-11")) == {"2026-W02"}
    assert partial_periods(doc("year", "2026-01-01", "2026-12-31")) == set()
    assert partial_periods(doc("all", "2026-01-15", "2026-02-03")) == set()
    assert period_labels(["2026-01", "2026-02"], {"2026-01"}) == ["2026-01\n(part)", "2026-02"]


def test_targets_in_words() -> None:
    assert duration_words(Duration(2, Unit.BUSINESS_DAYS)) == "2 working days"
    assert duration_words(Duration(1, Unit.BUSINESS_DAYS)) == "1 working day"
    assert duration_words(Duration(8, Unit.WEEKS)) == "8 weeks"
    assert duration_words(Duration(4, Unit.BUSINESS_HOURS)) == "4 working hours"
