"""The page shows the domain's achievement, never a figure of its own: counts added over
groups go through ``domain.report.achievement`` (half up), not Python's ``round``
(half to even on binary floats), which disagree for 1 of 16 (6.25: 6.3 against 6.2)."""

from __future__ import annotations

from typing import Any

from crmsync.service.report_html import _combined_achievement, _total_achievement


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
    """2026-01: 1 of 16 -> 6.3; 2026-02: 3 met of 8 = 37.5 -> 37.5; 2026-03: only open -> none."""
    rows = [
        row("2026-01", "a", 1, 7, 0),
        row("2026-01", "b", 0, 0, 8),
        row("2026-02", "a", 3, 5, 0),
        row("2026-03", "a", 0, 0, 0),
    ]
    assert _combined_achievement(rows, "c") == {"2026-01": 6.3, "2026-02": 37.5}
