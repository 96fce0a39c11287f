"""One sync cycle: pull -> evaluate -> plan -> write flags and follow-ups -> advance.

Order of effects, so that a kill at any point and a re-run lose nothing and duplicate
nothing (style rule 4, "write first, then advance"):

1. a page's follow-ups to create are entered in the ledger as *planned*;
2. the page's writes go to the CRM together, each call as full as the CRM says one
   of its calls carries and at most ``write_batch`` operations (``CrmPort.write_page``,
   ``CrmPort.write_call_fits``): follow-ups created by their external key unless a task
   already holds it (idempotent on the CRM, and a task staff worked is never overwritten),
   follow-ups completed, and flags written only where they differ from what the record
   holds; after each call the ledger records its follow-ups (*done* with the CRM id, or
   *failed*) and its completions in one put;
3. the state store then records the canonical complaint, the confirmed flags and the
   next check;
4. watermarks move last, and never past a record whose write failed.

Before each of these writes (each write call of the CRM among them) the cycle asks its
``guard`` (the profile lock): a process that lost its profile stops (``ProfileLostError``)
rather than write beside the one that took it over. A follow-up the CRM refused for good
stays ``failed`` in the ledger, is tried again (by its key) at each evaluation that still
plans it, and its complaint stays due, so each cycle reports it until it is made. A
complaint deleted in the CRM (named by the pull of deletions, or a write the CRM answers
for a record it no longer holds) is forgotten by the state store. A NUL character or a
lone surrogate, which no state store keeps, is the record's error and is kept as U+FFFD.

A re-run after a crash re-pulls the same window (the watermark did not move), compares
flags with the record's actual values, and resolves *planned* ledger entries by looking
the key up on the CRM before deciding to create.

Sync equals evaluate at every instant: a stored complaint is evaluated again when its next
check comes (a warning, a deadline, an event dated after the last evaluation's ``now``),
when a cycle runs at a ``now`` earlier than its last evaluation (a ``--now`` replay), and,
for open complaints, when the charter, the mapping or the follow-up horizon changed since
the profile's last cycle (content hashes kept in the state store, with the horizon).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from crmsync.domain.action_planning import FollowUp, OpenFollowUp, plan
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.evaluation import evaluate
from crmsync.domain.instants import format_instant, format_instant_or_none
from crmsync.domain.unicode_text import kept_as_text, shown, unkeepable_in
from crmsync.errors import BadComplaintError
from crmsync.mapping.field_mapping import FieldMapping, instant_text_of
from crmsync.ports import (
    CrmPort,
    FieldFilter,
    LedgerEntry,
    LedgerStatus,
    PageWrites,
    ProfileState,
    RunRecord,
    StateStore,
    StoredComplaint,
    WriteResult,
)
from crmsync.service.complaint_source import (
    COMPLAINTS_WATERMARK,
    Candidate,
    ComplaintSource,
    related_watermark,
)
from crmsync.service.cycle_report import CycleReport, PlannedWrite, RecordFailure
from crmsync.service.run_scope import RunEvents, run_scope

log = structlog.get_logger("crmsync.sync")

_CYCLE_EVENTS = RunEvents("cycle_started", "cycle_finished", "cycle_failed")

FOLLOW_UP_LOOKBACK = 7 * 86_400
"""The default follow-up horizon lies this long (seconds) before the profile's first cycle."""

Hook = Callable[[str], None]
"""Called with the name of each step as it is reached (crash tests kill the process there)."""


@dataclass(frozen=True, slots=True)
class FlagWrite:
    """New flags for one complaint record: ``flags`` as planned, ``fields`` as the CRM
    takes them (the mapping's write-back fields)."""

    complaint_id: str
    flags: dict[str, Any]
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskCreate:
    """A follow-up task to create (by its key, unless a task holds it already)."""

    follow_up: FollowUp
    fields: dict[str, Any]


@dataclass
class PageWork:
    """What one page of candidates asks of the CRM and the state store: flags to write,
    tasks to create and to complete, and the complaints to keep (by id)."""

    flag_writes: list[FlagWrite] = field(default_factory=list)
    creates: list[TaskCreate] = field(default_factory=list)
    completes: list[LedgerEntry] = field(default_factory=list)
    settled: list[LedgerEntry] = field(default_factory=list)  # failed, no longer needed
    stored: dict[str, StoredComplaint] = field(default_factory=dict)
    failures: list[tuple[str, RecordFailure]] = field(default_factory=list)  # by complaint
    unread: set[str] = field(default_factory=set)  # stored ones with follow-ups to create


