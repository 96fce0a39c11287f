"""A replica of the shared queue whose PostgreSQL goes away and comes back (issue 22).

The replica reaches the real server through a TCP relay; closing the relay cuts every
connection and refuses new ones, as a restarting server would. Meanwhile ``/readyz``
answers 503; once the relay is back the replica reconnects by itself, is ready again
and its profiles' cycles go on.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from worker_processes import (
    POSTGRES_URL,
    Relay,
    clean_env,
    http_get,
    postgres_relay,
    reap,
    seed_profile,
    start_run,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def relay() -> Iterator[Relay]:
    started = postgres_relay()
    yield started
    started.close()


def _synced_since(schema: str, after: datetime) -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'runs'",
            (schema,),
        ).fetchone():
            return set()
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT profile FROM {}.runs WHERE kind = 'sync' "
                "AND status = 'succeeded' AND started_at >= %s"
            ).format(sql.Identifier(schema)),
            (after,),
        ).fetchall()
    return {str(r[0]) for r in rows}


def _ready(port: int) -> bool:
    return http_get(port, "/readyz")[0] == 200


@pytest.mark.parametrize("away", ["close", "cut"])
def test_a_replica_reconnects_after_postgresql_comes_back(
    tmp_path: Path, relay: Relay, away: str
) -> None:
    """``close``: the server goes away (its sessions end); ``cut``: the network breaks
    and the server keeps the replica's sessions, with whatever locks they hold."""
    relay.start()
    parts = urlsplit(POSTGRES_URL)
    url = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{relay.port}").geturl()
    tag = uuid.uuid4().hex[:6]
    schema = f"q_{tag}"
    profiles = [f"back-{tag}-{i}" for i in range(2)]
    for i, name in enumerate(profiles):
        seed_profile(tmp_path / name, i)
    config = tmp_path / "crmsync.toml"
    config.write_text("".join(f'[profiles."{name}"]\n' for name in profiles))
    env = clean_env(
        config=str(config),
        data_dir=str(tmp_path),
        state_url=url,
        queue_schema=schema,
        sync_interval="2",
        stalled_after="6",  # a job the lost connection left running is given up soon
        http_port="0",
        log_format="json",
    )
    log = tmp_path / "replica.log"
    proc = start_run(env, log)
    try:

        def port() -> int | None:
            for line in log.read_text(errors="replace").splitlines():
                if '"http_started"' in line:
                    return int(json.loads(line)["port"])
            return None

        http = wait_for(port, 60, "the HTTP port")
        start = datetime.now(UTC)
        wait_for(lambda: _synced_since(schema, start) == set(profiles), 60, "first cycles")
        wait_for(lambda: _ready(http), 30, "ready")

        getattr(relay, away)()  # the server goes away, or the network breaks
        wait_for(lambda: not _ready(http), 30, "not ready while the server is gone")
        time.sleep(3)
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert not _ready(http)

        relay.restart()  # and comes back
        back = datetime.now(UTC)
        wait_for(lambda: _ready(http), 60, "ready again")
        wait_for(lambda: _synced_since(schema, back) == set(profiles), 60, "cycles go on")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    for line in text.splitlines():  # the libraries' complaints too: one JSON event a line
        assert isinstance(json.loads(line), dict), line
