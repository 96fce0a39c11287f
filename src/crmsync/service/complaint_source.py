"""Pulling complaints for a cycle: changed records, complaints whose related records
changed, and stored complaints whose next check is due; assembled into canonical form.

Pages of complaints are yielded one at a time so memory stays flat on a first sync of
hundreds of thousands of records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from crmsync.errors import MappingError
from crmsync.mapping.field_mapping import FieldMapping
from crmsync.ports import CrmPort, Record, StateStore, StoredComplaint
from crmsync.service.cycle_report import CycleReport, RecordFailure

log = structlog.get_logger("crmsync.pull")

COMPLAINTS_WATERMARK = "complaints"


def related_watermark(name: str) -> str:
    """The watermark name of a related-event source."""
    return f"related:{name}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A complaint to evaluate this cycle.

    ``current_flags`` are the write-back values the CRM record holds now (from the record
    when it was read, else the last confirmed values in the state store); ``modstamp`` is
    set for records pulled by the incremental query (the watermark depends on them).
    ``unchanged`` marks a record read again with nothing new for us: the same source fields,
    no related change and the flags we last confirmed (the echo of our own write, or a
    re-read from the overlap window). It needs no evaluation unless its next check is due.
    ``read`` is False for a stored complaint taken as it is (its next check came): the
    CRM was not asked whether the record still exists.
    """

    id: str
    canonical: dict[str, Any]
    current_flags: dict[str, Any]
    source_hash: str
    modstamp: datetime | None
    stored: StoredComplaint | None
    unchanged: bool = False
    read: bool = True


@dataclass
class PullWindow:
    """The bounds of one cycle's incremental pull (and the complaint pull once opened)."""

    until: datetime
    since: dict[str, datetime | None] = field(default_factory=dict)
    complaints: Iterator[Record] | None = field(default=None, repr=False)
    deleted: Iterator[str] | None = field(default=None, repr=False)


