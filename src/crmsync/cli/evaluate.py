"""``crmsync evaluate``, ``explain`` and ``schema``: the charter engine on files."""

from __future__ import annotations

import codecs
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Annotated, BinaryIO, TextIO

import typer
from rich.table import Table
from rich.text import Text

from crmsync.cli.app import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    app,
    fail,
    load_charter_or_exit,
    parse_now,
    plain,
)
from crmsync.cli.options import CharterOpt, WorkersOpt, input_option, now_option, output_option
from crmsync.cli.profile import load_profile
from crmsync.cli.progress import out_console, progress, summary
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import State, evaluate
from crmsync.domain.explanation import explain_clock, local_text
from crmsync.domain.instants import format_instant
from crmsync.errors import BadComplaintError, MappingError
from crmsync.heap_tuning import prepare_to_fork_workers
from crmsync.service.evaluate_stream import NESTED_TOO_DEEPLY, evaluate_stream
from crmsync.terminal import escape_controls


@app.command("evaluate")
def evaluate_cmd(
    charter: CharterOpt,
    input: Annotated[
        str, input_option("JSON Lines of canonical complaints; '-' reads standard input.")
    ],
    now: Annotated[
        str,
        now_option(
            "Evaluate as of this instant (ISO-8601 with offset, e.g. 2026-03-02T09:00:00Z)."
        ),
    ],
    output: Annotated[
        Path | None, output_option("Write JSON Lines here instead of standard output.")
    ] = None,
    workers: WorkersOpt = None,
) -> None:
    """Evaluate every complaint against the charter as of NOW (docs/charter-language.md).

    Writes one JSON line per (complaint, applicable clock). Exit status: 0 all evaluated,
    3 some complaints were bad input (reported on standard error, the rest still output),
    2 bad charter or arguments (nothing output).
    """
    loaded = load_charter_or_exit(charter)
    instant = parse_now(now)
    prepare_to_fork_workers()  # see crmsync.heap_tuning
    undecodable: list[int] = []
    bad = 0
    with ExitStack() as stack:
        try:
            raw: BinaryIO = (
                sys.stdin.buffer if input == "-" else stack.enter_context(open(input, "rb"))
            )
        except OSError as exc:
            raise fail(f"--input: cannot read {input}: {exc.strerror}") from exc
        name = "standard input" if input == "-" else input
        source = _Utf8Source(raw, undecodable, name)
        try:
            source.check_encoding()
        except _EncodingError as exc:
            raise fail(f"--input: {exc}") from exc
        except OSError as exc:
            raise fail(f"--input: cannot read {name}: {exc.strerror}") from exc
        try:
            target: TextIO = (
                open(output, "w", encoding="utf-8")  # noqa: SIM115 - closed below, errors named
                if output is not None
                else sys.stdout
            )
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from exc
        sink = _Sink(target, "standard output" if output is None else f"--output: {output}")
        complaints = clocks = 0
        started = time.monotonic()
        try:
            with progress("complaints evaluated", data_to=target) as tracker:
                for chunk in evaluate_stream(loaded, source, sink, instant, workers=workers):
                    for error in chunk.errors:
                        bad += 1
                        print(f"bad complaint {escape_controls(str(error))}", file=sys.stderr)
                    complaints += chunk.complaints
                    clocks += chunk.clocks
                    tracker.advance(chunk.complaints)
            sink.flush()
            if output is not None:
                target.close()  # a full disk may only show now
        except _OutputError as exc:
            raise fail(str(exc), EXIT_FAILED) from exc
        except OSError as exc:
            raise fail(f"--input: cannot read {name}: {exc.strerror}", EXIT_FAILED) from exc
        finally:
            if output is not None and not target.closed:
                with suppress(OSError):  # already reported: the write that failed
                    target.close()
    summary(
        f"evaluated {complaints:,} complaints ({clocks:,} clock results) in "
        f"{time.monotonic() - started:.1f} s"
        + (f"; {bad + len(undecodable):,} bad complaints skipped" if bad or undecodable else "")
    )
    if bad or undecodable:
        raise typer.Exit(EXIT_BAD_INPUT)


class _OutputError(Exception):
    """Writing the output failed (full disk, closed pipe): the message names the file."""


class _Sink:
    """The output stream; an ``OSError`` while writing becomes an ``_OutputError`` naming it
    (reading the input can fail with ``OSError`` too, and means something else)."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._error(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: OSError) -> _OutputError:
        if isinstance(exc, BrokenPipeError):
            # the reader went away (`| head`): nothing more can be shown there
            with suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        reason = exc.strerror or str(exc)
        return _OutputError(f"cannot write {self._name}: {reason}")


class _EncodingError(ValueError):
    """The input is not UTF-8 as a whole (a UTF-16 or UTF-32 byte-order mark)."""


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE"),  # before UTF-16LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)


def _wide_text(name: str, head: bytes) -> str | None:
    """What is wrong when ``head`` (a file's first bytes) is a UTF-16/32 byte-order mark."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return (
                f"{name} is {encoding} text (byte-order mark {bom.hex(' ').upper()}); crmsync "
                f"reads UTF-8 JSON Lines: convert it, e.g. iconv -f {encoding} -t UTF-8"
            )
    return None


