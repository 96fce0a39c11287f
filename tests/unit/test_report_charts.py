"""``domain.report_charts``: the figures the page's charts show beyond the rows, each
counted by hand."""

from __future__ import annotations

from typing import Any

from crmsync.domain.report_charts import (
    achievement_of,
    added,
    average_working_day,
    response_shares,
)
from crmsync.mapping.charter_file import load_charter_text

CHARTER = """\
charter: t
title: T
calendar:
  timezone: Europe/London
  hours:
    mon: ["08:30-17:00"]
    tue: ["08:30-17:00"]
    wed: ["08:30-17:00"]
    thu: ["08:30-17:00"]
    fri: ["08:30-16:30"]
clocks:
  - id: reply
    start: received
    stop: [acknowledged]
    target: 2 business_days
  - id: call
    start: received
    stop: [called]
    target: 4 hours
  - id: promised
    start: received
    stop: [decision]
    target_field: expected_decision
"""


def row(clock: str, p50: int | None, p90: int | None, **counts: int) -> dict[str, Any]:
    return {
        "clock": clock,
        "elapsed_p50_s": p50,
        "elapsed_p90_s": p90,
        "business_p50_s": None if p50 is None else p50 // 2,
        "business_p90_s": None if p90 is None else p90 // 2,
        **{k: counts.get(k, 0) for k in ("due", "met", "late", "overdue", "open", "breached")},
    }


def test_counts_add_up_and_their_achievement_rounds_half_up() -> None:
    """(1 met, 7 overdue) and (8 late): 16 instances, 1 met -> 6.25 % -> 6.3."""
    rows = [
        row("reply", None, None, due=8, met=1, overdue=7, breached=7),
        row("reply", None, None, due=9, late=8, open=1, breached=8),
    ]
    assert added(rows) == {"due": 17, "met": 1, "late": 8, "overdue": 7, "open": 1, "breached": 15}
    assert achievement_of(rows) == (6.3, 16)
    assert achievement_of([row("reply", None, None, due=2, open=2)]) == (None, 0)


def test_an_average_working_day_counts_the_weeks_opening_hours() -> None:
    """Mon-Thu 8.5 h (30,600 s), Fri 8 h (28,800 s): (4 x 30,600 + 28,800) / 5 = 30,240 s."""
    assert average_working_day(load_charter_text(CHARTER)) == 30_240


def test_response_times_as_a_share_of_the_target_in_its_kind_of_time() -> None:
    """reply: 2 working days = 60,480 s of opening time; opening p50 15,120 s -> 25.0 %, p90
    90,720 s -> 150.0 %. call: 4 hours = 14,400 s elapsed; p50 7,200 -> 50.0 %, p90 14,400
    -> 100.0 %. Nothing closed, or a date the CRM records (no duration): no share."""
    charter = load_charter_text(CHARTER)
    assert response_shares(charter, row("reply", 30_240, 181_440)) == (25.0, 150.0)
    assert response_shares(charter, row("call", 7_200, 14_400)) == (50.0, 100.0)
    assert response_shares(charter, row("reply", None, None)) is None
    assert response_shares(charter, row("promised", 3_600, 7_200)) is None
