"""Chart text that reads when printed: no two texts of a chart overlap.

Tick labels that collide are turned upright, then thinned; count labels (a point's
``n=``, a bar's total) are drawn only where they fit, their counts being in a table
beside the chart. Text extents are measured on matplotlib's Agg canvas after a draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

COUNT_LABEL = "_count"
"""The artist label that marks a count label (the leading underscore keeps it out of
legends)."""
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


def declutter(fig: Any, first: Callable[[Any], bool] = lambda text: False) -> int:
    """Hide each count label (``COUNT_LABEL``) that would overlap another text: tick labels,
    titles, legends, and the count labels kept so far, those ``first`` picks placed first;
    the number hidden. ``fig`` has an Agg canvas (text extents are measured on it)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = shown_texts(fig)
    counts = [t for t in texts if t.get_label() == COUNT_LABEL]
    kept = [t.get_window_extent(renderer) for t in texts if t.get_label() != COUNT_LABEL]
    hidden = 0
    for text in sorted(counts, key=lambda t: not first(t)):
        box = text.get_window_extent(renderer)
        if _overlaps(box, kept):
            text.set_visible(False)
            hidden += 1
        else:
            kept.append(box)
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