_Write = TaskCreate | LedgerEntry | FlagWrite
"""One operation of a page's writes: a follow-up to create, to complete, or a flag write."""


class SyncCycle:
    """Runs cycles for one profile (org connection + mapping + charter)."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        state: StateStore,
        charter: Charter,
        mapping: FieldMapping,
        profile: str = "default",
        overlap: timedelta = timedelta(minutes=5),
        write_batch: int = 1000,
        page_size: int = 2000,
        hook: Hook | None = None,
        follow_up_since: int | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        """``follow_up_since`` is ``CRMSYNC_FOLLOW_UP_SINCE`` (epoch seconds) when set; the
        profile's horizon is otherwise its first cycle's ``now`` minus 7 days, kept in the
        state store. ``guard`` is called before each page's writes and before the
        watermarks move, and raises (``ProfileLostError``) when this process no longer
        holds the profile: the cycle then stops, never beside another writer."""
        self.crm = crm
        self._instant_text = instant_text_of(crm)
        self.state = state
        self.charter = charter
        self.mapping = mapping
        self.profile = profile
        self.write_batch = write_batch
        self.source = ComplaintSource(
            crm, state, mapping, profile=profile, overlap=overlap, page_size=page_size
        )
        self._hook = hook or (lambda _step: None)
        self.guard: Callable[[], None] = guard or (lambda: None)
        self._progress: Callable[[CycleReport], None] = lambda _report: None
        self.follow_up_since = follow_up_since
        self._horizon: int | None = None
        self._reevaluate_all = False

    # ------------------------------------------------------------------ public
    def run(
        self,
        *,
        now: int | None = None,
        dry_run: bool = False,
        run_id: str | None = None,
        progress: Callable[[CycleReport], None] | None = None,
    ) -> CycleReport:
        """Run one cycle; ``now`` is the evaluation instant (default: the CRM's time).

        The incremental pull always uses the CRM's own clock. A dry run reads and plans
        but writes nothing, neither to the CRM nor to the state store. ``progress`` is
        called with the report after each page (a progress bar on long first syncs).
        """
        self._progress = progress or (lambda _report: None)
        with run_scope(
            log, _CYCLE_EVENTS, profile=self.profile, run_id=run_id, calls=self.crm.calls
        ) as run:
            until = self.crm.server_time()
            instant = now if now is not None else int(until.timestamp())
            report = CycleReport(run.run_id, self.profile, format_instant(instant), dry_run)
            if not dry_run:
                self.state.start_run(
                    RunRecord(self.profile, run.run_id, instant, None, "running", {})
                )
            run.started(now=report.now, until=until.isoformat(), dry_run=dry_run)
            try:
                self._horizon = self._profile_state(instant, dry_run)
                self._cycle(until, instant, report)
            except Exception as exc:
                report.status = "failed"
                report.crm_calls = run.crm_calls
                if not dry_run:
                    self.state.finish_run(
                        self.profile,
                        run.run_id,
                        instant,
                        "failed",
                        {**report.as_dict(), "failure": f"{type(exc).__name__}: {exc}"},
                    )
                raise
            report.crm_calls = run.crm_calls
            report.status = "partial" if report.errors else "ok"
            if not dry_run:
                self.state.finish_run(
                    self.profile, run.run_id, instant, report.status, report.as_dict()
                )
            run.finish(
                report.status,
                records_read=report.records_read,
                evaluated=report.complaints_evaluated,
                flags_written=report.flags_written,
                tasks_created=report.tasks_created,
                tasks_completed=report.tasks_completed,
                errors=len(report.errors),
            )
            return report

    # ------------------------------------------------------------------ the profile
    def _profile_state(self, now: int, dry_run: bool) -> int:
        """The follow-up horizon of this cycle; record the profile's state (first cycle:
        the default horizon) and, when the charter, mapping or horizon changed since its
        last cycle, log it and mark its open complaints for evaluation in this cycle."""
        stored = self.state.get_profile(self.profile)
        since = stored.follow_up_since if stored is not None else now - FOLLOW_UP_LOOKBACK
        horizon = self.follow_up_since if self.follow_up_since is not None else since
        charter_hash, mapping_hash = self.charter.content_hash, self.mapping.content_hash
        changed: list[str] = []
        if stored is not None:
            if stored.charter_hash != charter_hash:
                changed.append("charter")
            if stored.mapping_hash != mapping_hash:
                changed.append("mapping")
            if stored.horizon != horizon:
                changed.append("follow_up_since")
            if changed:
                log.warning(
                    "profile_configuration_changed",
                    changed=changed,
                    charter=self.charter.source,
                    charter_hash=charter_hash[:16],
                    previous_charter_hash=stored.charter_hash[:16],
                    mapping=self.mapping.source,
                    mapping_hash=mapping_hash[:16],
                    previous_mapping_hash=stored.mapping_hash[:16],
                    follow_up_since=format_instant(horizon),
                    previous_follow_up_since=format_instant(stored.horizon),
                    action="every open complaint is evaluated again in this cycle",
                )
        else:
            log.info("profile_first_cycle", follow_up_since=format_instant(horizon))
        self._reevaluate_all = bool(changed) and dry_run
        if not dry_run:
            self.state.put_profile(
                ProfileState(self.profile, since, horizon, charter_hash, mapping_hash, now),
                reevaluate_open=bool(changed),
            )
        return horizon

    # ------------------------------------------------------------------ the cycle
    def _cycle(self, until: datetime, now: int, report: CycleReport) -> None:
        window = self.source.window(until)
        self._hook("pulled_window")
        touched = self.source.touched_parents(window, report)
        seen: set[str] = set(self._forget(self.source.deleted(window), report, "pull"))
        oldest_failed: datetime | None = None
        for pulled in self.source.changed(window, touched, report):
            # records read again with nothing new are left to the due check below
            page = [c for c in pulled if not c.unchanged]
            seen.update(c.id for c in page)
            failed = self._process(page, now, report)
            self._progress(report)
            for candidate in page:
                if (
                    candidate.id in failed
                    and candidate.modstamp is not None
                    and (oldest_failed is None or candidate.modstamp < oldest_failed)
                ):
                    oldest_failed = candidate.modstamp
        for page in self.source.due(now, seen, everything_open=self._reevaluate_all):
            self._process(page, now, report)
            self._progress(report)
        if report.dry_run:
            return
        self._hook("before_watermark")
        self.guard()
        mark = until if oldest_failed is None else min(until, oldest_failed)
        self.state.set_watermark(self.profile, COMPLAINTS_WATERMARK, mark)
        for name in self.mapping.related_specs():
            self.state.set_watermark(self.profile, related_watermark(name), until)
        report.watermark = mark.astimezone(UTC).isoformat()
        nxt = self.state.next_check(self.profile)
        report.next_check = format_instant_or_none(nxt)
        self._hook("done")

    def _forget(self, ids: Sequence[str], report: CycleReport, seen_by: str) -> list[str]:
        """Forget complaints deleted in the CRM (their archived versions stay): out of the
        state store, so of every later plan, count and report; one log line each. Returns
        the ids the state store knew (a dry run forgets nothing, but skips them too)."""
        if not ids:
            return []
        known = sorted(self.state.get_complaints(self.profile, ids))
        for complaint_id in known:
            log.info("complaint_deleted", record_id=complaint_id, seen_by=seen_by)
        report.complaints_deleted += len(known)
        if known and not report.dry_run:
            self.state.delete_complaints(self.profile, known)
        return known

    def _process(self, page: Sequence[Candidate], now: int, report: CycleReport) -> set[str]:
        """Evaluate, plan and write one page; return the ids whose writes failed."""
        zone = self.charter.calendar.zone
        complaints: dict[str, Complaint] = {}
        if not report.dry_run:
            self.guard()  # this process still works the profile: it may write
        page = [self._storable(candidate, report) for candidate in page]
        for candidate in page:
            try:
                complaints[candidate.id] = complaint_from_json(
                    candidate.canonical, zone, candidate.id
                )
            except BadComplaintError as exc:
                report.errors.append(RecordFailure("complaint", candidate.id, exc.reason))
                log.warning("complaint_invalid", record_id=candidate.id, reason=exc.reason)
        ledger = self._ledger(list(complaints), report)
        work = PageWork()
        states: Counter[str] = Counter()
        clocks: Counter[tuple[str, str]] = Counter()
        for candidate in page:
            complaint = complaints.get(candidate.id)
            if complaint is None:
                continue
            results = evaluate(self.charter, complaint, now)
            report.complaints_evaluated += 1
            entries = ledger.get(candidate.id, {})
            open_items = [
                OpenFollowUp(e.key, e.clock, e.occurrence, e.state, e.updated_at)
                for e in entries.values()
                if e.status == "done"
            ]
            decided = plan(
                self.charter, complaint, results, now, open_items, follow_up_since=self._horizon
            )
            states[decided.flags.status] += 1
            for result in results:
                clocks[(result.clock, result.state.value)] += 1
            flags = decided.flags.as_dict()
            if flags != candidate.current_flags:
                fields = self.mapping.flag_fields(flags, now, self._instant_text)
                work.flag_writes.append(FlagWrite(candidate.id, flags, fields))
            for follow_up in decided.create:
                known = entries.get(follow_up.key)
                if known is None or known.status == "failed":  # failed: tried again
                    task = self.mapping.task_fields(
                        follow_up, complaint, self.charter, self._instant_text
                    )
                    work.creates.append(TaskCreate(follow_up, task))
                    if not candidate.read:
                        work.unread.add(candidate.id)
            wanted = {f.key for f in decided.create}
            work.settled.extend(
                _replace(
                    e, status="completed", updated_at=now, error=f"not needed any more ({e.error})"
                )
                for e in entries.values()
                if e.status == "failed" and e.key not in wanted
            )
            work.completes.extend(entries[k] for k in decided.complete)
            closed_at = complaint.first("closed", now)
            work.stored[candidate.id] = StoredComplaint(
                self.profile,
                candidate.id,
                candidate.canonical,
                candidate.current_flags,
                decided.next_check,
                candidate.source_hash,
                closed=closed_at is not None,
                closed_at=closed_at,
                clock_states={r.clock: r.state.value for r in results},
                evaluated_at=now,
            )
        for state, n in states.items():
            report.states[state] = report.states.get(state, 0) + n
        for (clock, state), n in clocks.items():
            key = f"{clock}:{state}"
            report.clock_states[key] = report.clock_states.get(key, 0) + n
        if report.dry_run:
            self._describe(work, report)
            return set()
        return self._write(work, now, report)

    def _storable(self, candidate: Candidate, report: CycleReport) -> Candidate:
        """The candidate as the state store can keep it: a NUL character or a lone
        surrogate (which no store keeps, and which would fail the whole page) is the
        record's error, reported, and is kept as U+FFFD; the complaint is evaluated and
        written like any other, so its flags are written once and the watermark passes it."""
        kinds: set[str] = set()
        canonical, where = _without_nul(candidate.canonical, (), kinds)
        flags, in_flags = _without_nul(candidate.current_flags, ("flags",), kinds)
        named = list(
            dict.fromkeys(
                ".".join(p[1:] if p[:1] == ("attributes",) else p) for p in [*where, *in_flags]
            )
        )
        if not named:
            return candidate
        what = " and ".join(
            text
            for kind, text in (
                ("nul", "a NUL character"),
                ("surrogate", "a lone surrogate (such as \\ud800)"),
            )
            if kind in kinds
        )
        reason = (
            f"holds {what}, which the state store cannot keep: kept with U+FFFD in "
            "its place; remove it from the record"
        )
        report.errors.append(RecordFailure("complaint", candidate.id, reason, ",".join(named)))
        for kind in sorted(kinds):
            event = "record_nul_character" if kind == "nul" else "record_lone_surrogate"
            log.warning(event, record_id=candidate.id, field=shown(",".join(named)))
        return replace(candidate, canonical=canonical, current_flags=flags)

    # ------------------------------------------------------------------ ledger
    def _ledger(
        self, complaint_ids: list[str], report: CycleReport
    ) -> dict[str, dict[str, LedgerEntry]]:
        """Ledger entries by complaint and key; *planned* leftovers of a crash resolved."""
        by_complaint: dict[str, dict[str, LedgerEntry]] = {}
        planned: list[LedgerEntry] = []
        for entry in self.state.ledger_for_complaints(self.profile, complaint_ids):
            if entry.status == "planned":
                planned.append(entry)
                continue
            by_complaint.setdefault(entry.complaint_id, {})[entry.key] = entry
        if planned:
            fu = self.mapping.spec.follow_ups
            found: dict[str, str] = {}
            for record in self.crm.related_records(
                fu.object,
                [fu.key_field],
                parent_field=fu.parent,
                parent_ids=sorted({e.complaint_id for e in planned}),
                where=[FieldFilter(fu.key_field, "in", tuple(e.key for e in planned))],
            ):
                report.records_read += 1
                key = record.fields.get(fu.key_field)
                if isinstance(key, str):
                    found[key] = record.id
            resolved = []
            for entry in planned:
                if entry.key in found:
                    done = _replace(entry, status="done", crm_id=found[entry.key])
                    resolved.append(done)
                    by_complaint.setdefault(entry.complaint_id, {})[entry.key] = done
            if resolved and not report.dry_run:
                self.state.ledger_put(resolved)
            log.info("ledger_recovered", planned=len(planned), found=len(resolved))
        return by_complaint

    # ------------------------------------------------------------------ writes
    def _calls(self, writes: Sequence[_Write]) -> Iterator[Sequence[_Write]]:
        """``writes`` cut in order into write calls, each filled while the CRM says one call
        carries it (``CrmPort.write_call_fits``) and ``write_batch`` is not exceeded; one
        write at least."""
        start = 0
        while start < len(writes):
            creates = completes = updates = 0
            end = start
            while end < len(writes) and end - start < self.write_batch:
                write = writes[end]
                creates += isinstance(write, TaskCreate)
                completes += isinstance(write, LedgerEntry)
                updates += isinstance(write, FlagWrite)
                if end > start and not self.crm.write_call_fits(creates, completes, updates):
                    break
                end += 1
            yield writes[start:end]
            start = end

    def _write(self, work: PageWork, now: int, report: CycleReport) -> set[str]:
        failed: set[str] = set()
        if work.unread:  # no follow-up for a complaint deleted since it was last read
            self._drop_deleted(work, report)
        if work.settled:  # a refused follow-up the complaint no longer needs: never made
            self.state.ledger_put(work.settled)
        self._write_requests(work, now, report, failed)
        gone = self._deleted_among(failed, work, report)
        for complaint_id in gone:
            work.stored.pop(complaint_id, None)
        self._store(work, now, failed)
        self._forget(sorted(gone), report, "write")
        return failed - gone

    def _drop_deleted(self, work: PageWork, report: CycleReport) -> None:
        """Of the stored complaints about to get a follow-up, without a read of their
        record this cycle, forget those the CRM no longer holds, with every write planned
        for them (one read of those ids)."""
        present = {
            r.id
            for r in self.crm.records_by_id(self.mapping.complaint_object, sorted(work.unread), [])
        }
        gone = work.unread - present
        if not gone:
            return
        work.creates = [c for c in work.creates if c.follow_up.complaint_id not in gone]
        work.completes = [e for e in work.completes if e.complaint_id not in gone]
        work.flag_writes = [w for w in work.flag_writes if w.complaint_id not in gone]
        work.settled = [e for e in work.settled if e.complaint_id not in gone]
        for complaint_id in gone:
            work.stored.pop(complaint_id, None)
        self._forget(sorted(gone), report, "read")

    def _deleted_among(self, failed: set[str], work: PageWork, report: CycleReport) -> set[str]:
        """Of the complaints whose writes failed, those the CRM no longer holds (deleted:
        their write errors are no failures); one read of the failed ones, only when some
        failed."""
        if not failed:
            return set()
        present = {
            r.id for r in self.crm.records_by_id(self.mapping.complaint_object, sorted(failed), [])
        }
        gone = failed - present
        if gone:
            dropped = {id(f) for cid, f in work.failures if cid in gone}
            report.errors[:] = [e for e in report.errors if id(e) not in dropped]
        return gone

    def _write_requests(
        self, work: PageWork, now: int, report: CycleReport, failed: set[str]
    ) -> None:
        """The page's writes, follow-ups to create first, then to complete, then flags, cut
        into calls of the CRM as full as one of its calls carries (``_calls``). The ledger
        holds every follow-up to create as *planned* before the first call; after each call
        it records that call's follow-ups (done or failed) and completions in one put, and
        the flags written are kept for the state store (``_store``)."""
        fu = self.mapping.spec.follow_ups
        completes = [e for e in work.completes if e.crm_id]
        if work.creates:
            self.state.ledger_put(
                [_entry(self.profile, c.follow_up, "planned", now) for c in work.creates]
            )
            self._hook("tasks_planned")
        completion = self.mapping.completion_fields() if completes else {}
        writes: list[_Write] = [*work.creates, *completes, *work.flag_writes]
        for request in self._calls(writes):
            creates = [w for w in request if isinstance(w, TaskCreate)]
            closing = [w for w in request if isinstance(w, LedgerEntry)]
            flags = [w for w in request if isinstance(w, FlagWrite)]
            self.guard()  # before each write call: still this process's profile
            results = self.crm.write_page(
                PageWrites(
                    follow_up_object=fu.object,
                    key_field=fu.key_field,
                    record_object=self.mapping.complaint_object,
                    creates=[c.fields for c in creates],
                    completes=[str(e.crm_id) for e in closing],
                    completion=completion,
                    updates=[(w.complaint_id, w.fields) for w in flags],
                )
            )
            self._hook("writes_sent")
            ledger = self._created(
                creates, results.creates, work, now=now, report=report, failed=failed
            )
            ledger += self._completed(
                closing, results.completes, work, now=now, report=report, failed=failed
            )
            self._flagged(flags, results.updates, work, report, failed)
            if ledger:
                self.state.ledger_put(ledger)
            self._hook("writes_recorded")

    def _created(
        self,
        creates: Sequence[TaskCreate],
        results: Sequence[WriteResult],
        work: PageWork,
        *,
        now: int,
        report: CycleReport,
        failed: set[str],
    ) -> list[LedgerEntry]:
        """The ledger entries of follow-ups the CRM answered: done (made now, or found
        holding the key), failed (refused for good); a transient refusal stays planned."""
        entries = []
        for create, result in zip(creates, results, strict=True):
            follow_up = create.follow_up
            if result.ok:
                report.tasks_created += 1 if result.created else 0
                if not result.created:  # the state store did not know it: left alone
                    log.info(
                        "follow_up_exists",
                        record_id=follow_up.complaint_id,
                        key=follow_up.key,
                        task=result.id,
                    )
                entries.append(_entry(self.profile, follow_up, "done", now, crm_id=result.id))
            else:
                failed.add(follow_up.complaint_id)
                self._failure(report, "task", follow_up.complaint_id, result, work)
                if not result.transient:
                    entries.append(
                        _entry(self.profile, follow_up, "failed", now, error=_why(result))
                    )
        return entries

    def _completed(
        self,
        closing: Sequence[LedgerEntry],
        results: Sequence[WriteResult],
        work: PageWork,
        *,
        now: int,
        report: CycleReport,
        failed: set[str],
    ) -> list[LedgerEntry]:
        """The ledger entries of follow-ups the CRM completed (or that staff deleted:
        nothing left to complete); one it refused stays done, to be completed again."""
        entries = []
        for entry, result in zip(closing, results, strict=True):
            if result.ok:
                report.tasks_completed += 1
                entries.append(_replace(entry, status="completed", updated_at=now))
            elif result.error_code == "NOT_FOUND":
                entries.append(  # deleted by staff: nothing left to complete
                    _replace(
                        entry, status="completed", updated_at=now, error="task no longer exists"
                    )
                )
            else:
                failed.add(entry.complaint_id)
                self._failure(report, "complete", entry.complaint_id, result, work)
        return entries

    def _flagged(
        self,
        flags: Sequence[FlagWrite],
        results: Sequence[WriteResult],
        work: PageWork,
        report: CycleReport,
        failed: set[str],
    ) -> None:
        """Keep the flags the CRM took as the complaints' confirmed flags."""
        for write, result in zip(flags, results, strict=True):
            cid = write.complaint_id
            if result.ok:
                report.flags_written += 1
                work.stored[cid] = replace(work.stored[cid], flags=write.flags)
            else:
                failed.add(cid)
                self._failure(report, "flags", cid, result, work)

    def _store(self, work: PageWork, now: int, failed: set[str]) -> None:
        """Keep every evaluated complaint, closed ones too: a later re-read of a closed
        complaint (the echo of our write, the overlap window, the archive's mark) is then
        recognised as unchanged instead of being read and evaluated again."""
        self.guard()
        self.state.put_complaints(
            [
                _due_now(stored, now) if cid in failed else stored  # failed: retry next cycle
                for cid, stored in work.stored.items()
            ]
        )
        self._hook("state_written")

    def _failure(
        self,
        report: CycleReport,
        kind: str,
        complaint_id: str,
        result: WriteResult,
        work: PageWork,
    ) -> None:
        named = ",".join(result.fields) or None
        failure = RecordFailure(
            kind, result.ref or complaint_id, _why(result), named, result.transient
        )
        report.errors.append(failure)
        work.failures.append((complaint_id, failure))
        log.warning(
            "write_failed",
            kind=kind,
            record_id=complaint_id,
            ref=result.ref,
            error_code=result.error_code,
            field=named,
            reason=result.message,
            transient=result.transient,
        )

    def _describe(self, work: PageWork, report: CycleReport) -> None:
        for write in work.flag_writes:
            flags = write.flags
            report.planned.append(
                PlannedWrite(
                    "flags",
                    write.complaint_id,
                    write.complaint_id,
                    f"status={flags['status']} breaches={flags['breaches'] or '-'} "
                    f"next_due={flags['next_due'] or '-'}",
                )
            )
        fu = self.mapping.spec.follow_ups
        for create in work.creates:
            follow_up = create.follow_up
            report.planned.append(
                PlannedWrite(
                    "task", follow_up.complaint_id, follow_up.key, str(create.fields[fu.subject])
                )
            )
        for entry in work.completes:
            report.planned.append(
                PlannedWrite("complete", entry.complaint_id, entry.key, f"task {entry.crm_id}")
            )


