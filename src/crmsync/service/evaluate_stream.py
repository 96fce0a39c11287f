"""``crmsync evaluate``: JSON Lines of complaints in, JSON Lines of clock states out.

Streaming: input is read in chunks and at most a few chunks are in flight, so memory
does not grow with the input. Large inputs are spread over worker processes; output
order always follows input order.

The hot path is tuned (about 30,000 Aston complaints a second on two cores) without
touching the meaning: a file-like source is read in blocks of whole lines that travel
to the workers as one string, each worker returns its output as one string, and the
output lines are assembled from per-charter constants. The text is byte for byte what
``result_line`` (``domain/clock_json.py``, the one serialiser) gives, and bad lines get
the same messages as ``json.loads`` gives (lines are decoded by msgspec; a line it refuses
is decoded again by ``json.loads``).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import chain, islice
from typing import IO, Any, Final, Protocol, TypeVar

import msgspec

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.evaluation import ClockResult, evaluate
from crmsync.domain.instants import format_instant
from crmsync.domain.unicode_text import lone_surrogate_at, lone_surrogate_problem
from crmsync.errors import BadComplaintError

CHUNK_LINES = 4000
"""Lines per chunk for sources that are plain iterables of lines."""
CHUNK_CHARS = 1 << 21
"""Characters per chunk (rounded up to a whole line) for file-like sources: ~4,000 lines."""

NESTED_TOO_DEEPLY = "not readable JSON: arrays or objects nested too deeply"
"""The reason given for a line whose nesting exhausts the JSON reader's recursion."""

# Final: compiled, these are read as constants rather than looked up as module globals
_DAY: Final = 86400
_EPOCH_ORDINAL: Final = 719163  # date(1970, 1, 1).toordinal()
_FAST_INSTANTS: Final = 253402300800  # 10000-01-01: below it (and from 1970) instants format fast
_SHARED_LIMIT: Final = 1024  # not-started results remembered by identity
_CLOCK_MINUTES: Final = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_CLOCK_SECONDS: Final = tuple(f'{s:02d}Z"' for s in range(60))


class TextSink(Protocol):
    """Where ``evaluate_stream`` writes: anything with a text ``write``."""

    def write(self, text: str, /) -> int: ...


@dataclass
class ChunkResult:
    """The output text of one chunk of input lines and the bad complaints in it."""

    text: str
    errors: list[BadComplaintError] = field(default_factory=list)
    complaints: int = 0
    clocks: int = 0


