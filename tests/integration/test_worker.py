"""``crmsync run`` as a real process: cycles every CRMSYNC_SYNC_INTERVAL, and SIGTERM lets the
cycle in progress finish before the worker exits 0.

The worker's JSON log lines on standard error are the observable: ``cycle_started``,
``cycle_finished``, ``stop_requested``, ``worker_stopped``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from state_views import recorded_runs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "salesforce.yaml"
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
WAIT_S = 120  # generous: the machine may be busy; the tests end as soon as they can


def seed(data_dir: Path, count: int) -> None:
    """A local CRM with ``count`` Aston complaints received in the last 30 days."""
    now = datetime.now(UTC)
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(MAPPING),
            "aston",
            count=count,
            seed=3,
            start=now - timedelta(days=30),
            span_days=29,
            now=now,
        )


class WorkerProcess:
    """A running ``crmsync run`` whose JSON log events are collected as they come."""

    def __init__(self, data_dir: Path, interval: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env.update(
            CRMSYNC_DATA_DIR=str(data_dir),
            CRMSYNC_CHARTER=str(ASTON),
            CRMSYNC_MAPPING=str(MAPPING),
            CRMSYNC_SYNC_INTERVAL=interval,
            CRMSYNC_LOG_FORMAT="json",
            CRMSYNC_HTTP_PORT="0",  # any free port: never collide with another worker
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run"],
            env=env,
            cwd=data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._arrived: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._arrived.put(event)

    def wait_for(self, name: str, count: int = 1) -> None:
        """Wait until ``count`` events named ``name`` were logged (fails after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        while sum(e.get("event") == name for e in self.events) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (not self._reader.is_alive() and self._arrived.empty()):
                pytest.fail(f"no {count} x {name} (exit {self.proc.poll()}):\n{self.log()}")
            try:
                self.events.append(self._arrived.get(timeout=min(left, 0.5)))
            except queue.Empty:
                continue

    def stop(self, timeout: float) -> int:
        """SIGTERM, then the exit status within ``timeout`` seconds (fails otherwise)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout} s of SIGTERM:\n{self.log()}")
        self._reader.join(timeout=10)
        while not self._arrived.empty():
            self.events.append(self._arrived.get())
        return code

    def names(self) -> list[str]:
        return [str(e.get("event")) for e in self.events]

    def log(self) -> str:
        return "".join(self.lines[-40:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(count: int, interval: str) -> WorkerProcess:
        data_dir = tmp_path / "data"
        seed(data_dir, count)
        worker = WorkerProcess(data_dir, interval)
        started.append(worker)
        return worker

    yield start
    for worker in started:  # a failed test must not leave a worker behind
        worker.kill()
        if worker.proc.stderr is not None:
            worker.proc.stderr.close()


def test_cycles_every_interval_and_sigterm_exits_zero(start_worker: Any, tmp_path: Path) -> None:
    """With a 2 s interval two cycles finish one after the other; SIGTERM then stops the
    worker with exit status 0 and a ``worker_stopped`` event."""
    worker = start_worker(200, "2")
    worker.wait_for("cycle_finished", 2)
    first, second = [e for e in worker.events if e.get("event") == "cycle_finished"][:2]
    assert first["status"] == second["status"] == "ok"
    assert first["flags_written"] == 200  # every complaint is flagged the first time
    assert worker.stop(timeout=10) == 0
    assert worker.names()[-1] == "worker_stopped"
    runs = SqliteStateStore(tmp_path / "data" / "state.sqlite3")
    try:
        recent = recorded_runs(runs, "default")
    finally:
        runs.close()
    assert len(recent) >= 2
    assert {r.status for r in recent} == {"ok"}  # no cycle was cut short


def test_sigterm_during_a_cycle_lets_it_finish(start_worker: Any, tmp_path: Path) -> None:
    """SIGTERM while the first (long) cycle runs: that cycle still finishes and is recorded,
    then the worker stops with exit status 0."""
    worker = start_worker(2000, "5 minutes")
    worker.wait_for("cycle_started")
    code = worker.stop(timeout=WAIT_S)
    names = worker.names()
    assert code == 0, worker.log()
    # the stop was requested while the cycle ran, and the cycle finished before the exit
    assert names.index("cycle_started") < names.index("stop_requested")
    assert names.index("stop_requested") < names.index("cycle_finished")
    assert names.index("cycle_finished") < names.index("worker_stopped")
    assert names.count("cycle_started") == 1
    finished = next(e for e in worker.events if e.get("event") == "cycle_finished")
    assert finished["status"] == "ok"
    assert finished["flags_written"] == 2000
    runs = SqliteStateStore(tmp_path / "data" / "state.sqlite3")
    try:
        [run] = recorded_runs(runs, "default")
    finally:
        runs.close()
    assert run.status == "ok"
