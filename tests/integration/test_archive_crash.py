"""Crash safety of archiving with real processes: ``crmsync archive run`` killed by SIGKILL
at a named step (``CRMSYNC_CRASH_AT=step:n``), then simply run again, ends with exactly one
archive entry per closed complaint, every record marked with its entry and an intact chain:
what a run that was never killed leaves.

Every scenario starts from a copy of one prepared data folder (local CRM, nothing else);
the killed processes run two at a time in the background (module fixture); each
parametrised test then runs the archive again in this process and checks the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.archive.local import LocalArchiveStore
from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import (
    ARCHIVE_DIR,
    LOCAL_CRM_FILE,
    build_archive,
    build_archiving,
    build_runtime,
)
from crmsync.service.archive_reading import verify_archive
from fakes.local_settings import local_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-06-01T02:00:00Z"
OLD_CLOSED = 6  # closed in March: due (30 days) by NOW
RUN_TIMEOUT_S = 180

# (step, n): the n-th time the run reaches the step it is killed
SCENARIOS = [
    ("queued", 1),
    ("watermark", 1),
    ("appended", 1),
    ("appended", 4),
    ("verified", 6),
    ("marked", 1),
    ("dequeued", 1),
]


def _seed(data_dir: Path) -> list[str]:
    """Six complaints closed in March, one closed 20 May (not due), one open."""
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        rows: list[dict[str, Any]] = [
            {
                "Type": "Complaint",
                "CreatedDate": f"2026-03-0{i + 2}T10:00:00.000+0000",
                "ClosedDate": f"2026-03-1{i}T10:00:00.000+0000",
                "Origin": "Email",
                "SuppliedName": f"Customer {i}",
            }
            for i in range(OLD_CLOSED)
        ]
        rows.append(
            {
                "Type": "Complaint",
                "CreatedDate": "2026-05-01T10:00:00.000+0000",
                "ClosedDate": "2026-05-20T10:00:00.000+0000",
            }
        )
        rows.append({"Type": "Complaint", "CreatedDate": "2026-05-01T10:00:00.000+0000"})
        results = crm.insert_records("Case", rows)
        assert all(r.ok for r in results)
        ids = [str(r.id) for r in results]
        crm.insert_records(
            "Task",
            [
                {
                    "WhatId": ids[0],
                    "Type": "Customer Update",
                    "CompletedDateTime": "2026-03-05T10:00:00.000+0000",
                }
            ],
        )
    return ids


def _run(data_dir: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMSYNC_", "COVERAGE"))}
    env.update(
        {
            "CRMSYNC_DATA_DIR": str(data_dir),
            "CRMSYNC_CHARTER": str(REPO / "mappings" / "charters" / "aston.yaml"),
            "CRMSYNC_MAPPING": str(REPO / "mappings" / "salesforce.yaml"),
            "CRMSYNC_CONFIG": str(data_dir / "none.toml"),
            "CRMSYNC_LOG_FORMAT": "json",
        }
    )
    if crash_at:
        env["CRMSYNC_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "crmsync", "archive", "run", "--now", NOW, "--json"],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


@dataclass
class Outcome:
    """The killed process and the folder it left."""

    data_dir: Path
    killed: subprocess.CompletedProcess[str]


def _scenario(base: Path, seed: Path, name: str, crash_at: str) -> Outcome:
    data_dir = base / name
    shutil.copytree(seed, data_dir)
    return Outcome(data_dir, _run(data_dir, crash_at))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[Outcome]]:
    """Start every killed run two at a time in the background."""
    base = tmp_path_factory.mktemp("archive-crash")
    seed = base / "seed"
    seed.mkdir()
    _seed(seed)
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {
        f"{step}-{n}": pool.submit(_scenario, base, seed, f"{step}-{n}", f"{step}:{n}")
        for step, n in SCENARIOS
    }
    pool.shutdown(wait=False)
    return futures


def _rerun(data_dir: Path) -> None:
    """Run the archive again, uncrashed, in this process (the same wiring as the CLI)."""
    settings = local_settings(data_dir)
    runtime = build_runtime(settings)
    store = build_archive(settings)
    try:
        report = build_archiving(runtime, store).run(
            now=int(datetime.fromisoformat(NOW).timestamp())
        )
        assert report.status == "ok", report.errors
    finally:
        store.close()
        runtime.close()


def _marks(data_dir: Path) -> dict[str, tuple[Any, Any]]:
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        return {
            r.id: (r.fields.get("Archived_At__c"), r.fields.get("Archive_Ref__c"))
            for r in crm.export_records("Case")
        }


@pytest.mark.parametrize(("step", "n"), SCENARIOS, ids=[f"{s}:{n}" for s, n in SCENARIOS])
def test_a_killed_archive_run_and_a_rerun_archive_each_case_once(
    outcomes: dict[str, Future[Outcome]], step: str, n: int
) -> None:
    """Killed at the step, run again: one entry per closed case, in closing order, each
    record marked with its own entry at the run's instant, and the chain intact."""
    outcome = outcomes[f"{step}-{n}"].result(timeout=RUN_TIMEOUT_S * 3)
    assert outcome.killed.returncode == -9, outcome.killed.stderr[-2000:]
    _rerun(outcome.data_dir)
    store = LocalArchiveStore(outcome.data_dir / ARCHIVE_DIR)
    marks = _marks(outcome.data_dir)
    ids = list(marks)  # insertion order: the six March cases first (closed 10..15 March)
    # due order is closing order, so case k is entry k; each marked at NOW (02:00:00Z)
    expected = {
        cid: ("2026-06-01T02:00:00.000+0000", f"default/{k}")
        for k, cid in enumerate(ids[:OLD_CLOSED], 1)
    }
    expected.update(dict.fromkeys(ids[OLD_CLOSED:], (None, None)))
    assert marks == expected
    for k, cid in enumerate(ids[:OLD_CLOSED], 1):
        assert [h.ref for h in store.search("default", complaint_id=cid)] == [f"default/{k}"]
    assert store.head("default").seq == OLD_CLOSED
    assert verify_archive(store, "default", None).ok
