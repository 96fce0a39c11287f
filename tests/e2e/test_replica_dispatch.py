"""The dispatcher on the real queue: a profile with a long name has its jobs deferred
(Procrastinate notifies on a channel named after the queue, which PostgreSQL bounds)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.job_queue import QueueTables
from crmsync.worker.replicas import ReplicaQueue, queue_name
from crmsync.worker.scheduling import ProfileChanges
from fakes.dispatch_stand_in import StandIn
from worker_processes import POSTGRES_URL, fresh_schema

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def schema() -> Iterator[str]:
    yield from fresh_schema()


def test_a_long_profile_name_has_its_sync_deferred(schema: str) -> None:
    profiles = ["housing-association-of-the-north-west-stage-two", "short"]
    tables = QueueTables(POSTGRES_URL, schema=schema)
    try:
        queue = ReplicaQueue(
            url=POSTGRES_URL,
            schema=schema,
            replica="test",
            tables=lambda: tables,
            workers={p: StandIn(p) for p in profiles},  # type: ignore[misc]
            stop_requested=threading.Event(),
        )
        app = queue.open_now()

        async def tick() -> int:
            async with app.open_async():
                return await queue.dispatch_once()

        assert asyncio.run(tick()) == 2  # each profile's first sync, due now
    finally:
        tables.close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT queue_name, args->>'profile' FROM {}.procrastinate_jobs").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    assert sorted(rows) == sorted((queue_name(p), p) for p in profiles)


def _waiting(schema: str) -> list[tuple[str, str]]:
    """The jobs waiting in the queue: (profile, kind)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT args->>'profile', args->>'kind' FROM {}.procrastinate_jobs "
                "WHERE status = 'todo'"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return sorted((str(r[0]), str(r[1])) for r in rows)


def test_a_removed_profiles_waiting_job_is_dropped_and_due_again_elsewhere(schema: str) -> None:
    """A profile's file removed from a replica: its job still waiting in the queue is
    deleted (it would wait for ever, counted as queue depth, for a replica that no longer
    serves it), the other profiles' jobs stay, and a replica that still serves the
    profile defers its work afresh at its next dispatch."""
    one, two = QueueTables(POSTGRES_URL, schema=schema), QueueTables(POSTGRES_URL, schema=schema)
    try:

        def replica(name: str, tables: QueueTables, profiles: list[str]) -> ReplicaQueue:
            return ReplicaQueue(
                url=POSTGRES_URL,
                schema=schema,
                replica=name,
                tables=lambda: tables,
                workers={p: StandIn(p) for p in profiles},  # type: ignore[misc]
                serves=frozenset(profiles),
                stop_requested=threading.Event(),
            )

        first = replica("first", one, ["gone", "kept"])
        other = replica("other", two, ["gone"])
        app, other_app = first.open_now(), other.open_now()

        async def remove_gone() -> tuple[int, int, int]:
            async with app.open_async():
                deferred = await first.dispatch_once()
                first.apply(ProfileChanges([], frozenset({"gone"})))
                dropped = await first.drop_waiting()
                again = await first.drop_waiting()  # done once: nothing left to drop
                return deferred, dropped, again

        assert asyncio.run(remove_gone()) == (2, 1, 0)
        assert _waiting(schema) == [("kept", "sync")]
        assert "gone" not in first.serves

        async def other_dispatches() -> int:
            async with other_app.open_async():
                return await other.dispatch_once()

        assert asyncio.run(other_dispatches()) == 1  # due again: not an interval later
        assert _waiting(schema) == [("gone", "sync"), ("kept", "sync")]
    finally:
        one.close()
        two.close()


def test_a_stalled_job_is_given_up_and_its_work_due_again_at_once(schema: str) -> None:
    """A job whose replica stopped answering (its heartbeat an hour old) is marked failed
    by the next dispatch and its work is deferred afresh at the following one, not an
    interval (or, for a nightly job, a day) later."""
    tables = QueueTables(POSTGRES_URL, schema=schema)
    try:
        queue = ReplicaQueue(
            url=POSTGRES_URL,
            schema=schema,
            replica="live",
            tables=lambda: tables,
            workers={"acme": StandIn("acme")},  # type: ignore[dict-item]
            stop_requested=threading.Event(),
        )
        app = queue.open_now()

        async def tick() -> int:
            async with app.open_async():
                return await queue.dispatch_once()

        assert asyncio.run(tick()) == 1  # the first sync
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            jobs = sql.Identifier(schema, "procrastinate_jobs")
            workers = sql.Identifier(schema, "procrastinate_workers")
            dead = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (last_heartbeat) VALUES (now() - interval '1 hour') "
                    "RETURNING id"
                ).format(workers)
            ).fetchone()
            assert dead is not None
            conn.execute(  # a replica took it, then died
                sql.SQL("UPDATE {} SET status = 'doing', worker_id = %s").format(jobs), (dead[0],)
            )
        assert asyncio.run(tick()) == 0  # gives the dead job up; nothing due yet before this
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            statuses = conn.execute(sql.SQL("SELECT status FROM {}").format(jobs)).fetchall()
        assert [str(r[0]) for r in statuses] == ["failed"]
        assert asyncio.run(tick()) == 1  # the sync deferred afresh at once
    finally:
        tables.close()
