"""``crmsync report``: compliance figures of a charter over a date range, and the what-if."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

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
from crmsync.cli.options import (
    CharterOpt,
    JsonAliasOpt,
    TableFormatOpt,
    WorkersOpt,
    input_option,
    now_option,
    output_option,
    wants_json,
)
from crmsync.cli.profile import (
    charter_path,
    load_profile_setup,
    refuse_unknown_profile,
    require_state_store,
)
from crmsync.cli.progress import progress
from crmsync.domain.report import Period
from crmsync.domain.returns import ReturnKind, missing_clocks, period_refusal
from crmsync.domain.unicode_text import shown
from crmsync.errors import ConfigError, InputFileError, did_you_mean
from crmsync.inputs.json_lines import Utf8Source
from crmsync.private_file import PrivateFile
from crmsync.service.report_page import PageSource
from crmsync.service.report_stream import (
    Partial,
    ReportRequest,
    csv_lines,
    empty_partial,
    report_document,
    report_stream,
)
from crmsync.terminal import escape_controls

if TYPE_CHECKING:
    from crmsync.domain.charter import Charter
    from crmsync.service.report_status import StatusLine

PROGRESS_BYTES = 8 << 20
"""Inputs at least this large get a progress bar (on a terminal)."""


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def _parse_date(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise fail(f"{option}: '{text}' is not a date (write YYYY-MM-DD)") from exc


class _CountingReader:
    """A binary file that reports how many bytes were read (for the progress bar)."""

    def __init__(self, raw: BinaryIO, advance: Any) -> None:
        self._raw = raw
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        block = self._raw.read(size)
        self._advance(len(block))
        return block

    def peek(self, size: int = 0) -> bytes:
        """The next bytes without reading them (the encoding check), when the file can."""
        peek = getattr(self._raw, "peek", None)
        return bytes(peek(size)) if callable(peek) else b""

    def readline(self) -> bytes:
        line = self._raw.readline()
        self._advance(len(line))
        return line


_SUFFIXES = {".json": Format.JSON, ".csv": Format.CSV, ".html": Format.HTML, ".htm": Format.HTML}


def _format(chosen: Format | None, output: Path | None) -> Format | None:
    """The format asked for, else from the output's suffix (none: JSON), else JSON off a
    terminal (``None``: a table on the terminal). An output whose suffix names no format
    (``report.pdf``) without ``--format`` is refused (exit 2) rather than filled with JSON."""
    if chosen is Format.TABLE:
        if output is not None:
            raise fail("--format table is for the terminal: give --output a json, csv or html")
        return None
    if chosen is not None:
        return chosen
    if output is None:
        return None if sys.stdout.isatty() else Format.JSON
    suffix = output.suffix.lower()
    if not suffix:
        return Format.JSON
    if suffix not in _SUFFIXES:
        raise fail(
            f"--output: cannot tell the format of '{output.name}' from '{output.suffix}': "
            "name the file .json, .csv or .html, or give --format json|csv|html"
        )
    return _SUFFIXES[suffix]


@contextmanager
def standard_output() -> Iterator[None]:
    """Turn a failed write to standard output (a full disk, a closed pipe) into one error
    line and exit status 1, never a traceback."""
    try:
        yield
        sys.stdout.flush()
    except OSError as exc:
        with suppress(OSError):  # nothing more can be written there, not even at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        reason = exc.strerror or str(exc)
        raise fail(f"cannot write standard output: {reason}", EXIT_FAILED) from exc


def _write_file(output: Path, text: str) -> None:
    """Write ``text`` to ``output``, 0600 and whole or not at all (``PrivateFile``: a full
    disk leaves the previous file as it was): a path that cannot be opened is a bad
    argument (exit 2), a write that fails (a full disk) a failure (exit 1)."""
    try:
        target = PrivateFile.open(output)
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}") from exc
    try:
        with target as handle:
            handle.write(text)
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}", EXIT_FAILED) from exc


def render(document: dict[str, Any], fmt: Format, page: PageSource) -> str:
    """The report document as JSON, CSV or an HTML page."""
    if fmt is Format.JSON:
        return json.dumps(document, ensure_ascii=False) + "\n"
    if fmt is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(csv_lines(document))
        return out.getvalue()
    from crmsync.service.report_html import render_html  # noqa: PLC0415 - matplotlib, on use

    return render_html(document, page)


def _print_table(document: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415 - rich, imported when something is printed
    from rich.table import Table  # noqa: PLC0415 - rich, imported when something is printed

    def one(title: str, totals: list[dict[str, Any]], undated: dict[str, int]) -> None:
        table = Table(title=plain(title))
        counts = ("due", "met", "late", "overdue", "open", "breached")
        for column in ("clock", "group", *counts, "achievement"):
            table.add_column(column, justify="left" if column in ("clock", "group") else "right")
        for row in totals:
            ach = row["achievement"]
            table.add_row(
                plain(row["clock"]),
                "-" if row["group"] is None else plain(row["group"]),
                *(str(row[k]) for k in counts),
                "-" if ach is None else f"{ach:.1f} %",
            )
        console.print(table)
        if undated:
            console.print("undated: " + ", ".join(f"{k} {v}" for k, v in undated.items()))

    console = Console()
    head = f"clock instances due {document['from']} .. {document['to']}, as of {document['now']}"
    one(f"{document['charter']}: {head}", document["totals"], document["undated"])
    compare = document.get("compare")
    if compare is not None:
        one(
            f"{compare['charter']} (what-if): clock instances",
            compare["totals"],
            compare["undated"],
        )
        console.print(f"flips: {len(compare['flips'])}")
    console.print(
        f"[dim]counts are clock instances (breached = late + overdue); "
        f"{document['complaints']} complaints; --format json|csv|html for more[/dim]"
    )


@app.command("report", cls=PlainCommand)
def report_cmd(
    *,
    charter: CharterOpt = None,
    date_from: Annotated[
        str, typer.Option("--from", help="First due date in the report (YYYY-MM-DD).")
    ],
    date_to: Annotated[str, typer.Option("--to", help="Last due date in the report (YYYY-MM-DD).")],
    input: Annotated[
        str | None,
        input_option(
            "JSON Lines of canonical complaints ('-' reads standard input); without it, "
            "the profile's own complaints (state store and archive, no CRM calls)."
        ),
    ] = None,
    now: Annotated[
        str | None, now_option("Report as of this instant (default: the current instant).")
    ] = None,
    period: Annotated[
        Period | None,
        typer.Option(
            "--period",
            help="Rows per month (the default), quarter, year, ISO week or all; not with "
            "--return, which counts the whole range.",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Group the rows by this attribute's value: one the mapping defines or the "
            "input's complaints hold (another is refused, exit 2, with a suggestion).",
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="What-if: the same complaints under this second charter."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="table (default on a terminal), json (default on a pipe), csv or html.",
        ),
    ] = None,
    output: Annotated[Path | None, output_option("Write the report to this file.")] = None,
    workers: WorkersOpt = None,
    returns: Annotated[
        ReturnKind | None,
        typer.Option(
            "--return",
            help="A regulator's return for FROM..TO instead of the report: tsm (CH01 and "
            "CH02, housing-ombudsman charter, needs --homes) or fca (complaints closed "
            "within three business days and eight weeks, fca-disp charter).",
        ),
    ] = None,
    homes: Annotated[
        int | None,
        typer.Option("--homes", help="With --return tsm: the landlord's number of homes."),
    ] = None,
) -> None:
    """Compliance figures per clock, period and group for the instances due FROM..TO.

    Exit status: 0 all complaints counted, 3 some were bad input (named on standard error,
    the rest still counted), 2 bad charter or arguments (nothing output).
    """
    loaded = load_charter_or_exit(charter_path(charter))
    other = load_charter_or_exit(compare) if compare is not None else None
    first, last = _parse_date("--from", date_from), _parse_date("--to", date_to)
    if last < first:
        raise fail(f"--to {last} is before --from {first}")
    instant = parse_now(now) if now is not None else int(time.time())
    if returns is not None:
        _check_return(returns, homes, loaded, by, other)
        refusal = period_refusal(returns, first, last)
        if refusal is not None:
            raise fail(refusal)
        if period is not None:
            raise fail(
                f"--return {returns.value} counts the whole range --from..--to; it takes no "
                "--period"
            )
    elif homes is not None:
        raise fail("--homes is for --return tsm")
    request = ReportRequest(
        loaded, first, last, instant, period or Period.MONTH, by or None, other, returns=returns
    )
    chosen = _format(fmt, output)
    undecodable = 0
    if input is not None:
        (partial, undecodable), source = _from_input(request, input, workers), input
    else:
        partial, source = _from_profile(request)
    for error in partial.errors:
        print(f"bad complaint {error}", file=sys.stderr)
    if returns is not None:
        _output_return(
            request, partial, homes, chosen=chosen, output=output, page=PageSource(loaded, source)
        )
        if partial.errors or undecodable:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    document = report_document(request, partial)
    if request.by is not None and input is not None:
        _check_by_in_input(request.by, document, input)
    if chosen is None:
        with standard_output():
            _print_table(document)
    else:
        text = render(document, chosen, PageSource(loaded, source, other))
        if output is None:
            with standard_output():
                sys.stdout.write(text)
        else:
            _write_file(output, text)
    if partial.errors or undecodable:
        raise typer.Exit(EXIT_BAD_INPUT)


def _check_return(
    kind: ReturnKind, homes: int | None, charter: Charter, by: str | None, other: Charter | None
) -> None:
    """Exit 2 unless the return can be counted: no --by or --compare, --homes > 0 for
    tsm (and only for tsm), and a charter with the clocks the return is counted from."""
    if by is not None or other is not None:
        raise fail(f"--return {kind.value} takes neither --by nor --compare")
    if kind is ReturnKind.TSM and (homes is None or homes <= 0):
        raise fail("--return tsm needs --homes N, the landlord's number of homes (N > 0)")
    if kind is not ReturnKind.TSM and homes is not None:
        raise fail("--homes is for --return tsm")
    missing = missing_clocks(kind, (c.id for c in charter.clocks))
    if missing:
        bundled = "housing-ombudsman" if kind is ReturnKind.TSM else "fca-disp"
        raise fail(
            f"--return {kind.value}: charter {charter.name} has no clock "
            f"{', '.join(missing)} (the bundled {bundled} charter has them)"
        )


def _output_return(
    request: ReportRequest,
    partial: Partial,
    homes: int | None,
    *,
    chosen: Format | None,
    output: Path | None,
    page: PageSource,
) -> None:
    """Write a regulator's return as JSON, CSV, a page, or a table on the terminal."""
    from crmsync.service.return_document import (  # noqa: PLC0415 - imported when used
        render_return_html,
        return_csv_lines,
        return_document,
    )

    document = return_document(request, partial, homes)
    if chosen is None:
        with standard_output():
            for figure, value in list(return_csv_lines(document))[1:]:
                print(f"{figure}: {value}")
        return
    if chosen is Format.JSON:
        text = json.dumps(document, ensure_ascii=False) + "\n"
    elif chosen is Format.CSV:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(return_csv_lines(document))
        text = out.getvalue()
    else:
        text = render_return_html(document, page)
    if output is None:
        with standard_output():
            sys.stdout.write(text)
    else:
        _write_file(output, text)


