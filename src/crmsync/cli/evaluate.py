"""``crmsync evaluate``, ``explain`` and ``schema``: the charter engine on files."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Annotated, BinaryIO, TextIO

import typer
from rich.table import Table
from rich.text import Text

from crmsync.cli.app import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    PlainCommand,
    app,
    fail,
    load_charter_or_exit,
    parse_now,
    plain,
)
from crmsync.cli.options import CharterOpt, WorkersOpt, input_option, now_option, output_option
from crmsync.cli.profile import charter_path, load_profile
from crmsync.cli.progress import out_console, progress, summary
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import State, evaluate
from crmsync.domain.explanation import explain_clock, local_text
from crmsync.domain.instants import format_instant
from crmsync.errors import BadComplaintError, InputFileError, MappingError
from crmsync.heap_tuning import prepare_to_fork_workers
from crmsync.inputs.encoding import refuse_wide_text
from crmsync.inputs.json_lines import Utf8Source
from crmsync.private_file import PrivateFile
from crmsync.service.evaluate_stream import NESTED_TOO_DEEPLY, evaluate_stream
from crmsync.terminal import escape_controls


@app.command("evaluate", cls=PlainCommand)
def evaluate_cmd(
    *,
    charter: CharterOpt = None,
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
    loaded = load_charter_or_exit(charter_path(charter))
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
        source = Utf8Source(raw, undecodable, name, warn=to_stderr)
        try:
            source.check_encoding()
        except InputFileError as exc:
            raise fail(f"--input: {exc}") from exc
        except OSError as exc:
            raise fail(f"--input: cannot read {name}: {exc.strerror}") from exc
        sink = _Sink.to(output)
        stack.callback(sink.discard)  # after a failure: no partial file, the old one kept
        complaints = clocks = 0
        started = time.monotonic()
        try:
            with progress("complaints evaluated", data_to=sink.stream) as tracker:
                for chunk in evaluate_stream(loaded, source, sink, instant, workers=workers):
                    for error in chunk.errors:
                        bad += 1
                        print(f"bad complaint {escape_controls(str(error))}", file=sys.stderr)
                    complaints += chunk.complaints
                    clocks += chunk.clocks
                    tracker.advance(chunk.complaints)
            sink.finish()
        except _OutputError as exc:
            raise fail(str(exc), EXIT_FAILED) from exc
        except OSError as exc:
            raise fail(f"--input: cannot read {name}: {exc.strerror}", EXIT_FAILED) from exc
    summary(
        f"evaluated {complaints:,} complaints ({clocks:,} clock results) in "
        f"{time.monotonic() - started:.1f} s"
        + (f"; {bad + len(undecodable):,} bad complaints skipped" if bad or undecodable else "")
    )
    if bad or undecodable:
        raise typer.Exit(EXIT_BAD_INPUT)


def to_stderr(message: str) -> None:
    """A line on standard error (above the progress line on a terminal)."""
    print(message, file=sys.stderr)


class _OutputError(Exception):
    """Writing the output failed (full disk, closed pipe): the message names the file."""


class _Sink:
    """The output stream; an ``OSError`` while writing becomes an ``_OutputError`` naming it
    (reading the input can fail with ``OSError`` too, and means something else)."""

    def __init__(self, stream: TextIO, name: str, file: PrivateFile | None = None) -> None:
        self.stream = stream
        self._name = name
        self._file = file

    @classmethod
    def to(cls, output: Path | None) -> _Sink:
        """Standard output, or ``output`` written as a ``PrivateFile`` (0600, whole or not
        at all); exit 2 when the file cannot be made."""
        if output is None:
            return cls(sys.stdout, "standard output")
        try:
            file = PrivateFile.open(output)
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from exc
        return cls(file.handle, f"--output: {output}", file)

    def finish(self) -> None:
        """Flush; a file is then committed (a full disk may only show now)."""
        self.flush()
        if self._file is not None:
            try:
                self._file.commit()
            except OSError as exc:
                raise self._error(exc) from exc

    def discard(self) -> None:
        """Drop a file not finished (nothing for standard output or a finished file)."""
        if self._file is not None:
            self._file.discard()

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            raise self._error(exc) from exc

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: OSError) -> _OutputError:
        if isinstance(exc, BrokenPipeError):
            # the reader went away (`| head`): nothing more can be shown there
            with suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        reason = exc.strerror or str(exc)
        return _OutputError(f"cannot write {self._name}: {reason}")


def _find(input_path: str, complaint_id: str, charter: Charter) -> tuple[object, str]:
    """The complaint ``complaint_id`` and its ``line N``; exit 2 when the file cannot be read
    or holds no such complaint, 3 when the lines that mention it are not readable JSON."""
    name = "standard input" if input_path == "-" else input_path
    unreadable: list[str] = []
    # the id as written in the file: plain, or with JSON escapes (control characters)
    needles = {complaint_id, json.dumps(complaint_id)[1:-1]}
    needles.add(json.dumps(complaint_id, ensure_ascii=False)[1:-1])
    try:
        opened = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise fail(f"--input: cannot read {name}: {exc.strerror}") from exc
    try:
        with opened as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1:
                    try:
                        refuse_wide_text(name, raw[:4])
                    except InputFileError as exc:
                        raise fail(f"--input: {exc}") from exc
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
    from crmsync.errors import CrmSyncError  # noqa: PLC0415 - imported when used
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415 - pydantic
    from crmsync.service.complaint_lookup import read_complaint  # noqa: PLC0415 - on use

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


@app.command(
    "explain",
    short_help="Show one complaint's clocks and how each deadline was counted.",
    cls=PlainCommand,
)
def explain_cmd(
    *,
    charter: CharterOpt = None,
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
    then, clock by clock, how the deadline was counted on the business calendar.

    Exit status: 0 shown; 2 bad charter or arguments, or no such complaint; 3 the lines that
    mention it cannot be read, or the complaint is bad input; 1 the CRM could not be read."""
    loaded = load_charter_or_exit(charter_path(charter))
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


@app.command("schema", cls=PlainCommand)
def schema_cmd(
    kind: Annotated[str, typer.Argument(help="Which schema: 'charter' or 'mapping'.")] = "charter",
) -> None:
    """Print the JSON Schema of a YAML file kind (shipped in mappings/ for editors).

    Exit status: 0 printed; 2 an unknown kind."""
    from crmsync.mapping.charter_file import charter_json_schema  # noqa: PLC0415 - pydantic
    from crmsync.mapping.field_mapping import mapping_json_schema  # noqa: PLC0415 - pydantic

    schemas = {"charter": charter_json_schema, "mapping": mapping_json_schema}
    if kind not in schemas:
        raise fail(f"unknown schema '{kind}' (known: {', '.join(schemas)})")
    print(json.dumps(schemas[kind](), indent=2, sort_keys=True))
