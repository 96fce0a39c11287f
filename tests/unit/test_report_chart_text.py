"""Every chart label reads when the page is printed on A4: no two texts of a chart overlap,
no text sits on a marker, bar or line of a series, and none is smaller than 7 pt at the
printed size; the counts a chart leaves unlabelled are in the table beside it.

The busiest page: Aston's six clocks over 24 months, grouped by five channels, with
achievements close together (the n= labels of the clocks crowd the same height) or far
apart (the clocks' lines zigzag across each other), as a report and as a what-if (A and B
side by side: half the width each)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest

from crmsync.mapping.charter_file import load_charter
from crmsync.service.report_html import chart_figures, compare_figure, render_html
from crmsync.service.report_page import PageSource

REPO = Path(__file__).resolve().parents[2]
ASTON = load_charter(REPO / "mappings" / "charters" / "aston.yaml")
CHANNELS = ("email", "phone", "letter", "web form", "in person")
LONG_NAMES = (
    "Customer Relations Northern Region Escalations Team",
    "housing/repairs_and_maintenance-north-west",
    "Antidisestablishmentarianismcomplaintsfeedbackandresolutionunit",
    "Board of Directors Office of the Independent Adjudicator for Higher Education",
    "email",
)
MONTHS = [f"{2025 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
A4_PRINTABLE_IN = 186 / 25.4  # 210 mm less two 12 mm margins: the width svg.chart fills
SMALLEST_PT = 7.0


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Figures ``chart_figures`` returns stay open (the page closes them as it saves them)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def row(
    clock: str, period: str, group: str | None, k: int, spread: int | None = None
) -> dict[str, Any]:
    met, late, overdue, open_ = 90 + k % 7, 8 + k % 3, k % 2, k % 4
    if spread is not None:  # met from 1 to 90: achievement from about 10 % to 90 %
        met = 1 + (spread * 37) % 90
    breached = late + overdue
    return {
        "clock": clock, "period": period, "group": group,
        "due": met + breached + open_, "met": met, "late": late, "overdue": overdue,
        "open": open_, "breached": breached, "paused": 0,
        "achievement": round(100 * met / (met + breached), 1),
        "elapsed_p50_s": 3600 * (10 + k % 5), "elapsed_p90_s": 3600 * (30 + k % 7),
        "business_p50_s": 3600 * (3 + k % 4), "business_p90_s": 3600 * (8 + k % 5),
    }  # fmt: skip


def busy_document(
    compare: bool, zigzag: bool = False, channels: tuple[str, ...] = CHANNELS
) -> dict[str, Any]:
    clocks = [c.id for c in ASTON.clocks]
    rows = [
        row(clock, month, channel, i + j + g, 5 * i + 3 * j if zigzag else None)
        for i, clock in enumerate(clocks)
        for j, month in enumerate(MONTHS)
        for g, channel in enumerate(channels)
    ]
    # a few thin months: points of 1 to 3 instances, drawn as not significant
    rows += [row(clocks[-1], m, "email", 0) | {"met": 1, "late": 1, "overdue": 0, "breached": 1,
             "due": 2, "open": 0} for m in MONTHS[:3]]  # fmt: skip
    totals = [
        row(clock, "all", channel, i + g)
        for i, clock in enumerate(clocks)
        for g, channel in enumerate(channels)
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


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two boxes (x0, y0, x1, y1) share more than half a pixel each way."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width > 0.5 and height > 0.5


def series_marks(fig: Any, renderer: Any) -> list[tuple[str, Any, float]]:
    """What the series of ``fig`` draw, in display space, as (what, points, half size):
    each marker as its centre and half its size (edge included), each bar as two opposite
    corners and 0, each line as points every quarter pixel along its segments and half its
    width."""
    import numpy as np

    px = fig.dpi / 72
    found: list[tuple[str, Any, float]] = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            points = line.get_transform().transform(line.get_xydata())
            points = points[np.isfinite(points).all(axis=1)]
            name = line.get_label()
            if line.get_marker() not in (None, "None", "none", "", " "):
                half = (line.get_markersize() + line.get_markeredgewidth()) / 2 * px
                found += [(f"{name}'s marker", np.array([point]), half) for point in points]
            if line.get_linestyle() not in ("None", "none", "", " ") and len(points) > 1:
                samples = [
                    a + (b - a) * t[:, None]
                    for a, b in pairwise(points)
                    for t in [np.linspace(0, 1, max(2, int(np.hypot(*(b - a)) * 4) + 1))]
                ]
                found.append((f"{name}'s line", np.vstack(samples), line.get_linewidth() / 2 * px))
        for patch in ax.patches:
            box = patch.get_window_extent(renderer)
            if patch.get_visible() and box.width > 0.5 and box.height > 0.5:
                corners = np.array([[box.x0, box.y0], [box.x1, box.y1]])
                found.append(("a bar", corners, 0.0))
        assert not ax.collections, "a chart drew a collection this test does not look at"
    return found


def _on(box: tuple[float, float, float, float], what: str, points: Any, half: float) -> bool:
    """Whether a text's box covers a series' mark by more than half a pixel: a marker's or
    a bar's box, or a point of a line widened by the line's half width."""
    if not what.endswith("line"):
        x0, y0 = points.min(axis=0) - half
        x1, y1 = points.max(axis=0) + half
        return _overlap(box, (x0, y0, x1, y1))
    grow = half - 0.5
    x0, y0, x1, y1 = box[0] - grow, box[1] - grow, box[2] + grow, box[3] + grow
    inside = (points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1)
    return bool(inside.any())


def problems(caption: str, fig: Any) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    found = []
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        if _overlap(tuple(box_a.extents), tuple(box_b.extents)):
            found.append(f"{caption[:30]}: {a.get_text()!r} overlaps {b.get_text()!r}")
    marks = series_marks(fig, renderer)
    for text, box in boxes:
        found += [
            f"{caption[:30]}: {text.get_text()!r} sits on {what}"
            for what, points, half in marks
            if _on(tuple(box.extents), what, points, half)
        ]
    # the page's SVG is the tight box plus savefig's 0.1 in pad, scaled to the column width
    printed_width = fig.get_tightbbox(renderer).width + 0.2
    scale = A4_PRINTABLE_IN / printed_width
    for text in texts:
        if text.get_fontsize() * scale < SMALLEST_PT - 1e-9:
            size = text.get_fontsize() * scale
            found.append(f"{caption[:30]}: {text.get_text()!r} is {size:.1f} pt printed")
    return found


@pytest.mark.parametrize("zigzag", [False, True], ids=["close", "zigzag"])
@pytest.mark.parametrize("compare", [False, True], ids=["report", "what-if"])
def test_no_chart_text_overlaps_and_none_prints_below_7_pt(compare: bool, zigzag: bool) -> None:
    """No text of the busiest page's charts overlaps another text or sits on a marker, bar
    or line, and none prints below 7 pt."""
    document = busy_document(compare, zigzag)
    page = PageSource(ASTON, "test", ASTON if compare else None)
    figures = chart_figures(document, page)
    assert len(figures) == 4  # achievement, outcomes, response times, per channel
    if compare:
        figures.append(("What-if: achievement per clock, A and B", compare_figure(document, page)))
    found = [p for caption, fig in figures for p in problems(caption, fig)]
    assert found == []
    counts = [t for _, fig in figures for t in drawn_texts(fig) if t.get_text().startswith("n=")]
    assert counts  # labels are drawn where they fit (the check above is not vacuous)


def test_long_group_names_are_wrapped_or_cut_short_in_the_charts() -> None:
    """Group names of up to 77 characters: every chart is drawn, its texts obey the same
    rules, the names are cut short with … and the captions say the tables have them
    whole (the response-time chart was narrowed to nothing by its labels before)."""
    document = busy_document(False, channels=LONG_NAMES)
    figures = chart_figures(document, PageSource(ASTON, "test"))
    assert [p for caption, fig in figures for p in problems(caption, fig)] == []
    captions = {caption.split(";")[0].split(" (")[0]: caption for caption, _ in figures}
    for chart in ("Response times against the target", "Achievement per channel"):
        assert captions[chart].endswith("; a name cut short with … is whole in the tables")
    labels = {t.get_text() for _, fig in figures for ax in fig.axes for t in ax.get_xticklabels()}
    assert "Board of Directors\nOffice of the\nIndependent…" in labels
    assert "Customer Relations\nNorthern Region\nEscalations Team" in labels
    assert "housing/repairs_and_\nmaintenance-north-\nwest" in labels
    rows = {t.get_text() for _, fig in figures for ax in fig.axes for t in ax.get_yticklabels()}
    assert "callback · Board of Directors… (1 working day)" in rows
    assert "callback · email (1 working day)" in rows


def test_the_page_lets_a_group_name_wrap_only_at_words_and_separators() -> None:
    """In the summary and the rows per period, every group's cell holds its name whole (no
    character lost or added but soft hyphens), with a <wbr> after each -, / and _; the
    63-letter word is one box with soft hyphens every 10 or 11 letters and its name in a
    title; and no style lets a browser cut a name anywhere (the browser test measures
    the lines)."""
    document = busy_document(False, channels=LONG_NAMES)
    page = render_html(document, PageSource(ASTON, "test"))
    style = page[: page.index("</style>")]
    assert "break-word" not in style and "break-all" not in style
    cut_anywhere = re.findall(r"([^{}]*)\{[^}]*anywhere[^}]*\}", style)
    assert [rule.strip() for rule in cut_anywhere] == ["dl.meta dd"]  # the content hash
    cells = re.findall(r'<td class="text">(<span class="name".*?)</td>', page)
    each = 6 + 6 * 24  # six clocks: a total each, then a row per clock and month
    assert len(cells) == 5 * each + 3  # and three thin months of one clock by email
    text = [re.sub(r"<[^>]*>", "", c).replace("\u00ad", "") for c in cells]
    assert set(text) == set(LONG_NAMES)
    word = LONG_NAMES[2]  # 63 letters: six parts, cut after 11, 21, 32, 42, 53 letters
    parts = [word[:11], word[11:21], word[21:32], word[32:42], word[42:53], word[53:]]
    soft = "\u00ad"
    boxed = f'<span class="name" title="{word}"><span class="word">{soft.join(parts)}</span>'
    assert cells.count(boxed + "</span>") == each
    housing = (
        '<span class="name">housing/<wbr>repairs_<wbr>and_<wbr>maintenance-<wbr>north-<wbr>'
        "west</span>"
    )
    assert cells.count(housing) == each
    assert cells.count('<span class="name">email</span>') == each + 3


def test_every_count_is_in_the_table_beside_the_charts() -> None:
    """6 clocks x 24 months of achievement points: each count n (met + late + overdue over
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


def agg_figure() -> tuple[Any, Any]:
    """A 4 x 3 inch figure of one axes at 100 dpi on an Agg canvas, outside pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def test_the_check_sees_a_text_on_a_marker_a_line_and_a_bar() -> None:
    """A text drawn on a line's marker, on the middle of its line and on a bar is reported
    once for each (the check above is not vacuous)."""
    fig, ax = agg_figure()
    ax.plot([0, 10], [0, 100], marker="o", label="rising")
    ax.bar([5], [20], width=1, label="short")
    ax.set_xlim(-1, 11)
    ax.set_ylim(-10, 110)
    ax.text(10, 100, "on the marker", ha="center", va="center")
    ax.text(7, 70, "on the line", ha="center", va="center")
    ax.text(5, 10, "on the bar", ha="center", va="center")
    ax.text(1, 90, "in free space", ha="left", va="center")
    found = [p.split(": ", 1)[1] for p in problems("test", fig) if "sits on" in p]
    assert sorted(found) == [
        "'on the bar' sits on a bar",
        "'on the line' sits on rising's line",
        "'on the marker' sits on rising's line",
        "'on the marker' sits on rising's marker",
    ]


def test_a_point_count_goes_to_the_first_free_side_of_its_marker_or_is_hidden() -> None:
    """Another series' marker just above a point sends its count below it; markers above,
    below, right and left of it leave no free side: the count is hidden (the tables have
    it)."""
    from crmsync.service.chart_text import POINT_COUNT_LABEL, declutter

    fig, ax = agg_figure()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 100)
    ax.plot([5], [50], marker="o", markersize=5, linestyle="none")
    counted = ax.annotate("n=7", (5, 50), textcoords="offset points", xytext=(0, 5),
                          ha="center", va="bottom", label=POINT_COUNT_LABEL)  # fmt: skip
    fig.canvas.draw()
    # 12 pt (1/6 inch) from the point: where a label above it would be
    to_data = ax.transData.inverted()
    x, y = ax.transData.transform((5, 50))
    step = 100 / 6
    above = to_data.transform((x, y + step))
    ax.plot([above[0]], [above[1]], marker="s", markersize=6, linestyle="none")
    assert declutter(fig) == 0
    assert tuple(counted.xyann) == (0.0, -5.0)
    assert counted.get_verticalalignment() == "top"
    for dx, dy in ((0, -step), (step * 1.5, 0), (-step * 1.5, 0)):
        around = to_data.transform((x + dx, y + dy))
        ax.plot([around[0]], [around[1]], marker="s", markersize=6, linestyle="none")
    assert declutter(fig) == 1
    assert not counted.get_visible()
