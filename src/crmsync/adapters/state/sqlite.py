"""The state ports (``StateStore``, ``PopulationReader``, ``ArchiveWitness``) on a SQLite
file: the embedded default.

One connection per store, in WAL mode with a busy timeout, so several processes may share
the file: readers never block the writer, writers queue for up to ``busy_timeout``
seconds. Every method is one transaction (writes ``BEGIN IMMEDIATE``, reads a deferred
``BEGIN`` for a consistent snapshot across batches). Key lists are sent in batches below
SQLite's bound-variable limit. A store object may be shared by threads (calls are
serialised). ``sqlite3`` errors become ``StateStoreError`` naming the file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from crmsync.adapters.state import codec
from crmsync.adapters.state.migrations import migrate_sqlite
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
from crmsync.private_file import create_private_file

T = TypeVar("T")

# The store holds every connection to SQLite's historic bound-variable limit (999; builds
# since 3.32 allow 32766), so it behaves alike on every build and key lists are always
# sent in batches below it.
_MAX_VARIABLES = 999
_BATCH = 500

_COMPLAINT_COLUMNS = (
    "profile, id, canonical, flags, next_check, source_hash, closed, closed_at, clock_states, "
    "evaluated_at"
)
_PROFILE_COLUMNS = "profile, follow_up_since, horizon, charter_hash, mapping_hash, updated_at"
_LEDGER_COLUMNS = (
    "profile, key, complaint_id, clock, occurrence, state, status, crm_id, error, updated_at"
)
_RUN_COLUMNS = "profile, run_id, started_at, finished_at, status, summary"


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqliteStateStore:
    """The state store in one SQLite file (created with its folder if missing), a
    ``StateDatabase``.

    Call ``migrate()`` before anything else. Raises ``StateStoreError`` if the file
    cannot be opened, on any database error, and after ``close()``.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self._path = Path(path)
        self._where = f"state store {self._path}"
        self._lock = threading.Lock()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            create_private_file(self._path)  # 0600, like the archive's files
            conn = sqlite3.connect(
                self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"{self._where}: cannot open: {exc}") from exc
        try:
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, _MAX_VARIABLES)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            conn.close()
            raise StateStoreError(f"{self._where}: cannot open: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # ---------------------------------------------------------------- transactions

    def _transaction(self, what: str, begin: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StateStoreError(f"{self._where}: {what}: the store is closed")
            try:
                conn.execute(begin)
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    hint = " (was migrate() run?)" if "no such table" in str(exc) else ""
                    raise StateStoreError(f"{self._where}: {what} failed: {exc}{hint}") from exc
                raise
            return result

    def _check_open(self, what: str) -> None:
        if self._conn is None:
            raise StateStoreError(f"{self._where}: {what}: the store is closed")

    def _write(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._transaction(what, "BEGIN IMMEDIATE", work)

    def _read(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._transaction(what, "BEGIN", work)

    # ---------------------------------------------------------------------- schema

    def migrate(self) -> int:
        """Create or upgrade the schema; return the version in force."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StateStoreError(f"{self._where}: migrate: the store is closed")
            try:
                return migrate_sqlite(conn, self._where)
            except sqlite3.Error as exc:
                raise StateStoreError(f"{self._where}: migrate failed: {exc}") from exc

    # ------------------------------------------------------------------ watermarks

    def get_watermark(self, profile: str, name: str) -> datetime | None:
        """The watermark, an aware UTC datetime, or None if never set."""

        def work(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute(
                "SELECT value_us FROM watermarks WHERE profile = ? AND name = ?", (profile, name)
            ).fetchone()
            return None if row is None else codec.from_micros(int(row[0]))

        return self._read("get_watermark", work)

    def set_watermark(self, profile: str, name: str, value: datetime) -> None:
        """Set the watermark (aware datetime, kept to the microsecond)."""
        where = f"watermark {profile!r}/{name!r}"
        params = (
            codec.check_text(profile, f"{where}: profile"),
            codec.check_text(name, f"{where}: name"),
            codec.to_micros(codec.check_aware(value, where)),
        )

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO watermarks (profile, name, value_us) VALUES (?, ?, ?) "
                "ON CONFLICT (profile, name) DO UPDATE SET value_us = excluded.value_us",
                params,
            )

        self._write("set_watermark", work)

    # ------------------------------------------------------------------ complaints

    def put_complaints(self, items: Sequence[StoredComplaint]) -> None:
        """Insert or replace by ``(profile, id)``; all or nothing."""
        rows = [codec.complaint_row(c) for c in codec.last_wins(items, lambda c: (c.profile, c.id))]
        if not rows:
            self._check_open("put_complaints")
            return

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT INTO complaints ({_COMPLAINT_COLUMNS}) VALUES ({_marks(10)}) "
                "ON CONFLICT (profile, id) DO UPDATE SET canonical = excluded.canonical, "
                "flags = excluded.flags, next_check = excluded.next_check, "
                "source_hash = excluded.source_hash, closed = excluded.closed, "
                "closed_at = excluded.closed_at, clock_states = excluded.clock_states, "
                "evaluated_at = excluded.evaluated_at",
                rows,
            )

        self._write("put_complaints", work)

    def get_complaints(self, profile: str, ids: Sequence[str]) -> dict[str, StoredComplaint]:
        """The stored complaints among ``ids``, by id (unknown ids are left out); batched
        under SQLite's variable limit, one snapshot."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            self._check_open("get_complaints")
            return {}

        def work(conn: sqlite3.Connection) -> dict[str, StoredComplaint]:
            found: dict[str, StoredComplaint] = {}
            for batch in codec.chunks(wanted, _BATCH):
                cursor = conn.execute(
                    f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                    f"WHERE profile = ? AND id IN ({_marks(len(batch))})",
                    (profile, *batch),
                )
                for row in cursor:
                    found[row[1]] = codec.complaint_from_row(row)
            return found

        return self._read("get_complaints", work)

    def due_complaints(self, profile: str, until: int) -> list[StoredComplaint]:
        """Complaints with ``next_check <= until`` (None never due), by next_check then id."""

        def work(conn: sqlite3.Connection) -> list[StoredComplaint]:
            cursor = conn.execute(
                f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                "WHERE profile = ? AND next_check IS NOT NULL AND next_check <= ? "
                "ORDER BY next_check, id",
                (profile, until),
            )
            return [codec.complaint_from_row(row) for row in cursor]

        return self._read("due_complaints", work)

    def stale_complaints(self, profile: str, now: int) -> list[StoredComplaint]:
        """Complaints last evaluated after ``now`` or with ``evaluated_at`` NULL, by id."""

        def work(conn: sqlite3.Connection) -> list[StoredComplaint]:
            # Two index ranges, sorted here: one query with OR and ORDER BY id walks every
            # complaint of the profile in id order, on every cycle (Python's str order is
            # SQLite's BINARY order of UTF-8 text).
            rows = conn.execute(
                f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                "WHERE profile = ? AND evaluated_at IS NULL",
                (profile,),
            ).fetchall()
            rows += conn.execute(
                f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                "WHERE profile = ? AND evaluated_at > ?",
                (profile, now),
            ).fetchall()
            rows.sort(key=lambda row: row[1])
            return [codec.complaint_from_row(row) for row in rows]

        return self._read("stale_complaints", work)

    def get_profile(self, profile: str) -> ProfileState | None:
        """The profile's state, or None before its first cycle."""

        def work(conn: sqlite3.Connection) -> ProfileState | None:
            row = conn.execute(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE profile = ?", (profile,)
            ).fetchone()
            return None if row is None else codec.profile_from_row(row)

        return self._read("get_profile", work)

    def put_profile(self, state: ProfileState, *, reevaluate_open: bool = False) -> None:
        """Insert or replace the profile's state; optionally mark its open complaints for
        evaluation at the next cycle, in the same transaction."""
        row = codec.profile_row(state)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO profiles ({_PROFILE_COLUMNS}) VALUES ({_marks(6)}) "
                "ON CONFLICT (profile) DO UPDATE SET follow_up_since = excluded.follow_up_since, "
                "horizon = excluded.horizon, charter_hash = excluded.charter_hash, "
                "mapping_hash = excluded.mapping_hash, updated_at = excluded.updated_at",
                row,
            )
            if reevaluate_open:
                conn.execute(
                    "UPDATE complaints SET evaluated_at = NULL WHERE profile = ? AND closed = 0",
                    (row[0],),
                )

        self._write("put_profile", work)

    def next_check(self, profile: str) -> int | None:
        """The earliest ``next_check`` of the profile, or None."""

        def work(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT MIN(next_check) FROM complaints WHERE profile = ?", (profile,)
            ).fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return self._read("next_check", work)

    def delete_complaints(self, profile: str, ids: Sequence[str]) -> None:
        """Delete these complaints (unknown ids are ignored); all or nothing."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            self._check_open("delete_complaints")
            return

        def work(conn: sqlite3.Connection) -> None:
            for batch in codec.chunks(wanted, _BATCH):
                conn.execute(
                    f"DELETE FROM complaints WHERE profile = ? AND id IN ({_marks(len(batch))})",
                    (profile, *batch),
                )

        self._write("delete_complaints", work)

    # ---------------------------------------------------------------------- ledger

    def ledger_for_complaints(
        self, profile: str, complaint_ids: Sequence[str]
    ) -> list[LedgerEntry]:
        """Every entry of these complaints, by (complaint_id, clock, occurrence, key)."""
        wanted = list(dict.fromkeys(complaint_ids))

        def work(conn: sqlite3.Connection) -> list[LedgerEntry]:
            found: list[LedgerEntry] = []
            for batch in codec.chunks(wanted, _BATCH):
                cursor = conn.execute(
                    f"SELECT {_LEDGER_COLUMNS} FROM ledger "
                    f"WHERE profile = ? AND complaint_id IN ({_marks(len(batch))})",
                    (profile, *batch),
                )
                found.extend(codec.ledger_from_row(row) for row in cursor)
            found.sort(key=lambda e: (e.complaint_id, e.clock, e.occurrence, e.key))
            return found

        if not wanted:
            self._check_open("ledger_for_complaints")
            return []
        return self._read("ledger_for_complaints", work)

    def ledger_put(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace by ``(profile, key)``; all or nothing."""
        rows = [codec.ledger_row(e) for e in codec.last_wins(entries, lambda e: (e.profile, e.key))]
        if not rows:
            self._check_open("ledger_put")
            return

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT INTO ledger ({_LEDGER_COLUMNS}) VALUES ({_marks(10)}) "
                "ON CONFLICT (profile, key) DO UPDATE SET complaint_id = excluded.complaint_id, "
                "clock = excluded.clock, occurrence = excluded.occurrence, "
                "state = excluded.state, status = excluded.status, crm_id = excluded.crm_id, "
                "error = excluded.error, updated_at = excluded.updated_at",
                rows,
            )

        self._write("ledger_put", work)

    # ------------------------------------------------------------------------ runs

    def start_run(self, run: RunRecord) -> None:
        """Record a run (a repeated ``run_id`` replaces the row, keeping its place)."""
        row = codec.run_row(run)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(6)}) "
                "ON CONFLICT (profile, run_id) DO UPDATE SET started_at = excluded.started_at, "
                "finished_at = excluded.finished_at, status = excluded.status, "
                "summary = excluded.summary",
                row,
            )

        self._write("start_run", work)

    def finish_run(
        self, profile: str, run_id: str, finished_at: int, status: str, summary: Mapping[str, Any]
    ) -> None:
        """Close a started run; ``StateStoreError`` if no such run."""
        values = codec.finish_row(profile, run_id, finished_at, status, summary)

        def work(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? "
                "WHERE profile = ? AND run_id = ?",
                (*values, profile, run_id),
            )
            if cursor.rowcount == 0:
                raise StateStoreError(
                    f"{self._where}: finish_run: no run {run_id!r} in profile {profile!r}"
                )

        self._write("finish_run", work)

    # ------------------------------------------------------------------- retention

    def prune(
        self, profile: str, *, closed_before: int | None, runs_before: int | None
    ) -> PruneCounts:
        """Forget old closed complaints (with their finished ledger entries) and old runs;
        see ``StateStore.prune``. One transaction."""
        forgettable = (
            "SELECT c.id FROM complaints AS c WHERE c.profile = :p "
            "AND c.closed_at IS NOT NULL AND c.closed_at < :before AND NOT EXISTS ("
            "SELECT 1 FROM ledger AS l WHERE l.profile = c.profile AND l.complaint_id = c.id "
            "AND l.status IN ('planned', 'done'))"
        )

        def work(conn: sqlite3.Connection) -> PruneCounts:
            complaints = entries = runs = 0
            if closed_before is not None:
                params = {"p": profile, "before": closed_before}
                entries = conn.execute(
                    f"DELETE FROM ledger WHERE profile = :p AND complaint_id IN ({forgettable})",
                    params,
                ).rowcount
                complaints = conn.execute(
                    f"DELETE FROM complaints WHERE profile = :p AND id IN ({forgettable})",
                    params,
                ).rowcount
                entries += conn.execute(  # of complaints deleted in the CRM
                    "DELETE FROM ledger AS l WHERE l.profile = :p AND l.status <> 'planned' "
                    "AND NOT EXISTS (SELECT 1 FROM complaints AS c WHERE c.profile = l.profile "
                    "AND c.id = l.complaint_id)",
                    {"p": profile},
                ).rowcount
            if runs_before is not None:
                runs = conn.execute(
                    "DELETE FROM runs WHERE profile = :p AND started_at < :before "
                    "AND rowid <> (SELECT rowid FROM runs WHERE profile = :p "
                    "ORDER BY started_at DESC, rowid DESC LIMIT 1)",
                    {"p": profile, "before": runs_before},
                ).rowcount
            return PruneCounts(complaints, entries, runs)

        return self._write("prune", work)

    def close(self) -> None:
        """Close the connection; later calls raise ``StateStoreError``. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --------------------------------------------- archive witness (ArchiveWitness)

    def get_witness(self, profile: str) -> ChainHead | None:
        """The archive head last recorded for the profile, or None."""

        def work(conn: sqlite3.Connection) -> ChainHead | None:
            row = conn.execute(
                "SELECT seq, entry_hash FROM archive_witness WHERE profile = ?", (profile,)
            ).fetchone()
            return None if row is None else ChainHead(profile, int(row[0]), str(row[1]))

        return self._read("get_witness", work)

    def put_witness(self, head: ChainHead, recorded_at: int) -> None:
        """Record the head, only ever forward (see ``StateStore.put_witness``)."""
        row = codec.witness_row(head, recorded_at)

        def work(conn: sqlite3.Connection) -> None:
            current = conn.execute(
                "SELECT seq, entry_hash FROM archive_witness WHERE profile = ?", (row[0],)
            ).fetchone()
            if codec.witness_moves(None if current is None else tuple(current), row, self._where):
                conn.execute(
                    "INSERT INTO archive_witness (profile, seq, entry_hash, recorded_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (profile) DO UPDATE SET seq = excluded.seq, "
                    "entry_hash = excluded.entry_hash, recorded_at = excluded.recorded_at",
                    row,
                )

        self._write("put_witness", work)

    # ----------------------------------------------- read models (PopulationReader)

    def complaints_page(self, profile: str, after: str, limit: int) -> list[StoredComplaint]:
        """Up to ``limit`` complaints with ``id > after``, in id order (SQLite's BINARY)."""

        def work(conn: sqlite3.Connection) -> list[StoredComplaint]:
            cursor = conn.execute(
                f"SELECT {_COMPLAINT_COLUMNS} FROM complaints "
                "WHERE profile = ? AND id > ? ORDER BY id LIMIT ?",
                (profile, after, limit),
            )
            return [codec.complaint_from_row(row) for row in cursor]

        return self._read("complaints_page", work)

    def failed_follow_ups(self, profile: str) -> list[LedgerEntry]:
        """Failed entries of complaints the store holds, by (complaint_id, key)."""

        def work(conn: sqlite3.Connection) -> list[LedgerEntry]:
            cursor = conn.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM ledger AS l "
                "WHERE l.profile = ? AND l.status = 'failed' AND EXISTS "
                "(SELECT 1 FROM complaints AS c WHERE c.profile = l.profile "
                "AND c.id = l.complaint_id) ORDER BY l.complaint_id, l.key",
                (profile,),
            )
            return [codec.ledger_from_row(row) for row in cursor]

        return self._read("failed_follow_ups", work)

    def known_profiles(self) -> list[str]:
        """Profiles with a state or a run, sorted."""

        def work(conn: sqlite3.Connection) -> list[str]:
            cursor = conn.execute(
                "SELECT profile FROM profiles UNION SELECT profile FROM runs ORDER BY 1"
            )
            return [str(row[0]) for row in cursor]

        return self._read("known_profiles", work)

    def population(self, profile: str) -> Population:
        """Open complaints counted by flags status and by clock state; one snapshot."""

        def work(conn: sqlite3.Connection) -> Population:
            by_status = {
                str(status): int(n)
                for status, n in conn.execute(
                    "SELECT json_extract(flags, '$.status') AS status, COUNT(*) FROM complaints "
                    "WHERE profile = ? AND closed = 0 AND json_type(flags, '$.status') = 'text' "
                    "GROUP BY status",
                    (profile,),
                )
            }
            by_clock = {
                (str(clock), str(state)): int(n)
                for clock, state, n in conn.execute(
                    "SELECT s.key, s.value, COUNT(*) FROM complaints AS c, "
                    "json_each(c.clock_states) AS s WHERE c.profile = ? AND c.closed = 0 "
                    "GROUP BY s.key, s.value",
                    (profile,),
                )
            }
            return Population(by_status, by_clock)

        return self._read("population", work)
