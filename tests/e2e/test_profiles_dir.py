"""``CRMSYNC_PROFILES_DIR``: one TOML file per profile, read again while ``crmsync run``
runs: a new file starts its profile, a changed one restarts it with its new settings, a
removed one stops it, and a bad file is reported by name while the others go on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from worker_processes import (
    POSTGRES_URL,
    ROOT,
    clean_env,
    fresh_schema,
    http_get,
    log_events,
    reap,
    seed_profile,
    start_run,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def schema() -> Iterator[str]:
    yield from fresh_schema()


def _synced(schema: str) -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'runs'",
            (schema,),
        ).fetchone():
            return set()
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT profile FROM {}.runs WHERE kind = 'sync' AND status = 'succeeded'"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return {str(r[0]) for r in rows}


def _syncs_since(schema: str, since: datetime) -> dict[str, int]:
    """Succeeded syncs started at or after ``since``, by profile."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT profile, count(*) FROM {}.runs WHERE kind = 'sync' "
                "AND status = 'succeeded' AND started_at >= %s GROUP BY profile"
            ).format(sql.Identifier(schema)),
            (since,),
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _assert_named_and_gauged(port: int, log: Path, profile: str, replica: str) -> None:
    """/metrics has the profile's lag (seconds since its last successful cycle) and its
    jobs waiting; every line the replica logged as it finished a job names it."""
    lag = wait_for(lambda: _gauge(port, "crmsync_profile_lag_seconds", profile), 30, "lag")
    assert 0.0 <= float(lag) < 60.0
    assert 0.0 <= float(_gauge(port, "crmsync_queue_depth", profile) or -1) <= 4.0
    jobs = [e for e in log_events(log) if e.get("event") == "job_finished"]
    assert jobs and {e.get("replica") for e in jobs} == {replica}


def _gauge(port: int, name: str, profile: str) -> str | None:
    """The value of ``name{profile="PROFILE"}`` on the replica's /metrics, or None."""
    _status, text = http_get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith(f'{name}{{profile="{profile}"}} '):
            return line.split()[-1]
    return None