def defined_attributes(mapping: Path) -> set[str] | None:
    """The canonical attributes the mapping ``mapping`` defines; ``None`` when it cannot
    be loaded (then only the complaints themselves can say what they hold)."""
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415 - pydantic, on use

    try:
        return set(load_mapping(mapping).attribute_specs())
    except (ConfigError, OSError):
        return None


def unknown_by(by: str, known: set[str], where: str) -> str:
    """The error for ``--by`` naming an attribute nobody defines, with a suggestion."""
    listed = ", ".join(sorted(known)) or "none"
    return (
        f"--by '{shown(by)}': {where} defines no such attribute (it defines {listed})"
        f"{did_you_mean(by, known)}"
    )


def _check_by_in_input(by: str, document: dict[str, Any], input: str) -> None:
    """Exit 2 when ``by`` is an attribute the mapping does not define and no complaint of
    ``input`` holds (every group empty): a typo would put every complaint in one null
    group. Judged after reading, as a JSON Lines file may hold attributes of its own."""
    if any(row["group"] is not None for row in document["rows"]):
        return
    from crmsync.bootstrap import load_settings  # noqa: PLC0415 - the root, on use
    from crmsync.settings import Settings  # noqa: PLC0415 - pydantic, on use

    try:
        mapping = load_settings().mapping
    except ConfigError:
        mapping = Settings.model_fields["mapping"].default
    defined = defined_attributes(mapping)
    if defined is None:  # "it defines none" would blame the name, not the missing mapping
        raise fail(
            f"--by '{shown(by)}': no complaint of {input} holds it, and the mapping {mapping} "
            "cannot be read to say which attributes it defines (set CRMSYNC_MAPPING, or "
            "mapping in crmsync.toml, to the mapping file)"
        )
    if by in defined:
        return
    where = f"no complaint of {input} holds it and the mapping {mapping}"
    raise fail(unknown_by(by, defined, where))


