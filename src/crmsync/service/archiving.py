"""Archiving closed complaints for indefinite retention, and reading the archive back.

**What is archived.** A complaint whose closed event is at least ``archive_after`` old and
that is not archived at its current *version*. The version key is the closing instant
(``YYYY-MM-DDTHH:MM:SSZ``): a case reopened and closed again has a new closing instant, so
it is archived again as a new entry and the chain keeps both, whether the new closing
instant is later or earlier than the first. Whether a version is archived is decided by
the archive (the entry the record's mark names, else a search by complaint and version),
never by comparing the mark's date with the closing instant.

**Selecting candidates without a full scan.** Each run pulls only the complaint records
changed since the last run (``changed_records`` from the ``archive:closed`` watermark,
minus an overlap, filtered to complaints with a closed event: a range of the CRM's
modification stamp with the closed field set). A record closed less than
``archive_after`` ago is not due yet, so each pulled closed record that is not yet
archived at its version goes into a *pending queue* kept in the state store, as a stored
complaint of the profile ``<profile>#archive`` whose ``next_check`` is the instant it
becomes due (the state store indexes ``next_check``). A run then takes only the due
entries of that queue, re-reads those records by id (``records_by_id``: the record may
have been reopened, re-closed, deleted) and archives them. The watermark moves only after
the queue is written. The first run reads every closed complaint once; later runs read
what changed plus what fell due, never the whole table.

**Order of effects**, so that a kill at any point and a re-run give exactly one entry per
archived version and a correctly marked record:

1. if the archive already holds (complaint id, version), that entry is used (a crash
   came after the append); otherwise the entry is built and appended after the chain's
   head (optimistic: on a conflict the head is re-read and the version looked up again).
   The store itself refuses a second entry of a version (``DuplicateEntryError``), so
   even two writers racing past the profile lock leave one entry per version;
2. the entry is read back from the store and its hashes checked;
3. only then are the mapping's ``archived_at``/``archive_ref`` fields set on the
   CRM record, to the entry's own ``archived_at`` (as the CRM adapter writes datetime
   text) and reference;
4. the queue entry is removed last. A record that could not be marked stays queued.

Hook steps (crash tests kill the process there): ``queued``, ``watermark``, ``appended``
(after each entry is in the archive), ``verified``, ``marked`` (after each write batch),
``dequeued``, ``done``.

**Encryption at rest** (optional): given an ``ArchiveCipher`` (the port; AES-256-GCM in
``crmsync.adapters.archive.cipher``), entry bodies are stored sealed; hashes are over the
plaintext. The read-back check opens them again (``crmsync.service.archive_reading``,
which also holds the reader and the chain verification).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from crmsync.domain.archive_entry import (
    FORMAT,
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    check_profile,
    make_ref,
    new_header,
    parse_ref,
)
from crmsync.domain.charter import Charter
from crmsync.domain.clock_json import clock_result_fields
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import evaluate
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.errors import (
    ArchiveError,
    BadComplaintError,
    ChainConflictError,
    ConfigError,
    EntryNotFoundError,
    InstantError,
    MappingError,
)
from crmsync.mapping.field_mapping import FieldMapping, instant_text_of
from crmsync.ports import (
    ArchiveCipher,
    ArchiveStore,
    ArchiveWitness,
    CrmPort,
    FieldFilter,
    Record,
    StateStore,
    StoredComplaint,
)
from crmsync.service.archive_reading import entry_problems
from crmsync.service.cycle_report import RecordFailure
from crmsync.service.run_scope import RunEvents, run_scope
from crmsync.service.sync_cycle import Hook

log = structlog.get_logger("crmsync.archive")

_ARCHIVE_EVENTS = RunEvents("archive_started", "archive_finished", "archive_failed")

ARCHIVE_WATERMARK = "archive:closed"
MAX_CONFLICTS = 5
_UTC = ZoneInfo("UTC")


def pending_profile(profile: str) -> str:
    """The state-store profile holding ``profile``'s queue of complaints to archive."""
    return f"{profile}#archive"


