"""The report as one self-contained HTML page: figures, charts (inline SVG) and the what-if.

Charts are drawn by matplotlib's SVG backend with text kept as text (no embedded or
downloaded fonts) and inlined into a Jinja2 template with inline CSS, so the page makes
no request at all; it reads on a screen and prints on A4.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from functools import partial as partial_draw
from typing import Any

from crmsync.domain.charter import Charter
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.report import Period, period_name
from crmsync.domain.report_charts import achievement_of, added, response_shares
from crmsync.service.chart_text import (
    COUNT_LABEL,
    POINT_COUNT_LABEL,
    POINT_COUNT_PLACES,
    declutter,
    fit_ticks,
    fit_width,
)
from crmsync.service.name_wrapping import name_html, shortened, wrapped
from crmsync.service.report_page import PageSource
from crmsync.terminal import escape_controls

_WEAK_TEXT = "#757575"
_COLOURS = {"met": "#2e7d32", "late": "#f9a825", "overdue": "#c62828", "open": "#90a4ae"}
_PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
"""Okabe and Ito's colours, told apart by colour-blind readers; each clock's line also has
its own marker (``_MARKERS``), so that a page printed in grey tells them apart too."""
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
SIGNIFICANT = 5
"""A chart point standing for fewer instances (met + late + overdue) is drawn hollow and
grey, as not significant: one or two instances swing a month from 100 % to 0 %."""
FLIPS_SHOWN = 500
"""Flips listed on the page (all of them are in the JSON)."""
CHART_GROUPS = 12
"""Groups a chart names (``--by``): the largest, by clock instances due; the others fold
into one "other" bar where the figure can be folded (achievement: counts add up) and are
left out where it cannot (percentiles). The tables always list every group."""
BAR_NAME = (20, 3)
"""A group's name under its bars (achievement per group): lines of at most 20 characters,
at most 3 (``name_wrapping.wrapped``); the rest is cut with … (the tables have it whole)."""
ROW_NAME = (24, 1)
"""A group's name beside its response-time bars, between its clock and target: one line of
at most 24 characters."""


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy, loaded only for a page

    matplotlib.use("svg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib and jinja2, imported when used

    plt.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: no font is embedded or fetched
            "svg.hashsalt": "crmsync",  # stable ids: the same figures give the same page
            "text.parse_math": False,  # a '$' in a group or clock label is text, not TeX
            "font.family": "sans-serif",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


def _svg(fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.clf()
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib and jinja2, imported when used

    plt.close(fig)
    text = out.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE (inline in HTML)
    return re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1class="chart"', text, count=1
    )


def period_labels(periods: Sequence[str], partial: set[str]) -> list[str]:
    """Tick labels: a period the range covers only in part is marked ``(part)``."""
    return [f"{p}\n(part)" if p in partial else p for p in periods]


def partial_periods(document: dict[str, Any]) -> set[str]:
    """The periods at the edges of the range that the range covers only in part: the
    first when the day before ``from`` is in the same period, the last when the day after
    ``to`` is (a range starting 15 January makes January a part month)."""
    period = Period(document["period"])
    if period is Period.ALL:
        return set()
    first, last = date.fromisoformat(document["from"]), date.fromisoformat(document["to"])
    out = set()
    if period_name(first - timedelta(days=1), period) == period_name(first, period):
        out.add(period_name(first, period))
    if period_name(last + timedelta(days=1), period) == period_name(last, period):
        out.add(period_name(last, period))
    return out


def build_figure(
    plt: Any, height: float, parts: Sequence[tuple[str | None, Any]], *, stack: bool = False
) -> Any:
    """One chart as a matplotlib figure: each ``(title, draw)`` of ``parts`` draws on its own
    axes; two parts (A and B of a what-if) side by side (``stack``: one above the other).
    No two of its texts overlap and no count label sits on a series (``declutter``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - on use

    if len(parts) == 1:
        fig, ax = plt.subplots(figsize=(7.2, height))
        axes = [ax]
    elif stack:
        # one scale for both: B's bars read against A's, the target at the same place
        fig, axes = plt.subplots(2, 1, figsize=(7.2, 2 * height + 0.4), sharex=True)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(7.2, height), sharey=True)
    FigureCanvasAgg(fig)  # text extents are measured on it; the page is still SVG
    for ax, (title, draw) in zip(axes, parts, strict=True):
        draw(ax)
        if title is not None:
            ax.set_title(title, fontsize=9, loc="left", pad=4 if len(parts) == 2 else 22)
    seen: dict[str, Any] = {}
    if len(parts) == 2:  # one legend for both, below them: the axes keep their width
        for ax in axes:  # (taken off first: each legend above a half-width axes is wider
            # than it, and fitting the figure to them would squeeze the axes to a sliver)
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(label, handle)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    fit_width(fig)
    for ax in axes:
        fit_ticks(ax, fig.canvas.get_renderer())
    if len(parts) == 2:
        fig.tight_layout()
        fig.canvas.draw()  # the axes moved: fit their ticks again, and the layout to them
        for ax in axes:
            fit_ticks(ax, fig.canvas.get_renderer())
        fig.tight_layout()
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=4,
            fontsize=8,
            frameon=False,
        )
    declutter(fig, first=lambda text: text.get_color() == _WEAK_TEXT)
    return fig