class _LineWriter:
    """Writes ``result_line`` text fast: clock ids, dates and ``missing`` lists are
    JSON-encoded once and reused (one writer per process and charter), and each line is
    assembled in one piece. Kept beside the one serialiser because it is measured faster
    (before issue 15's second round: 270,875 lines of 50,000 Aston complaints in 0.6 CPU-s
    against 3.2 s through ``result_line``)."""

    def __init__(self, charter: Charter) -> None:
        self.clock_text = {
            c.id: f', "clock": {json.dumps(c.id)}, "state": "' for c in charter.clocks
        }
        self.missing: dict[tuple[str, ...], str] = {}
        self.days: dict[int, str] = {}
        self.unstarted: dict[tuple[object, ...], str] = {}
        self.shared: dict[int, tuple[ClockResult, str]] = {}  # by id(), result kept alive

    def _instant(self, instant: int | None) -> tuple[str, str, str]:
        """``"YYYY-MM-DDTHH:MM:SSZ"`` with its quotes, as ``format_instant`` writes it, in
        three pieces (date, hours and minutes, seconds); ``null`` for no instant."""
        if instant is None:
            return "null", "", ""
        if 0 <= instant < _FAST_INSTANTS:
            day = instant // _DAY
            second = instant - day * _DAY
            day_text = self.days.get(day)
            if day_text is None:
                iso = date.fromordinal(day + _EPOCH_ORDINAL).isoformat()
                day_text = self.days[day] = f'"{iso}T'
            return day_text, _CLOCK_MINUTES[second // 60], _CLOCK_SECONDS[second % 60]
        return f'"{format_instant(instant)}"', "", ""

    def _tail(self, r: ClockResult) -> str:
        """Everything of ``r``'s line after the complaint id, its newline included."""
        clock = self.clock_text.get(r.clock)
        if clock is None:
            clock = self.clock_text[r.clock] = f', "clock": {json.dumps(r.clock)}, "state": "'
        a1, a2, a3 = self._instant(r.started_at)
        b1, b2, b3 = self._instant(r.due_at)
        c1, c2, c3 = self._instant(r.warn_at)
        d1, d2, d3 = self._instant(r.stopped_at)
        if r.breaches is None and r.missing is None and r.extensions is None and r.pauses is None:
            return (
                f'{clock}{r.state}", "started_at": {a1}{a2}{a3}, "due_at": {b1}{b2}{b3}, '
                f'"warn_at": {c1}{c2}{c3}, "stopped_at": {d1}{d2}{d3}, '
                f'"occurrence": {r.occurrence}}}\n'
            )
        tail = (
            f'{clock}{r.state}", "started_at": {a1}{a2}{a3}, "due_at": {b1}{b2}{b3}, '
            f'"warn_at": {c1}{c2}{c3}, "stopped_at": {d1}{d2}{d3}, "occurrence": {r.occurrence}'
        )
        if r.breaches is not None:
            tail += f', "breaches": {r.breaches}'
        if r.missing is not None:
            missing = self.missing.get(r.missing)
            if missing is None:
                missing = self.missing[r.missing] = json.dumps(list(r.missing))
            tail += f', "missing": {missing}'
        if r.extensions is not None:
            tail += f', "extensions": {r.extensions}'
        if r.pauses is not None:
            tail += f', "pauses": {r.pauses}'
        return tail + "}\n"

    def lines(self, complaint_id: str, results: list[ClockResult], out: list[str]) -> None:
        """Append one line per result to ``out`` (in two pieces, the id's and the rest),
        each exactly ``result_line``'s text and a newline."""
        if (
            complaint_id.isascii()
            and complaint_id.isprintable()
            and '"' not in complaint_id
            and "\\" not in complaint_id
        ):  # nothing json.dumps would escape
            head = f'{{"complaint_id": "{complaint_id}"'
        else:
            head = f'{{"complaint_id": {json.dumps(complaint_id)}'
        unstarted, shared = self.unstarted, self.shared
        for r in results:
            out.append(head)
            hit = shared.get(id(r))
            if hit is not None and hit[0] is r:  # a result instance the domain shares
                out.append(hit[1])
            elif r.started_at is None and r.due_at is None and r.warn_at is None:
                # not started: the same text for every complaint (state by identity:
                # hashing an enum member runs Python code)
                key = (
                    r.clock, id(r.state), r.stopped_at, r.occurrence, r.breaches, r.missing,
                    r.extensions, r.pauses,
                )  # fmt: skip
                tail = unstarted.get(key)
                if tail is None:
                    tail = unstarted[key] = self._tail(r)
                if len(shared) >= _SHARED_LIMIT:
                    shared.clear()
                shared[id(r)] = (r, tail)
                out.append(tail)
            else:
                out.append(self._tail(r))


# msgspec reads a line about twice as fast as json.loads and gives the same values for
# every line it accepts (integers of any size included); what it refuses goes to json.loads
_decode_json: Callable[[str], Any] = msgspec.json.Decoder().decode


def located(exc: BadComplaintError, ref: str) -> BadComplaintError:
    """``exc`` naming its line as well when it names the complaint by id."""
    return exc if exc.ref == ref else BadComplaintError(f"{exc.ref} ({ref})", exc.reason)


def read_complaints(
    charter: Charter,
    numbers: Sequence[int],
    lines: Sequence[str],
    as_read: Callable[[int], str],
    errors: list[BadComplaintError],
) -> Iterator[tuple[str, Complaint]]:
    """``(ref, complaint)`` for each good line (``ref`` is ``line N``); blank lines are
    skipped and each bad line is appended to ``errors`` with the reason.

    ``as_read(i)`` is line ``i`` as it was read, newline included: only bad JSON needs
    it, since json.loads's message counts that newline.
    """
    zone = charter.calendar.zone
    decode = _decode_json
    for i, line in enumerate(lines):
        if not line or line.isspace():
            continue
        data: Any
        try:
            data = decode(line)
        except (msgspec.DecodeError, RecursionError):
            # not plain JSON (or JSON that msgspec reads otherwise, such as 1e400 or NaN):
            # json.loads decides, with its own message
            try:
                data = json.loads(as_read(i))
            except ValueError as exc:
                errors.append(BadComplaintError(f"line {numbers[i]}", f"not valid JSON: {exc}"))
                continue
            except RecursionError:
                errors.append(BadComplaintError(f"line {numbers[i]}", NESTED_TOO_DEEPLY))
                continue
            # only json.loads reads a lone surrogate (msgspec refuses one): no UTF-8 output
            # can hold it, so the line is bad, named by its field
            where = lone_surrogate_at(data)
            if where is not None:
                errors.append(
                    BadComplaintError(f"line {numbers[i]}", lone_surrogate_problem(where))
                )
                continue
        ref = f"line {numbers[i]}"
        try:
            yield ref, complaint_from_json(data, zone, ref)
        except BadComplaintError as exc:
            errors.append(located(exc, ref))


def _evaluate_lines(
    charter: Charter,
    numbers: Sequence[int],
    lines: Sequence[str],
    as_read: Callable[[int], str],
    *,
    now: int,
    writer: _LineWriter,
) -> ChunkResult:
    """Evaluate ``lines`` (each without its newline), numbered by ``numbers``
    (``as_read`` as for ``read_complaints``)."""
    out: list[str] = []
    errors: list[BadComplaintError] = []
    complaints = clocks = 0
    write = writer.lines
    for ref, complaint in read_complaints(charter, numbers, lines, as_read, errors):
        try:
            results = evaluate(charter, complaint, now)
        except BadComplaintError as exc:
            errors.append(located(exc, ref))
            continue
        complaints += 1
        clocks += len(results)
        write(complaint.id, results, out)
    return ChunkResult("".join(out), errors, complaints, clocks)


def evaluate_chunk(
    charter: Charter,
    lines: list[tuple[int, str]],
    now: int,
    writer: _LineWriter | None = None,
) -> ChunkResult:
    """Evaluate numbered input lines; blank lines are skipped, bad ones reported."""

    def as_read(i: int) -> str:
        return lines[i][1]

    numbers = [number for number, _ in lines]
    stripped = [text.rstrip("\n") for _, text in lines]
    return _evaluate_lines(
        charter, numbers, stripped, as_read, now=now, writer=writer or _LineWriter(charter)
    )


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

    def as_read(i: int) -> str:
        return lines[i] + "\n" if i < last else lines[i]

    numbers = range(first_line, first_line + len(lines))
    return _evaluate_lines(
        charter, numbers, lines, as_read, now=now, writer=writer or _LineWriter(charter)
    )


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


def text_chunks(source: IO[str], size: int) -> Iterator[tuple[int, str]]:
    """``(first line number, text of whole lines)`` blocks of about ``size`` characters."""
    number = 1
    while block := source.read(size):
        if not block.endswith("\n"):
            block += source.readline()
        yield number, block
        number += block.count("\n")


def line_chunks(source: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    numbered = enumerate(source, start=1)
    while chunk := list(islice(numbered, size)):
        yield chunk


Chunk = tuple[int, str] | list[tuple[int, str]]
"""``(first line number, text of whole lines)`` from a file, or numbered lines otherwise."""
R = TypeVar("R")


def in_input_order(
    source: Iterable[str],
    local: Callable[[Chunk], R],
    pooled: Callable[[Chunk], R],
    *,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    workers: int | None,
    chunk_lines: int,
) -> Iterator[R]:
    """``source`` in chunks, each worked by ``local`` in this process or by ``pooled`` in a
    worker process (started with ``initializer(*initargs)``); the results in input order.

    ``workers=None`` uses one process per core once the input is larger than one chunk;
    ``workers=1`` never starts a process. A source with ``read`` (a text file) is read in
    blocks of ``CHUNK_CHARS`` characters of whole lines, unless ``chunk_lines`` is given;
    other sources in chunks of ``chunk_lines`` lines. At most two chunks per worker are in
    flight, so memory does not grow with the input.
    """
    chunks: Iterator[tuple[int, str]] | Iterator[list[tuple[int, str]]]
    if chunk_lines == CHUNK_LINES and callable(getattr(source, "read", None)):
        chunks = text_chunks(source, CHUNK_CHARS)  # type: ignore[arg-type]
    else:
        chunks = line_chunks(source, chunk_lines)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if second is None or count <= 1:
        head = [first] if second is None else [first, second]
        for chunk in chain(head, chunks):
            yield local(chunk)
        return
    window = 2 * count
    pending: deque[Future[R]] = deque()
    with ProcessPoolExecutor(count, initializer=initializer, initargs=initargs) as pool:
        for chunk in chain((first, second), chunks):
            pending.append(pool.submit(pooled, chunk))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _evaluate_here(charter: Charter, now: int, writer: _LineWriter, chunk: Chunk) -> ChunkResult:
    if isinstance(chunk, tuple):
        return evaluate_text(charter, chunk[1], chunk[0], now, writer)
    return evaluate_chunk(charter, chunk, now, writer)


def evaluate_stream(
    charter: Charter,
    source: Iterable[str],
    sink: TextSink,
    now: int,
    *,
    workers: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[ChunkResult]:
    """Evaluate every line of ``source`` and write the output to ``sink`` in input order.

    Yields each chunk's result (after its text is written) so the caller can report
    errors and count. Chunks and workers as ``in_input_order``.
    """
    results = in_input_order(
        source,
        partial(_evaluate_here, charter, now, _LineWriter(charter)),
        partial(_work, now=now),
        initializer=_init_worker,
        initargs=(charter,),
        workers=workers,
        chunk_lines=chunk_lines,
    )
    for done in results:
        sink.write(done.text)
        yield done
