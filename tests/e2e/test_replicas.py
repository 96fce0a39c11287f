"""Several `crmsync run` replicas on the real PostgreSQL share one profile (issue 6).

Three real worker processes work the same profile of a shared local CRM with the state
on PostgreSQL. Only one holds the profile at a time; when it is killed (SIGKILL, no
goodbye), another takes over within one interval, and no follow-up task is duplicated.
"""

from __future__ import annotations

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

from crmsync.adapters.crm.local import LocalCrm
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
INTERVAL = 2

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


def test_one_holder_at_a_time_and_takeover_within_an_interval(
    postgres: str, tmp_path: Path
) -> None:
    """Kill the holder: another replica works the profile within one interval; no duplicates."""
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
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(3):
            log = tmp_path / f"worker{i}.log"
            env = {
                **os.environ,
                "CRMSYNC_DATA_DIR": str(tmp_path),
                "CRMSYNC_STATE_URL": postgres,
                "CRMSYNC_PROFILE": profile,
                "CRMSYNC_SYNC_INTERVAL": str(INTERVAL),
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

        def holders() -> list[int]:
            return [
                i
                for i, (_p, log) in enumerate(procs)
                if any(e.get("event") == "profile_acquired" for e in _events(log))
            ]

        def finished(i: int) -> int:
            return sum(e.get("event") == "cycle_finished" for e in _events(procs[i][1]))

        assert _wait_for(lambda: len(holders()) >= 1 and finished(holders()[0]) >= 2, 90)
        [holder] = holders()  # exactly one process ever took the profile so far
        standby = [i for i in range(3) if i != holder]
        assert all(finished(i) == 0 for i in standby)

        procs[holder][0].send_signal(signal.SIGKILL)
        procs[holder][0].wait(10)
        killed_at = time.time()

        def new_holder() -> int | None:
            found = [i for i in holders() if i != holder]
            return found[0] if found else None

        assert _wait_for(lambda: new_holder() is not None, 30)
        successor = new_holder()
        assert successor is not None
        acquired = next(
            e for e in _events(procs[successor][1]) if e.get("event") == "profile_acquired"
        )
        taken_at = datetime.fromisoformat(acquired["timestamp"]).timestamp()
        # the next tick of a standby (every INTERVAL s) finds the lock free
        assert taken_at - killed_at <= INTERVAL + 1.0
        assert _wait_for(lambda: finished(successor) >= 2, 60)
        third = next(i for i in standby if i != successor)
        assert finished(third) == 0  # never two workers on the profile
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
    crm = LocalCrm(tmp_path / "local-crm.sqlite3")
    keys = Counter(
        r.fields.get("CrmSync_Key__c")
        for r in crm.export_records("Task")
        if r.fields.get("CrmSync_Key__c")
    )
    crm.close()
    assert keys, "the replicas created follow-ups"
    assert [k for k, n in keys.items() if n > 1] == []
