"""A connection lost to a cut network leaves its server session behind (the server saw no
reset), still holding what it held: a profile's advisory lock, a state transaction's row
locks. The process that lost it ends that session, and only that one, when it connects
again, so its profile goes on at once instead of after the server notices (two hours by
the server's default keepalive settings).

The cut is made by a TCP relay that resets the client's side and keeps the server's side
open and silent (``worker_processes.Relay.cut``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psycopg
import pytest
from structlog.testing import capture_logs

from crmsync.adapters._postgres_session import connection_parameters
from crmsync.adapters.profile_lock import PostgresProfileLock, lock_key
from crmsync.adapters.state.postgres import PostgresStateStore
from worker_processes import POSTGRES_URL, Relay, postgres_relay

pytestmark = pytest.mark.postgres

JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def relay() -> Iterator[Relay]:
    started = postgres_relay()
    started.start()
    yield started
    started.close()


def _through(relay: Relay) -> str:
    parts = urlsplit(POSTGRES_URL)
    return parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{relay.port}").geturl()


def _lock_holders(profile: str) -> list[int]:
    """Server pids of the sessions holding ``profile``'s advisory lock (asked directly)."""
    key = lock_key(profile)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _alive(pid: int) -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            is not None
        )


def test_a_profile_lost_to_a_cut_is_taken_back_by_ending_its_orphaned_session(
    relay: Relay,
) -> None:
    profile = f"orphan-lock-{uuid.uuid4().hex[:8]}"
    lock = PostgresProfileLock(_through(relay), command="crmsync test")
    try:
        assert lock.try_acquire(profile)
        [first] = _lock_holders(profile)

        relay.cut()
        relay.restart()
        assert not lock.held(profile)  # this side knows the connection is gone...
        assert _lock_holders(profile) == [first]  # ...the server still holds the lock for it

        with capture_logs() as logs:
            assert lock.try_acquire(profile)
        [second] = _lock_holders(profile)
        assert second != first
        assert not _alive(first)
        ended = [e for e in logs if e["event"] == "profile_orphan_ended"]
        assert [(e["profile"], e["server_pid"]) for e in ended] == [(profile, first)]
    finally:
        lock.close()
    assert _lock_holders(profile) == []


def test_a_profile_another_process_holds_is_never_taken_from_it(relay: Relay) -> None:
    """The orphan is gone and another process took the profile meanwhile: the lost
    process finds it busy, and the other's session is left alone."""
    profile = f"orphan-lock-{uuid.uuid4().hex[:8]}"
    lost = PostgresProfileLock(_through(relay), command="crmsync test")
    other = PostgresProfileLock(POSTGRES_URL, command="crmsync other")
    try:
        assert lost.try_acquire(profile)
        [orphan] = _lock_holders(profile)
        relay.cut()
        relay.restart()
        assert not lost.held(profile)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:  # the server noticed
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (orphan,))
        assert other.try_acquire(profile)
        [holder] = _lock_holders(profile)

        assert not lost.try_acquire(profile)
        assert _lock_holders(profile) == [holder]
        assert other.held(profile)
    finally:
        lost.close()
        other.close()


def test_a_state_transaction_cut_midway_does_not_block_the_next_one(relay: Relay) -> None:
    """A cut while a transaction holds a row lock: the reconnected store ends its orphan
    (which would hold the lock until the server noticed) and writes the same row at once."""
    schema = f"orphan_{uuid.uuid4().hex[:8]}"
    store = PostgresStateStore(_through(relay), schema=schema)
    try:
        store.migrate()
        store.set_watermark("p", "w", JANUARY)
        session = store._session
        conn = session._conn
        assert conn is not None
        conn.execute(session.q("UPDATE {s}.watermarks SET value = value"))  # row locked
        relay.cut()
        relay.restart()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as probe:
            waiting = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND query LIKE %s",
                (f"%{schema}%",),
            ).fetchone()
        assert waiting == (1,)  # the orphan, holding the row

        with capture_logs() as logs:  # lost, reconnects, writes (blocked without the fix)
            writing = threading.Thread(target=store.set_watermark, args=("p", "w", FEBRUARY))
            writing.start()
            writing.join(30)
            assert not writing.is_alive(), "the write waits for the orphan's row lock"
        assert store.get_watermark("p", "w") == FEBRUARY
        assert any(e["event"] == "state_store.orphan_ended" for e in logs)
    finally:
        store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_every_connection_asks_the_server_to_probe_it() -> None:
    """Server keepalives about a minute (not the server's two hours), after the URL's own
    options; a store's transaction left idle by a gone client ends after two minutes."""
    url = "postgresql://postgres@127.0.0.1/test?options=-c%20statement_timeout%3D5s"
    params = connection_parameters(url, options="-c idle_in_transaction_session_timeout=120s")
    assert params["options"] == (
        "-c statement_timeout=5s -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 "
        "-c tcp_keepalives_count=3 -c idle_in_transaction_session_timeout=120s"
    )
    assert params["keepalives"] == 1
    with psycopg.connect(
        POSTGRES_URL, autocommit=True, **connection_parameters(POSTGRES_URL)
    ) as conn:
        shown = [
            conn.execute(f"SHOW {name}").fetchone()
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        ]
    assert shown == [("30",), ("10",), ("3",)]  # seconds
