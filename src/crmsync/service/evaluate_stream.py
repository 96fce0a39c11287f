"""``crmsync evaluate``: JSON Lines of complaints in, JSON Lines of clock states out.

Streaming: input is read in chunks and at most a few chunks are in flight, so memory
does not grow with the input. Large inputs are spread over worker processes; output
order always follows input order.

The hot path is tuned (about 10^6 complaints per half minute on two cores) without
touching the meaning: a file-like source is read in blocks of whole lines that travel
to the workers as one string, each worker returns its output as one string, and the
output lines are assembled from per-charter constants. The text is byte for byte what
``result_line`` gives, and bad lines get the same messages as ``json.loads`` gives.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, islice
from typing import IO, Any

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import ClockResult, evaluate
from crmsync.domain.instants import format_instant
from crmsync.errors import BadComplaintError

CHUNK_LINES = 4000
"""Lines per chunk for sources that are plain iterables of lines."""
CHUNK_CHARS = 1 << 21
"""Characters per chunk (rounded up to a whole line) for file-like sources: ~4,000 lines."""

_DAY = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_FAST_INSTANTS = 253402300800  # 10000-01-01: below it (and from 1970) instants format fast
_CACHE_LIMIT = 1 << 17  # formatted instants kept per worker before the cache starts over


@dataclass
class ChunkResult:
    """The output text of one chunk of input lines and the bad complaints in it."""

    text: str
    errors: list[BadComplaintError] = field(default_factory=list)
    complaints: int = 0
    clocks: int = 0


def _instant(value: int | None) -> str:
    return "null" if value is None else f'"{format_instant(value)}"'


def result_line(complaint_id: str, r: ClockResult) -> str:
    """One output line (no newline) exactly as section 5 of the contract shows it."""
    line = (
        f'{{"complaint_id": {json.dumps(complaint_id)}, "clock": {json.dumps(r.clock)}, '
        f'"state": "{r.state.value}", "started_at": {_instant(r.started_at)}, '
        f'"due_at": {_instant(r.due_at)}, "warn_at": {_instant(r.warn_at)}, '
        f'"stopped_at": {_instant(r.stopped_at)}, "occurrence": {r.occurrence}'
    )
    if r.breaches is not None:
        line += f', "breaches": {r.breaches}'
    if r.missing is not None:
        line += f', "missing": {json.dumps(list(r.missing))}'
    return line + "}"


class _LineWriter:
    """Writes ``result_line`` text fast: clock ids, instants and ``missing`` lists are
    JSON-encoded once and reused (one writer per process and charter)."""

    def __init__(self, charter: Charter) -> None:
        self.clock_text = {
            c.id: f', "clock": {json.dumps(c.id)}, "state": "' for c in charter.clocks
        }
        self.instants: dict[int | None, str] = {None: "null"}
        self.missing: dict[tuple[str, ...], str] = {}
        self.days: dict[int, str] = {}

    def _instant(self, instant: int | None) -> str:
        """``"YYYY-MM-DDTHH:MM:SSZ"`` with its quotes, as ``format_instant`` writes it."""
        if instant is None:
            return "null"
        if len(self.instants) > _CACHE_LIMIT:
            self.instants = {None: "null"}
        if 0 <= instant < _FAST_INSTANTS:
            day, second = divmod(instant, _DAY)
            day_text = self.days.get(day)
            if day_text is None:
                day_text = self.days[day] = date.fromordinal(day + _EPOCH_ORDINAL).isoformat()
            text = f'"{day_text}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"'
        else:
            text = f'"{format_instant(instant)}"'
        self.instants[instant] = text
        return text

    def lines(self, complaint_id: str, results: list[ClockResult], out: list[str]) -> None:
        """Append one line per result to ``out``, each exactly ``result_line``'s text."""
        if (
            complaint_id.isascii()
            and complaint_id.isprintable()
            and '"' not in complaint_id
            and "\\" not in complaint_id
        ):  # nothing json.dumps would escape
            head = f'{{"complaint_id": "{complaint_id}"'
        else:
            head = f'{{"complaint_id": {json.dumps(complaint_id)}'
        get = self.instants.get
        for r in results:
            clock = self.clock_text.get(r.clock)
            if clock is None:
                clock = self.clock_text[r.clock] = f', "clock": {json.dumps(r.clock)}, "state": "'
            a = get(r.started_at) or self._instant(r.started_at)
            b = get(r.due_at) or self._instant(r.due_at)
            c = get(r.warn_at) or self._instant(r.warn_at)
            d = get(r.stopped_at) or self._instant(r.stopped_at)
            line = (
                f'{head}{clock}{r.state}", "started_at": {a}, "due_at": {b}, "warn_at": {c}, '
                f'"stopped_at": {d}, "occurrence": {r.occurrence}'
            )
            if r.breaches is not None:
                line += f', "breaches": {r.breaches}'
            if r.missing is not None:
                missing = self.missing.get(r.missing)
                if missing is None:
                    missing = self.missing[r.missing] = json.dumps(list(r.missing))
                line += f', "missing": {missing}'
            out.append(line + "}")


