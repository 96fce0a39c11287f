"""Several ``crmsync run`` replicas sharing thirty profiles through the job queue (issue 22).

Three real worker processes, the state and the queue on the real PostgreSQL, each
profile on its own local CRM, a short interval. From the ``runs`` table: no profile ever
had two jobs at once, every profile progressed, every replica took jobs. Then one replica
is killed (SIGKILL) and one stopped (SIGTERM): the third carries every profile on within
two intervals plus the stalled-job timeout, and no follow-up task is ever duplicated.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PROFILES = 30
REPLICAS = 3
INTERVAL = 4
STALLED_AFTER = 5

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def queue_schema() -> Iterator[str]:
    """A fresh queue schema on the test server (dropped after); skips without a server."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {exc}")
    schema = f"q_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _runs(schema: str) -> list[dict[str, Any]]:
    """The runs table's rows, oldest first ([] until a replica has created it)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'runs'",
            (schema,),
        ).fetchone()
        if found is None:
            return []
        cur = conn.execute(
            sql.SQL(
                "SELECT job_id, profile, kind, replica, started_at, finished_at, status "
                "FROM {}.runs ORDER BY started_at"
            ).format(sql.Identifier(schema))
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _wait_for(predicate: Callable[[], Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_three_replicas_share_thirty_profiles_and_survive_kill_and_term(
    queue_schema: str, tmp_path: Path
) -> None:
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    profiles = [f"r{tag}-{i:02d}" for i in range(PROFILES)]
    for i, name in enumerate(profiles):
        folder = tmp_path / name
        folder.mkdir()
        crm = LocalCrm(folder / LOCAL_CRM_FILE)
        seed_local_crm(
            crm,
            mapping,
            "aston",
            count=8,
            seed=i,
            start=now - timedelta(days=40),
            span_days=38,
            now=now,
        )
        crm.close()
    config = tmp_path / "crmsync.toml"
    config.write_text("".join(f'[profiles."{name}"]\n' for name in profiles))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for r in range(REPLICAS):
            env = {
                **os.environ,
                "CRMSYNC_CONFIG": str(config),
                "CRMSYNC_DATA_DIR": str(tmp_path),
                "CRMSYNC_STATE_URL": POSTGRES_URL,
                "CRMSYNC_QUEUE_SCHEMA": queue_schema,
                "CRMSYNC_REPLICA": f"replica-{r}",
                "CRMSYNC_SYNC_INTERVAL": str(INTERVAL),
                "CRMSYNC_STALLED_AFTER": str(STALLED_AFTER),
                "CRMSYNC_HTTP_PORT": "0",
                "CRMSYNC_LOG_FORMAT": "json",
            }
            with (tmp_path / f"replica-{r}.log").open("wb") as handle:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "crmsync", "run"],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=handle,
                    )
                )

        def synced(rows: list[dict[str, Any]], after: datetime | None = None) -> Counter[str]:
            return Counter(
                r["profile"]
                for r in rows
                if r["kind"] == "sync"
                and r["status"] == "succeeded"
                and (after is None or r["started_at"] >= after)
            )

        def all_progressed() -> bool:
            rows = _runs(queue_schema)
            counts = synced(rows)
            return all(counts[p] >= 2 for p in profiles) and {r["replica"] for r in rows} == {
                f"replica-{r}" for r in range(REPLICAS)
            }

        assert _wait_for(all_progressed, 90), _summary(queue_schema, tmp_path)
        # a fair share each: no replica ran less than half of one third of the jobs
        share = Counter(r["replica"] for r in _runs(queue_schema))
        assert min(share.values()) * 2 * REPLICAS >= share.total(), share

        # kill -9 replica 0, preferably in the middle of a job
        _wait_for(
            lambda: any(
                r["replica"] == "replica-0" and r["status"] == "running"
                for r in _runs(queue_schema)
            ),
            10,
        )
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        killed_at = datetime.now(UTC)
        term_sent = _term_and_check(procs[1], queue_schema, "replica-1")

        # the survivor carries every profile on within two intervals + the stalled timeout
        limit = 2 * INTERVAL + STALLED_AFTER
        carried = _wait_for(
            lambda: all(synced(_runs(queue_schema), killed_at)[p] >= 1 for p in profiles),
            limit + 40,  # the lone survivor runs thirty profiles' cycles one after another
        )
        assert carried, _summary(queue_schema, tmp_path)
        rows = _runs(queue_schema)
        after_kill = [r for r in rows if r["started_at"] >= killed_at]
        assert not [r for r in after_kill if r["replica"] == "replica-0"]
        after_term = [r for r in rows if (r["started_at"] - term_sent).total_seconds() >= 1.0]
        assert {r["replica"] for r in after_term} == {"replica-2"}
        # a job the killed replica left running is given up as stalled, never left hanging
        assert _wait_for(
            lambda: (
                not [
                    r
                    for r in _runs(queue_schema)
                    if r["replica"] == "replica-0" and r["status"] == "running"
                ]
            ),
            STALLED_AFTER + 10,
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert procs[2].returncode == 0
    for path in sorted(tmp_path.glob("replica-*.log")):  # the server never went away
        assert '"dispatch_failed"' not in path.read_text(errors="replace"), path.name
    _assert_one_job_at_a_time_and_no_duplicates(queue_schema, tmp_path, profiles)


def _term_and_check(proc: subprocess.Popen[bytes], queue_schema: str, name: str) -> datetime:
    """SIGTERM the replica: it exits 0, takes no new job (at most the one it was taking as
    the signal came starts after it) and leaves none running (finished or handed back).
    When the signal was sent."""
    term_sent = datetime.now(UTC)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    left = [r for r in _runs(queue_schema) if r["replica"] == name]
    assert all(r["status"] in {"succeeded", "handed_back"} for r in left), left
    late = [r for r in left if r["started_at"] > term_sent]
    assert len(late) <= 1, late
    assert all((r["started_at"] - term_sent).total_seconds() < 1.0 for r in late), late
    return term_sent


def _assert_one_job_at_a_time_and_no_duplicates(
    queue_schema: str, tmp_path: Path, profiles: list[str]
) -> None:
    """From the runs table and each profile's CRM."""
    rows = _runs(queue_schema)
    # no profile ever had two jobs at once (syncs, archives, prunes alike)
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_profile[r["profile"]].append(r)
    for profile, jobs in by_profile.items():
        jobs.sort(key=lambda r: r["started_at"])
        for before, after in itertools.pairwise(jobs):
            assert before["finished_at"] is not None, before
            assert before["finished_at"] <= after["started_at"], (profile, before, after)
    # every replica took jobs, and no follow-up task was ever created twice
    assert Counter(r["replica"] for r in rows).keys() == {f"replica-{r}" for r in range(REPLICAS)}
    for name in profiles:
        crm = LocalCrm(tmp_path / name / LOCAL_CRM_FILE)
        keys = Counter(
            t.fields.get("CrmSync_Key__c")
            for t in crm.export_records("Task")
            if t.fields.get("CrmSync_Key__c")
        )
        crm.close()
        assert [k for k, n in keys.items() if n > 1] == [], name


