"""A profile lock lost while working: real ``crmsync`` processes and the real PostgreSQL.

The PostgreSQL profile lock is a session advisory lock; when its session ends (an admin's
``pg_terminate_backend``, a network cut) the server lets another process take the
profile. The process that lost it must notice before it writes again, stop, and give
back what is left without a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.profile_lock import lock_key
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from worker_processes import POSTGRES_URL, ROOT, clean_env, require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def profile() -> str:
    """A profile name of its own on the shared server (skips when it is absent)."""
    require_postgres()
    return f"lost-{uuid.uuid4().hex[:8]}"


def _env(data_dir: Path, profile: str) -> dict[str, str]:
    return clean_env(
        data_dir=str(data_dir),
        config=str(data_dir / "none.toml"),
        secrets_dir=str(data_dir / "no-secrets"),
        log_format="json",
        http_port="0",
        sync_interval="3600",
        state_url=POSTGRES_URL,
        profile=profile,
    )


def _seed(data_dir: Path, count: int) -> None:
    now = datetime.now(UTC)
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(ROOT / "mappings" / "salesforce.yaml"),
            "aston",
            count=count,
            seed=7,
            start=now - timedelta(days=12),
            span_days=11,
            now=now,
        )


def _start(env: dict[str, str], out: Path, *args: str) -> subprocess.Popen[bytes]:
    with (out.with_suffix(".out")).open("wb") as stdout, out.with_suffix(".err").open("wb") as e:
        return subprocess.Popen(
            [sys.executable, "-m", "crmsync", *args],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=e,
        )


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _lock_holder(profile: str) -> int | None:
    """The server pid of the session holding the profile's advisory lock, if any."""
    key = lock_key(profile)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
    return None if row is None else int(row[0])


def _terminate(pid: int) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row is not None and row[0] is True


def _waiting_on_complaints() -> int:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks "
            "WHERE NOT granted AND relation = 'crmsync.complaints'::regclass"
        ).fetchone()
    return 0 if row is None else int(row[0])


def _flagged(data_dir: Path) -> int:
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        return sum(1 for r in crm.export_records("Case") if r.fields.get("Charter_Status__c"))


def _task_keys(data_dir: Path) -> Counter[str]:
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        return Counter(
            str(r.fields["CrmSync_Key__c"])
            for r in crm.export_records("Task")
            if r.fields.get("CrmSync_Key__c")
        )


def test_a_sync_that_lost_its_lock_stops_before_writing_and_exits_5(
    tmp_path: Path, profile: str
) -> None:
    """The first ``sync --once`` is held (a test transaction locks the state's complaints
    table) after taking the profile; its lock's session is terminated and a second
    ``sync --once`` takes the profile. Released, the first stops before any write (exit 5,
    a clear message, no traceback); the second does the whole cycle; no task twice."""
    _seed(tmp_path, 40)
    env = _env(tmp_path, profile)
    ready = subprocess.run(  # the schema exists before the table is locked
        [sys.executable, "-m", "crmsync", "sync", "--once", "--dry-run", "--new-profile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ready.returncode == 0, ready.stderr[-2000:]
    assert _task_keys(tmp_path) == Counter()
    with psycopg.connect(POSTGRES_URL) as blocker:
        blocker.execute("LOCK TABLE crmsync.complaints IN ACCESS EXCLUSIVE MODE")
        first = _start(env, tmp_path / "first", "sync", "--once", "--new-profile", "--json")
        holder = _wait_for(lambda: _lock_holder(profile), 60, "the first sync's lock")
        _wait_for(_waiting_on_complaints, 60, "the first sync to wait on the state")
        _terminate(holder)
        second = _start(env, tmp_path / "second", "sync", "--once", "--new-profile", "--json")
        _wait_for(lambda: _lock_holder(profile) not in (None, holder), 60, "the second sync's lock")
        blocker.rollback()  # the table lock ends: both go on
    assert first.wait(120) == 5, (tmp_path / "first.err").read_text()[-3000:]
    assert second.wait(120) == 0, (tmp_path / "second.err").read_text()[-3000:]
    first_err = (tmp_path / "first.err").read_text()
    assert f"lost the lock of profile '{profile}'" in first_err
    assert "Traceback" not in first_err
    assert (tmp_path / "first.out").read_text() == ""
    report = json.loads((tmp_path / "second.out").read_text())
    assert report["flags_written"] == _flagged(tmp_path) > 0  # the first wrote none
    keys = _task_keys(tmp_path)
    assert report["tasks_created"] == sum(keys.values())
    assert [k for k, n in keys.items() if n > 1] == []


def test_sigterm_after_the_worker_lost_its_lock_exits_0(tmp_path: Path, profile: str) -> None:
    """``crmsync run`` whose lock's session was terminated while it worked the profile:
    SIGTERM stops it with exit 0 and no traceback (giving back a lock on a dead session is
    no error). A replica of the shared queue holds the profile's lock only while it runs
    one of its jobs, so the session is cut during the first (long) cycle."""
    _seed(tmp_path, 3000)
    env = _env(tmp_path, profile)
    worker = _start(env, tmp_path / "worker", "run", "--new-profile")
    try:
        _terminate(_wait_for(lambda: _lock_holder(profile), 90, "the worker's lock"))
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    log = (tmp_path / "worker.err").read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log
    assert '"worker_stopped"' in log
