"""The state ports (``StateStore``, ``PopulationReader``, ``ArchiveWitness``) in memory:
the fake for unit tests of the sync cycle.

It passes the same contract suite as the SQL stores, so it behaves like them in every
way a caller can see: values go through the same validation and JSON encoding (a
canonical complaint comes back as a fresh copy, tuples as lists), methods are atomic
(everything is validated before anything changes), it refuses to work before
``migrate()`` or after ``close()``. Nothing survives the object.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsync.adapters.state import codec
from crmsync.adapters.state.migrations import LATEST_VERSION, SQLITE_MIGRATIONS, pending
from crmsync.domain.archive_entry import ChainHead
from crmsync.errors import StateStoreError
from crmsync.ports import (
    LedgerEntry,
    Population,
    ProfileState,
    PruneCounts,
    RunRecord,
    StoredComplaint,
)

_WHERE = "memory state store"


class MemoryStateStore:
    """The state store in dictionaries, a ``StateDatabase``. ``schema_version`` is the
    version ``migrate()`` found or set (0 before); tests may set it to simulate a newer
    database, and read the run history back with ``recorded_runs``."""

    def __init__(self) -> None:
        self.schema_version = 0
        self._closed = False
        self._lock = threading.RLock()
        self._watermarks: dict[tuple[str, str], int] = {}
        self._complaints: dict[tuple[str, str], codec.ComplaintRow] = {}
        self._ledger: dict[tuple[str, str], codec.LedgerRow] = {}
        self._runs: dict[tuple[str, str], tuple[int, codec.RunRow]] = {}
        self._witnesses: dict[str, codec.WitnessRow] = {}
        self._profiles: dict[str, codec.ProfileRow] = {}
        self._run_seq = 0

    def _ready(self, what: str) -> None:
        if self._closed:
            raise StateStoreError(f"{_WHERE}: {what}: the store is closed")
        if self.schema_version == 0:
            raise StateStoreError(f"{_WHERE}: {what} failed: no schema (was migrate() run?)")

    def migrate(self) -> int:
        """Create the (imaginary) schema; refuse a version newer than the code knows."""
        with self._lock:
            if self._closed:
                raise StateStoreError(f"{_WHERE}: migrate: the store is closed")
            pending(self.schema_version, SQLITE_MIGRATIONS, _WHERE)
            self.schema_version = LATEST_VERSION
            return self.schema_version

    # ------------------------------------------------------------------ watermarks

    def get_watermark(self, profile: str, name: str) -> datetime | None:
        """The watermark, an aware UTC datetime, or None if never set."""
        with self._lock:
            self._ready("get_watermark")
            micros = self._watermarks.get((profile, name))
            return None if micros is None else codec.from_micros(micros)

    def set_watermark(self, profile: str, name: str, value: datetime) -> None:
        """Set the watermark (aware datetime, kept to the microsecond)."""
        where = f"watermark {profile!r}/{name!r}"
        key = (
            codec.check_text(profile, f"{where}: profile"),
            codec.check_text(name, f"{where}: name"),
        )
        micros = codec.to_micros(codec.check_aware(value, where))
        with self._lock:
            self._ready("set_watermark")
            self._watermarks[key] = micros

    # ------------------------------------------------------------------ complaints

    def put_complaints(self, items: Sequence[StoredComplaint]) -> None:
        """Insert or replace by ``(profile, id)``; all or nothing."""
        rows = [codec.complaint_row(c) for c in items]
        with self._lock:
            self._ready("put_complaints")
            for row in rows:
                self._complaints[(row[0], row[1])] = row

    def get_complaints(self, profile: str, ids: Sequence[str]) -> dict[str, StoredComplaint]:
        """The stored complaints among ``ids``, by id (unknown ids are left out)."""
        with self._lock:
            self._ready("get_complaints")
            rows = [self._complaints.get((profile, i)) for i in dict.fromkeys(ids)]
        return {row[1]: codec.complaint_from_row(row) for row in rows if row is not None}

    def due_complaints(self, profile: str, until: int) -> list[StoredComplaint]:
        """Complaints with ``next_check <= until`` (None never due), by next_check then id."""
        with self._lock:
            self._ready("due_complaints")
            rows = [
                row
                for (p, _), row in self._complaints.items()
                if p == profile and row[4] is not None and row[4] <= until
            ]
        rows.sort(key=lambda row: (row[4], row[1]))
        return [codec.complaint_from_row(row) for row in rows]

    def stale_complaints(self, profile: str, now: int) -> list[StoredComplaint]:
        """Complaints last evaluated after ``now`` or with ``evaluated_at`` None, by id."""
        with self._lock:
            self._ready("stale_complaints")
            rows = [
                row
                for (p, _), row in self._complaints.items()
                if p == profile and (row[9] is None or row[9] > now)
            ]
        rows.sort(key=lambda row: row[1])
        return [codec.complaint_from_row(row) for row in rows]

    def get_profile(self, profile: str) -> ProfileState | None:
        """The profile's state, or None before its first cycle."""
        with self._lock:
            self._ready("get_profile")
            row = self._profiles.get(profile)
        return None if row is None else codec.profile_from_row(row)

    def put_profile(self, state: ProfileState, *, reevaluate_open: bool = False) -> None:
        """Insert or replace the profile's state; optionally mark its open complaints for
        evaluation at the next cycle, at once."""
        row = codec.profile_row(state)
        with self._lock:
            self._ready("put_profile")
            self._profiles[row[0]] = row
            if reevaluate_open:
                for key, c in list(self._complaints.items()):
                    if key[0] == row[0] and not c[6]:
                        self._complaints[key] = (*c[:9], None)

    def next_check(self, profile: str) -> int | None:
        """The earliest ``next_check`` of the profile, or None."""
        with self._lock:
            self._ready("next_check")
            checks = [
                row[4]
                for (p, _), row in self._complaints.items()
                if p == profile and row[4] is not None
            ]
        return min(checks, default=None)

    def delete_complaints(self, profile: str, ids: Sequence[str]) -> None:
        """Delete these complaints (unknown ids are ignored)."""
        with self._lock:
            self._ready("delete_complaints")
            for complaint_id in ids:
                self._complaints.pop((profile, complaint_id), None)

    # ---------------------------------------------------------------------- ledger

    def ledger_for_complaints(
        self, profile: str, complaint_ids: Sequence[str]
    ) -> list[LedgerEntry]:
        """Every entry of these complaints, by (complaint_id, clock, occurrence, key)."""
        wanted = set(complaint_ids)
        with self._lock:
            self._ready("ledger_for_complaints")
            rows = [
                row for (p, _), row in self._ledger.items() if p == profile and row[2] in wanted
            ]
        rows.sort(key=lambda row: (row[2], row[3], row[4], row[1]))
        return [codec.ledger_from_row(row) for row in rows]

    def ledger_put(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace by ``(profile, key)``; all or nothing."""
        rows = [codec.ledger_row(e) for e in entries]
        with self._lock:
            self._ready("ledger_put")
            for row in rows:
                self._ledger[(row[0], row[1])] = row

    # ------------------------------------------------------------------------ runs

    def start_run(self, run: RunRecord) -> None:
        """Record a run (a repeated ``run_id`` replaces the row, keeping its place)."""
        row = codec.run_row(run)
        with self._lock:
            self._ready("start_run")
            key = (row[0], row[1])
            if key in self._runs:
                seq = self._runs[key][0]
            else:
                self._run_seq += 1
                seq = self._run_seq
            self._runs[key] = (seq, row)

    def finish_run(
        self, profile: str, run_id: str, finished_at: int, status: str, summary: Mapping[str, Any]
    ) -> None:
        """Close a started run; ``StateStoreError`` if no such run."""
        finished, status_text, summary_text = codec.finish_row(
            profile, run_id, finished_at, status, summary
        )
        with self._lock:
            self._ready("finish_run")
            found = self._runs.get((profile, run_id))
            if found is None:
                raise StateStoreError(
                    f"{_WHERE}: finish_run: no run {run_id!r} in profile {profile!r}"
                )
            seq, row = found
            self._runs[(profile, run_id)] = (
                seq,
                (row[0], row[1], row[2], finished, status_text, summary_text),
            )

    # ------------------------------------------------------------------- retention

    def prune(
        self, profile: str, *, closed_before: int | None, runs_before: int | None
    ) -> PruneCounts:
        """Forget old closed complaints (with their finished ledger entries) and old runs;
        see ``StateStore.prune``. All or nothing."""
        with self._lock:
            self._ready("prune")
            complaints: list[tuple[str, str]] = []
            entries: list[tuple[str, str]] = []
            if closed_before is not None:
                old = {
                    cid
                    for (p, cid), row in self._complaints.items()
                    if p == profile and row[7] is not None and row[7] < closed_before
                }
                by_complaint: dict[str, list[tuple[str, str]]] = {}
                busy: set[str] = set()
                for (p, key), row in self._ledger.items():
                    if p == profile and row[2] in old:
                        by_complaint.setdefault(row[2], []).append((p, key))
                        if row[6] in ("planned", "done"):
                            busy.add(row[2])
                for cid in sorted(old - busy):
                    complaints.append((profile, cid))
                    entries.extend(by_complaint.get(cid, ()))
                entries.extend(  # of complaints deleted in the CRM
                    (p, key)
                    for (p, key), row in self._ledger.items()
                    if p == profile and row[6] != "planned" and (p, row[2]) not in self._complaints
                )
            runs: list[tuple[str, str]] = []
            if runs_before is not None:
                mine = [
                    (seq, key, row) for key, (seq, row) in self._runs.items() if key[0] == profile
                ]
                newest = max(mine, key=lambda item: (item[2][2], item[0]), default=None)
                runs = [
                    key
                    for seq, key, row in mine
                    if row[2] < runs_before and (seq, key, row) != newest
                ]
            for complaint_key in complaints:
                del self._complaints[complaint_key]
            for ledger_key in entries:
                del self._ledger[ledger_key]
            for run_key in runs:
                del self._runs[run_key]
            return PruneCounts(len(complaints), len(entries), len(runs))

    def close(self) -> None:
        """Forget nothing, but refuse further calls. Idempotent."""
        with self._lock:
            self._closed = True

    # --------------------------------------------- archive witness (ArchiveWitness)

    def get_witness(self, profile: str) -> ChainHead | None:
        """The archive head last recorded for the profile, or None."""
        with self._lock:
            self._ready("get_witness")
            row = self._witnesses.get(profile)
        return None if row is None else ChainHead(row[0], row[1], row[2])

    def put_witness(self, head: ChainHead, recorded_at: int) -> None:
        """Record the head, only ever forward (see ``StateStore.put_witness``)."""
        row = codec.witness_row(head, recorded_at)
        with self._lock:
            self._ready("put_witness")
            current = self._witnesses.get(row[0])
            if codec.witness_moves(None if current is None else current[1:3], row, _WHERE):
                self._witnesses[row[0]] = row

    # ----------------------------------------------- read models (PopulationReader)

    def population(self, profile: str) -> Population:
        """Open complaints counted by flags status and by clock state."""
        with self._lock:
            self._ready("population")
            rows = [row for (p, _), row in self._complaints.items() if p == profile and not row[6]]
        by_status: dict[str, int] = {}
        by_clock: dict[tuple[str, str], int] = {}
        for row in rows:
            status = codec.decode_json(row[3]).get("status")
            if isinstance(status, str):
                by_status[status] = by_status.get(status, 0) + 1
            for clock, state in codec.decode_json(row[8]).items():
                by_clock[(clock, state)] = by_clock.get((clock, state), 0) + 1
        return Population(by_status, by_clock)

    def failed_follow_ups(self, profile: str) -> list[LedgerEntry]:
        """Failed entries of complaints the store holds, by (complaint_id, key)."""
        with self._lock:
            self._ready("failed_follow_ups")
            rows = [
                row
                for (p, _), row in self._ledger.items()
                if p == profile and row[6] == "failed" and (p, row[2]) in self._complaints
            ]
        rows.sort(key=lambda row: (row[2].encode(), row[1].encode()))
        return [codec.ledger_from_row(row) for row in rows]

    def complaints_page(self, profile: str, after: str, limit: int) -> list[StoredComplaint]:
        """Up to ``limit`` complaints with ``id > after``, in id order."""
        with self._lock:
            self._ready("complaints_page")
            rows = [
                row
                for (p, cid), row in self._complaints.items()
                if p == profile and cid.encode() > after.encode()
            ]
        rows.sort(key=lambda row: row[1].encode())
        return [codec.complaint_from_row(row) for row in rows[:limit]]

    def known_profiles(self) -> list[str]:
        """Profiles with a state or a run, sorted."""
        with self._lock:
            self._ready("known_profiles")
            return sorted(set(self._profiles) | {p for p, _ in self._runs})

    # ------------------------------------------------------------- test inspection

    def recorded_runs(self, profile: str) -> list[RunRecord]:
        """The profile's runs, newest ``started_at`` first (ties: last started first). For
        tests only: no port reads the run history back (the sync writes it for operators,
        retention and ``known_profiles``)."""
        with self._lock:
            self._ready("recorded_runs")
            runs = [(seq, row) for (p, _), (seq, row) in self._runs.items() if p == profile]
        runs.sort(key=lambda item: (item[1][2], item[0]), reverse=True)
        return [codec.run_from_row(row) for _, row in runs]
