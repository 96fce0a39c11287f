"""Every chart label reads when the page is printed on A4: no two texts of a chart overlap
and none is smaller than 7 pt at the printed size; the counts a chart leaves unlabelled
are in the table beside it.

The busiest page: Aston's seven clocks over 24 months, grouped by five channels, with
achievements close together (the n= labels of the clocks crowd the same height), as a
report and as a what-if (A and B side by side: half the width each)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from crmsync.mapping.charter_file import load_charter
from crmsync.service.report_html import chart_figures, compare_figure, render_html
from crmsync.service.report_page import PageSource

REPO = Path(__file__).resolve().parents[2]
ASTON = load_charter(REPO / "mappings" / "charters" / "aston.yaml")
CHANNELS = ("email", "phone", "letter", "web form", "in person")
MONTHS = [f"{2025 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
A4_PRINTABLE_IN = 186 / 25.4  # 210 mm less two 12 mm margins: the width svg.chart fills
SMALLEST_PT = 7.0


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Figures ``chart_figures`` returns stay open (the page closes them as it saves them)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def row(clock: str, period: str, group: str | None, k: int) -> dict[str, Any]:
    met, late, overdue, open_ = 90 + k % 7, 8 + k % 3, k % 2, k % 4
    breached = late + overdue
    return {
        "clock": clock, "period": period, "group": group,
        "due": met + breached + open_, "met": met, "late": late, "overdue": overdue,
        "open": open_, "breached": breached, "paused": 0,
        "achievement": round(100 * met / (met + breached), 1),
        "elapsed_p50_s": 3600 * (10 + k % 5), "elapsed_p90_s": 3600 * (30 + k % 7),
        "business_p50_s": 3600 * (3 + k % 4), "business_p90_s": 3600 * (8 + k % 5),
    }  # fmt: skip


def busy_document(compare: bool) -> dict[str, Any]:
    clocks = [c.id for c in ASTON.clocks]
    rows = [
        row(clock, month, channel, i + j + g)
        for i, clock in enumerate(clocks)
        for j, month in enumerate(MONTHS)
        for g, channel in enumerate(CHANNELS)
    ]
    # a few thin months: points of 1 to 3 instances, drawn as not significant
    rows += [row(clocks[-1], m, "email", 0) | {"met": 1, "late": 1, "overdue": 0, "breached": 1,
             "due": 2, "open": 0} for m in MONTHS[:3]]  # fmt: skip
    totals = [
        row(clock, "all", channel, i + g)
        for i, clock in enumerate(clocks)
        for g, channel in enumerate(CHANNELS)
    ]
    document: dict[str, Any] = {
        "charter": "aston", "from": "2025-01-15", "to": "2026-12-31",
        "now": "2027-01-05T09:00:00Z", "period": "month", "by": "channel",
        "complaints": 9999, "rows": rows, "totals": totals, "undated": {},
    }  # fmt: skip
    if compare:
        document["compare"] = {
            "charter": "aston", "rows": rows, "totals": totals, "undated": {}, "flips": [],
        }  # fmt: skip
    return document


def drawn_texts(fig: Any) -> list[Any]:
    """The texts the figure draws: tick labels of ticks inside the axis's view, and every
    other visible, non-empty text."""
    from matplotlib.text import Text

    tick_labels: set[int] = set()
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_labels |= {id(tick.label1), id(tick.label2)}
                inside = low - 1e-9 <= tick.get_loc() <= high + 1e-9
                if inside and tick.label1.get_visible() and tick.label1.get_text().strip():
                    out.append(tick.label1)
    out += [
        t
        for t in fig.findobj(Text)
        if id(t) not in tick_labels and t.get_visible() and t.get_text().strip()
    ]
    return out


def problems(caption: str, fig: Any) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    found = []
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > 0.5 and height > 0.5:
            found.append(f"{caption[:30]}: {a.get_text()!r} overlaps {b.get_text()!r}")
    # the page's SVG is the tight box plus savefig's 0.1 in pad, scaled to the column width
    printed_width = fig.get_tightbbox(renderer).width + 0.2
    scale = A4_PRINTABLE_IN / printed_width
    for text in texts:
        if text.get_fontsize() * scale < SMALLEST_PT - 1e-9:
            size = text.get_fontsize() * scale
            found.append(f"{caption[:30]}: {text.get_text()!r} is {size:.1f} pt printed")
    return found


@pytest.mark.parametrize("compare", [False, True], ids=["report", "what-if"])
def test_no_chart_text_overlaps_and_none_prints_below_7_pt(compare: bool) -> None:
    document = busy_document(compare)
    page = PageSource(ASTON, "test", ASTON if compare else None)
    figures = chart_figures(document, page)
    assert len(figures) == 4  # achievement, outcomes, response times, per channel
    if compare:
        figures.append(("What-if: achievement per clock, A and B", compare_figure(document, page)))
    found = [p for caption, fig in figures for p in problems(caption, fig)]
    assert found == []
    counts = [t for _, fig in figures for t in drawn_texts(fig) if t.get_text().startswith("n=")]
    assert counts  # labels are drawn where they fit (the check above is not vacuous)


def test_every_count_is_in_the_table_beside_the_charts() -> None:
    """7 clocks x 24 months of achievement points: each count n (met + late + overdue over
    the five channels) and each month's instances due are listed, whether or not the chart
    had room for the label."""
    document = busy_document(False)
    page = render_html(document, PageSource(ASTON, "test"))
    table = page[page.index("Instances behind the charts") :]
    table = table[: table.index("</table>")]
    cells = re.findall(r"<tr><td class=\"text\">(\d{4}-\d\d)</td>((?:<td>[^<]*</td>)+)</tr>", table)
    assert [period for period, _ in cells] == MONTHS
    clocks = [c.id for c in ASTON.clocks]
    for period, tds in cells:
        values = re.findall(r"<td>([^<]*)</td>", tds)
        mine = [r for r in document["rows"] if r["period"] == period]
        expected = [
            str(sum(r["met"] + r["late"] + r["overdue"] for r in mine if r["clock"] == c))
            for c in clocks
        ] + [str(sum(r["due"] for r in mine))]
        assert values == expected


def test_a_what_if_draws_a_and_b_each_at_about_half_the_width() -> None:
    """Side by side, each of A's and B's axes takes at least a third of the chart's printed
    width: the clocks' legend, one for both below them, never squeezes the axes."""
    document = busy_document(True)
    page = PageSource(ASTON, "test", ASTON)
    for caption, fig in chart_figures(document, page):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        printed = fig.get_tightbbox(renderer).width
        shares = [ax.get_window_extent(renderer).width / fig.dpi / printed for ax in fig.axes]
        assert len(shares) == 2, caption
        assert min(shares) >= 1 / 3, f"{caption[:40]}: {shares}"