def _why(result: WriteResult) -> str:
    code = result.error_code or "ERROR"
    return f"{code}: {result.message or 'no message'}"


def _entry(
    profile: str,
    follow_up: FollowUp,
    status: LedgerStatus,
    now: int,
    *,
    crm_id: str | None = None,
    error: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        profile=profile,
        key=follow_up.key,
        complaint_id=follow_up.complaint_id,
        clock=follow_up.clock,
        occurrence=follow_up.occurrence,
        state=follow_up.state,
        status=status,
        crm_id=crm_id,
        error=error,
        updated_at=now,
    )


def _replace(entry: LedgerEntry, **changes: Any) -> LedgerEntry:
    values = {name: getattr(entry, name) for name in LedgerEntry.__slots__}
    values.update(changes)
    return LedgerEntry(**values)


def _due_now(stored: StoredComplaint, now: int) -> StoredComplaint:
    return replace(stored, next_check=now)


def _without_nul(
    value: Any, path: tuple[str, ...], kinds: set[str]
) -> tuple[Any, list[tuple[str, ...]]]:
    """``value`` (JSON) with every NUL character and lone surrogate in its text replaced
    by U+FFFD (``domain.unicode_text``), the paths (keys) where one was, and what was
    found added to ``kinds``."""
    if isinstance(value, str):
        found_here = unkeepable_in(value)
        if not found_here:
            return value, []
        kinds.update(found_here)
        return kept_as_text(value), [tuple(shown(p) for p in path)]
    found: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            clean_key, in_key = _without_nul(key, (*path, str(key)), kinds)
            out[clean_key], inside = _without_nul(item, (*path, str(key)), kinds)
            found.extend(in_key or inside)
        return (out, found) if found else (value, [])
    if isinstance(value, list):
        items = []
        for item in value:
            clean, inside = _without_nul(item, path, kinds)
            items.append(clean)
            found.extend(inside)
        return (items, found) if found else (value, [])
    return value, []
