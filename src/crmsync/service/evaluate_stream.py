"""``crmsync evaluate``: JSON Lines of complaints in, JSON Lines of clock states out.

Streaming: input is read in chunks and at most a few chunks are in flight, so memory
does not grow with the input. Large inputs are spread over worker processes; output
order always follows input order.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import IO

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import ClockResult, evaluate
from crmsync.domain.instants import format_instant
from crmsync.errors import BadComplaintError

CHUNK_LINES = 4000


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


def evaluate_chunk(charter: Charter, lines: list[tuple[int, str]], now: int) -> ChunkResult:
    """Evaluate numbered input lines; blank lines are skipped, bad ones reported."""
    out: list[str] = []
    result = ChunkResult("")
    zone = charter.calendar.zone
    for number, text in lines:
        if not text.strip():
            continue
        ref = f"line {number}"
        try:
            data = json.loads(text)
        except ValueError as exc:
            result.errors.append(BadComplaintError(ref, f"not valid JSON: {exc}"))
            continue
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
        out.extend(result_line(complaint.id, r) for r in clocks)
    result.text = "\n".join(out) + "\n" if out else ""
    return result


_worker_charter: Charter | None = None


def _init_worker(charter: Charter) -> None:
    global _worker_charter  # noqa: PLW0603 - one charter per worker process, set once
    _worker_charter = charter


def _work(lines: list[tuple[int, str]], now: int) -> ChunkResult:
    assert _worker_charter is not None
    return evaluate_chunk(_worker_charter, lines, now)


def _chunks(source: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
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
    larger than one chunk; ``workers=1`` never starts a process.
    """
    chunks = _chunks(source, chunk_lines)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if second is None or count <= 1:
        head = [first] if second is None else [first, second]
        for chunk in chain(head, chunks):
            done = evaluate_chunk(charter, chunk, now)
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
