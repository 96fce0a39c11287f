"""``domain.returns``: the rounding of the returns' figures, merging of chunk tallies, and the
periods a return is filed for."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from crmsync.domain.report import Instance, Outcome
from crmsync.domain.returns import (
    ReturnKind,
    ReturnTally,
    missing_clocks,
    months_later,
    per_thousand,
    period_containing,
    period_over,
    period_refusal,
    share,
)

LONDON = ZoneInfo("Europe/London")
DAY = 86400
JAN_5 = 1767607200  # 2026-01-05T10:00:00Z


def test_figures_round_half_up_to_one_decimal() -> None:
    """1 of 16 = 6.25 % -> 6.3 (Python's round says 6.2); 5 in 20,000 homes = 0.25 -> 0.3."""
    assert share(1, 16) == 6.3
    assert share(2, 3) == 66.7
    assert share(0, 0) is None
    assert per_thousand(5, 20000) == 0.3
    assert per_thousand(7, 2300) == 3.0


def test_chunk_tallies_merge_to_the_tally_of_all() -> None:
    """Two FCA complaints closed in the half, one in each chunk: within 3 days and later."""
    first, last = date(2026, 1, 1), date(2026, 6, 30)

    def one(end: int) -> list[Instance]:
        return [
            Instance("summary-resolution", 0, JAN_5, JAN_5 + 3 * DAY, end, Outcome.MET),
            Instance("final-response", 0, JAN_5, JAN_5 + 56 * DAY, end, Outcome.MET),
        ]

    a, b = ReturnTally(ReturnKind.FCA, first, last), ReturnTally(ReturnKind.FCA, first, last)
    a.add(LONDON, one(JAN_5 + DAY))
    b.add(LONDON, one(JAN_5 + 60 * DAY))
    a.merge(b)
    figures = a.figures(None)
    assert (figures["closed"], figures["received"]) == (2, 2)
    assert figures["closed_within_3_business_days"] == 1
    assert figures["closed_after_8_weeks"] == 1
    assert figures["closed_after_3_business_days_within_8_weeks"] == 0


def test_missing_clocks_are_named_in_the_order_needed() -> None:
    assert missing_clocks(ReturnKind.FCA, ["acknowledge", "final-response"]) == [
        "summary-resolution"
    ]
    needed = ["stage1-acknowledge", "stage1-response", "stage2-acknowledge", "stage2-response"]
    assert missing_clocks(ReturnKind.TSM, needed) == []


def test_months_later_keeps_the_day_or_takes_the_months_last() -> None:
    assert months_later(date(2025, 4, 1), 12) == date(2026, 4, 1)
    assert months_later(date(2026, 10, 6), 6) == date(2027, 4, 6)
    assert months_later(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert months_later(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert months_later(date(2026, 12, 1), 1) == date(2027, 1, 1)


def test_a_tsm_return_is_for_a_whole_year() -> None:
    assert period_refusal(ReturnKind.TSM, date(2025, 4, 1), date(2026, 3, 31)) is None
    assert period_refusal(ReturnKind.TSM, date(2026, 1, 1), date(2026, 12, 31)) is None
    short = period_refusal(ReturnKind.TSM, date(2025, 4, 1), date(2026, 3, 30))
    assert short is not None and "not a whole year" in short and "ends 2026-03-31" in short
    half = period_refusal(ReturnKind.TSM, date(2025, 4, 1), date(2025, 9, 30))
    assert half is not None and "2025-04-01..2025-09-30" in half


def test_an_fca_return_is_for_a_half_year_or_a_year() -> None:
    assert period_refusal(ReturnKind.FCA, date(2026, 1, 1), date(2026, 6, 30)) is None
    assert period_refusal(ReturnKind.FCA, date(2026, 7, 1), date(2026, 12, 31)) is None
    assert period_refusal(ReturnKind.FCA, date(2025, 10, 6), date(2026, 4, 5)) is None
    assert period_refusal(ReturnKind.FCA, date(2026, 1, 1), date(2026, 12, 31)) is None
    quarter = period_refusal(ReturnKind.FCA, date(2026, 1, 1), date(2026, 3, 31))
    assert quarter is not None and "neither six months nor a year" in quarter
    assert "--to 2026-06-30 for a half year, 2026-12-31" in quarter
    assert period_refusal(ReturnKind.FCA, date(2026, 1, 1), date(2026, 7, 1)) is not None


def test_a_period_is_over_at_the_local_midnight_after_its_last_day() -> None:
    """31 March 2026 ends at midnight BST, 2026-03-31T23:00:00Z (1774998000)."""
    end = 1774998000
    assert period_over(date(2026, 3, 31), LONDON, end)
    assert not period_over(date(2026, 3, 31), LONDON, end - 1)
    assert period_over(date(2026, 1, 31), LONDON, 1769904000)  # 2026-02-01T00:00:00Z, GMT
    assert not period_over(date(2026, 1, 31), LONDON, 1769903999)


def test_the_usual_period_holding_a_day() -> None:
    assert period_containing(ReturnKind.TSM, date(2026, 12, 6)) == (
        date(2026, 4, 1),
        date(2027, 3, 31),
    )
    assert period_containing(ReturnKind.TSM, date(2027, 3, 31)) == (
        date(2026, 4, 1),
        date(2027, 3, 31),
    )
    assert period_containing(ReturnKind.TSM, date(2027, 4, 1)) == (
        date(2027, 4, 1),
        date(2028, 3, 31),
    )
    assert period_containing(ReturnKind.FCA, date(2026, 6, 30)) == (
        date(2026, 1, 1),
        date(2026, 6, 30),
    )
    assert period_containing(ReturnKind.FCA, date(2026, 7, 1)) == (
        date(2026, 7, 1),
        date(2026, 12, 31),
    )