def _summary(schema: str, folder: Path) -> str:
    rows = _runs(schema)
    by = Counter((r["replica"], r["kind"], r["status"]) for r in rows)
    tails = {
        p.name: p.read_text(errors="replace").splitlines()[-5:]
        for p in sorted(folder.glob("replica-*.log"))
    }
    return f"runs: {dict(by)}; logs: {tails}"


def _flags_and_tasks(crm_file: Path) -> tuple[int, Counter[str]]:
    with LocalCrm(crm_file) as crm:
        flagged = sum(1 for r in crm.export_records("Case") if r.fields.get("Charter_Status__c"))
        keys = Counter(
            str(t.fields["CrmSync_Key__c"])
            for t in crm.export_records("Task")
            if t.fields.get("CrmSync_Key__c")
        )
    return flagged, keys


def test_a_cycle_killed_half_done_is_finished_by_another_replica(
    queue_schema: str, tmp_path: Path
) -> None:
    """Replica A is killed (SIGKILL) in its first cycle after two write calls; replica
    B runs the profile's next cycle within two intervals plus the stalled timeout of its
    start, the dead job is marked stalled, and the CRM ends as an uninterrupted run
    leaves it: every flag written, every follow-up made once."""
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    seeded = tmp_path / "seeded.sqlite3"
    with LocalCrm(seeded) as crm:
        seed_local_crm(
            crm,
            mapping,
            "aston",
            count=400,
            seed=5,
            start=now - timedelta(days=40),
            span_days=38,
            now=now,
        )
    for folder in ("shared", "reference"):
        (tmp_path / folder).mkdir()
        shutil.copy(seeded, tmp_path / folder / LOCAL_CRM_FILE)
    profile = f"half-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    base.update(
        {
            "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
            "CRMSYNC_PROFILE": profile,
            "CRMSYNC_SYNC_INTERVAL": str(INTERVAL),
            "CRMSYNC_WRITE_BATCH": "50",
            "CRMSYNC_HTTP_PORT": "0",
            "CRMSYNC_LOG_FORMAT": "json",
        }
    )
    replica = {
        **base,
        "CRMSYNC_DATA_DIR": str(tmp_path / "shared"),
        "CRMSYNC_STATE_URL": POSTGRES_URL,
        "CRMSYNC_QUEUE_SCHEMA": queue_schema,
        "CRMSYNC_STALLED_AFTER": str(STALLED_AFTER),
    }

    def start(name: str, **extra: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as handle:
            return subprocess.Popen(
                [sys.executable, "-m", "crmsync", "run", "--new-profile"],
                cwd=ROOT,
                env={**replica, "CRMSYNC_REPLICA": name, **extra},
                stdout=subprocess.DEVNULL,
                stderr=handle,
            )

    a = start("a", CRMSYNC_CRASH_AT="writes_sent:2")  # two write calls sent, none recorded
    b: subprocess.Popen[bytes] | None = None
    try:
        assert a.wait(90) == -signal.SIGKILL
        b = start("b")
        assert _wait_for(
            lambda: any(
                r["replica"] == "b" and r["status"] == "succeeded" for r in _runs(queue_schema)
            ),
            60,
        ), _summary(queue_schema, tmp_path)
        rows = _runs(queue_schema)
        assert [(r["replica"], r["status"]) for r in rows][:2] == [
            ("a", "stalled"),
            ("b", "succeeded"),
        ]
        b_started = next(
            datetime.fromisoformat(e["timestamp"])
            for e in _log_events(tmp_path / "b.log")
            if e.get("event") == "replica_started"
        )
        waited = (rows[1]["started_at"] - b_started).total_seconds()
        assert waited <= 2 * INTERVAL + STALLED_AFTER + 1.0, waited
        b.send_signal(signal.SIGTERM)
        assert b.wait(60) == 0
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    reference = subprocess.run(
        [sys.executable, "-m", "crmsync", "sync", "--once", "--new-profile"],
        cwd=ROOT,
        env={**base, "CRMSYNC_DATA_DIR": str(tmp_path / "reference")},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    flagged, keys = _flags_and_tasks(tmp_path / "shared" / LOCAL_CRM_FILE)
    want_flagged, want_keys = _flags_and_tasks(tmp_path / "reference" / LOCAL_CRM_FILE)
    assert flagged == want_flagged > 100  # more than the dead cycle wrote
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) == set(want_keys)


def _log_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
