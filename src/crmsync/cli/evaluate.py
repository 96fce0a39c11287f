"""``crmsync evaluate``, ``explain`` and ``schema``: the charter engine on files."""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, BinaryIO, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmsync.allocator import keep_large_blocks_on_the_heap
from crmsync.cli.app import EXIT_BAD_INPUT, app, fail, load_charter_or_exit, parse_now
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.evaluation import ClockResult, State, clock_extension_steps, evaluate
from crmsync.domain.explanation import explain_count, explain_extensions, local_text
from crmsync.domain.instants import format_instant
from crmsync.errors import BadComplaintError
from crmsync.service.evaluate_stream import evaluate_stream

CharterOpt = Annotated[
    Path, typer.Option("--charter", "-c", help="Charter YAML file (mappings/charters/*.yaml).")
]
NowOpt = Annotated[
    str,
    typer.Option(
        "--now",
        help="Evaluate as of this instant (ISO-8601 with offset, e.g. 2026-03-02T09:00:00Z).",
    ),
]


@app.command("evaluate")
def evaluate_cmd(
    charter: CharterOpt,
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON Lines of canonical complaints; '-' reads standard input."
        ),
    ],
    now: NowOpt,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write JSON Lines here instead of standard output."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Worker processes (default: one per core for large inputs)."
        ),
    ] = None,
) -> None:
    """Evaluate every complaint against the charter as of NOW (semantics section 5).

    Writes one JSON line per (complaint, applicable clock). Exit status: 0 all evaluated,
    3 some complaints were bad input (reported on standard error, the rest still output),
    2 bad charter or arguments (nothing output).
    """
    loaded = load_charter_or_exit(charter)
    instant = parse_now(now)
    keep_large_blocks_on_the_heap()  # before the workers fork: see crmsync.allocator
    undecodable: list[int] = []
    bad = 0
    with ExitStack() as stack:
        try:
            raw: BinaryIO = (
                sys.stdin.buffer if input == "-" else stack.enter_context(open(input, "rb"))
            )
        except OSError as exc:
            raise fail(f"--input: cannot read {input}: {exc.strerror}") from None
        try:
            sink: TextIO = (
                stack.enter_context(open(output, "w", encoding="utf-8"))
                if output is not None
                else sys.stdout
            )
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
        source = _Utf8Source(raw, undecodable)
        for chunk in evaluate_stream(loaded, source, sink, instant, workers=workers):
            for error in chunk.errors:
                bad += 1
                print(f"bad complaint {error}", file=sys.stderr)
        sink.flush()
    if bad or undecodable:
        raise typer.Exit(EXIT_BAD_INPUT)


class _Utf8Source:
    """Text from UTF-8 bytes, read as ``evaluate_stream`` reads a file (``read``/``readline``).

    Blocks are decoded whole (fast); a block that is not all UTF-8 is decoded line by
    line: each bad line is reported on standard error as a bad complaint, noted in
    ``undecodable`` and read as a blank line, so the other lines keep their numbers and
    are still evaluated. A byte-order mark before the first line is dropped.
    """

    def __init__(self, raw: BinaryIO, undecodable: list[int]) -> None:
        self._raw = raw
        self._undecodable = undecodable
        self._next_line = 1
        self._at_start = True

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
                f"(byte 0x{line[exc.start]:02x} at column {exc.start + 1})",
                file=sys.stderr,
            )
            return "\n"


def _find(input_path: str, complaint_id: str, charter: Charter) -> tuple[object, str]:
    opened = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8-sig")  # noqa: SIM115
    with opened as handle:
        for number, text in enumerate(handle, start=1):
            if complaint_id not in text:
                continue
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and str(data.get("id")) == complaint_id:
                return data, f"line {number}"
    raise fail(f"no complaint with id '{complaint_id}' in {input_path}")


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


def _how(charter: Charter, result: ClockResult, complaint: Complaint, now: int) -> str:
    clock = charter.clock(result.clock)
    if result.started_at is None:
        return f"waiting for '{clock.start}'"
    target = getattr(clock, "target", None) or getattr(clock, "every", None)
    event = clock.start if result.occurrence == 0 else f"cycle {result.occurrence} from reset"
    lines = []
    if target is not None:
        lines.append(explain_count(charter.calendar, result.started_at, target, event))
    else:
        field = getattr(clock, "target_field", None)
        lines.append(f"deadline from attribute '{field}'" + ("" if result.due_at else " (empty)"))
    warn = getattr(clock, "warn_after", None)
    if warn is not None:
        lines.append("warning: " + explain_count(charter.calendar, result.started_at, warn, event))
    extension = getattr(clock, "extend", None)
    if extension is not None:
        steps = clock_extension_steps(charter.calendar, clock, complaint, now)
        lines.extend(explain_extensions(charter.calendar, extension, steps))
    if result.missing:
        lines.append("missing: " + ", ".join(result.missing))
    if result.breaches:
        lines.append(f"{result.breaches} cycle(s) missed")
    return "\n".join(lines)


@app.command("explain")
def explain_cmd(
    charter: CharterOpt,
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON Lines of canonical complaints; '-' reads standard input."
        ),
    ],
    complaint_id: Annotated[str, typer.Option("--id", help="The complaint to explain.")],
    now: NowOpt,
) -> None:
    """Show every clock of one complaint as a table: start, stop, deadline, warning, state;
    then, clock by clock, how the deadline was counted on the business calendar."""
    loaded = load_charter_or_exit(charter)
    instant = parse_now(now)
    data, ref = _find(input, complaint_id, loaded)
    try:
        complaint = complaint_from_json(data, loaded.calendar.zone, ref)
        results = evaluate(loaded, complaint, instant)
    except BadComplaintError as exc:
        raise fail(f"bad complaint {exc}", EXIT_BAD_INPUT) from None
    out = Console()
    as_of = local_text(loaded.calendar, instant)
    table = Table(
        title=f"{loaded.title}: complaint {complaint.id} as of {as_of} "
        f"({loaded.calendar.zone.key})",
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
        for i, line in enumerate(_how(loaded, r, complaint, instant).split("\n")):
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
