"""The worker's nightly archive job: registered at 02:00 UTC (the state retention job at
03:00), and what one run of it does."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.archive.local import LocalArchiveStore
from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import ARCHIVE_DIR, Runtime, build_worker, local_crm_path, settings_model
from crmsync.worker.scheduling import ARCHIVE_JOB, PRUNE_JOB


def test_the_archive_job_archives_cases_closed_long_ago(runtime: Runtime) -> None:
    """One run of the job archives a case closed in 2020 and marks it (the CRM's own time)."""
    with LocalCrm(local_crm_path(runtime.settings)) as crm:
        (made,) = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "CreatedDate": "2019-12-02T10:00:00.000+0000",
                    "ClosedDate": "2020-01-06T10:00:00.000+0000",
                }
            ],
        )
    build_worker(runtime, interval=300, clock=lambda: datetime.now(UTC)).archive()
    store = LocalArchiveStore(runtime.settings.data_dir / ARCHIVE_DIR)
    assert [h.complaint_id for h in store.search("default")] == [made.id]
    with LocalCrm(local_crm_path(runtime.settings)) as crm:
        (record,) = crm.records_by_id("Case", [str(made.id)], ["Archive_Ref__c"])
    assert record.fields["Archive_Ref__c"] == "default/1"


def test_the_worker_schedules_the_archive_every_night_at_two_utc(runtime: Runtime) -> None:
    """While the worker runs, its scheduler holds a cron job for 02:00 UTC, and the state
    retention's for 03:00 UTC."""
    worker = build_worker(runtime, interval=3600, clock=lambda: datetime.now(UTC))
    seen: dict[str, Any] = {}

    def watch() -> None:
        for _ in range(200):
            job = worker.scheduler.get_job(ARCHIVE_JOB) if worker.scheduler.running else None
            if job is not None:
                seen["trigger"] = str(job.trigger)
                seen["next"] = job.next_run_time
                seen["prune"] = str(worker.scheduler.get_job(PRUNE_JOB).trigger)
                break
            time.sleep(0.05)
        worker.stop_requested.set()

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        worker.run_forever()
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
        watcher.join()
    assert seen["trigger"] == "cron[hour='2', minute='0']"
    assert seen["prune"] == "cron[hour='3', minute='0']"
    assert (seen["next"].hour, seen["next"].minute, seen["next"].utcoffset()) == (
        2,
        0,
        UTC.utcoffset(None),
    )


def test_build_archive_follows_crmsync_archive_url(tmp_path: Path) -> None:
    """Empty: the local folder under the data dir; 'state' needs a PostgreSQL state store;
    an unknown scheme is refused naming the choices, never the rest of the URL."""
    from crmsync.bootstrap import build_archive
    from crmsync.errors import ConfigError

    local = build_archive(settings_model()(data_dir=tmp_path, archive_url=None, state_url=None))
    assert isinstance(local, LocalArchiveStore)
    assert local.root == tmp_path / ARCHIVE_DIR
    with pytest.raises(ConfigError, match="needs a PostgreSQL CRMSYNC_STATE_URL"):
        build_archive(settings_model()(data_dir=tmp_path, archive_url="state", state_url=None))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'") as refused:
        build_archive(settings_model()(data_dir=tmp_path, archive_url="ftp://u:hunter2@h/x"))  # type: ignore[arg-type]
    assert "hunter2" not in str(refused.value)