def _waiting(schema: str, profile: str) -> int:
    """Jobs of ``profile`` waiting in the queue."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {}.procrastinate_jobs WHERE status = 'todo' "
                "AND args->>'profile' = %s"
            ).format(sql.Identifier(schema)),
            (profile,),
        ).fetchone()
    return int(row[0]) if row else 0


def _runs(tmp_path: Path, schema: str, profile: str) -> list[dict[str, object]]:
    """``crmsync runs --profile PROFILE --format json``, one object per line."""
    env = clean_env(
        data_dir=str(tmp_path),
        config=str(tmp_path / "none.toml"),
        state_url=POSTGRES_URL,
        queue_schema=schema,
    )
    done = subprocess.run(
        [sys.executable, "-m", "crmsync", "runs", "--profile", profile, "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_changed_and_a_removed_profile_file_take_effect_while_it_runs(
    tmp_path: Path, schema: str
) -> None:
    """While ``crmsync run`` runs: one file changed (its profile is restarted with the new
    settings), one removed (its profile stops: no job starts, its metrics go), one left
    alone (it runs on undisturbed); the replica's name is in its metrics."""
    tag = uuid.uuid4().hex[:6]
    steady, changed, removed = (f"dir-{tag}-{n}" for n in ("steady", "changed", "removed"))
    replica = f"replica-{tag}"
    folder = tmp_path / "profiles"
    folder.mkdir()
    for seed, name in enumerate((steady, changed, removed)):
        seed_profile(tmp_path / name, seed)
        (folder / f"{name}.toml").write_text("sync_interval = 2\n")
    env = clean_env(
        config=str(tmp_path / "none.toml"),
        profiles_dir=str(folder),
        data_dir=str(tmp_path),
        state_url=POSTGRES_URL,
        queue_schema=schema,
        sync_interval="2",
        http_port="0",
        replica=replica,
        log_format="json",
    )
    log = tmp_path / "replica.log"
    proc = start_run(env, log)

    def logged(event: str) -> list[dict[str, object]]:
        return [e for e in log_events(log) if e.get("event") == event]

    try:
        wait_for(lambda: {steady, changed, removed} <= _synced(schema), 60, "every profile")
        port = int(logged("http_started")[0]["port"])  # type: ignore[call-overload]
        _status, metrics = http_get(port, "/metrics")
        assert f'crmsync_replica_info{{replica="{replica}"}} 1.0' in metrics
        assert f'profile="{removed}"' in metrics
        _assert_named_and_gauged(port, log, steady, replica)

        (folder / f"{changed}.toml").write_text("sync_interval = 3\n")
        (folder / f"{removed}.toml").unlink()
        wait_for(lambda: logged("profile_file_changed"), 30, "the changed file taken in")
        wait_for(lambda: logged("profile_file_removed"), 30, "the removed file taken in")
        assert [e["profile"] for e in logged("profile_file_changed")] == [changed]
        assert [e["profile"] for e in logged("profile_file_removed")] == [removed]
        retired = sorted(str(e["profile"]) for e in logged("worker_retired"))
        assert retired == sorted([changed, removed])  # the steady profile was left alone
        time.sleep(1.0)  # a job of the removed profile already running when it went
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            cut = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        wait_for(
            lambda: (
                {steady: 2, changed: 2}.items()
                <= {p: min(n, 2) for p, n in _syncs_since(schema, cut).items()}.items()
            ),
            60,
            "the steady and the changed profile syncing on",
        )
        assert removed not in _syncs_since(schema, cut)
        assert _waiting(schema, removed) == 0  # no job of it left waiting for ever
        _status, metrics = http_get(port, "/metrics")
        assert f'profile="{removed}"' not in metrics
        assert f'crmsync_profile_owned{{profile="{steady}"}} 1.0' in metrics
        assert proc.poll() is None

        runs = _runs(tmp_path, schema, changed)
        assert runs and {r["replica"] for r in runs} == {replica}
        assert all(r["status"] == "succeeded" for r in runs if r["kind"] == "sync")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
    assert "Traceback" not in log.read_text(errors="replace")


def test_profile_files_are_read_again_and_a_bad_one_is_named(tmp_path: Path, schema: str) -> None:
    tag = uuid.uuid4().hex[:6]
    first, late, bad = f"dir-{tag}-a", f"dir-{tag}-b", f"dir-{tag}-bad"
    for i, name in enumerate((first, late)):
        seed_profile(tmp_path / name, i)
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / f"{first}.toml").write_text("sync_interval = 2\n")
    (folder / f"{bad}.toml").write_text("sync_intervall = 2\n")
    env = clean_env(
        config=str(tmp_path / "none.toml"),
        profiles_dir=str(folder),
        data_dir=str(tmp_path),
        state_url=POSTGRES_URL,
        queue_schema=schema,
        sync_interval="2",
        http_port="0",
        log_format="json",
    )
    log = tmp_path / "replica.log"
    proc = start_run(env, log)
    try:
        wait_for(lambda: first in _synced(schema), 60, "the first profile's cycle")
        invalid = [e for e in log_events(log) if e.get("event") == "profile_file_invalid"]
        assert len(invalid) == 1
        assert f"{bad}.toml" in invalid[0]["error"]
        assert "sync_intervall" in invalid[0]["error"]
        assert "sync_interval" in invalid[0]["error"].replace("sync_intervall", "")  # the hint

        (folder / f"{late}.toml").write_text("")  # a new profile while it runs
        wait_for(lambda: late in _synced(schema), 30, "the new profile's cycle")
        assert proc.poll() is None
        assert bad not in _synced(schema)
        # the bad file is named once, not at every reading
        assert len([e for e in log_events(log) if e.get("event") == "profile_file_invalid"]) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
    assert "Traceback" not in log.read_text(errors="replace")