def _from_profile(request: ReportRequest) -> tuple[Partial, str]:
    """The profile's own complaints (CRMSYNC_PROFILE): state store and archive, no CRM."""
    from crmsync.bootstrap import open_stored_population  # noqa: PLC0415 - the composition root
    from crmsync.errors import CrmSyncError  # noqa: PLC0415 - imported when used
    from crmsync.service.report_source import stored_complaints  # noqa: PLC0415 - on use
    from crmsync.service.report_stream import report_complaints  # noqa: PLC0415 - on use

    settings, single = load_profile_setup()
    if request.by is not None:  # the profile's complaints hold the mapping's attributes
        defined = defined_attributes(settings.mapping)
        if defined is not None and request.by not in defined:
            raise fail(unknown_by(request.by, defined, f"the mapping {settings.mapping}"))
    require_state_store(settings)
    total = empty_partial(request)
    try:
        with open_stored_population(settings) as population:
            if single:
                refuse_unknown_profile(population.state, settings.profile)
            zone = request.charter.calendar.zone
            complaints = stored_complaints(population.canonicals(), zone, total.errors)
            report_complaints(request, complaints, total)
    except CrmSyncError as exc:
        raise fail(f"profile {settings.profile}: {exc}", 1) from exc
    return total, f"profile {settings.profile} (state store and archive)"