def _achievement_axes(
    rows: Sequence[dict[str, Any]], clocks: Sequence[str], partial: set[str], ax: Any
) -> None:
    periods = sorted({r["period"] for r in rows})
    for i, clock in enumerate(clocks):
        points = _combined_points(rows, clock)
        if not points:
            continue
        colour, marker = _PALETTE[i % len(_PALETTE)], _MARKERS[i % len(_MARKERS)]
        keys = sorted(points)
        xs = [periods.index(p) for p in keys]
        strong = [p for p in keys if points[p][1] >= SIGNIFICANT]
        ax.plot(  # the line joins the significant points only: no plunge through a weak one
            [periods.index(p) for p in strong], [points[p][0] for p in strong], color=colour,
            label=clock, linewidth=1.2, marker=marker, markersize=5,
        )  # fmt: skip
        for x, p in zip(xs, keys, strict=True):
            value, n = points[p]
            weak = n < SIGNIFICANT
            if weak:  # hollow and grey, on no line
                ax.plot(
                    [x], [value], marker=marker, markersize=5.5, color="#9e9e9e",
                    markerfacecolor="white", linestyle="none",
                )  # fmt: skip
            offset, across, up = POINT_COUNT_PLACES[0]  # declutter moves it where it is free
            ax.annotate(
                f"n={n}",
                (x, value),
                textcoords="offset points",
                xytext=offset,
                ha=across,
                va=up,
                fontsize=7.5,
                color=_WEAK_TEXT if weak else "#424242",
                label=POINT_COUNT_LABEL,
            )
    ax.set_xticks(range(len(periods)), period_labels(periods, partial), fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("achievement %")
    ax.legend(fontsize=8, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)


def _by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    """``rows`` grouped by the value of ``key``, in order of first appearance."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def _combined_points(rows: Sequence[dict[str, Any]], clock: str) -> dict[str, tuple[float, int]]:
    """Per period: the domain's achievement of ``clock`` over all groups and the number of
    instances it stands for (``achievement_of``); periods with none are left out."""
    out: dict[str, tuple[float, int]] = {}
    for period, mine in _by((r for r in rows if r["clock"] == clock), "period").items():
        figure, n = achievement_of(mine)
        if figure is not None:
            out[period] = (figure, n)
    return out


def _achievements(rows: Sequence[dict[str, Any]], key: str) -> dict[str, float]:
    """Per value of ``key``: the domain's achievement of those rows together (never a
    figure of the page's own)."""
    out: dict[str, float] = {}
    for value, mine in _by(rows, key).items():
        figure, _ = achievement_of(mine)
        if figure is not None:
            out[value] = figure
    return out


def _outcomes_axes(rows: Sequence[dict[str, Any]], partial: set[str], ax: Any) -> None:
    by_period = _by(rows, "period")
    periods = sorted(by_period)
    totals = [added(by_period[p]) for p in periods]
    bottom = [0] * len(periods)
    for outcome, colour in _COLOURS.items():
        heights = [t[outcome] for t in totals]
        if not any(heights):
            continue  # no colour, and no legend entry, for an outcome that never happened
        ax.bar(range(len(periods)), heights, bottom=bottom, color=colour, label=outcome)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]  # where the next stacks
    for x, total in enumerate(t["due"] for t in totals):
        ax.annotate(
            str(total), (x, total), textcoords="offset points", xytext=(0, 2), ha="center",
            fontsize=7.5, label=COUNT_LABEL,
        )  # fmt: skip
    ax.set_xticks(range(len(periods)), period_labels(periods, partial), fontsize=8)
    ax.set_ylabel("clock instances")
    ax.legend(fontsize=8, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)


