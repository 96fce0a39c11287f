"""One process per profile, for every command: real ``crmsync`` processes racing.

A running worker (``crmsync run``) holds its profile for as long as it runs; ``sync
--once``, ``archive run`` and ``state prune`` beside it say who holds the profile and
exit 5 (after ``--wait`` when given), on the embedded SQLite state (file lock) and on
PostgreSQL (advisory lock). Two ``archive run`` started together archive every closed
complaint version exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from worker_processes import POSTGRES_URL, ROOT, clean_env, require_postgres, start_run

pytestmark = pytest.mark.slow


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = clean_env(
        data_dir=str(data_dir),
        config=str(data_dir / "none.toml"),
        secrets_dir=str(data_dir / "no-secrets"),
        log_format="json",
        http_port="0",
        sync_interval="3600",
        archive_after="1",
    )
    return {**env, **extra}


def _crmsync(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmsync", *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _seed(data_dir: Path, count: int) -> None:
    now = datetime.now(UTC)
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(ROOT / "mappings" / "salesforce.yaml"),
            "aston",
            count=count,
            seed=5,
            start=now - timedelta(days=200),
            span_days=190,
            now=now,
        )


def _events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
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


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """A ``crmsync run`` worker on the embedded state, holding profile ``default``."""
    _seed(tmp_path, 30)
    env = _env(tmp_path)
    log = tmp_path / "worker.log"
    proc = start_run(env, log)
    try:
        acquired = _wait_for(
            lambda: any(
                e.get("event") == "cycle_finished" for e in _events(log.read_text(errors="replace"))
            ),
            90,
        )
        assert acquired, log.read_text(errors="replace")[-2000:]
        yield proc, env
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _postgres_state() -> dict[str, str]:
    require_postgres()
    return {"CRMSYNC_STATE_URL": POSTGRES_URL, "CRMSYNC_PROFILE": f"lock-{uuid.uuid4().hex[:8]}"}


def _assert_refused_naming(result: subprocess.CompletedProcess[str], pid: int) -> None:
    assert result.returncode == 5, result.stderr[-2000:]
    assert "crmsync run" in result.stderr
    assert f"pid {pid}" in result.stderr or f"pid={pid}" in result.stderr
    assert "nothing was done" in result.stderr


def test_one_off_commands_beside_a_running_worker_name_it_and_exit_5(
    worker: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    """sync --once, archive run and state prune refuse while the worker works the profile
    (naming its command and pid); once it has stopped, sync --once runs."""
    proc, env = worker
    for args in (("sync", "--once"), ("archive", "run"), ("state", "prune")):
        _assert_refused_naming(_crmsync(env, *args), proc.pid)
    started = time.monotonic()
    waited = _crmsync(env, "sync", "--once", "--wait", "2")
    assert time.monotonic() - started >= 2
    _assert_refused_naming(waited, proc.pid)
    assert "waiting up to 2s for profile 'default'" in waited.stderr
    dry = _crmsync(env, "sync", "--once", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr[-2000:]  # a dry run writes nothing: no lock
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    after = _crmsync(env, "sync", "--once", "--json")
    assert after.returncode == 0, after.stderr[-2000:]


@pytest.mark.postgres
def test_the_advisory_lock_names_the_worker_holding_a_postgresql_profile(
    tmp_path: Path,
) -> None:
    """With the state on PostgreSQL, sync --once beside a worker names the worker (from the
    server's session list) and exits 5. A replica of the shared queue holds the profile
    only while it runs one of its jobs: the command is started during the worker's first
    (long) cycle."""
    extra = _postgres_state()
    _seed(tmp_path, 3000)
    env = _env(tmp_path, **extra)
    log = tmp_path / "worker.log"
    # one write per call: a long cycle
    proc = start_run({**env, "CRMSYNC_WRITE_BATCH": "1"}, log, "--new-profile")
    try:
        assert _wait_for(
            lambda: any(
                e.get("event") == "cycle_started" for e in _events(log.read_text(errors="replace"))
            ),
            90,
        ), log.read_text(errors="replace")[-2000:]
        _assert_refused_naming(_crmsync(env, "sync", "--once"), proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_two_archive_runs_at_once_archive_each_version_once(tmp_path: Path) -> None:
    """Two archive runs started together (the second waiting for the first) leave one
    entry per complaint version, and verify says intact."""
    _seed(tmp_path, 600)
    env = _env(tmp_path)
    runs = []
    for i in range(2):  # logs go to files: a full pipe would stall the process holding the lock
        with (
            (tmp_path / f"run{i}.out").open("wb") as out,
            (tmp_path / f"run{i}.err").open("wb") as err,
        ):
            runs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "crmsync", "archive", "run", "--json", "--wait", "300"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=err,
                )
            )
    codes = [run.wait(600) for run in runs]
    outputs = [
        ((tmp_path / f"run{i}.out").read_text(), (tmp_path / f"run{i}.err").read_text())
        for i in range(2)
    ]
    assert codes == [0, 0], [err[-2000:] for _out, err in outputs]
    archived = sorted(json.loads(out)["archived"] for out, _err in outputs)
    exported = _crmsync(env, "archive", "export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    versions = Counter(
        (d["header"]["complaint_id"], d["header"]["version"])
        for d in map(json.loads, exported.stdout.splitlines())
    )
    assert versions, "the runs archived closed complaints"
    assert [v for v, n in versions.items() if n > 1] == []
    assert archived == [0, len(versions)]  # the second found everything archived
    verify = _crmsync(env, "archive", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
