"""The shared job queue of several ``crmsync run`` replicas on PostgreSQL (Procrastinate).

Everything lives in one schema of the state store's database (``crmsync_queue`` unless
told): Procrastinate's own tables (applied here, idempotently, under an advisory lock), the
``schedule`` (per profile and job kind, when it is next due) and the ``runs`` table (one
row per job a replica ran: who, when, how it ended, its counts), which ``crmsync runs``
lists. Errors become ``StateStoreError``; the URL's password never appears in a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from crmsync.adapters._postgres_session import PostgresSession
from crmsync.errors import StateStoreError
from crmsync.ports import RunCounts, RunRow

KINDS = ("sync", "archive", "report", "prune")

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.schedule (
    profile text NOT NULL,
    kind text NOT NULL,
    next_at timestamptz NOT NULL,
    PRIMARY KEY (profile, kind)
);
CREATE TABLE IF NOT EXISTS {s}.runs (
    job_id bigint PRIMARY KEY,
    profile text NOT NULL,
    kind text NOT NULL,
    replica text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    status text NOT NULL,
    records_read integer NOT NULL DEFAULT 0,
    flags_written integer NOT NULL DEFAULT 0,
    tasks_created integer NOT NULL DEFAULT 0,
    tasks_completed integer NOT NULL DEFAULT 0,
    next_due timestamptz,
    error text
);
CREATE INDEX IF NOT EXISTS runs_profile_started ON {s}.runs (profile, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_started ON {s}.runs (started_at DESC);
"""

_RUN_COLUMNS = (
    "profile, kind, replica, started_at, finished_at, status, records_read, flags_written, "
    "tasks_created, tasks_completed, error"
)


