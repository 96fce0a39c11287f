"""A complaint deleted in the CRM, through the command line: ``local delete``, then a
cycle, then ``status``: the complaint is gone from the worker's view, the cycle is clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE

ROOT = Path(__file__).resolve().parents[2]


def _crmsync(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update(
        {
            "CRMSYNC_DATA_DIR": str(data_dir),
            "CRMSYNC_CONFIG": str(data_dir / "none.toml"),
            "CRMSYNC_SECRETS_DIR": str(data_dir / "no-secrets"),
            "CRMSYNC_LOG_FORMAT": "json",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "crmsync", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_complaint_deleted_with_local_delete_leaves_status_after_the_next_cycle(
    tmp_path: Path,
) -> None:
    """Two open complaints received three days ago: after ``local delete`` of one, the next
    ``sync --once`` exits 0 counting one deleted complaint and ``status`` lists only the
    other; deleting an id the CRM does not hold exits 3 naming it."""
    received = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.insert_records(
            "Case",
            [{"Type": "Complaint", "Origin": "Email", "CreatedDate": received} for _ in range(2)],
        )
    keep, drop = (str(r.id) for r in results)
    first = _crmsync(tmp_path, "sync", "--once", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    listed = _crmsync(tmp_path, "status", "--json")
    assert sorted(json.loads(line)["complaint_id"] for line in listed.stdout.splitlines()) == (
        sorted([keep, drop])
    )
    deleted = _crmsync(tmp_path, "local", "delete", "Case", drop)
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted 1 Case record" in deleted.stderr
    again = _crmsync(tmp_path, "sync", "--once", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    assert (report["complaints_deleted"], report["errors"]) == (1, [])
    after = _crmsync(tmp_path, "status", "--json")
    assert [json.loads(line)["complaint_id"] for line in after.stdout.splitlines()] == [keep]
    missing = _crmsync(tmp_path, "local", "delete", "Case", drop)
    assert missing.returncode == 3
    assert f"{drop}: NOT_FOUND" in missing.stderr
    assert "Traceback" not in first.stderr + again.stderr + deleted.stderr + missing.stderr
