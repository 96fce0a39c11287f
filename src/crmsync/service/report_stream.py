"""``crmsync report``: complaints in, the figures of one charter (and of a second) out.

Streaming like ``evaluate``: the input is read in blocks of whole lines, large inputs are
spread over worker processes, and each block comes back as a small ``Tally`` (counts and
percentile samples per row) that is merged; memory grows with the rows and samples, never
with the number of complaints. The meaning is all in ``crmsync.domain.report``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import chain
from typing import Any

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint
from crmsync.domain.instants import format_instant
from crmsync.domain.report import (
    ROW_FIELDS,
    Figures,
    Flip,
    Period,
    Tally,
    clock_instances,
    flips,
    replayed_follow_ups,
)
from crmsync.domain.returns import ReturnKind, ReturnTally
from crmsync.errors import BadComplaintError
from crmsync.service.evaluate_stream import (
    CHUNK_LINES,
    in_input_order,
    located,
    read_complaints,
)


@dataclass(frozen=True)
class ReportRequest:
    """What to report: charter(s), the due-date range (inclusive), ``now``, period, group."""

    charter: Charter
    first: date
    last: date
    now: int
    period: Period = Period.MONTH
    by: str | None = None
    compare: Charter | None = None
    returns: ReturnKind | None = None
    """A regulator's return to count as well (``domain.returns``), over ``first..last``."""


FollowUpCounts = Counter[tuple[str, str]]
"""Follow-ups by (clock or notice id, state)."""


@dataclass
class Partial:
    """The report of some of the complaints; partials of disjoint inputs merge."""

    a: Tally
    b: Tally | None = None
    flips: list[Flip] = field(default_factory=list)
    follow_ups_a: FollowUpCounts = field(default_factory=Counter)
    follow_ups_b: FollowUpCounts = field(default_factory=Counter)
    errors: list[BadComplaintError] = field(default_factory=list)
    read: int = 0
    returns: ReturnTally | None = None

    def merge(self, other: Partial) -> None:
        self.a.merge(other.a)
        if self.returns is not None and other.returns is not None:
            self.returns.merge(other.returns)
        if self.b is not None and other.b is not None:
            self.b.merge(other.b)
        self.flips.extend(other.flips)
        self.follow_ups_a.update(other.follow_ups_a)
        self.follow_ups_b.update(other.follow_ups_b)
        self.errors.extend(other.errors)
        self.read += other.read


def empty_partial(request: ReportRequest) -> Partial:
    """A report of no complaints."""

    def tally() -> Tally:
        return Tally(request.period, request.by, request.first, request.last)

    returns = (
        None
        if request.returns is None
        else ReturnTally(request.returns, request.first, request.last)
    )
    return Partial(tally(), tally() if request.compare is not None else None, returns=returns)


def _count_follow_ups(
    charter: Charter,
    complaint: Complaint,
    now: int,
    kept: set[tuple[str, int]],
    into: FollowUpCounts,
) -> None:
    """Count the replayed follow-ups of the instances in the report (notices: when the
    complaint has any)."""
    for follow_up in replayed_follow_ups(charter, complaint, now):
        if follow_up.state == "notice" or (follow_up.clock, follow_up.occurrence) in kept:
            into[(follow_up.clock, follow_up.state)] += 1


def report_complaints(
    request: ReportRequest, complaints: Iterable[tuple[str, Complaint]], into: Partial
) -> None:
    """Add ``(ref, complaint)`` pairs to ``into``; a complaint the charter(s) cannot
    evaluate is added to ``into.errors`` (named by id and ``ref``) and skipped."""
    charter, compare, now = request.charter, request.compare, request.now
    for ref, complaint in complaints:
        try:
            instances_a, undated_a = clock_instances(charter, complaint, now)
            if compare is not None:
                instances_b, undated_b = clock_instances(compare, complaint, now)
        except BadComplaintError as exc:
            into.errors.append(located(exc, ref))
            continue
        into.read += 1
        if into.returns is not None:  # a return counts only its own figures
            into.returns.add(charter.calendar.zone, instances_a)
            continue
        kept_a = into.a.add(charter, complaint, instances_a, undated_a)
        if compare is None or into.b is None:
            continue
        kept_b = into.b.add(compare, complaint, instances_b, undated_b)
        into.flips.extend(flips(complaint.id, kept_a, kept_b))
        if kept_a:
            keys = {(i.clock, i.occurrence) for i in kept_a}
            _count_follow_ups(charter, complaint, now, keys, into.follow_ups_a)
        if kept_b:
            keys = {(i.clock, i.occurrence) for i in kept_b}
            _count_follow_ups(compare, complaint, now, keys, into.follow_ups_b)


