"""The state ports (``StateStore``, ``PopulationReader``, ``ArchiveWitness``) on PostgreSQL
(psycopg 3): for several worker replicas sharing a server.

One connection per store, autocommit off; every method runs as one transaction, committed
at its end and rolled back on any error. If the connection turns out to be dropped (server
restart, idle kill, network cut) the store reconnects once and runs the method again:
every write is an idempotent upsert, so a repeat is harmless even if the lost transaction
had committed. Tables live in one schema (``crmsync`` unless told); JSON columns are
JSONB; bulk writes send whole columns as arrays (``unnest``), key lists go as one array
(``= ANY(%s)``). Errors become ``StateStoreError``; the URL's password never appears in a
message or log line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from crmsync.adapters._postgres_session import PostgresSession
from crmsync.adapters.state import codec
from crmsync.adapters.state.migrations import migrate_postgres
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

# Rows per INSERT ... SELECT FROM unnest(...) and keys per = ANY(...) array.
_BATCH = 10_000

_PRIMARY_KEYS = {"complaints": "profile, id", "ledger": "profile, key"}

_COMPLAINT_SELECT = (
    "SELECT profile, id, canonical::text, flags::text, next_check, source_hash, closed, "
    "closed_at, clock_states::text, evaluated_at FROM {s}.complaints"
)
_PROFILE_COLUMNS = "profile, follow_up_since, horizon, charter_hash, mapping_hash, updated_at"
_LEDGER_SELECT = (
    "SELECT profile, key, complaint_id, clock, occurrence, state, status, crm_id, error, "
    "updated_at FROM {s}.ledger"
)


class PostgresStateStore:
    """The state store in schema ``schema`` of the database at ``url``, a
    ``StateDatabase``.

    Connects at construction (``StateStoreError`` if it cannot). Call ``migrate()``
    before anything else. A store object may be shared by threads (calls are serialised).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "crmsync",
        connect_timeout: int = 10,
        application_name: str = "crmsync",
    ) -> None:
        self._session = PostgresSession(
            url,
            schema=schema,
            kind="state store",
            error=StateStoreError,
            connect_timeout=connect_timeout,
            application_name=application_name,
            hint=_hint,
        )
        self._where = self._session.where
        self._schema = schema
        self._q = self._session.q
        self._run = self._session.run

    @property
    def schema(self) -> str:
        """The schema holding the tables."""
        return self._schema

    def _upsert(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        columns: str,
        updates: str,
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        """Insert or update ``rows`` (unique by the table's primary key) in ``table``.

        COPY into a temporary table dropped at commit, then one ``INSERT ... SELECT ...
        ON CONFLICT DO UPDATE``: far faster than row-by-row statements for large batches.
        """
        stage = sql.Identifier(f"crmsync_stage_{table}")
        target = sql.SQL("{}.{}").format(self._session.ident, sql.Identifier(table))
        column_list = sql.SQL(columns)
        assignments = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name.strip()))
            for name in updates.split(",")
        )
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(stage, target)
            )
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, column_list)) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage} "
                    "ON CONFLICT ({key}) DO UPDATE SET {assignments}"
                ).format(
                    target=target,
                    columns=column_list,
                    stage=stage,
                    key=sql.SQL(_PRIMARY_KEYS[table]),
                    assignments=assignments,
                )
            )

    def _check_open(self, what: str) -> None:
        self._session.check_open(what)

    # ------------------------------------------------------------------ schema

    def migrate(self) -> int:
        """Create or upgrade the schema under an advisory lock; return the version."""
        return self._run("migrate", lambda conn: migrate_postgres(conn, self._schema, self._where))

    # -------------------------------------------------------------- watermarks

    def get_watermark(self, profile: str, name: str) -> datetime | None:
        """The watermark, an aware UTC datetime, or None if never set."""

        def work(conn: psycopg.Connection[Any]) -> datetime | None:
            row = conn.execute(
                self._q("SELECT value FROM {s}.watermarks WHERE profile = %s AND name = %s"),
                (profile, name),
            ).fetchone()
            return None if row is None else row[0].astimezone(UTC)

        return self._run("get_watermark", work)

    def set_watermark(self, profile: str, name: str, value: datetime) -> None:
        """Set the watermark (aware datetime, kept to the microsecond)."""
        where = f"watermark {profile!r}/{name!r}"
        params = (
            codec.check_text(profile, f"{where}: profile"),
            codec.check_text(name, f"{where}: name"),
            codec.check_aware(value, where),
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                self._q(
                    "INSERT INTO {s}.watermarks (profile, name, value) VALUES (%s, %s, %s) "
                    "ON CONFLICT (profile, name) DO UPDATE SET value = EXCLUDED.value"
                ),
                params,
            )

        self._run("set_watermark", work)

    # -------------------------------------------------------------- complaints

    def put_complaints(self, items: Sequence[StoredComplaint]) -> None:
        """Insert or replace by ``(profile, id)``; all or nothing."""
        rows = [codec.complaint_row(c) for c in codec.last_wins(items, lambda c: (c.profile, c.id))]
        if not rows:
            self._check_open("put_complaints")
            return
        columns = (
            "profile, id, canonical, flags, next_check, source_hash, closed, closed_at, "
            "clock_states, evaluated_at"
        )
        updates = (
            "canonical, flags, next_check, source_hash, closed, closed_at, clock_states, "
            "evaluated_at"
        )
        self._run(
            "put_complaints", lambda conn: self._upsert(conn, "complaints", columns, updates, rows)
        )

    def get_complaints(self, profile: str, ids: Sequence[str]) -> dict[str, StoredComplaint]:
        """The stored complaints among ``ids``, by id (unknown ids are left out)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            self._check_open("get_complaints")
            return {}
        query = self._q(_COMPLAINT_SELECT + " WHERE profile = %s AND id = ANY(%s::text[])")

        def work(conn: psycopg.Connection[Any]) -> dict[str, StoredComplaint]:
            found: dict[str, StoredComplaint] = {}
            for batch in codec.chunks(wanted, _BATCH):
                for row in conn.execute(query, (profile, list(batch))):
                    found[row[1]] = codec.complaint_from_row(row)
            return found

        return self._run("get_complaints", work)

    def due_complaints(self, profile: str, until: int) -> list[StoredComplaint]:
        """Complaints with ``next_check <= until`` (None never due), by next_check then id."""
        query = self._q(
            _COMPLAINT_SELECT + " WHERE profile = %s AND next_check <= %s "
            'ORDER BY next_check, id COLLATE "C"'
        )

        def work(conn: psycopg.Connection[Any]) -> list[StoredComplaint]:
            return [codec.complaint_from_row(row) for row in conn.execute(query, (profile, until))]

        return self._run("due_complaints", work)

    def stale_complaints(self, profile: str, now: int) -> list[StoredComplaint]:
        """Complaints last evaluated after ``now`` or with ``evaluated_at`` NULL, by id."""
        query = self._q(
            _COMPLAINT_SELECT + " WHERE profile = %s AND (evaluated_at IS NULL OR "
            'evaluated_at > %s) ORDER BY id COLLATE "C"'
        )

        def work(conn: psycopg.Connection[Any]) -> list[StoredComplaint]:
            return [codec.complaint_from_row(row) for row in conn.execute(query, (profile, now))]

        return self._run("stale_complaints", work)

    def get_profile(self, profile: str) -> ProfileState | None:
        """The profile's state, or None before its first cycle."""
        query = self._q(f"SELECT {_PROFILE_COLUMNS} FROM {{s}}.profiles WHERE profile = %s")

        def work(conn: psycopg.Connection[Any]) -> ProfileState | None:
            row = conn.execute(query, (profile,)).fetchone()
            return None if row is None else codec.profile_from_row(row)

        return self._run("get_profile", work)

    def put_profile(self, state: ProfileState, *, reevaluate_open: bool = False) -> None:
        """Insert or replace the profile's state; optionally mark its open complaints for
        evaluation at the next cycle, in the same transaction."""
        row = codec.profile_row(state)
        upsert = self._q(
            f"INSERT INTO {{s}}.profiles ({_PROFILE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (profile) DO UPDATE SET follow_up_since = EXCLUDED.follow_up_since, "
            "horizon = EXCLUDED.horizon, charter_hash = EXCLUDED.charter_hash, "
            "mapping_hash = EXCLUDED.mapping_hash, updated_at = EXCLUDED.updated_at"
        )
        mark = self._q(
            "UPDATE {s}.complaints SET evaluated_at = NULL WHERE profile = %s AND NOT closed"
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(upsert, row)
            if reevaluate_open:
                conn.execute(mark, (row[0],))

        self._run("put_profile", work)

    def next_check(self, profile: str) -> int | None:
        """The earliest ``next_check`` of the profile, or None."""

        def work(conn: psycopg.Connection[Any]) -> int | None:
            row = conn.execute(
                self._q("SELECT MIN(next_check) FROM {s}.complaints WHERE profile = %s"),
                (profile,),
            ).fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return self._run("next_check", work)

    def delete_complaints(self, profile: str, ids: Sequence[str]) -> None:
        """Delete these complaints (unknown ids are ignored); all or nothing."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            self._check_open("delete_complaints")
            return
        query = self._q("DELETE FROM {s}.complaints WHERE profile = %s AND id = ANY(%s::text[])")

        def work(conn: psycopg.Connection[Any]) -> None:
            for batch in codec.chunks(wanted, _BATCH):
                conn.execute(query, (profile, list(batch)))

        self._run("delete_complaints", work)

    # ------------------------------------------------------------------ ledger

    def ledger_for_complaints(
        self, profile: str, complaint_ids: Sequence[str]
    ) -> list[LedgerEntry]:
        """Every entry of these complaints, by (complaint_id, clock, occurrence, key)."""
        wanted = list(dict.fromkeys(complaint_ids))
        if not wanted:
            self._check_open("ledger_for_complaints")
            return []
        query = self._q(
            _LEDGER_SELECT + " WHERE profile = %s AND complaint_id = ANY(%s::text[]) "
            'ORDER BY complaint_id COLLATE "C", clock COLLATE "C", occurrence, key COLLATE "C"'
        )

        def work(conn: psycopg.Connection[Any]) -> list[LedgerEntry]:
            return [codec.ledger_from_row(row) for row in conn.execute(query, (profile, wanted))]

        return self._run("ledger_for_complaints", work)

    def ledger_put(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace by ``(profile, key)``; all or nothing."""
        rows = [codec.ledger_row(e) for e in codec.last_wins(entries, lambda e: (e.profile, e.key))]
        if not rows:
            self._check_open("ledger_put")
            return
        columns = (
            "profile, key, complaint_id, clock, occurrence, state, status, crm_id, error, "
            "updated_at"
        )
        updates = "complaint_id, clock, occurrence, state, status, crm_id, error, updated_at"
        self._run("ledger_put", lambda conn: self._upsert(conn, "ledger", columns, updates, rows))

    # -------------------------------------------------------------------- runs

    def start_run(self, run: RunRecord) -> None:
        """Record a run (a repeated ``run_id`` replaces the row, keeping its place)."""
        row = codec.run_row(run)
        query = self._q(
            "INSERT INTO {s}.runs (profile, run_id, started_at, finished_at, status, summary) "
            "VALUES (%s, %s, %s, %s, %s, %s::jsonb) "
            "ON CONFLICT (profile, run_id) DO UPDATE SET started_at = EXCLUDED.started_at, "
            "finished_at = EXCLUDED.finished_at, status = EXCLUDED.status, "
            "summary = EXCLUDED.summary"
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(query, row)

        self._run("start_run", work)

    def finish_run(
        self, profile: str, run_id: str, finished_at: int, status: str, summary: Mapping[str, Any]
    ) -> None:
        """Close a started run; ``StateStoreError`` if no such run."""
        values = codec.finish_row(profile, run_id, finished_at, status, summary)
        query = self._q(
            "UPDATE {s}.runs SET finished_at = %s, status = %s, summary = %s::jsonb "
            "WHERE profile = %s AND run_id = %s"
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            if conn.execute(query, (*values, profile, run_id)).rowcount == 0:
                raise StateStoreError(
                    f"{self._where}: finish_run: no run {run_id!r} in profile {profile!r}"
                )

        self._run("finish_run", work)

    # -------------------------------------------------------------- retention

    def prune(
        self, profile: str, *, closed_before: int | None, runs_before: int | None
    ) -> PruneCounts:
        """Forget old closed complaints (with their finished ledger entries) and old runs;
        see ``StateStore.prune``. One transaction."""
        forgettable = (
            "SELECT c.id FROM {s}.complaints AS c WHERE c.profile = %(p)s "
            "AND c.closed_at < %(before)s AND NOT EXISTS ("
            "SELECT 1 FROM {s}.ledger AS l WHERE l.profile = c.profile "
            "AND l.complaint_id = c.id AND l.status IN ('planned', 'done'))"
        )
        ledger = self._q(
            f"DELETE FROM {{s}}.ledger WHERE profile = %(p)s AND complaint_id IN ({forgettable})"
        )
        complaints = self._q(
            f"DELETE FROM {{s}}.complaints WHERE profile = %(p)s AND id IN ({forgettable})"
        )
        orphans = self._q(  # ledger entries of complaints deleted in the CRM
            "DELETE FROM {s}.ledger AS l WHERE l.profile = %(p)s AND l.status <> 'planned' "
            "AND NOT EXISTS (SELECT 1 FROM {s}.complaints AS c WHERE c.profile = l.profile "
            "AND c.id = l.complaint_id)"
        )
        runs = self._q(
            "DELETE FROM {s}.runs WHERE profile = %(p)s AND started_at < %(before)s "
            "AND seq <> (SELECT seq FROM {s}.runs WHERE profile = %(p)s "
            "ORDER BY started_at DESC, seq DESC LIMIT 1)"
        )

        def work(conn: psycopg.Connection[Any]) -> PruneCounts:
            entries = forgotten = old_runs = 0
            if closed_before is not None:
                params = {"p": profile, "before": closed_before}
                entries = conn.execute(ledger, params).rowcount
                forgotten = conn.execute(complaints, params).rowcount
                entries += conn.execute(orphans, params).rowcount
            if runs_before is not None:
                old_runs = conn.execute(runs, {"p": profile, "before": runs_before}).rowcount
            return PruneCounts(forgotten, entries, old_runs)

        return self._run("prune", work)

    def close(self) -> None:
        """Close the connection; later calls raise ``StateStoreError``. Idempotent."""
        self._session.close()

    # --------------------------------------------- archive witness (ArchiveWitness)

    def get_witness(self, profile: str) -> ChainHead | None:
        """The archive head last recorded for the profile, or None."""
        query = self._q("SELECT seq, entry_hash FROM {s}.archive_witness WHERE profile = %s")

        def work(conn: psycopg.Connection[Any]) -> ChainHead | None:
            row = conn.execute(query, (profile,)).fetchone()
            return None if row is None else ChainHead(profile, int(row[0]), str(row[1]))

        return self._run("get_witness", work)

    def put_witness(self, head: ChainHead, recorded_at: int) -> None:
        """Record the head, only ever forward (see ``StateStore.put_witness``); replicas
        writing at once are serialised by the row lock."""
        row = codec.witness_row(head, recorded_at)
        insert = self._q(
            "INSERT INTO {s}.archive_witness (profile, seq, entry_hash, recorded_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (profile) DO NOTHING"
        )
        select = self._q(
            "SELECT seq, entry_hash FROM {s}.archive_witness WHERE profile = %s FOR UPDATE"
        )
        update = self._q(
            "UPDATE {s}.archive_witness SET seq = %s, entry_hash = %s, recorded_at = %s "
            "WHERE profile = %s"
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            if conn.execute(insert, row).rowcount == 1:
                return
            current = conn.execute(select, (row[0],)).fetchone()
            if codec.witness_moves(None if current is None else tuple(current), row, self._where):
                conn.execute(update, (row[1], row[2], row[3], row[0]))

        self._run("put_witness", work)

    # ----------------------------------------------- read models (PopulationReader)

    def population(self, profile: str) -> Population:
        """Open complaints counted by flags status and by clock state; one snapshot."""
        statuses = self._q(
            "SELECT flags ->> 'status' AS status, COUNT(*) FROM {s}.complaints "
            "WHERE profile = %s AND NOT closed AND jsonb_typeof(flags -> 'status') = 'string' "
            "GROUP BY status"
        )
        clocks = self._q(
            "SELECT s.key, s.value, COUNT(*) FROM {s}.complaints AS c, "
            "jsonb_each_text(c.clock_states) AS s WHERE c.profile = %s AND NOT c.closed "
            "GROUP BY s.key, s.value"
        )

        def work(conn: psycopg.Connection[Any]) -> Population:
            by_status = {str(st): int(n) for st, n in conn.execute(statuses, (profile,))}
            by_clock = {
                (str(clock), str(state)): int(n)
                for clock, state, n in conn.execute(clocks, (profile,))
            }
            return Population(by_status, by_clock)

        return self._run("population", work)

    def failed_follow_ups(self, profile: str) -> list[LedgerEntry]:
        """Failed entries of complaints the store holds, by (complaint_id, key)."""
        query = self._q(
            _LEDGER_SELECT + " AS l WHERE l.profile = %s AND l.status = 'failed' AND EXISTS "
            "(SELECT 1 FROM {s}.complaints AS c WHERE c.profile = l.profile "
            'AND c.id = l.complaint_id) ORDER BY l.complaint_id COLLATE "C", l.key COLLATE "C"'
        )

        def work(conn: psycopg.Connection[Any]) -> list[LedgerEntry]:
            return [codec.ledger_from_row(row) for row in conn.execute(query, (profile,))]

        return self._run("failed_follow_ups", work)

    def complaints_page(self, profile: str, after: str, limit: int) -> list[StoredComplaint]:
        """Up to ``limit`` complaints with ``id > after``, in id order (byte order)."""
        query = self._q(
            _COMPLAINT_SELECT + ' WHERE profile = %s AND id COLLATE "C" > %s '
            'ORDER BY id COLLATE "C" LIMIT %s'
        )

        def work(conn: psycopg.Connection[Any]) -> list[StoredComplaint]:
            rows = conn.execute(query, (profile, after, limit))
            return [codec.complaint_from_row(row) for row in rows]

        return self._run("complaints_page", work)

    def known_profiles(self) -> list[str]:
        """Profiles with a state or a run, sorted."""
        query = self._q(
            'SELECT profile COLLATE "C" FROM {s}.profiles UNION '
            'SELECT profile COLLATE "C" FROM {s}.runs ORDER BY 1'
        )

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            return [str(row[0]) for row in conn.execute(query)]

        return self._run("known_profiles", work)


def _hint(exc: BaseException) -> str:
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
        return " (was migrate() run?)"
    return ""
