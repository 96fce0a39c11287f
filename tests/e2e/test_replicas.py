"""Several `crmsync run` replicas on the real PostgreSQL share one profile (issues 6, 22).

Three real worker processes work the same profile of a shared local CRM with the state
and the job queue on PostgreSQL. The profile's jobs go to whichever replica is free, but
never two at once; when the replica running it is killed (SIGKILL, no goodbye), another
runs its next cycle within two intervals plus the stalled-job timeout, and no follow-up
task is duplicated.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.job_queue import QueueTables
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
INTERVAL = 2
STALLED_AFTER = 4

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def postgres() -> str:
    """The test server's URL; skips with the reason when no server answers."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {exc}")
    return POSTGRES_URL


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _runs(schema: str) -> list[dict[str, Any]]:
    """The queue's runs, oldest first ([] until a replica has created the table)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'runs'",
            (schema,),
        ).fetchone():
            return []
        cur = conn.execute(
            sql.SQL(
                "SELECT replica, kind, status, started_at, finished_at FROM {}.runs "
                "ORDER BY started_at"
            ).format(sql.Identifier(schema))
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _nightly_due_now(schema: str, profile: str) -> None:
    """The profile's nightly archive run and state prune due now (not at 02:00 and 03:00)."""
    tables = QueueTables(POSTGRES_URL, schema=schema)
    try:
        tables.migrate()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.schedule (profile, kind, next_at) "
                    "VALUES (%s, 'archive', now()), (%s, 'prune', now())"
                ).format(sql.Identifier(schema)),
                (profile, profile),
            )
    finally:
        tables.close()


def _nightly_done(schema: str) -> bool:
    done = {r["kind"] for r in _runs(schema) if r["status"] == "succeeded"}
    return {"archive", "prune"} <= done


def test_one_job_at_a_time_and_takeover_after_a_kill(postgres: str, tmp_path: Path) -> None:
    """Kill the replica running the profile: another runs its next cycle within two
    intervals plus the stalled-job timeout; the profile never had two jobs at once; no
    duplicates. (Before the queue, one replica held the profile and the others waited;
    now every replica may take its jobs, one at a time.)"""
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    crm = LocalCrm(tmp_path / "local-crm.sqlite3")
    seed_local_crm(
        crm,
        mapping,
        "aston",
        count=300,
        seed=11,
        start=now - timedelta(days=40),
        span_days=38,
        now=now,
    )
    crm.close()
    profile = f"replica-{uuid.uuid4().hex[:8]}"
    schema = f"q_{uuid.uuid4().hex[:10]}"
    _nightly_due_now(schema, profile)  # the archive run and the prune beside the syncs
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(3):
            log = tmp_path / f"worker{i}.log"
            env = {
                **os.environ,
                "CRMSYNC_DATA_DIR": str(tmp_path),
                "CRMSYNC_STATE_URL": postgres,
                "CRMSYNC_QUEUE_SCHEMA": schema,
                "CRMSYNC_REPLICA": f"w{i}",
                "CRMSYNC_PROFILE": profile,
                "CRMSYNC_SYNC_INTERVAL": str(INTERVAL),
                "CRMSYNC_STALLED_AFTER": str(STALLED_AFTER),
                "CRMSYNC_HTTP_PORT": "0",
                "CRMSYNC_LOG_FORMAT": "json",
            }
            with log.open("wb") as handle:  # the child keeps its own descriptor
                proc = subprocess.Popen(
                    [sys.executable, "-m", "crmsync", "run", "--new-profile"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=handle,
                )
            procs.append((proc, log))

        def syncs(after: datetime | None = None) -> list[dict[str, Any]]:
            return [
                r
                for r in _runs(schema)
                if r["kind"] == "sync"
                and r["status"] == "succeeded"
                and (after is None or r["started_at"] >= after)
            ]

        assert _wait_for(lambda: len(syncs()) >= 2 and _nightly_done(schema), 90)
        # kill the replica running the profile now (or the last one that ran it)
        _wait_for(lambda: any(r["status"] == "running" for r in _runs(schema)), 10)
        running = [r for r in _runs(schema) if r["status"] == "running"] or syncs()[-1:]
        victim = int(running[-1]["replica"][1:])
        procs[victim][0].send_signal(signal.SIGKILL)
        procs[victim][0].wait(10)
        killed_at = datetime.now(UTC)

        assert _wait_for(lambda: len(syncs(killed_at)) >= 2, 60)
        first = syncs(killed_at)[0]
        assert first["replica"] != f"w{victim}"
        waited = (first["started_at"] - killed_at).total_seconds()
        assert waited <= 2 * INTERVAL + STALLED_AFTER + 1.0, waited
    finally:
        for proc, _log in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _log in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for i, (proc, _log) in enumerate(procs):
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, f"worker {i} exited {proc.returncode}"
    rows = _runs(schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    _assert_one_at_a_time(rows)
    assert len({r["replica"] for r in rows}) >= 2  # the work moved after the kill
    crm = LocalCrm(tmp_path / "local-crm.sqlite3")
    keys = Counter(
        r.fields.get("CrmSync_Key__c")
        for r in crm.export_records("Task")
        if r.fields.get("CrmSync_Key__c")
    )
    crm.close()
    assert keys, "the replicas created follow-ups"
    assert [k for k, n in keys.items() if n > 1] == []


def _assert_one_at_a_time(rows: list[dict[str, Any]]) -> None:
    """The nightly jobs ran, each once, and like the syncs never beside another job of
    the profile, whichever replica ran them (``rows`` oldest first)."""
    nightly = sorted((r["kind"], r["status"]) for r in rows if r["kind"] != "sync")
    assert nightly == [("archive", "succeeded"), ("prune", "succeeded")], nightly
    for before, after in itertools.pairwise(rows):
        assert before["finished_at"] is not None, before
        assert before["finished_at"] <= after["started_at"], (before, after)
