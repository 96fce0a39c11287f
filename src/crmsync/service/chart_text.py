"""Chart text that reads when printed: no two texts of a chart overlap, and no count label
sits on a marker, bar or line of a series.

Tick labels that collide are turned upright, then thinned; count labels (a point's
``n=``, a bar's total) are drawn only where they fit, a point's count on whichever side
of its marker is free, their counts being in a table beside the chart. Extents are
measured in display space on matplotlib's Agg canvas after a draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

COUNT_LABEL = "_count"
"""The artist label that marks a count label drawn where it is or not at all (a bar's
total; the leading underscore keeps it out of legends)."""
POINT_COUNT_LABEL = "_point_count"
"""The artist label that marks a point's count (``n=``), an annotation of the point
placed by ``declutter`` on a free side of its marker (``POINT_COUNT_PLACES``)."""
POINT_COUNT_PLACES = (
    ((0.0, 5.0), "center", "bottom"),
    ((0.0, -5.0), "center", "top"),
    ((5.0, 0.0), "left", "center"),
    ((-5.0, 0.0), "right", "center"),
)
"""Where a point's count may go, in the order tried: (offset from the point in points,
horizontal and vertical alignment), above, below, right and left of a marker of up to
about 6 pt."""
CLEARANCE_PX = 2.0
"""The least gap, in pixels of the canvas (100 per inch), between a count label and another
text or a series' mark: two counts side by side read as two."""
PRINT_WIDTH_IN = 186 / 25.4
"""The printable width of A4 (210 mm less two 12 mm margins): a page's chart is this wide
when printed (``svg.chart`` fills the column)."""
MIN_PRINTED_PT = 7.0
"""No chart text is smaller than this when printed on A4."""


def shown_texts(fig: Any) -> list[Any]:
    """The texts ``fig`` draws: every visible, non-empty text, tick labels only of the ticks
    within their axis's view (matplotlib keeps labels of ticks it does not draw)."""
    from matplotlib.text import Text  # noqa: PLC0415 - matplotlib, on use

    ticks: set[int] = set()
    out: list[Any] = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = (high - low) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
                label = tick.label1
                if (
                    low - slack <= tick.get_loc() <= high + slack
                    and label.get_visible()
                    and label.get_text().strip()
                ):
                    out.append(label)
    for text in fig.findobj(Text):
        if id(text) not in ticks and text.get_visible() and text.get_text().strip():
            out.append(text)
    return out


def _overlaps(box: Any, others: Sequence[Any]) -> bool:
    return any(box.overlaps(other) for other in others)


def fit_ticks(ax: Any, renderer: Any) -> None:
    """X tick labels that collide are turned upright; labels that still collide are thinned
    to every k-th, the smallest k that separates them (the tables name every period)."""
    labels = [t for t in ax.get_xticklabels() if t.get_text().strip()]
    for label in labels:  # from scratch: the layout may have changed since the last fit
        label.set_visible(True)
        label.set_rotation(0)
    boxes = [t.get_window_extent(renderer) for t in labels]
    if not any(a.overlaps(b) for a, b in pairwise(boxes)):
        return
    for label in labels:
        label.set_rotation(90)
        label.set_horizontalalignment("center")
    boxes = [t.get_window_extent(renderer) for t in labels]
    step = 1
    while any(a.overlaps(b) for a, b in zip(boxes[::step], boxes[step::step], strict=False)):
        step += 1
    for i, label in enumerate(labels):
        label.set_visible(i % step == 0)


def _series_marks(fig: Any, renderer: Any) -> tuple[list[Any], list[tuple[Any, float]]]:
    """What the series of ``fig`` draw, in display space: the boxes of every marker (size
    and edge) and every bar, and each line as a path with half its width."""
    from matplotlib.path import Path  # noqa: PLC0415 - matplotlib, on use
    from matplotlib.transforms import Bbox  # noqa: PLC0415 - matplotlib, on use

    px = fig.dpi / 72
    boxes: list[Any] = []
    lines: list[tuple[Any, float]] = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            points = [
                (x, y)
                for x, y in line.get_transform().transform(line.get_xydata())
                if math.isfinite(x) and math.isfinite(y)
            ]
            if line.get_marker() not in _NOTHING:
                half = (line.get_markersize() + line.get_markeredgewidth()) / 2 * px
                boxes += [
                    Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in points
                ]
            if line.get_linestyle() not in _NOTHING and len(points) > 1:
                lines.append((Path(points), line.get_linewidth() / 2 * px))
        for patch in ax.patches:  # bars (a legend's zero-sized swatch draws nothing)
            box = patch.get_window_extent(renderer)
            if patch.get_visible() and box.width > 0 and box.height > 0:
                boxes.append(box)
    return boxes, lines


_NOTHING = (None, "None", "none", "", " ")
"""What ``Line2D.get_marker`` and ``get_linestyle`` say when a line draws no marker or no
line."""


def _on_a_mark(box: Any, marks: tuple[list[Any], list[tuple[Any, float]]]) -> bool:
    boxes, lines = marks
    return _overlaps(box, boxes) or any(
        path.intersects_bbox(box.padded(half), filled=False) for path, half in lines
    )


def _inside(box: Any, frame: Any) -> bool:
    return bool(
        frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    )


def declutter(fig: Any, first: Callable[[Any], bool] = lambda text: False) -> int:
    """Place each count label where it overlaps no other text (tick labels, titles, legends,
    the count labels kept so far, those ``first`` picks placed first) and no marker, bar or
    line of a series: a bar's total (``COUNT_LABEL``) where it is drawn, a point's count
    (``POINT_COUNT_LABEL``) at the first free place of ``POINT_COUNT_PLACES`` inside its
    axes. A label with no free place is hidden (its count is in a table beside the chart);
    the number hidden. ``fig`` has an Agg canvas (extents are measured on it)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = shown_texts(fig)
    counts = [t for t in texts if t.get_label() in (COUNT_LABEL, POINT_COUNT_LABEL)]
    kept = [t.get_window_extent(renderer) for t in texts if t not in counts]
    marks = _series_marks(fig, renderer)
    hidden = 0
    for text in sorted(counts, key=lambda t: not first(t)):
        point = text.get_label() == POINT_COUNT_LABEL
        frame = text.axes.get_window_extent(renderer) if point else None
        for offset, across, up in POINT_COUNT_PLACES if point else [(None, None, None)]:
            if offset is not None:
                text.xyann = offset
                text.set_horizontalalignment(across)
                text.set_verticalalignment(up)
            box = text.get_window_extent(renderer)
            clear = box.padded(CLEARANCE_PX)
            if (
                (frame is None or _inside(box, frame))
                and not _overlaps(clear, kept)
                and not _on_a_mark(clear, marks)
            ):
                kept.append(box)
                break
        else:
            text.set_visible(False)
            hidden += 1
    return hidden


def fit_width(fig: Any, inches: float = PRINT_WIDTH_IN, pad: float = 0.1) -> None:
    """Narrow ``fig`` until its tight box (with ``pad`` each side, as saved) is at most
    ``inches`` wide: labels wider than the axes (long group names) would otherwise make
    the saved chart wider than the column, and every text print smaller than it is."""
    for _ in range(6):
        fig.canvas.draw()
        wide = fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * pad
        if wide <= inches:
            return
        width, height = fig.get_size_inches()
        fig.set_size_inches(width - (wide - inches) - 0.05, height)
