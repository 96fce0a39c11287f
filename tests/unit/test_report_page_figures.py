"""The page shows the domain's achievement, never a figure of its own: counts added over
groups go through ``domain.report.achievement`` (half up), not Python's ``round``
(half to even on binary floats), which disagree for 1 of 16 (6.25: 6.3 against 6.2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crmsync.domain.durations import Duration, Unit
from crmsync.service.report_html import (
    _combined_points,
    _hours,
    _opening_hours,
    _total_achievement,
    duration_words,
    partial_periods,
    period_labels,
)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Figures ``chart_figures`` returns stay open (the page closes them as it saves them)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


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


def charted(first: str, by: str | None = "channel") -> list[tuple[str, Any]]:
    """Aston's email-reply, January 2026 one instance (not significant), February and March
    ten each; channel a: 2 instances over the range, channel b: 28."""
    from pathlib import Path

    from crmsync.mapping.charter_file import load_charter
    from crmsync.service.report_html import chart_figures
    from crmsync.service.report_page import PageSource

    def counts(period: str, group: str, met: int, late: int) -> dict[str, Any]:
        return row(period, group, met, late, 0) | {
            "clock": "email-reply", "due": met + late, "paused": 0,
            "achievement": round(100 * met / (met + late), 1),
            "elapsed_p50_s": 3600, "elapsed_p90_s": 7200,
            "business_p50_s": 3600, "business_p90_s": 7200,
        }  # fmt: skip

    rows = [
        counts("2026-01", "a", 0, 1),
        counts("2026-02", "a", 1, 0),
        counts("2026-02", "b", 8, 1),
        counts("2026-03", "b", 9, 1),
    ]
    totals = [counts("all", "a", 1, 1), counts("all", "b", 17, 2)]
    document = {
        "charter": "aston", "from": first, "to": "2026-03-31", "now": "2026-04-05T00:00:00Z",
        "period": "month", "by": by, "complaints": 21, "rows": rows, "totals": totals,
        "undated": {},
    }  # fmt: skip
    charter = load_charter(Path(__file__).resolve().parents[2] / "mappings/charters/aston.yaml")
    return chart_figures(document, PageSource(charter, "test"))


def test_the_line_joins_only_the_significant_points() -> None:
    """January's one instance (0 %) is a grey hollow marker on no line; the line joins
    February (9 of 10: 90 %) and March (90 %)."""
    _, figure = charted("2026-01-01")[0]
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    line = lines["email-reply"]
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == [90.0, 90.0]
    weak = [x for x in figure.axes[0].get_lines() if list(x.get_xdata()) == [0]]
    assert len(weak) == 1 and weak[0].get_linestyle() == "None"
    assert list(weak[0].get_ydata()) == [0.0] and weak[0].get_markerfacecolor() == "white"


def test_group_bars_of_few_instances_are_hatched() -> None:
    """Channel a stands for 2 instances: hatched; b for 19: filled."""
    caption, figure = charted("2026-01-01")[-1]
    assert caption.startswith("Achievement per channel") and "hatched bars" in caption
    bars = [p for p in figure.axes[0].patches if p.get_height() > 0]  # email-reply: a, b
    assert [p.get_hatch() for p in bars] == ["////", None]


def test_part_periods_are_said_only_where_a_period_is_drawn() -> None:
    """From 15 December the range covers December in part, but nothing is due in it: no
    chart says "(part)"; from 15 January, January is drawn and marked."""
    assert not any("(part)" in caption for caption, _ in charted("2025-12-15"))
    january = charted("2026-01-15")[0]
    assert "(part)" in january[0]
    ticks = [t.get_text() for t in january[1].axes[0].get_xticklabels()]
    assert ticks[0] == "2026-01\n(part)"


def test_opening_time_is_said_in_hours_never_in_days_of_24_hours() -> None:
    """414,720 s of opening time (115.2 h: 14.4 working days of 8 hours) reads 115.2 h, not
    "4.8 d" (a reader would take 4.8 working days); calendar time that long is 4.8 days."""
    assert _opening_hours(414_720) == "115.2 h"
    assert _opening_hours(5_400) == "1.5 h"
    assert _opening_hours(1_800) == "30 min"
    assert _opening_hours(None) == "–"
    assert _hours(414_720) == "4.8 d"