class QueueTables:
    """The ``schedule`` and ``runs`` tables and Procrastinate's schema in ``schema`` of the
    database at ``url``; one connection, serialised between threads, reconnecting once."""

    def __init__(self, url: str, *, schema: str, application_name: str = "crmsync") -> None:
        self._session = PostgresSession(
            url,
            schema=schema,
            kind="job queue",
            error=StateStoreError,
            application_name=application_name,
        )
        self.schema = schema
        self._q = self._session.q
        self._dispatch_key = f"crmsync-dispatch:{schema}"

    def close(self) -> None:
        self._session.close()

    def migrate(self) -> None:
        """Create the schema, Procrastinate's tables (unless there) and ours, idempotently,
        under an advisory lock so replicas starting together do it once."""
        from procrastinate.schema import SchemaManager  # noqa: PLC0415 - its SQL only

        procrastinate_sql = SchemaManager.get_schema()
        ident = sql.Identifier(self.schema)

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"crmsync-queue:{self.schema}",)
            )
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            found = conn.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = 'procrastinate_jobs'",
                (self.schema,),
            ).fetchone()
            if found is None:
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
                conn.execute(procrastinate_sql.encode())
            conn.execute(sql.SQL(_TABLES).format(s=ident))

        self._session.run("migrate", work)

    # ------------------------------------------------------------------ runs

    def started(self, job_id: int, profile: str, kind: str, replica: str, at: datetime) -> None:
        """A job began on ``replica``: its row, status ``running``."""
        self._session.run(
            "run_started",
            lambda conn: conn.execute(
                self._q(
                    "INSERT INTO {s}.runs (job_id, profile, kind, replica, started_at, status) "
                    "VALUES (%s, %s, %s, %s, %s, 'running') ON CONFLICT (job_id) DO UPDATE "
                    "SET replica = EXCLUDED.replica, started_at = EXCLUDED.started_at, "
                    "status = 'running', finished_at = NULL"
                ),
                (job_id, profile, kind, replica, at),
            ),
        )

    def finished(
        self,
        job_id: int,
        at: datetime,
        status: str,
        counts: RunCounts,
        *,
        error: str | None = None,
        next_due: datetime | None = None,
    ) -> None:
        """A job ended (``succeeded``, ``failed``, ``busy``, ``handed_back`` ...)."""
        self._session.run(
            "run_finished",
            lambda conn: conn.execute(
                self._q(
                    "UPDATE {s}.runs SET finished_at = %s, status = %s, records_read = %s, "
                    "flags_written = %s, tasks_created = %s, tasks_completed = %s, "
                    "error = %s, next_due = %s WHERE job_id = %s"
                ),
                (
                    at,
                    status,
                    counts.records_read,
                    counts.flags_written,
                    counts.tasks_created,
                    counts.tasks_completed,
                    error,
                    next_due,
                    job_id,
                ),
            ),
        )

    def stalled(self, job_ids: Sequence[int], at: datetime) -> None:
        """Jobs whose replica stopped answering: ``stalled`` (the next dispatch defers
        their work afresh)."""
        if not job_ids:
            return
        self._session.run(
            "runs_stalled",
            lambda conn: conn.execute(
                self._q(
                    "UPDATE {s}.runs SET status = 'stalled', finished_at = %s, "
                    "error = 'the replica stopped answering' "
                    "WHERE job_id = ANY(%s) AND status = 'running'"
                ),
                (at, list(job_ids)),
            ),
        )

    def runs(
        self,
        *,
        profile: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[RunRow]:
        """The recorded jobs, newest first."""
        query = self._q(
            f"SELECT {_RUN_COLUMNS} FROM {{s}}.runs WHERE (%s::text IS NULL OR profile = %s) "
            "AND (%s::text IS NULL OR kind = %s) "
            "AND (%s::timestamptz IS NULL OR started_at >= %s) "
            "ORDER BY started_at DESC, job_id DESC LIMIT %s"
        )

        def work(conn: psycopg.Connection[Any]) -> list[RunRow]:
            there = conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = 'runs'",
                (self.schema,),
            ).fetchone()
            if there is None:
                return []  # no replica has worked this queue yet
            rows = conn.execute(
                query, (profile, profile, kind, kind, since, since, limit)
            ).fetchall()
            return [
                RunRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3].astimezone(UTC),
                    None if r[4] is None else r[4].astimezone(UTC),
                    *r[5:],
                )
                for r in rows
            ]

        return self._session.run("runs", work)

    def last_successes(self, profiles: Sequence[str]) -> dict[str, datetime]:
        """When each profile's last successful sync ended (for the lag gauge)."""

        def work(conn: psycopg.Connection[Any]) -> dict[str, datetime]:
            rows = conn.execute(
                self._q(
                    "SELECT profile, max(finished_at) FROM {s}.runs WHERE kind = 'sync' "
                    "AND status = 'succeeded' AND profile = ANY(%s) GROUP BY profile"
                ),
                (list(profiles),),
            ).fetchall()
            return {r[0]: r[1].astimezone(UTC) for r in rows if r[1] is not None}

        return self._session.run("last_successes", work)

    def queue_depth(self) -> dict[str, int]:
        """Jobs waiting per profile (Procrastinate's ``todo`` jobs)."""

        def work(conn: psycopg.Connection[Any]) -> dict[str, int]:
            rows = conn.execute(
                self._q(
                    "SELECT args->>'profile', count(*) FROM {s}.procrastinate_jobs "
                    "WHERE status = 'todo' GROUP BY 1"
                )
            ).fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        return self._session.run("queue_depth", work)

    # ------------------------------------------------------------------ schedule

    def take_due(
        self, first: dict[tuple[str, str], datetime], now: datetime
    ) -> list[tuple[str, str, datetime]] | None:
        """Under the dispatch lock (None when another replica dispatches now): add the
        ``(profile, kind)`` pairs not scheduled yet at their ``first`` instant, then the
        pairs due at ``now`` among them, with their due instant."""
        keys = list(first)

        def work(conn: psycopg.Connection[Any]) -> list[tuple[str, str, datetime]] | None:
            got = conn.execute(  # held by this session until end_dispatch()
                "SELECT pg_try_advisory_lock(hashtext(%s))", (self._dispatch_key,)
            ).fetchone()
            if got is None or not got[0]:
                return None
            conn.execute(
                self._q(
                    "INSERT INTO {s}.schedule (profile, kind, next_at) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) "
                    "ON CONFLICT (profile, kind) DO NOTHING"
                ),
                ([k[0] for k in keys], [k[1] for k in keys], [first[k] for k in keys]),
            )
            rows = conn.execute(
                self._q(
                    "SELECT s.profile, s.kind, LEAST(s.next_at, COALESCE(("
                    "  SELECT r.next_due FROM {s}.runs r WHERE r.profile = s.profile "
                    "  AND r.kind = 'sync' AND s.kind = 'sync' "
                    "  ORDER BY r.started_at DESC LIMIT 1), s.next_at)) "
                    "FROM {s}.schedule s WHERE s.profile = ANY(%s)"
                ),
                (sorted({k[0] for k in keys}),),
            ).fetchall()
            return [
                (str(r[0]), str(r[1]), r[2].astimezone(UTC))
                for r in rows
                if (r[0], r[1]) in first and r[2] <= now
            ]

        return self._session.run("take_due", work)

    def end_dispatch(self) -> None:
        """Give back the dispatch lock ``take_due`` took (call once after each ``take_due``
        that returned a list; a session that died took the lock with it)."""
        self._session.run(
            "end_dispatch",
            lambda conn: conn.execute(
                "SELECT pg_advisory_unlock(hashtext(%s))", (self._dispatch_key,)
            ),
        )

    def reschedule(self, nexts: dict[tuple[str, str], datetime]) -> None:
        """Set when each ``(profile, kind)`` is next due (after its job was deferred)."""
        if not nexts:
            return
        keys = list(nexts)
        self._session.run(
            "reschedule",
            lambda conn: conn.execute(
                self._q(
                    "UPDATE {s}.schedule s SET next_at = u.next_at FROM unnest("
                    "%s::text[], %s::text[], %s::timestamptz[]) AS u(profile, kind, next_at) "
                    "WHERE s.profile = u.profile AND s.kind = u.kind"
                ),
                ([k[0] for k in keys], [k[1] for k in keys], [nexts[k] for k in keys]),
            ),
        )

    def due_again(self, keys: Sequence[tuple[str, str]], at: datetime) -> None:
        """Each ``(profile, kind)`` in ``keys`` due at ``at`` at the latest (a job handed
        back or dropped unrun: deferred afresh by the next dispatch that serves it)."""
        if not keys:
            return
        self._session.run(
            "due_again",
            lambda conn: conn.execute(
                self._q(
                    "UPDATE {s}.schedule s SET next_at = LEAST(s.next_at, %s) FROM unnest("
                    "%s::text[], %s::text[]) AS u(profile, kind) "
                    "WHERE s.profile = u.profile AND s.kind = u.kind"
                ),
                (at, [k[0] for k in keys], [k[1] for k in keys]),
            ),
        )