def _from_input(request: ReportRequest, input: str, workers: int | None) -> tuple[Partial, int]:
    undecodable: list[int] = []
    total = empty_partial(request)
    with ExitStack() as stack:
        try:
            raw: BinaryIO = (
                sys.stdin.buffer if input == "-" else stack.enter_context(open(input, "rb"))
            )
        except OSError as exc:
            raise fail(f"--input: cannot read {input}: {exc.strerror}") from exc
        size = os.fstat(raw.fileno()).st_size if input != "-" else 0
        if size >= PROGRESS_BYTES:
            tracker = stack.enter_context(progress("report: bytes read", total=size))
            raw = _CountingReader(raw, tracker.advance)  # type: ignore[assignment]
        name = "standard input" if input == "-" else input
        source = Utf8Source(raw, undecodable, name, warn=lambda m: print(m, file=sys.stderr))
        try:
            source.check_encoding()
        except InputFileError as exc:
            raise fail(f"--input: {exc}") from exc
        for partial in report_stream(request, source, workers=workers):
            total.merge(partial)
    return total, len(undecodable)  # undecodable lines: named on standard error already


class StatusFilter(StrEnum):
    BREACHED = "breached"
    LATE = "late"
    OVERDUE = "overdue"
    AT_RISK = "at_risk"
    PAUSED = "paused"


