"""The worker writes last month's report on the first day of each month.

Embedded default (Aston, London): two complaints received Mon 2 Feb 2026 10:00 (GMT) are
synced; on 1 March 2026 at 04:00 UTC the job writes February's report, HTML and JSON.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import Runtime, build_worker, local_crm_path
from crmsync.service.report_monthly import last_month

MARCH_FIRST = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def test_the_job_writes_last_months_report(runtime: Runtime) -> None:
    """February's report lands in data_dir/reports as default-2026-02.html and .json."""
    with LocalCrm(local_crm_path(runtime.settings)) as crm:
        results = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": f"2026-02-02T1{i}:00:00.000+0000",
                }
                for i in range(2)
            ],
        )
        assert all(r.ok for r in results)
    runtime.cycle.run(now=int(datetime(2026, 2, 20, tzinfo=UTC).timestamp()))
    build_worker(runtime, interval=300, clock=lambda: MARCH_FIRST).monthly_report()
    folder = runtime.settings.data_dir / "reports"
    assert sorted(p.name for p in folder.iterdir()) == [
        "default-2026-02.html",
        "default-2026-02.json",
    ]
    document = json.loads((folder / "default-2026-02.json").read_text(encoding="utf-8"))
    assert (document["from"], document["to"], document["period"]) == (
        "2026-02-01",
        "2026-02-28",
        "week",
    )
    assert document["complaints"] == 2
    # email-reply: 2 business days from Mon 2 Feb -> due Wed 4 Feb, never acknowledged
    email = [t for t in document["totals"] if t["clock"] == "email-reply"]
    assert [(t["due"], t["overdue"], t["breached"]) for t in email] == [(2, 2, 2)]
    assert "<svg" in (folder / "default-2026-02.html").read_text(encoding="utf-8")


def test_a_missed_first_is_made_up_and_a_written_month_is_left_alone(runtime: Runtime) -> None:
    """Down on 1 March: the run of 2 March writes February; the run of 3 March rewrites nothing."""
    runtime.cycle.run(now=int(datetime(2026, 2, 20, tzinfo=UTC).timestamp()))
    build_worker(
        runtime, interval=300, clock=lambda: datetime(2026, 3, 2, 4, tzinfo=UTC)
    ).monthly_report()
    folder = runtime.settings.data_dir / "reports"
    files = sorted(folder.iterdir())
    assert [p.name for p in files] == ["default-2026-02.html", "default-2026-02.json"]
    before = [(p.stat().st_mtime_ns, p.read_bytes()) for p in files]
    build_worker(
        runtime, interval=300, clock=lambda: datetime(2026, 3, 3, 4, tzinfo=UTC)
    ).monthly_report()
    assert sorted(folder.iterdir()) == files
    assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in files] == before


def test_off_writes_nothing_and_a_folder_moves_it(runtime: Runtime, tmp_path: Path) -> None:
    """CRMSYNC_MONTHLY_REPORT=off: no job and no file; an absolute folder: files go there."""
    off = replace_settings(runtime, "off")
    worker = build_worker(off, interval=300, clock=lambda: MARCH_FIRST)
    assert worker.report_folder() is None
    worker.monthly_report()
    assert not (runtime.settings.data_dir / "reports").exists()
    moved = replace_settings(runtime, str(tmp_path / "elsewhere"))
    build_worker(moved, interval=300, clock=lambda: MARCH_FIRST).monthly_report()
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == [
        "default-2026-02.html",
        "default-2026-02.json",
    ]


def replace_settings(runtime: Runtime, monthly_report: str) -> Runtime:
    settings = runtime.settings.model_copy(update={"monthly_report": monthly_report})
    return replace(runtime, settings=settings)


def test_last_month_is_the_charters_local_month(runtime: Runtime) -> None:
    """At 23:30 UTC on 31 March London is already in April (BST): last month is March."""
    april_in_london = int(datetime(2026, 3, 31, 23, 30, tzinfo=UTC).timestamp())
    first, last = last_month(runtime.charter, april_in_london)
    assert (first.isoformat(), last.isoformat()) == ("2026-03-01", "2026-03-31")
    january = int(datetime(2026, 1, 1, 4, 0, tzinfo=UTC).timestamp())
    assert [d.isoformat() for d in last_month(runtime.charter, january)] == [
        "2025-12-01",
        "2025-12-31",
    ]


def test_the_monthly_report_files_are_private(runtime: Runtime) -> None:
    """The worker's report files hold complainants' data: 0600 under umask 022."""
    runtime.cycle.run(now=int(datetime(2026, 2, 20, tzinfo=UTC).timestamp()))
    old = os.umask(0o022)
    try:
        build_worker(runtime, interval=300, clock=lambda: MARCH_FIRST).monthly_report()
    finally:
        os.umask(old)
    folder = runtime.settings.data_dir / "reports"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {"default-2026-02.html": 0o600, "default-2026-02.json": 0o600}