# what json.loads runs, minus its checks (typeshed does not declare the attribute)
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _evaluate_lines(
    charter: Charter,
    numbered: Iterable[tuple[int, str, str]],
    now: int,
    writer: _LineWriter,
) -> ChunkResult:
    """Evaluate ``(line number, text without newline, text as read)`` triples."""
    out: list[str] = []
    result = ChunkResult("")
    zone = charter.calendar.zone
    for number, stripped, text in numbered:
        if not stripped or stripped.isspace():
            continue
        data: Any
        try:
            data, end = _scan_json(stripped, 0)
            if end != len(stripped):
                raise ValueError("extra data")
        except (StopIteration, ValueError):
            # not plain JSON: json.loads decides, with its own message
            try:
                data = json.loads(text)
            except ValueError as exc:
                result.errors.append(BadComplaintError(f"line {number}", f"not valid JSON: {exc}"))
                continue
        ref = f"line {number}"
        try:
            complaint = complaint_from_json(data, zone, ref)
            clocks = evaluate(charter, complaint, now)
        except BadComplaintError as exc:
            if exc.ref != ref:
                exc = BadComplaintError(f"{exc.ref} ({ref})", exc.reason)
            result.errors.append(exc)
            continue
        result.complaints += 1
        result.clocks += len(clocks)
        writer.lines(complaint.id, clocks, out)
    result.text = "\n".join(out) + "\n" if out else ""
    return result


def evaluate_chunk(
    charter: Charter,
    lines: list[tuple[int, str]],
    now: int,
    writer: _LineWriter | None = None,
) -> ChunkResult:
    """Evaluate numbered input lines; blank lines are skipped, bad ones reported."""
    numbered = ((number, text.rstrip("\n"), text) for number, text in lines)
    return _evaluate_lines(charter, numbered, now, writer or _LineWriter(charter))


def evaluate_text(
    charter: Charter,
    text: str,
    first_line: int,
    now: int,
    writer: _LineWriter | None = None,
) -> ChunkResult:
    """Evaluate a block of whole lines (``\\n``-separated) whose first is ``first_line``."""
    lines = text.split("\n")
    last = len(lines) - 1  # the text after the last newline: empty, or a final unended line
    numbered = (
        (first_line + i, line, line + "\n" if i < last else line) for i, line in enumerate(lines)
    )
    return _evaluate_lines(charter, numbered, now, writer or _LineWriter(charter))


_worker_charter: Charter | None = None
_worker_writer: _LineWriter | None = None


def _init_worker(charter: Charter) -> None:
    global _worker_charter, _worker_writer  # noqa: PLW0603 - one charter per worker, set once
    _worker_charter = charter
    _worker_writer = _LineWriter(charter)


def _work(chunk: tuple[int, str] | list[tuple[int, str]], now: int) -> ChunkResult:
    assert _worker_charter is not None
    if isinstance(chunk, tuple):
        return evaluate_text(_worker_charter, chunk[1], chunk[0], now, _worker_writer)
    return evaluate_chunk(_worker_charter, chunk, now, _worker_writer)


def _text_chunks(source: IO[str], size: int) -> Iterator[tuple[int, str]]:
    """``(first line number, text of whole lines)`` blocks of about ``size`` characters."""
    number = 1
    while block := source.read(size):
        if not block.endswith("\n"):
            block += source.readline()
        yield number, block
        number += block.count("\n")


def _line_chunks(source: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    numbered = enumerate(source, start=1)
    while chunk := list(islice(numbered, size)):
        yield chunk


def evaluate_stream(
    charter: Charter,
    source: Iterable[str],
    sink: IO[str],
    now: int,
    *,
    workers: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[ChunkResult]:
    """Evaluate every line of ``source`` and write the output to ``sink`` in input order.

    Yields each chunk's result (after its text is written) so the caller can report
    errors and count. ``workers=None`` uses one process per core once the input is
    larger than one chunk; ``workers=1`` never starts a process. A source with ``read``
    (a text file) is read in blocks of ``CHUNK_CHARS`` characters of whole lines, unless
    ``chunk_lines`` is given; other sources in chunks of ``chunk_lines`` lines.
    """
    chunks: Iterator[tuple[int, str]] | Iterator[list[tuple[int, str]]]
    if chunk_lines == CHUNK_LINES and callable(getattr(source, "read", None)):
        chunks = _text_chunks(source, CHUNK_CHARS)  # type: ignore[arg-type]
    else:
        chunks = _line_chunks(source, chunk_lines)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if second is None or count <= 1:
        writer = _LineWriter(charter)
        head = [first] if second is None else [first, second]
        for chunk in chain(head, chunks):
            if isinstance(chunk, tuple):
                done = evaluate_text(charter, chunk[1], chunk[0], now, writer)
            else:
                done = evaluate_chunk(charter, chunk, now, writer)
            sink.write(done.text)
            yield done
        return
    window = 2 * count
    pending: deque[Future[ChunkResult]] = deque()
    with ProcessPoolExecutor(count, initializer=_init_worker, initargs=(charter,)) as pool:
        for chunk in chain((first, second), chunks):
            pending.append(pool.submit(_work, chunk, now))
            if len(pending) >= window:
                done = pending.popleft().result()
                sink.write(done.text)
                yield done
        while pending:
            done = pending.popleft().result()
            sink.write(done.text)
            yield done