class _Utf8Source:
    """Text from UTF-8 bytes, read as ``evaluate_stream`` reads a file (``read``/``readline``).

    Blocks are decoded whole (fast); a block that is not all UTF-8 is decoded line by
    line: each bad line is reported on standard error as a bad complaint (with the file
    ``name``), noted in ``undecodable`` and read as a blank line, so the other lines keep
    their numbers and are still evaluated. A UTF-8 byte-order mark before the first line
    is dropped; ``check_encoding`` refuses a UTF-16 or UTF-32 one.
    """

    def __init__(self, raw: BinaryIO, undecodable: list[int], name: str) -> None:
        self._raw = raw
        self._undecodable = undecodable
        self._name = name
        self._next_line = 1
        self._at_start = True

    def check_encoding(self) -> None:
        """Raise ``_EncodingError`` when the input starts with a UTF-16/32 byte-order mark
        (every line would be garbage as UTF-8); nothing is consumed."""
        peek = getattr(self._raw, "peek", None)
        problem = _wide_text(self._name, peek(4)[:4] if callable(peek) else b"")
        if problem:
            raise _EncodingError(problem)

    def read(self, size: int = -1) -> str:
        """About ``size`` characters of whole lines (all that is left if ``size < 0``)."""
        block = self._raw.read(size) if size >= 0 else self._raw.read()
        if block and not block.endswith(b"\n"):
            block += self._raw.readline()
        return self._decode(block)

    def readline(self) -> str:
        return self._decode(self._raw.readline())

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def _decode(self, block: bytes) -> str:
        if self._at_start and block:
            self._at_start = False
            block = block.removeprefix(codecs.BOM_UTF8)
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            parts = block.split(b"\n")
            lines = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
            text = "".join(self._decode_line(self._next_line + i, b) for i, b in enumerate(lines))
        self._next_line += block.count(b"\n")
        return text

    def _decode_line(self, number: int, line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._undecodable.append(number)
            print(
                f"bad complaint line {number}: not UTF-8 text "
                f"(byte 0x{line[exc.start]:02x} at column {exc.start + 1} of "
                f"{escape_controls(self._name)}; crmsync reads UTF-8)",
                file=sys.stderr,
            )
            return "\n"


def _find(input_path: str, complaint_id: str, charter: Charter) -> tuple[object, str]:
    """The complaint ``complaint_id`` and its ``line N``; exit 2 when the file cannot be read
    or holds no such complaint, 3 when the lines that mention it are not readable JSON."""
    name = "standard input" if input_path == "-" else input_path
    unreadable: list[str] = []
    # the id as written in the file: plain, or with JSON escapes (control characters)
    needles = {complaint_id, json.dumps(complaint_id)[1:-1]}
    needles.add(json.dumps(complaint_id, ensure_ascii=False)[1:-1])
    try:
        opened = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise fail(f"--input: cannot read {name}: {exc.strerror}") from exc
    try:
        with opened as handle:
            for number, raw in enumerate(handle, start=1):
                problem = _wide_text(name, raw[:4]) if number == 1 else None
                if problem:
                    raise fail(f"--input: {problem}")
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    if any(n.encode("utf-8", "replace") in raw for n in needles):
                        unreadable.append(
                            f"line {number}: not UTF-8 text (byte at column {exc.start + 1})"
                        )
                    continue
                if not any(n in text for n in needles):
                    continue
                try:
                    data = json.loads(text)
                except (ValueError, RecursionError) as exc:
                    reason = str(exc) if isinstance(exc, ValueError) else NESTED_TOO_DEEPLY
                    unreadable.append(f"line {number}: {reason}")
                    continue
                if isinstance(data, dict) and str(data.get("id")) == complaint_id:
                    return data, f"line {number}"
    except OSError as exc:
        raise fail(f"--input: cannot read {name}: {exc.strerror}") from exc
    if unreadable:
        raise fail(
            f"no readable complaint with id '{complaint_id}' in {name}; lines that mention "
            f"it cannot be read: {'; '.join(unreadable)}",
            EXIT_BAD_INPUT,
        )
    raise fail(f"no complaint with id '{complaint_id}' in {name}")


def _read_from_crm(complaint_id: str) -> tuple[object, str]:
    """The complaint's record from the profile's CRM (CRMSYNC_PROFILE), as canonical."""
    from crmsync.bootstrap import build_crm  # noqa: PLC0415 - the CRM adapters, on use
    from crmsync.errors import CrmSyncError  # noqa: PLC0415
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415
    from crmsync.service.complaint_lookup import read_complaint  # noqa: PLC0415

    settings = load_profile()
    try:
        mapping = load_mapping(settings.mapping)
        data = read_complaint(build_crm(settings), mapping, complaint_id)
    except MappingError as exc:
        raise fail(f"record {exc.record_id}, field {exc.field}: {exc.message}", 3) from exc
    except CrmSyncError as exc:
        raise fail(f"profile {settings.profile}: {exc}", 1) from exc
    if data is None:
        raise fail(
            f"no complaint with id '{complaint_id}' in the CRM of profile {settings.profile}"
        )
    return data, f"CRM record {complaint_id}"


def _when(instant: int | None, charter: Charter) -> str:
    if instant is None:
        return "-"
    return f"{local_text(charter.calendar, instant)}\n[dim]{format_instant(instant)}[/dim]"


_STATE_STYLE = {
    State.PENDING: "dim",
    State.ON_TRACK: "green",
    State.AT_RISK: "yellow",
    State.BREACHED: "bold red",
    State.MET: "green",
    State.MET_LATE: "red",
}


@app.command("explain", short_help="Show one complaint's clocks and how each deadline was counted.")
def explain_cmd(
    charter: CharterOpt,
    complaint_id: Annotated[str, typer.Option("--id", help="The complaint to explain.")],
    input: Annotated[
        str | None,
        input_option(
            "JSON Lines of canonical complaints; '-' reads standard input. Without it "
            "the record is read from the profile's CRM through the mapping."
        ),
    ] = None,
    now: Annotated[
        str | None, now_option("Explain as of this instant (ISO-8601 with offset; default: now).")
    ] = None,
) -> None:
    """Show every clock of one complaint as a table: start, stop, deadline, warning, state;
    then, clock by clock, how the deadline was counted on the business calendar."""
    loaded = load_charter_or_exit(charter)
    instant = parse_now(now) if now is not None else int(time.time())
    if input is None:
        data, ref = _read_from_crm(complaint_id)
    else:
        data, ref = _find(input, complaint_id, loaded)
    try:
        complaint = complaint_from_json(data, loaded.calendar.zone, ref)
        results = evaluate(loaded, complaint, instant)
    except BadComplaintError as exc:
        raise fail(f"bad complaint {exc}", EXIT_BAD_INPUT) from exc
    out = out_console()
    as_of = local_text(loaded.calendar, instant)
    table = Table(
        title=plain(
            f"{loaded.title}: complaint {complaint.id} as of {as_of} ({loaded.calendar.zone.key})"
        ),
        show_lines=True,
    )
    table.add_column("clock", no_wrap=True)
    for column in ("state", "started", "stopped", "due", "warning"):
        table.add_column(column, overflow="fold")
    for r in results:
        state = r.state.value + (f" #{r.occurrence}" if r.occurrence else "")
        table.add_row(
            r.clock,
            f"[{_STATE_STYLE[r.state]}]{state}[/]",
            _when(r.started_at, loaded),
            _when(r.stopped_at, loaded),
            _when(r.due_at, loaded),
            _when(r.warn_at, loaded),
        )
    skipped = [c.id for c in loaded.clocks if c.id not in {r.clock for r in results}]
    out.print(table)
    # Printed below the table, unwrapped, so the sentences stay whole at any width.
    out.print("How it was counted:", style="bold")
    for r in results:
        clock = loaded.clock(r.clock)
        for i, line in enumerate(explain_clock(loaded.calendar, clock, r, complaint, instant)):
            head = f"  {r.clock}: " if i == 0 else " " * (len(r.clock) + 4)
            out.print(Text(head + line), soft_wrap=True)
    if skipped:
        out.print(f"[dim]not applicable (their 'when' does not hold): {', '.join(skipped)}[/dim]")


@app.command("schema")
def schema_cmd(
    kind: Annotated[str, typer.Argument(help="Which schema: 'charter' or 'mapping'.")] = "charter",
) -> None:
    """Print the JSON Schema of a YAML file kind (shipped in mappings/ for editors)."""
    from crmsync.mapping.charter_file import charter_json_schema  # noqa: PLC0415
    from crmsync.mapping.field_mapping import mapping_json_schema  # noqa: PLC0415

    schemas = {"charter": charter_json_schema, "mapping": mapping_json_schema}
    if kind not in schemas:
        raise fail(f"unknown schema '{kind}' (known: {', '.join(schemas)})")
    print(json.dumps(schemas[kind](), indent=2, sort_keys=True))
