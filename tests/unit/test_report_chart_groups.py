"""``report --by`` of many groups: charts name the largest groups and fold the others into
one "other" row per clock (counts added, achievement by the domain's rule); the tables
keep every group."""

from __future__ import annotations

from typing import Any

from crmsync.service.report_html import CHART_GROUPS, chart_totals


def total(group: str | None, due: int, met: int, late: int = 0, clock: str = "c") -> dict[str, Any]:
    overdue = due - met - late
    return {
        "clock": clock,
        "group": group,
        "due": due,
        "met": met,
        "late": late,
        "overdue": overdue,
        "open": 0,
        "breached": late + overdue,
        "achievement": None,  # not read for kept rows here
        "elapsed_p50_s": 60,
        "elapsed_p90_s": 60,
        "business_p50_s": 60,
        "business_p90_s": 60,
    }


def test_twelve_groups_or_thirteen_are_charted_as_they_are() -> None:
    """Up to CHART_GROUPS + 1 groups nothing is folded (one 'other' would hide one name)."""
    assert CHART_GROUPS == 12
    rows = [total(f"g{i:02d}", 1, 1) for i in range(13)]
    assert chart_totals(rows) == (rows, 0)


def test_the_smallest_groups_fold_into_other_per_clock() -> None:
    """Fifteen groups on two clocks: g00..g11 (due 10 each) are kept; g12 (due 3, 1 met,
    1 late), g13 (due 2, 2 met) and None (due 1, overdue) fold, per clock, into
    'other (3 groups)': due 6, met 3, late 1, overdue 2 (breached 3) -> 3 / 6 = 50.0 %."""
    rows = []
    for clock in ("a", "b"):
        rows += [total(f"g{i:02d}", 10, 9, clock=clock) for i in range(12)]
        rows += [
            total("g12", 3, 1, late=1, clock=clock),
            total("g13", 2, 2, clock=clock),
            total(None, 1, 0, clock=clock),
        ]
    charted, folded = chart_totals(rows)
    assert folded == 3
    kept = [r for r in charted if not r.get("folded")]
    assert {r["group"] for r in kept} == {f"g{i:02d}" for i in range(12)}
    assert len(kept) == 24
    others = [r for r in charted if r.get("folded")]
    assert [(r["clock"], r["group"]) for r in others] == [
        ("a", "other (3 groups)"),
        ("b", "other (3 groups)"),
    ]
    for other in others:
        assert (other["due"], other["met"], other["late"], other["overdue"]) == (6, 3, 1, 2)
        assert other["breached"] == 3  # late 1 + overdue 2
        assert other["achievement"] == 50.0
        assert other["elapsed_p50_s"] is None and other["business_p90_s"] is None


def test_ties_keep_the_first_names() -> None:
    """Equal due counts: the groups are kept in name order, the rest folded."""
    rows = [total(f"n{i:02d}", 1, 1) for i in range(20)]
    charted, folded = chart_totals(rows)
    assert folded == 8
    assert [r["group"] for r in charted if not r.get("folded")] == [f"n{i:02d}" for i in range(12)]