@app.command(
    "status",
    short_help="List the profile's open complaints from the state store, worst first.",
    cls=PlainCommand,
)
def status_cmd(
    *,
    state: Annotated[
        StatusFilter | None,
        typer.Option(
            "--state",
            help="Only complaints with a clock in this state (breached: late or overdue).",
        ),
    ] = None,
    clock: Annotated[
        str | None, typer.Option("--clock", help="Only this clock (with --state: in it).")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's.")] = None,
    now: Annotated[str | None, now_option("As of this instant (default: now).")] = None,
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
) -> None:
    """The open complaints of the profile (CRMSYNC_PROFILE) from the state store, worst
    first, with their next due instant. No CRM call.

    Follow-ups the CRM refused for good (an owner who left) are named on standard error
    until a cycle makes them.

    Exit status: 0; 3 when some stored complaints could not be evaluated under the charter
    (each named on standard error, the others listed); 2 bad settings or arguments, or no
    state store where the settings place it (CRMSYNC_DATA_DIR); 1 the state store failed.
    """
    as_json = wants_json(fmt, as_json)
    from crmsync.bootstrap import build_state  # noqa: PLC0415 - the composition root
    from crmsync.errors import BadComplaintError, CrmSyncError  # noqa: PLC0415 - imported when used
    from crmsync.service.report_status import open_status, worst_first  # noqa: PLC0415 - on use

    settings, single = load_profile_setup()
    charter = load_charter_or_exit(settings.charter)
    if clock is not None and clock not in {c.id for c in charter.clocks}:
        raise fail(f"--clock: charter {charter.name} has no clock '{clock}'")
    instant = parse_now(now) if now is not None else int(time.time())
    require_state_store(settings)
    errors: list[BadComplaintError] = []
    try:
        store = build_state(settings)
        try:
            if single:
                refuse_unknown_profile(store, settings.profile)
            lines = [
                line
                for line in open_status(store, charter, settings.profile, instant, errors)
                if (owner is None or line.owner == owner)
                and (state is None or line.has(state.value, clock))
                and (clock is None or clock in line.clocks)
            ]
            refused = store.failed_follow_ups(settings.profile)
        finally:
            store.close()
    except CrmSyncError as exc:
        raise fail(f"profile {settings.profile}: {exc}", 1) from exc
    for error in errors:
        print(f"bad complaint {error}", file=sys.stderr)
    for entry in refused:
        print(
            escape_controls(
                f"follow-up {entry.key} of complaint {entry.complaint_id} refused by the CRM: "
                f"{entry.error or 'no reason given'} (tried again at each cycle that "
                "evaluates the complaint)"
            ),
            file=sys.stderr,
        )
    ordered = worst_first(lines)
    with standard_output():
        _print_status(charter, ordered, instant, as_json=as_json)
    if errors:
        raise typer.Exit(EXIT_BAD_INPUT)


def _print_status(
    charter: Charter, ordered: list[StatusLine], instant: int, *, as_json: bool
) -> None:
    """The status lines as of ``instant``, as JSON Lines or a table, on standard output."""
    from crmsync.domain.explanation import local_text  # noqa: PLC0415 - imported when used
    from crmsync.domain.instants import format_instant_or_none  # noqa: PLC0415 - imported when used

    if as_json:
        for line in ordered:
            print(
                json.dumps(
                    {
                        "complaint_id": line.complaint_id,
                        "status": line.status,
                        "clocks": line.clocks,
                        "next_due": format_instant_or_none(line.next_due),
                        "owner": line.owner,
                    },
                    ensure_ascii=False,
                )
            )
        return
    from rich.console import Console  # noqa: PLC0415 - rich, imported when something is printed
    from rich.table import Table  # noqa: PLC0415 - rich, imported when something is printed
    from rich.text import Text  # noqa: PLC0415 - rich, imported when something is printed

    table = Table(
        title=plain(
            f"{charter.title}: open complaints as of {local_text(charter.calendar, instant)}"
        )
    )
    for column in ("complaint", "status", "clocks", "next due", "owner"):
        table.add_column(column, overflow="fold")
    style = {"breached": "bold red", "at_risk": "yellow", "paused": "cyan"}  # the rest: green
    for line in ordered:
        table.add_row(
            plain(line.complaint_id),
            Text(line.status, style=style.get(line.status, "green")),
            plain(
                ", ".join(f"{c} {s}" for c, s in line.clocks.items() if s not in ("met", "pending"))
            ),
            "-" if line.next_due is None else local_text(charter.calendar, line.next_due),
            plain(line.owner or "-"),
        )
    Console().print(table)
    Console().print(f"[dim]{len(ordered)} open complaint(s)[/dim]")