def _report_lines(
    request: ReportRequest,
    numbers: Sequence[int],
    lines: Sequence[str],
    as_read: Callable[[int], str],
) -> Partial:
    partial = empty_partial(request)
    good = read_complaints(request.charter, numbers, lines, as_read, partial.errors)
    report_complaints(request, good, partial)
    return partial


def report_text(request: ReportRequest, text: str, first_line: int) -> Partial:
    """The partial report of a block of whole lines whose first is ``first_line``."""
    lines = text.split("\n")
    last = len(lines) - 1

    def as_read(i: int) -> str:
        return lines[i] + "\n" if i < last else lines[i]

    return _report_lines(request, range(first_line, first_line + len(lines)), lines, as_read)


def report_chunk(request: ReportRequest, lines: list[tuple[int, str]]) -> Partial:
    """The partial report of numbered lines."""
    return _report_lines(
        request,
        [n for n, _ in lines],
        [t.rstrip("\n") for _, t in lines],
        lambda i: lines[i][1],
    )


_worker_request: ReportRequest | None = None


def _init_worker(request: ReportRequest) -> None:
    global _worker_request  # noqa: PLW0603 - one request per worker, set once
    _worker_request = request


def _work(chunk: tuple[int, str] | list[tuple[int, str]]) -> Partial:
    assert _worker_request is not None
    return _run(_worker_request, chunk)


def _run(request: ReportRequest, chunk: tuple[int, str] | list[tuple[int, str]]) -> Partial:
    if isinstance(chunk, tuple):
        return report_text(request, chunk[1], chunk[0])
    return report_chunk(request, chunk)


def report_stream(
    request: ReportRequest,
    source: Iterable[str],
    *,
    workers: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[Partial]:
    """The partial reports of ``source``'s lines, block by block, in input order.

    Chunks and workers as ``evaluate_stream`` (``in_input_order``).
    """
    return in_input_order(
        source,
        partial(_run, request),
        _work,
        initializer=_init_worker,
        initargs=(request,),
        workers=workers,
        chunk_lines=chunk_lines,
    )


# ---------------------------------------------------------------------- the document
def _follow_up_table(charter: Charter, counts: FollowUpCounts) -> dict[str, dict[str, int]]:
    order = [c.id for c in charter.clocks] + [n.id for n in charter.notices]
    table: dict[str, dict[str, int]] = {}
    for clock_id in order:
        states = {s: n for (c, s), n in sorted(counts.items()) if c == clock_id}
        if states:
            table[clock_id] = states
    return table


def report_document(request: ReportRequest, partial: Partial) -> dict[str, Any]:
    """The JSON document of section 5 (and 6 with a second charter)."""
    a = partial.a.figures(request.charter)
    document: dict[str, Any] = {
        "charter": request.charter.name,
        "from": request.first.isoformat(),
        "to": request.last.isoformat(),
        "now": format_instant(request.now),
        "period": request.period.value,
        "by": request.by,
        "complaints": a.complaints,
        "rows": a.rows,
        "totals": a.totals,
        "undated": a.undated,
    }
    if request.compare is not None and partial.b is not None:
        b: Figures = partial.b.figures(request.compare)
        document["compare"] = {
            "charter": request.compare.name,
            "rows": b.rows,
            "totals": b.totals,
            "undated": b.undated,
            "flips": [
                flip._asdict()
                for flip in sorted(
                    partial.flips, key=lambda f: (f.complaint_id, f.clock, f.occurrence)
                )
            ],
            "follow_ups": {
                "a": _follow_up_table(request.charter, partial.follow_ups_a),
                "b": _follow_up_table(request.compare, partial.follow_ups_b),
            },
        }
    return document


def csv_lines(document: dict[str, Any]) -> Iterator[list[object]]:
    """The CSV of a report: a header, then the rows and totals (and, with a second
    charter, its rows and totals after a ``charter`` column tells them apart)."""
    compare = document.get("compare")
    if compare is None:
        yield list(ROW_FIELDS)
        for row in chain(document["rows"], document["totals"]):
            yield [_cell(row[f]) for f in ROW_FIELDS]
        return
    yield ["charter", *ROW_FIELDS]
    for name, part in ((document["charter"], document), (compare["charter"], compare)):
        for row in chain(part["rows"], part["totals"]):
            yield [name, *(_cell(row[f]) for f in ROW_FIELDS)]


def _cell(value: object) -> object:
    return "" if value is None else value
