"""``crmsync archive``: run, verify, show, search and export the archive of closed complaints.

Every command reads ``CRMSYNC_ARCHIVE_URL`` (default: ``CRMSYNC_DATA_DIR/archive``) and
``CRMSYNC_ARCHIVE_KEY``. Reading commands log each entry read (``archive_read``) with who
ran them: ``CRMSYNC_ACTOR`` if set, else the operating-system user.

Exit status: 0 done; 1 the archive or the CRM failed (message on standard error);
2 bad configuration or arguments; 3 (``run``) some records could not be marked;
4 (``verify``) the chain is broken or the index disagrees with it; 5 (``run``,
``reindex``) another process works the profile (its lock is named: command, pid, host).

``show`` and ``search`` never answer from an index that disagrees with the entries: they
refuse (exit 1) and point at ``verify`` and ``reindex``. ``show REF`` reads the entry
itself and needs no index.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from crmsync.cli.app import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    PlainCommand,
    app,
    fail,
    load_charter_or_exit,
    parse_now,
    plain,
)
from crmsync.cli.locking import WaitOption, hold_profile
from crmsync.cli.options import AllowFutureNowOpt, JsonAliasOpt, TableFormatOpt, wants_json
from crmsync.cli.profile import crash_hook_from_env, load_profile
from crmsync.cli.progress import out_console, progress, summary
from crmsync.domain.instants import format_instant, local_midnight, parse_instant
from crmsync.errors import (
    ArchiveError,
    ConfigError,
    CrmSyncError,
    InstantError,
    ProfileLostError,
)
from crmsync.private_file import PrivateFile

if TYPE_CHECKING:  # adapters and services are imported when a command runs
    from crmsync.domain.archive_entry import ChainHead, EntryHeader
    from crmsync.ports import ArchiveStore
    from crmsync.service.archive_reading import ArchiveReader
    from crmsync.service.archiving import ArchiveReport
    from crmsync.settings import Settings

EXIT_FAILED = 1
EXIT_BROKEN = 4

archive_app = typer.Typer(
    help="The archive of closed complaints: kept indefinitely, append-only, verifiable.",
    no_args_is_help=True,
)
app.add_typer(archive_app, name="archive")


def actor() -> str:
    """Who is running this command: ``CRMSYNC_ACTOR``, else the operating-system user."""
    return os.environ.get("CRMSYNC_ACTOR") or getpass.getuser()


@contextmanager
def _store(settings: Settings) -> Iterator[ArchiveStore]:
    from crmsync.bootstrap import build_archive  # noqa: PLC0415 - the composition root

    try:
        store = build_archive(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:
        raise fail(f"{exc}", EXIT_FAILED) from exc
    try:
        yield store
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:
        raise fail(f"{exc}", EXIT_FAILED) from exc
    finally:
        store.close()


@contextmanager
def _reader(*, with_witness: bool = False) -> Iterator[tuple[Settings, ArchiveReader]]:
    from crmsync.bootstrap import archive_cipher  # noqa: PLC0415 - the composition root
    from crmsync.service.archive_reading import ArchiveReader  # noqa: PLC0415 - imported when used

    settings = load_profile()
    try:
        cipher = archive_cipher(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if with_witness:  # verify: an archive never made must not be called intact
        _refuse_nothing_here(settings)
    witness = _witness(settings) if with_witness else None
    with _store(settings) as store:
        yield (
            settings,
            ArchiveReader(
                store, profile=settings.profile, actor=actor(), cipher=cipher, witness=witness
            ),
        )


def _refuse_nothing_here(settings: Settings) -> None:
    """Exit 2 when the settings point where crmsync never ran: a local archive folder that
    does not exist and no state store either (a mistyped CRMSYNC_DATA_DIR). Verifying
    would create an empty archive there and call it intact."""
    from crmsync.bootstrap import local_archive_folder, state_store_target  # noqa: PLC0415 - on use

    try:
        folder = local_archive_folder(settings)
        kind, target = state_store_target(settings.state_url_value, settings.data_dir)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if folder is None or folder.is_dir() or kind != "sqlite" or Path(target).is_file():
        return
    raise fail(
        f"no archive at {folder} and no state store at {target}: nothing has run with these "
        f"settings. Point CRMSYNC_DATA_DIR (or the data_dir of crmsync.toml or of profile "
        f"'{settings.profile}'), which is {settings.data_dir}, at the worker's data directory"
    )


def _witness(settings: Settings) -> ChainHead | None:
    """The archive head the state store recorded; None (said on standard error) when the
    state store cannot be read: the chain is then checked on its own."""
    from crmsync.bootstrap import build_state, state_store_target  # noqa: PLC0415 - on use

    try:
        kind, target = state_store_target(settings.state_url_value, settings.data_dir)
        if kind == "sqlite" and not Path(target).is_file():  # never create one to read it
            typer.echo(f"warning: no witness: no state store at {target}", err=True)
            return None
        state = build_state(settings)
        try:
            return state.get_witness(settings.profile)
        finally:
            state.close()
    except CrmSyncError as exc:
        typer.echo(f"warning: no witness from the state store ({exc})", err=True)
        return None


def _charter_file(name_or_path: str) -> Path:
    """``--charter``: a charter file, or a bundled charter's name; exit 2 for neither."""
    from crmsync.demo.bundled_charters import charter_file  # noqa: PLC0415 - on use

    try:
        return charter_file(name_or_path)
    except ConfigError as exc:
        raise fail(f"--charter: {exc}") from exc