_WORDS = {
    Unit.MINUTES: "minute",
    Unit.HOURS: "hour",
    Unit.DAYS: "day",
    Unit.WEEKS: "week",
    Unit.BUSINESS_MINUTES: "working minute",
    Unit.BUSINESS_HOURS: "working hour",
    Unit.BUSINESS_DAYS: "working day",
}


def duration_words(duration: Duration) -> str:
    """A target in words for a reader: ``2 working days``, ``8 weeks``, ``1 hour``."""
    word = _WORDS[duration.unit]
    return f"{duration.amount} {word}{'' if duration.amount == 1 else 's'}"


def _response_bars(
    charter: Charter, totals: Sequence[dict[str, Any]]
) -> tuple[list[str], list[float], list[float]]:
    """Per total with closed instances and a target: label, p50 and p90 as % of target."""
    labels: list[str] = []
    p50: list[float] = []
    p90: list[float] = []
    grouped = any(row["group"] is not None for row in totals)
    for row in totals:
        shares = response_shares(charter, row)
        target = charter.clock(row["clock"]).measure
        if shares is None or target is None:
            continue
        group = f" · {_chart_name(row['group'], ROW_NAME)}" if grouped else ""
        labels.append(f"{escape_controls(row['clock'])}{group} ({duration_words(target)})")
        p50.append(shares[0])
        p90.append(shares[1])
    return labels, p50, p90


def _response_axes(bars: tuple[list[str], list[float], list[float]], ax: Any) -> None:
    labels, p50, p90 = bars
    ys = list(range(len(labels)))
    ax.barh([y - 0.2 for y in ys], p50, height=0.4, color="#1565c0", label="median (p50)")
    ax.barh([y + 0.2 for y in ys], p90, height=0.4, color="#90caf9", label="90th percentile")
    ax.axvline(100, color="#c62828", linestyle="--", linewidth=1, label="target")
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("response time as % of the target")
    ax.legend(fontsize=8, ncols=3, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)


