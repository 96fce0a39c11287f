"""``crmsync run`` (embedded SQLite state, one process) takes in its crmsync.toml while it
runs: a ``[profiles.NAME]`` table removed retires that profile's worker, one added starts
a worker, an edited charter restarts its profile's worker; the untouched profile runs on."""

from __future__ import annotations

import signal
import uuid
from functools import partial
from pathlib import Path

import pytest

from worker_processes import ROOT, clean_env, events_named, reap, start_run, wait_for

pytestmark = [pytest.mark.slow]

ASTON = ROOT / "mappings" / "charters" / "aston.yaml"


def test_one_process_takes_in_its_edited_configuration(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    steady, dropped, added = (f"cfg-{tag}-{n}" for n in ("steady", "dropped", "added"))
    charter = tmp_path / "charter.yaml"
    charter.write_bytes(ASTON.read_bytes())
    config = tmp_path / "crmsync.toml"

    def write(*names: str) -> None:
        config.write_text(
            "sync_interval = 1\n"
            + "".join(f"[profiles.\"{n}\"]\ncharter = '{charter}'\n" for n in names)
        )

    write(steady, dropped)
    env = clean_env(
        config=str(config),
        data_dir=str(tmp_path),
        http_port="0",
        log_format="json",
    )
    log = tmp_path / "worker.log"
    proc = start_run(env, log)

    logged = partial(events_named, log)

    def cycles(profile: str) -> int:
        return len(logged("cycle_finished", profile))

    try:
        wait_for(lambda: cycles(steady) and cycles(dropped), 60, "both profiles cycling")
        write(steady, added)
        wait_for(lambda: logged("profile_file_removed", dropped), 30, "the removal taken in")
        wait_for(lambda: cycles(added), 30, "the added profile cycling")
        before = len(logged("worker_started", steady))
        charter.write_text(charter.read_text() + "\n# edited\n")
        wait_for(lambda: logged("profile_sources_changed", steady), 30, "the edit noticed")
        wait_for(
            lambda: len(logged("worker_started", steady)) > before, 30, "the steady one restarted"
        )
        after = cycles(dropped)
        wait_for(lambda: cycles(steady) > 0 and cycles(added) >= 2, 30, "cycling on")
        assert cycles(dropped) == after
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        reap(proc)
    assert "Traceback" not in log.read_text(errors="replace")