def _bound(text: str, zone: ZoneInfo, option: str, *, end: bool) -> str:
    """A ``--from``/``--to`` value as a closing-instant bound (``--to`` is inclusive): a
    date is a whole local day in the charter's zone, or a date-time with offset."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return format_instant(local_midnight(day + timedelta(days=1) if end else day, zone))
        return format_instant(parse_instant(value, zone) + (1 if end else 0))
    except (ValueError, InstantError) as exc:
        raise fail(f"{option}: '{text}' is not a date (YYYY-MM-DD) or date-time ({exc})") from exc


def _document(header: EntryHeader, body: dict[str, Any]) -> dict[str, Any]:
    return {"ref": header.ref, "header": header.as_dict(), "body": body}


@archive_app.command(
    "run",
    short_help="Archive the closed complaints that are due, then mark them on the CRM.",
    cls=PlainCommand,
)
def run_cmd(
    now: Annotated[
        str | None,
        typer.Option("--now", help="The run's instant (default: the CRM's time)."),
    ] = None,
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
    wait: WaitOption = "0",
    allow_future_now: AllowFutureNowOpt = False,
) -> None:
    """Archive every closed complaint whose closed event is at least CRMSYNC_ARCHIVE_AFTER
    old and not archived at its current version; then mark it on the CRM. Takes the
    profile's lock (exit 5 when another process works the profile).

    --now must lie in 1970..2199; a --now later than this machine's clock is refused
    (exit 2) unless --allow-future-now: the archive is append-only, and entries dated in
    the future would stay in it for good.

    Exit status: 0 all archived; 3 some complaints could not be archived (named; retried
    next run); 2 bad configuration or arguments; 1 the archive or the CRM failed; 5 another
    process works the profile."""
    as_json = wants_json(fmt, as_json)
    settings = load_profile()
    instant = (
        parse_now(now, writes=True, allow_future=allow_future_now) if now is not None else None
    )
    with (
        hold_profile(settings, "crmsync archive run", wait) as guard,
        progress("archiving closed complaints"),
    ):
        report = _archive_run(settings, instant, guard)
    if as_json:
        print(json.dumps(report.as_dict(), sort_keys=True))  # one JSON line
    else:
        table = Table(title=f"archive run {report.run_id} ({report.status}) as of {report.now}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for label, value in (
            ("closed complaints queued", report.queued),
            ("due", report.due),
            ("archived", report.archived),
            ("found archived already", report.recovered),
            ("marked on the CRM", report.marked),
            ("left the queue (reopened, deleted)", report.dropped),
            ("errors", len(report.errors)),
            ("CRM calls", report.crm_calls),
        ):
            table.add_row(label, str(value))
        out_console().print(table)
        for e in report.errors:
            typer.echo(f"{e.kind} {e.record_id} {e.field or ''}: {e.message}", err=True)
    if report.errors:
        raise typer.Exit(EXIT_BAD_INPUT)


def _archive_run(
    settings: Settings, instant: int | None, guard: Callable[[], None]
) -> ArchiveReport:
    """One archive run of the profile (its lock held by the caller, ``guard`` asking it
    before each write)."""
    from crmsync.bootstrap import build_archiving, build_runtime  # noqa: PLC0415 - on use

    try:
        runtime = build_runtime(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:
        raise fail(f"{exc}", EXIT_FAILED) from exc
    runtime.cycle.guard = guard
    try:
        with _store(settings) as store:
            try:
                service = build_archiving(runtime, store, hook=crash_hook_from_env())
            except ConfigError as exc:
                raise fail(str(exc)) from exc
            try:
                report = service.run(now=instant)
            except ProfileLostError as exc:
                raise fail(f"archive run stopped: {exc}", EXIT_BUSY) from exc
            except CrmSyncError as exc:
                raise fail(f"archive run failed: {exc}", EXIT_FAILED) from exc
    finally:
        runtime.close()
    return report


@archive_app.command(
    "verify",
    short_help="Check every entry, link and index record of the chain (exit 4: broken).",
    cls=PlainCommand,
)
def verify_cmd(
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
) -> None:
    """Walk the whole chain: every entry's hashes, every link, the head, and the head the
    state store witnessed (so a chain cut at its end is found too); then every index
    record against its entry. Reports the first broken link, every bad entry and every
    index disagreement; exit status 0 when intact, 4 when broken."""
    as_json = wants_json(fmt, as_json)
    with _reader(with_witness=True) as (settings, reader), progress("verifying the chain"):
        report = reader.verify()
    if as_json:
        print(json.dumps(report.as_dict(), sort_keys=True))  # one JSON line
    else:
        console = out_console()
        state = "[green]intact[/green]" if report.ok else "[red]BROKEN[/red]"
        witnessed = f", witnessed up to {report.witness.seq}" if report.witness is not None else ""
        console.print(
            f"archive of profile {settings.profile}: {report.entries} entries, "
            f"head {report.head.seq if report.head else 0}{witnessed}: {state}"
        )
        if report.first_broken is not None:
            console.print(f"first broken link: {report.first_broken}", markup=False)
            for finding in report.bad:
                console.print(f"  bad: {finding}", markup=False)
        for finding in report.index_bad:
            console.print(f"  index: {finding}", markup=False)
        if report.index_bad:
            console.print(
                "the index (what search answers from) disagrees with the entries: "
                "'crmsync archive reindex' rebuilds it from them"
            )
        if report.unchecked_bodies:
            console.print(
                f"{report.unchecked_bodies} encrypted bodies not checked "
                "(set CRMSYNC_ARCHIVE_KEY to check their content hashes)"
            )
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)


@archive_app.command(
    "reindex", short_help="Rebuild the archive's index from its entries.", cls=PlainCommand
)
def reindex_cmd(wait: WaitOption = "0") -> None:
    """Rebuild the archive's index (what search answers from) from the entries themselves,
    after 'crmsync archive verify' reported that it disagrees with them. Entries are
    never changed. Takes the profile's lock (exit 5 when another process works it).

    Exit status: 0 rebuilt; 2 bad configuration; 1 the archive failed; 5 another process
    works the profile."""
    import structlog  # noqa: PLC0415 - logging set-up, imported when used

    settings = load_profile()
    with hold_profile(settings, "crmsync archive reindex", wait), _store(settings) as store:
        count = store.reindex(settings.profile)
    structlog.get_logger("crmsync.archive").info(
        "archive_reindex", profile=settings.profile, actor=actor(), entries=count
    )
    out_console().print(
        f"archive of profile {settings.profile}: index rebuilt from {count} entries"
    )


@archive_app.command("show", cls=PlainCommand)
def show_cmd(
    id: Annotated[
        str,
        typer.Argument(
            help="An entry reference (PROFILE/N, or N in this profile) or a complaint id "
            "(every archived version)."
        ),
    ],
) -> None:
    """Print archived entries as JSON Lines (one entry a line): header and body, decrypted
    with CRMSYNC_ARCHIVE_KEY.

    Exit status: 0 printed; 1 no such entry, or the archive failed (a missing or wrong key
    included); 2 bad configuration."""
    from crmsync.domain.archive_entry import make_ref, parse_ref  # noqa: PLC0415 - on use

    with _reader() as (settings, reader):
        ref: str | None = None
        if id.isdigit():
            ref = make_ref(settings.profile, int(id))
        elif "/" in id:
            try:
                parse_ref(id)
                ref = id
            except ArchiveError:
                ref = None
        entries = [reader.read(ref)] if ref is not None else reader.versions(id)
        if not entries:
            raise fail(f"no archived entry for complaint '{id}'", EXIT_FAILED)
        for header, body in entries:
            print(json.dumps(_document(header, body), sort_keys=True, ensure_ascii=False))


@archive_app.command("search", cls=PlainCommand)
def search_cmd(
    *,
    complaint: Annotated[
        str | None, typer.Option("--complaint", help="The complaint (CRM record) id.")
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Closed on or after this date (charter's zone) or instant."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Closed on or before this date (charter's zone) or instant."),
    ] = None,
    charter: Annotated[
        str | None,
        typer.Option(
            "--charter",
            help="Only entries archived under this charter: its file, as for every other "
            "command (or a bundled charter's name, e.g. aston).",
        ),
    ] = None,
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
) -> None:
    """List archived entries (headers only) matching every criterion given.

    Exit status: 0 listed (none found included); 2 bad configuration or arguments; 1 the
    archive failed."""
    as_json = wants_json(fmt, as_json)
    with _reader() as (settings, reader):
        loaded = load_charter_or_exit(
            settings.charter if charter is None else _charter_file(charter)
        )
        zone = loaded.calendar.zone
        found = reader.search(
            complaint_id=complaint,
            closed_from=None if from_ is None else _bound(from_, zone, "--from", end=False),
            closed_before=None if to is None else _bound(to, zone, "--to", end=True),
            charter=loaded.name if charter is not None else None,
        )
    if as_json:
        for header in found:
            print(json.dumps({"ref": header.ref, **header.as_dict()}, sort_keys=True))
        return
    table = Table(title=f"{len(found)} archived entr{'y' if len(found) == 1 else 'ies'}")
    for column in ("ref", "complaint", "closed at", "archived at", "charter"):
        table.add_column(column, overflow="fold")
    for h in found:
        table.add_row(plain(h.ref), plain(h.complaint_id), h.closed_at, h.archived_at, h.charter)
    out_console().print(table)


def _csv_row(header: EntryHeader, body: dict[str, Any]) -> list[str]:
    clocks = body.get("clocks") or {}
    at_close = clocks.get("at_close") if isinstance(clocks, dict) else None
    states = (
        ";".join(f"{c.get('clock')}={c.get('state')}" for c in at_close)
        if isinstance(at_close, list)
        else f"error: {clocks.get('error')}"
        if isinstance(clocks, dict)
        else ""
    )
    follow_ups = body.get("follow_ups")
    return [
        header.ref,
        str(header.seq),
        header.complaint_id,
        header.version,
        header.closed_at,
        header.archived_at,
        header.charter,
        str(body.get("run_id", "")),
        states,
        str(len(follow_ups) if isinstance(follow_ups, list) else 0),
        header.content_hash,
        header.entry_hash,
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    ]


CSV_COLUMNS = (
    "ref",
    "seq",
    "complaint_id",
    "version",
    "closed_at",
    "archived_at",
    "charter",
    "run_id",
    "clock_states_at_close",
    "follow_ups",
    "content_hash",
    "entry_hash",
    "body",
)


@archive_app.command(
    "export", short_help="Write every entry, decrypted, as JSON Lines or CSV.", cls=PlainCommand
)
def export_cmd(
    format: Annotated[
        Literal["jsonl", "csv"], typer.Option("--format", help="jsonl or csv.")
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (created readable by you only; whole or not at all).",
        ),
    ] = None,
) -> None:
    """Write every entry in chain order (decrypted): JSON Lines (ref, header, body) or CSV
    (header fields, clock states at close, follow-up count, body as JSON).

    Exit status: 0 written; 2 bad configuration, or the output file cannot be made; 1 the
    archive or the write failed."""
    with _reader() as (_settings, reader):
        written: PrivateFile | None = None
        if output is not None:
            try:
                written = PrivateFile.open(output, newline="")
            except OSError as exc:
                raise fail(f"--output {output}: {exc.strerror}") from exc
        out: IO[str] = written.handle if written is not None else sys.stdout
        try:
            writer = csv.writer(out) if format == "csv" else None
            if writer is not None:
                writer.writerow(CSV_COLUMNS)
            exported = 0
            with progress("entries exported", data_to=out) as tracker:
                for header, body in reader.export():
                    exported += 1
                    tracker.advance()
                    _write_entry(out, writer, header, body)
            if written is not None:
                written.commit()
        except OSError as exc:
            if written is None:
                raise
            raise fail(f"--output {output}: {exc.strerror or exc}", EXIT_FAILED) from exc
        finally:
            if written is not None:
                written.discard()  # after a failure: no partial export, the old one kept
    summary(f"exported {exported:,} entries" + ("" if output is None else f" to {output}"))


def _write_entry(out: IO[str], writer: Any, header: EntryHeader, body: dict[str, Any]) -> None:
    """One exported entry: a CSV row when ``writer`` is given, else a JSON line."""
    if writer is not None:
        writer.writerow(_csv_row(header, body))
        return
    document = _document(header, body)
    out.write(json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")
