"""``CRMSYNC_PROFILES_DIR`` with the embedded SQLite state (one process, no queue): a
changed file restarts its profile's worker with the new settings and a removed file stops
its worker while ``crmsync run`` runs; the untouched profile's worker runs on."""

from __future__ import annotations

import signal
import uuid
from functools import partial
from pathlib import Path

import pytest

from worker_processes import (
    clean_env,
    events_named,
    http_get,
    reap,
    start_run,
    wait_for,
)

pytestmark = [pytest.mark.slow]


def test_one_process_takes_in_a_changed_and_a_removed_profile_file(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    steady, changed, removed = (f"one-{tag}-{n}" for n in ("steady", "changed", "removed"))
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in (steady, changed, removed):
        (folder / f"{name}.toml").write_text("sync_interval = 1\n")
    env = clean_env(
        config=str(tmp_path / "none.toml"),
        profiles_dir=str(folder),
        data_dir=str(tmp_path),
        sync_interval="1",
        http_port="0",
        replica=f"single-{tag}",
        log_format="json",
    )
    log = tmp_path / "worker.log"
    proc = start_run(env, log)

    logged = partial(events_named, log)

    def cycles(profile: str) -> int:
        return len(logged("cycle_finished", profile))

    try:
        wait_for(lambda: all(cycles(p) for p in (steady, changed, removed)), 60, "3 profiles")
        (folder / f"{changed}.toml").write_text("sync_interval = 2\n")
        (folder / f"{removed}.toml").unlink()
        wait_for(lambda: logged("profile_file_removed", removed), 30, "the removal taken in")
        wait_for(lambda: logged("profile_file_changed", changed), 30, "the change taken in")
        [restarted] = wait_for(
            lambda: [e for e in logged("worker_started", changed) if e["interval_seconds"] == 2],
            30,
            "the changed profile's new worker",
        )
        assert sorted(str(e["profile"]) for e in logged("worker_retired")) == sorted(
            [changed, removed]
        )
        after = {p: cycles(p) for p in (steady, changed, removed)}
        wait_for(
            lambda: cycles(steady) >= after[steady] + 2 and cycles(changed) > after[changed],
            30,
            "the steady and the changed profile cycling on",
        )
        assert cycles(removed) == after[removed]
        port = int(logged("http_started")[0]["port"])  # type: ignore[call-overload]
        _status, metrics = http_get(port, "/metrics")
        assert f'profile="{removed}"' not in metrics
        assert f'crmsync_replica_info{{replica="single-{tag}"}} 1.0' in metrics
        assert restarted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
    assert "Traceback" not in log.read_text(errors="replace")