def chart_totals(totals: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The totals a chart shows, and how many groups were folded: the ``CHART_GROUPS``
    groups with the most instances due (ties by name) as they are, and, when more than
    one group is left, one row per clock for all the others (group ``other (N groups)``,
    ``folded`` true):
    their counts added, the achievement the domain's rule of those counts, no
    percentiles (they cannot be folded without the samples)."""
    due: dict[str | None, int] = {}
    for r in totals:
        due[r["group"]] = due.get(r["group"], 0) + r["due"]
    ranked = sorted(due, key=lambda g: (-due[g], g is None, g or ""))
    if len(ranked) <= CHART_GROUPS + 1:
        return list(totals), 0
    kept = set(ranked[:CHART_GROUPS])
    folded = len(ranked) - CHART_GROUPS
    out = [r for r in totals if r["group"] in kept]
    percentiles = ("elapsed_p50_s", "elapsed_p90_s", "business_p50_s", "business_p90_s")
    for clock, rest in _by((r for r in totals if r["group"] not in kept), "clock").items():
        out.append(
            {"clock": clock, "group": f"other ({folded:,} groups)"}
            | added(rest)
            | {"achievement": achievement_of(rest)[0], "folded": True}
            | dict.fromkeys(percentiles, None)
        )
    return out, folded


def _group_axes(totals: Sequence[dict[str, Any]], clocks: Sequence[str], ax: Any) -> None:
    from matplotlib.patches import Rectangle  # noqa: PLC0415 - matplotlib, on use

    named = sorted({r["group"] or "(none)" for r in totals if not _is_other(r)})
    groups = named + sorted({r["group"] for r in totals if _is_other(r)})
    width = 0.8 / max(len(clocks), 1)
    for i, clock in enumerate(clocks):
        mine = {r["group"] or "(none)": r for r in totals if r["clock"] == clock}
        heights = [mine[g]["achievement"] or 0 if g in mine else 0 for g in groups]
        colour = _PALETTE[i % len(_PALETTE)]
        bars = ax.bar([x + i * width for x in range(len(groups))], heights, width, color=colour)
        # the legend's swatch: a bar's own could be a hatched one
        ax.add_patch(Rectangle((0, 0), 0, 0, color=colour, label=clock))
        for bar, group in zip(bars, groups, strict=True):
            row = mine.get(group)
            if row is not None and row["met"] + row["late"] + row["overdue"] < SIGNIFICANT:
                bar.set_facecolor("white")  # not significant: hatched in the clock's colour
                bar.set_edgecolor(colour)
                bar.set_hatch("////")
    ax.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(groups))],
        [_chart_name(g, BAR_NAME) for g in groups],
        fontsize=8,
    )
    ax.set_ylim(0, 105)
    ax.set_ylabel("achievement %")
    ax.legend(fontsize=8, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)


def _chart_name(group: str | None, fit: tuple[int, int]) -> str:
    """A group's name as a chart shows it: wrapped to ``fit`` (line length, lines), a CRM
    value's control characters shown escaped; ``(none)`` for no value."""
    return wrapped(escape_controls(group or "(none)"), *fit)


def _cut_short(totals: Iterable[dict[str, Any]], fit: tuple[int, int]) -> bool:
    """Whether a chart showing the groups of ``totals`` within ``fit`` cuts a name short."""
    return any(shortened(escape_controls(r["group"] or "(none)"), *fit) for r in totals)


_CUT_SHORT = "; a name cut short with … is whole in the tables"


def _is_other(row: dict[str, Any]) -> bool:
    """Whether ``row`` is the folded "other" row of ``chart_totals``."""
    return bool(row.get("folded"))


def _compare_axes(
    clocks: Sequence[str], a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], ax: Any
) -> None:
    ta, tb = _total_achievement(a), _total_achievement(b)
    xs = list(range(len(clocks)))
    ax.bar([x - 0.2 for x in xs], [ta.get(c, 0) for c in clocks], 0.4, label="A", color="#0072b2")
    ax.bar([x + 0.2 for x in xs], [tb.get(c, 0) for c in clocks], 0.4, label="B", color="#d55e00")
    ax.set_xticks(xs, clocks, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("achievement %")
    ax.legend(fontsize=8, ncols=2, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)


def compare_figure(document: dict[str, Any], page: PageSource) -> Any:
    """The what-if's chart of achievement per clock under A and B (a matplotlib figure)."""
    assert page.compare is not None and "compare" in document
    clocks = [c.id for c in page.charter.clocks]
    clocks += [c.id for c in page.compare.clocks if c.id not in clocks]
    draw = partial_draw(_compare_axes, clocks, document["totals"], document["compare"]["totals"])
    return build_figure(_pyplot(), 3.0, [(None, draw)])


def _total_achievement(totals: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per clock over all groups: the domain's achievement of the added counts."""
    return _achievements(totals, "clock")


def _hours(seconds: int | None) -> str:
    """Calendar time for a reader: minutes, hours, then days of 24 hours."""
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _opening_hours(seconds: int | None) -> str:
    """Opening time for a reader: minutes, then hours, never days (a day of 24 opening
    hours would read as three working days)."""
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _sides(
    document: dict[str, Any], page: PageSource
) -> list[tuple[str | None, Charter, list[dict[str, Any]], list[dict[str, Any]]]]:
    """(title, charter, rows, totals) of each side: A alone, or A and B side by side."""
    compare = document.get("compare")
    other = page.compare if compare is not None else None
    sides: list[tuple[str | None, Charter, list[dict[str, Any]], list[dict[str, Any]]]] = [
        (None if other is None else f"A: {page.charter.name}", page.charter,
         document["rows"], document["totals"])
    ]  # fmt: skip
    if other is not None and compare is not None:
        sides.append((f"B: {other.name}", other, compare["rows"], compare["totals"]))
    return sides


def period_counts(rows: Sequence[dict[str, Any]], clocks: Sequence[str]) -> list[dict[str, Any]]:
    """Per period, the counts behind the charts: per clock the instances its achievement
    point stands for (met + late + overdue; None: no point), and ``all``, the instances of
    the outcomes bar (every clock's due)."""
    points = {clock: _combined_points(rows, clock) for clock in clocks}
    out = []
    for period in sorted({r["period"] for r in rows}):
        counts = {c: points[c][period][1] if period in points[c] else None for c in clocks}
        due = added(r for r in rows if r["period"] == period)["due"]
        out.append({"period": period, "clocks": counts, "all": due})
    return out


def chart_figures(document: dict[str, Any], page: PageSource) -> list[tuple[str, Any]]:
    """The page's charts as (caption, matplotlib figure), in the page's order."""
    plt = _pyplot()
    rows = document["rows"]
    charts: list[tuple[str, Any]] = []
    sides = _sides(document, page)
    if rows:
        drawn = {r["period"] for _, _, side_rows, _ in sides for r in side_rows}
        partial = partial_periods(document) & drawn  # an edge period with no row: unsaid
        edge = " (part): a period the range covers only in part" if partial else ""

        def ids(side: Charter) -> list[str]:
            return [c.id for c in side.clocks]

        charts.append(
            (
                "Achievement per clock and period: n= the instances a point stands for (met, "
                f"late or overdue; every count is in the table below the charts); hollow grey "
                f"points stand for fewer than {SIGNIFICANT} and are not significant{edge}",
                build_figure(
                    plt,
                    3.2,
                    [
                        (t, partial_draw(_achievement_axes, r, ids(c), partial))
                        for t, c, r, _ in sides
                    ],
                ),
            )
        )
        charts.append(
            (
                f"Outcomes per period (clock instances, all clocks){edge}",
                build_figure(
                    plt,
                    3.2,
                    [(t, partial_draw(_outcomes_axes, r, partial)) for t, _, r, _ in sides],
                ),
            )
        )
        charted = [chart_totals(t) for _, _, _, t in sides]
        folded = charted[0][1]
        bars = [_response_bars(c, ct[0]) for (_, c, _, _), ct in zip(sides, charted, strict=True)]
        if any(b[0] for b in bars):
            title = "Response times against the target"
            if folded:
                everyone = CHART_GROUPS + folded
                title += f" (the {CHART_GROUPS} largest groups; all {everyone:,} are in the tables)"
            if any(_cut_short(ct[0], ROW_NAME) for ct in charted):
                title += _CUT_SHORT
            height = 0.8 + 0.32 * max(len(b[0]) for b in bars)
            parts = [
                (t, partial_draw(_response_axes, b))
                for (t, _, _, _), b in zip(sides, bars, strict=True)
            ]
            charts.append((title, build_figure(plt, height, parts, stack=True)))
        if document["by"] is not None:
            title = f"Achievement per {document['by']}"
            if folded:
                title += f" (the {CHART_GROUPS} largest; the other {folded:,} as one)"
            title += (
                f"; hatched bars stand for fewer than {SIGNIFICANT} instances (met, late or "
                "overdue) and are not significant"
            )
            if any(_cut_short(ct[0], BAR_NAME) for ct in charted):
                title += _CUT_SHORT
            parts = [
                (t, partial_draw(_group_axes, ct[0], ids(c)))
                for (t, c, _, _), ct in zip(sides, charted, strict=True)
            ]
            charts.append((title, build_figure(plt, 3.0, parts)))
    return charts


def render_html(document: dict[str, Any], page: PageSource) -> str:
    """The page of a report document (``report_document``'s JSON)."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415 - on use

    charts = [(title, _svg(fig)) for title, fig in chart_figures(document, page)]
    charter = page.charter
    clocks = [c.id for c in charter.clocks]
    compare = document.get("compare")
    counts = [
        (title, [c.id for c in side.clocks], period_counts(rows, [c.id for c in side.clocks]))
        for title, side, rows, _ in _sides(document, page)
        if rows
    ]
    compare_view: dict[str, Any] | None = None
    if compare is not None and page.compare is not None:
        all_clocks = clocks + [c.id for c in page.compare.clocks if c.id not in clocks]
        compare_view = {
            "charter": page.compare,
            "totals": compare["totals"],
            "undated": compare["undated"],
            "flips": compare["flips"][:FLIPS_SHOWN],
            "flip_count": len(compare["flips"]),
            "follow_ups": compare.get("follow_ups", {}),
            "chart": _svg(compare_figure(document, page)),
            "clocks": all_clocks,
        }
    env = Environment(
        loader=PackageLoader("crmsync.service", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hours"] = _hours
    env.filters["name"] = name_html
    env.filters["opening_hours"] = _opening_hours
    # a charter whose clocks pause: its tables say how many instances were paused
    pausing = any(getattr(c, "pause", None) is not None for c in charter.clocks)
    template = env.get_template("report.html.j2")
    return template.render(
        doc=document,
        charter=charter,
        source=page.source,
        charts=charts,
        counts=counts,
        compare=compare_view,
        fields=(
            "due",
            "met",
            "late",
            "overdue",
            "open",
            "breached",
            *(("paused",) if pausing else ()),
        ),
        pausing=pausing,
    )
