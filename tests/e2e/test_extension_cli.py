"""Extensions (semantics 4.4) through the installed command: evaluate, explain and check.

Housing Ombudsman calendar: Europe/London, Mon-Fri 09:00-17:00, England's bank holidays
(Mon 4 May and Mon 25 May 2026); May 2026 is BST, so 17:00 local is 16:00Z.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOUSING = REPO / "mappings" / "charters" / "housing-ombudsman.yaml"

# Acknowledged Tue 5 May 11:00 BST: stage 1 response due 10 working days later, Tue 19 May
# 17:00 BST; the extension notified Mon 18 May moves it 10 working days (skipping Mon 25 May)
# to Wed 3 Jun 17:00 BST = 16:00Z.
COMPLAINT = {
    "id": "H-1",
    "events": {
        "received": "2026-05-04T10:00:00+01:00",
        "acknowledged": "2026-05-05T11:00:00+01:00",
        "extended": "2026-05-18T10:00:00+01:00",
    },
}


def crmsync(
    *args: str | Path, stdin: str | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with no CRMSYNC_* settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "300", "CRMSYNC_CONFIG": str(cwd / "crmsync.toml")})
    beside = Path(sys.executable).with_name("crmsync")
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "crmsync"]
    return subprocess.run(
        [*command, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_evaluate_reports_the_extended_deadline_and_the_count() -> None:
    """evaluate: stage1-response due Wed 3 Jun 16:00Z with "extensions": 1; others without."""
    done = crmsync(
        "evaluate", "-c", HOUSING, "-i", "-", "--now", "2026-05-20T12:00:00Z",
        stdin=json.dumps(COMPLAINT) + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = {json.loads(x)["clock"]: x for x in done.stdout.splitlines()}
    assert lines["stage1-response"] == (
        '{"complaint_id": "H-1", "clock": "stage1-response", "state": "on_track", '
        '"started_at": "2026-05-05T10:00:00Z", "due_at": "2026-06-03T16:00:00Z", '
        '"warn_at": null, "stopped_at": null, "occurrence": 0, "extensions": 1}'
    )
    assert lines["stage2-response"].endswith('"occurrence": 0, "extensions": 0}')
    assert "extensions" not in lines["stage1-acknowledge"]


def test_explain_says_which_notice_extended_the_deadline_and_to_when(tmp_path: Path) -> None:
    """explain names the notice, the old and the new due instant."""
    source = tmp_path / "h.jsonl"
    source.write_text(json.dumps(COMPLAINT) + "\n", encoding="utf-8")
    done = crmsync(
        "explain", "-c", HOUSING, "-i", source, "--id", "H-1", "--now", "2026-05-20T12:00:00Z"
    )
    assert done.returncode == 0, done.stderr
    assert (
        "extension 1: 'extended' notified Mon 18 May 2026 10:00, at or before the due "
        "Tue 19 May 2026 17:00; deadline extended to Wed 3 Jun 2026 17:00"
    ) in done.stdout


def test_check_names_an_extend_event_the_mapping_lacks(tmp_path: Path) -> None:
    """A misspelt `extend.on` event is reported at its line with the event the mapping has."""
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    charter = tmp_path / "mappings" / "charters" / "housing-ombudsman.yaml"
    text = charter.read_text(encoding="utf-8")
    assert text.count("extend: {on: extended,") == 1
    charter.write_text(text.replace("extend: {on: extended,", "extend: {on: extnded,"), "utf-8")
    line = 1 + text.splitlines().index("    extend: {on: extended, by: 10 business_days, max: 1}")
    done = crmsync(
        "check",
        "mappings/charters/housing-ombudsman.yaml",
        "--mapping",
        "mappings/salesforce.yaml",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert f"housing-ombudsman.yaml:{line}:" in done.stderr
    assert "event 'extnded' is not in the mapping" in done.stderr
    assert "(did you mean 'extended'?)" in done.stderr