@dataclass
class ArchiveReport:
    """What one archive run did."""

    run_id: str
    profile: str
    now: str
    status: str = "running"
    records_read: int = 0
    queued: int = 0
    due: int = 0
    archived: int = 0
    recovered: int = 0  # found already in the archive (an earlier run died before marking)
    marked: int = 0
    not_due: int = 0
    dropped: int = 0  # reopened, deleted or no longer a complaint: left the queue
    crm_calls: int = 0
    refs: list[str] = field(default_factory=list)
    errors: list[RecordFailure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = [asdict(e) for e in self.errors]
        return out


@dataclass
class _Related:
    follow_ups: list[Record] = field(default_factory=list)
    events: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))


def _record_json(record: Record) -> dict[str, Any]:
    return {"object": record.object, "id": record.id, "fields": dict(record.fields)}


class ArchivingService:
    """Archives the closed complaints of one profile (see the module docstring)."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        state: StateStore,
        witness: ArchiveWitness,
        archive: ArchiveStore,
        charter: Charter,
        mapping: FieldMapping,
        profile: str = "default",
        archive_after: int = 30 * 86400,
        cipher: ArchiveCipher | None = None,
        overlap: timedelta = timedelta(minutes=5),
        page_size: int = 200,
        write_batch: int = 200,
        hook: Hook | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        """``guard`` is called before each step that writes (queueing, each page, the
        marks) and raises (``ProfileLostError``) once this process no longer holds the
        profile: the run then stops, never beside another writer."""
        c = mapping.spec.complaints
        wb = mapping.spec.write_back
        closed = c.events.get("closed")
        if closed is None:
            raise ConfigError(f"{mapping.source}: archiving needs a 'closed' event in the mapping")
        if not wb.archived_at or not wb.archive_ref:
            raise ConfigError(
                f"{mapping.source}: archiving needs write_back.archived_at and "
                "write_back.archive_ref"
            )
        self.crm = crm
        self.state = state
        self.witness = witness
        self.archive = archive
        self.charter = charter
        self.mapping = mapping
        self.profile = check_profile(profile)
        self.archive_after = archive_after
        self.cipher = cipher
        self.overlap = overlap
        self.page_size = page_size
        self.write_batch = write_batch
        self._hook = hook or (lambda _step: None)
        self.guard: Callable[[], None] = guard or (lambda: None)
        self._closed_field = closed
        self._archived_at = wb.archived_at
        self._instant_text = instant_text_of(crm)
        self._archive_ref = wb.archive_ref
        self._object = mapping.complaint_object
        self._read_fields = list(
            dict.fromkeys(
                [
                    *mapping.complaint_fields,
                    *(f.field for f in mapping.complaint_filters),
                    c.modstamp,
                ]
            )
        )

    # ------------------------------------------------------------------ public
    def run(self, *, now: int | None = None, run_id: str | None = None) -> ArchiveReport:
        """Queue newly closed complaints, then archive every due one; ``now`` is the run's
        instant (default: the CRM's time). Raises ``ArchiveError`` (the store failed or an
        entry failed its read-back check) and the CRM's and state store's errors."""
        with run_scope(
            log, _ARCHIVE_EVENTS, profile=self.profile, run_id=run_id, calls=self.crm.calls
        ) as run:
            until = self.crm.server_time()
            instant = now if now is not None else int(until.timestamp())
            report = ArchiveReport(run.run_id, self.profile, format_instant(instant))
            run.started(now=report.now)
            self._check_witness()
            self.guard()
            self._queue(until, report)
            for page in self._due(instant):
                self._archive_page(page, instant, report)
            self._hook("done")
            report.crm_calls = run.crm_calls
            report.status = "partial" if report.errors else "ok"
            run.finish(
                report.status,
                queued=report.queued,
                archived=report.archived,
                recovered=report.recovered,
                marked=report.marked,
                errors=len(report.errors),
            )
            return report

    # ------------------------------------------------------------------ selecting
    def _closed(self, record: Record, report: ArchiveReport) -> int | None:
        """The record's closing instant, None if open; an unreadable value is an error."""
        value = record.fields.get(self._closed_field)
        if value in (None, ""):
            return None
        try:
            if not isinstance(value, str) or len(value.strip()) <= 10:
                raise InstantError(f"{value!r} is not a date-time")
            return parse_instant(value, _UTC)
        except InstantError as exc:
            report.errors.append(RecordFailure("mapping", record.id, str(exc), self._closed_field))
            log.warning(
                "record_unreadable", record_id=record.id, field=self._closed_field, reason=str(exc)
            )
            return None

    def _marked(self, record: Record, closed: int) -> bool:
        """Whether this version of the record (its closing instant) is archived, as the
        record's mark says: the entry its ``archive_ref`` field names is of this complaint at
        this version. The mark's date alone cannot tell: a case re-closed with an earlier
        closing instant carries the mark of its previous version, dated after the new one."""
        ref = record.fields.get(self._archive_ref)
        at = record.fields.get(self._archived_at)
        if not ref or not isinstance(ref, str) or not isinstance(at, str):
            return False
        try:
            if parse_instant(at, _UTC) < closed:  # marked before this version closed
                return False
            if parse_ref(ref)[0] != self.profile:
                return False
            header = self.archive.get(ref).header
        except (InstantError, ArchiveError):  # not an entry of ours: the archive decides
            return False
        return header.complaint_id == record.id and header.version == format_instant(closed)

    def _pending(self, record_id: str, closed: int) -> StoredComplaint:
        return StoredComplaint(
            pending_profile(self.profile),
            record_id,
            {"id": record_id, "closed": format_instant(closed)},
            {},
            closed + self.archive_after,
            "",
            True,
        )

    def _queue(self, until: datetime, report: ArchiveReport) -> None:
        """Put closed complaints changed since the last run in the pending queue."""
        mark = self.state.get_watermark(self.profile, ARCHIVE_WATERMARK)
        since = None if mark is None else mark - self.overlap
        where = [*self.mapping.complaint_filters, FieldFilter(self._closed_field, "!=", None)]
        put: list[StoredComplaint] = []
        drop: list[str] = []

        def flush() -> None:
            if put:
                self.state.put_complaints(put)
                report.queued += len(put)
            if drop:
                self.state.delete_complaints(pending_profile(self.profile), drop)
            put.clear()
            drop.clear()

        for record in self.crm.changed_records(
            self._object,
            [self._closed_field, self._archived_at, self._archive_ref],
            since=since,
            until=until,
            where=where,
        ):
            report.records_read += 1
            closed = self._closed(record, report)
            if closed is None:
                continue
            if self._marked(record, closed):
                drop.append(record.id)
            else:
                put.append(self._pending(record.id, closed))
            if len(put) + len(drop) >= self.page_size:
                flush()
        flush()
        self._hook("queued")
        self.state.set_watermark(self.profile, ARCHIVE_WATERMARK, until)
        self._hook("watermark")

    def _due(self, now: int) -> Iterator[list[StoredComplaint]]:
        items = self.state.due_complaints(pending_profile(self.profile), now)
        for i in range(0, len(items), self.page_size):
            yield items[i : i + self.page_size]

    # ------------------------------------------------------------------ archiving
    def _archive_page(
        self, page: Sequence[StoredComplaint], now: int, report: ArchiveReport
    ) -> None:
        self.guard()
        report.due += len(page)
        found = self.crm.records_by_id(self._object, [p.id for p in page], self._read_fields)
        report.records_read += len(found)
        records = {r.id: r for r in found}
        drop: list[str] = []
        requeue: list[StoredComplaint] = []
        ready: list[tuple[Record, int]] = []
        for pending in page:
            record = records.get(pending.id)
            if record is None or not all(
                f.matches(record.fields) for f in self.mapping.complaint_filters
            ):
                drop.append(pending.id)  # deleted, or no longer a complaint
                continue
            closed = self._closed(record, report)
            if closed is None:
                drop.append(pending.id)  # reopened: queued again when it closes again
                continue
            if now - closed < self.archive_after:
                requeue.append(self._pending(record.id, closed))  # re-closed later
                report.not_due += 1
                continue
            if self._marked(record, closed):
                drop.append(pending.id)
                continue
            ready.append((record, closed))
        report.dropped += len(drop)
        related = self._related([r.id for r, _closed in ready], report)
        marks = [
            (record.id, self._archive_one(record, closed, related[record.id], now, report))
            for record, closed in ready
        ]
        if marks:  # every entry is in the archive and read back: the state store sees it too
            last = max((header for _id, header in marks), key=lambda h: h.seq)
            self.witness.put_witness(ChainHead(self.profile, last.seq, last.entry_hash), now)
        self.guard()
        done = self._mark(marks, report)
        if requeue:
            self.state.put_complaints(requeue)
        if drop or done:
            self.state.delete_complaints(pending_profile(self.profile), [*drop, *done])
        self._hook("dequeued")

    def _check_witness(self) -> None:
        """Refuse to append onto a chain that lost or changed entries since the state store
        last saw it (appending would number new entries over the removed ones)."""
        witness = self.witness.get_witness(self.profile)
        if witness is None or witness.seq == 0:
            return
        head = self.archive.head(self.profile)
        ref = make_ref(self.profile, witness.seq)
        if head.seq < witness.seq:
            problem = f"it ends at entry {head.seq} but entry {witness.seq} was witnessed"
        else:
            try:
                stored = self.archive.get(ref).header.entry_hash
            except EntryNotFoundError:
                stored = "missing"
            if stored == witness.entry_hash:
                return
            problem = f"entry {ref} is not the one witnessed ({stored[:16]}...)"
        raise ArchiveError(
            f"the archive of profile '{self.profile}' was cut or rewritten: {problem}; "
            "nothing is appended. Run 'crmsync archive verify' and restore the archive "
            "from a backup"
        )

    def _related(self, ids: list[str], report: ArchiveReport) -> dict[str, _Related]:
        """Follow-ups and related-event records of these complaints."""
        out: dict[str, _Related] = defaultdict(_Related)
        if not ids:
            return out
        fu = self.mapping.spec.follow_ups
        specs = self.mapping.related_specs()
        same = {
            n: s for n, s in specs.items() if s.object == fu.object and s.parent_field == fu.parent
        }
        fields = [
            fu.key_field,
            fu.subject,
            fu.description,
            fu.due_date,
            fu.owner,
            fu.parent,
            fu.status,
            fu.priority,
            *fu.extra,
            *(s.field for s in same.values()),
            *(f.field for s in same.values() for f in s.where),
        ]
        for record in self.crm.related_records(
            fu.object, list(dict.fromkeys(fields)), parent_field=fu.parent, parent_ids=ids
        ):
            report.records_read += 1
            parent = record.fields.get(fu.parent)
            if not isinstance(parent, str):
                continue
            if record.fields.get(fu.key_field):
                out[parent].follow_ups.append(record)
            for name, spec in same.items():
                if all(f.to_filter().matches(record.fields) for f in spec.where):
                    out[parent].events[name].append(record)
        for read in self.mapping.related_reads():
            if (read.object, read.parent_field) == (fu.object, fu.parent):
                continue  # read with the follow-ups above
            for record in self.crm.related_records(
                read.object,
                read.fields,
                parent_field=read.parent_field,
                parent_ids=ids,
                where=read.where,
            ):
                report.records_read += 1
                parent = record.fields.get(read.parent_field)
                if isinstance(parent, str):
                    for name in read.events_of(record):
                        out[parent].events[name].append(record)
        return out

    def body(
        self, record: Record, closed: int, related: _Related, now: int, run_id: str
    ) -> dict[str, Any]:
        """The archive body of a closed complaint (see the project's docs for its fields)."""
        canonical: dict[str, Any] | None = None
        clocks: dict[str, Any]
        try:
            canonical = self.mapping.to_canonical(record, related.events)
        except MappingError as exc:
            clocks = {"error": str(exc)}
        if canonical is not None:
            try:
                complaint = complaint_from_json(canonical, self.charter.calendar.zone, record.id)
                clocks = {
                    name: [
                        clock_result_fields(r, kind=True)
                        for r in evaluate(self.charter, complaint, at)
                    ]
                    for name, at in (("at_close", closed), ("at_archive", now))
                }
            except BadComplaintError as exc:
                clocks = {"error": exc.reason}
        version = format_instant(closed)

        def records(items: Iterable[Record]) -> list[dict[str, Any]]:
            return [_record_json(r) for r in sorted(items, key=lambda r: r.id)]

        return {
            "format": FORMAT,
            "profile": self.profile,
            "complaint_id": record.id,
            "version": version,
            "closed_at": version,
            "archived_at": format_instant(now),
            "run_id": run_id,
            "record": _record_json(record),
            "canonical": canonical,
            "follow_ups": records(related.follow_ups),
            "related": {name: records(items) for name, items in sorted(related.events.items())},
            "clocks": clocks,
            "charter": {
                "name": self.charter.name,
                "title": self.charter.title,
                "content_hash": self.charter.content_hash,
            },
            "mapping": {
                "name": self.mapping.spec.mapping,
                "content_hash": self.mapping.content_hash,
            },
        }

    def _find(self, complaint_id: str, version: str) -> EntryHeader | None:
        found = self.archive.search(self.profile, complaint_id=complaint_id, version=version)
        return found[0] if found else None

    def _archive_one(
        self, record: Record, closed: int, related: _Related, now: int, report: ArchiveReport
    ) -> EntryHeader:
        """The entry of this version: found in the archive, or appended now; read back."""
        version = format_instant(closed)
        header = self._find(record.id, version)
        if header is not None:
            report.recovered += 1
            log.debug("archive_entry_found", record_id=record.id, ref=header.ref)
        else:
            body = self.body(record, closed, related, now, report.run_id)
            header, appended = self._append(body)
            if appended:
                report.archived += 1
                log.debug("archive_appended", record_id=record.id, ref=header.ref)
            else:
                report.recovered += 1
        self._hook("appended")
        self._read_back(header)
        self._hook("verified")
        return header

    def _append(self, body: dict[str, Any]) -> tuple[EntryHeader, bool]:
        """Append after the head; on a conflict re-read the head and look the version up."""
        for attempt in range(MAX_CONFLICTS):
            head = self.archive.head(self.profile)
            if attempt:
                found = self._find(body["complaint_id"], body["version"])
                if found is not None:
                    return found, False
            header = new_header(body, seq=head.seq + 1, prev_hash=head.entry_hash)
            entry = (
                self.cipher.seal(header, body)
                if self.cipher is not None
                else ArchiveEntry(header, body)
            )
            try:
                self.archive.append(entry)
            except ChainConflictError as exc:  # DuplicateEntryError too: found next attempt
                log.info("archive_append_conflict", attempt=attempt + 1, reason=str(exc))
                continue
            return header, True
        raise ArchiveError(
            f"could not append {body['complaint_id']} after {MAX_CONFLICTS} conflicts "
            "with other writers"
        )

    def _read_back(self, header: EntryHeader) -> None:
        """Read the entry from the store and check it is the one appended, intact."""
        entry = self.archive.get(header.ref)
        problems = entry_problems(entry, self.cipher)
        if entry.header != header:
            problems.insert(0, "the stored header differs from the one appended")
        if problems:
            raise ArchiveError(
                f"archive entry {header.ref} failed its read-back check: {'; '.join(problems)}"
            )

    def _mark(self, marks: list[tuple[str, EntryHeader]], report: ArchiveReport) -> list[str]:
        """Set the archive fields on the records; the ids written successfully."""
        done: list[str] = []
        updates = [
            (
                record_id,
                {
                    self._archived_at: self._instant_text(parse_instant(header.archived_at, _UTC)),
                    self._archive_ref: header.ref,
                },
            )
            for record_id, header in marks
        ]
        refs = {record_id: header.ref for record_id, header in marks}
        for i in range(0, len(updates), self.write_batch):
            batch = updates[i : i + self.write_batch]
            results = self.crm.update_records(self._object, batch)
            for (record_id, _fields), result in zip(batch, results, strict=True):
                if result.ok:
                    done.append(record_id)
                    report.marked += 1
                    report.refs.append(refs[record_id])
                    continue
                reason = f"{result.error_code or 'ERROR'}: {result.message or 'no message'}"
                report.errors.append(
                    RecordFailure(
                        "archive_mark",
                        record_id,
                        reason,
                        ",".join(result.fields) or None,
                        result.transient,
                    )
                )
                log.warning("archive_mark_failed", record_id=record_id, reason=reason)
            self._hook("marked")
        return done