class ComplaintSource:
    """Reads the complaints a cycle must evaluate, page by page."""

    def __init__(
        self,
        crm: CrmPort,
        state: StateStore,
        mapping: FieldMapping,
        *,
        profile: str,
        overlap: timedelta,
        page_size: int = 2000,
    ) -> None:
        self.crm = crm
        self.state = state
        self.mapping = mapping
        self.profile = profile
        self.overlap = overlap
        self.page_size = page_size

    def window(self, until: datetime) -> PullWindow:
        """Watermarks minus the overlap, up to the CRM's ``until``."""
        window = PullWindow(until=until)
        names = [COMPLAINTS_WATERMARK] + [
            related_watermark(n) for n in self.mapping.related_specs()
        ]
        for name in names:
            mark = self.state.get_watermark(self.profile, name)
            window.since[name] = None if mark is None else mark - self.overlap
        return window

    def _pages(self, records: Iterator[Record]) -> Iterator[list[Record]]:
        page: list[Record] = []
        for record in records:
            page.append(record)
            if len(page) >= self.page_size:
                yield page
                page = []
        if page:
            yield page

    def touched_parents(self, window: PullWindow, report: CycleReport) -> set[str]:
        """Ids of complaints whose related records (e.g. customer updates) changed."""
        touched: set[str] = set()
        # Open the complaint and deletion pulls first, unread: an adapter may then fetch their
        # first pages in the same request as the related-change pulls below (a CRM that batches
        # reads: one request).
        window.complaints = self._complaint_records(window)
        window.deleted = self.crm.deleted_records(
            self.mapping.complaint_object,
            since=window.since[COMPLAINTS_WATERMARK],
            until=window.until,
        )
        # One pull per related object (its events' rows read together, from the earliest of
        # their watermarks); every pull is opened before any is read, so all travel together.
        pulls = [
            (
                read,
                self.crm.changed_records(
                    read.object,
                    read.fields,
                    since=_earliest(window.since[related_watermark(n)] for n, _ in read.events),
                    until=window.until,
                    where=read.where,
                ),
            )
            for read in self.mapping.related_reads()
        ]
        for read, pull in pulls:
            for record in pull:
                report.records_read += 1
                parent = record.fields.get(read.parent_field)
                if isinstance(parent, str) and parent and read.events_of(record):
                    touched.add(parent)
        return touched

    def deleted(self, window: PullWindow) -> list[str]:
        """Ids of complaint records deleted in the CRM within the window (after
        ``touched_parents``, which opens that pull)."""
        pull = window.deleted
        window.deleted = None
        if pull is None:
            pull = self.crm.deleted_records(
                self.mapping.complaint_object,
                since=window.since[COMPLAINTS_WATERMARK],
                until=window.until,
            )
        return list(dict.fromkeys(pull))

    def changed(
        self, window: PullWindow, touched: set[str], report: CycleReport
    ) -> Iterator[list[Candidate]]:
        """Pages of candidates: changed complaint records, then touched ones not pulled."""
        m = self.mapping
        pulled: set[str] = set()
        records = window.complaints or self._complaint_records(window)
        window.complaints = None
        for page in self._pages(records):
            report.records_read += len(page)
            pulled.update(r.id for r in page)
            yield self._assemble(page, touched, report, pulled=True)
        rest = sorted(touched - pulled)
        for i in range(0, len(rest), self.page_size):
            ids = rest[i : i + self.page_size]
            found = self.crm.records_by_id(m.complaint_object, ids, m.complaint_fields)
            report.records_read += len(found)
            page = [r for r in found if all(f.matches(r.fields) for f in m.complaint_filters)]
            if page:
                yield self._assemble(page, touched, report, pulled=False)

    def _complaint_records(self, window: PullWindow) -> Iterator[Record]:
        m = self.mapping
        return self.crm.changed_records(
            m.complaint_object,
            m.complaint_fields,
            since=window.since[COMPLAINTS_WATERMARK],
            until=window.until,
            where=m.complaint_filters,
        )

    def due(
        self, until: int, skip: set[str], *, everything_open: bool = False
    ) -> Iterator[list[Candidate]]:
        """Pages of stored complaints to evaluate at ``until`` (no CRM read): their next check
        is due, or their last evaluation was at a later instant or is unknown (the state
        store's ``stale_complaints``); with ``everything_open``, every open one too."""
        found = {c.id: c for c in self.state.due_complaints(self.profile, until)}
        everything = -(2**63) if everything_open else until
        for c in self.state.stale_complaints(self.profile, everything):
            if c.closed and c.evaluated_at is not None and c.evaluated_at <= until:
                continue  # listed for ``everything_open`` only, which takes open ones
            found.setdefault(c.id, c)
        items = [c for c in found.values() if c.id not in skip]
        for i in range(0, len(items), self.page_size):
            yield [
                Candidate(
                    c.id, dict(c.canonical), dict(c.flags), c.source_hash, None, c, read=False
                )
                for c in items[i : i + self.page_size]
            ]

    def _assemble(
        self, page: Sequence[Record], touched: set[str], report: CycleReport, *, pulled: bool
    ) -> list[Candidate]:
        m = self.mapping
        stored = self.state.get_complaints(self.profile, [r.id for r in page])
        hashes = {r.id: m.source_hash(r) for r in page}
        # Related records are read only where they may have changed: a complaint that is
        # new, touched by a related change, or whose own fields changed. An echo of our own
        # flag write reuses the related events already stored.
        need = [
            r.id
            for r in page
            if r.id in touched or r.id not in stored or stored[r.id].source_hash != hashes[r.id]
        ]
        related: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
        if need:
            # one pull per related object; every pull is opened before any is read, so all
            # may travel together
            pulls = [
                (
                    read,
                    self.crm.related_records(
                        read.object,
                        read.fields,
                        parent_field=read.parent_field,
                        parent_ids=need,
                        where=read.where,
                    ),
                )
                for read in m.related_reads()
            ]
            for read, pull in pulls:
                for child in pull:
                    report.records_read += 1
                    parent = child.fields.get(read.parent_field)
                    if isinstance(parent, str):
                        for name in read.events_of(child):
                            related[parent][name].append(child)
        needed = set(need)
        out: list[Candidate] = []
        for record in page:
            try:
                if record.id in needed:
                    canonical = m.to_canonical(record, related.get(record.id, {}))
                else:
                    canonical = m.to_canonical(record, {})
                    previous = stored[record.id].canonical.get("events", {})
                    for name in m.related_specs():
                        if name in previous:
                            canonical["events"][name] = previous[name]
            except MappingError as exc:
                report.errors.append(
                    RecordFailure("mapping", exc.record_id, exc.message, exc.field)
                )
                log.warning(
                    "record_unreadable",
                    record_id=exc.record_id,
                    field=exc.field,
                    reason=exc.message,
                )
                continue
            modstamp = _modstamp(record, m.spec.complaints.modstamp) if pulled else None
            flags = m.current_flags(record)
            previous_state = stored.get(record.id)
            unchanged = (
                record.id not in needed
                and previous_state is not None
                and dict(previous_state.flags) == flags
            )
            out.append(
                Candidate(
                    record.id,
                    canonical,
                    flags,
                    hashes[record.id],
                    modstamp,
                    previous_state,
                    unchanged,
                )
            )
        return out


def _earliest(marks: Iterable[datetime | None]) -> datetime | None:
    """The earliest of some lower bounds; None (no bound) when any is None."""
    found: datetime | None = None
    for mark in marks:
        if mark is None:
            return None
        found = mark if found is None else min(found, mark)
    return found


def _modstamp(record: Record, field: str) -> datetime | None:
    value = record.fields.get(field)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


__all__ = ["COMPLAINTS_WATERMARK", "Candidate", "ComplaintSource", "PullWindow"]
