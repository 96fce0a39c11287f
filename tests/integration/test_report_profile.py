"""``crmsync report`` without --input: the profile's own complaints, no CRM calls.

The embedded local CRM holds four Aston complaints received Mon 2 March 2026 10:00 (GMT);
three are closed and archived, one stays open. After a sync, an archive run and the state
store forgetting two closed ones, the report reads the state store and the archive only:
with the CRM file gone it still counts all four, each once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from tests.fakes.local_settings import local_settings
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.bootstrap import LOCAL_CRM_FILE, build_state
from crmsync.cli import app
from crmsync.ports import LedgerEntry

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
CLOSINGS = ["2026-03-03T10:00:00.000+0000", "2026-03-10T10:00:00.000+0000", None]
CLOSINGS.append("2026-03-31T23:30:00.000+0000")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRMSYNC_CHARTER", str(ASTON))
    monkeypatch.setenv("CRMSYNC_MAPPING", str(REPO / "mappings" / "salesforce.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": "2026-03-02T10:00:00.000+0000",
                    "ClosedDate": closed,
                    "IsClosed": closed is not None,
                    "SuppliedName": f"Customer {i}",
                }
                for i, closed in enumerate(CLOSINGS)
            ],
        )
        assert all(r.ok for r in results)
    yield tmp_path
    structlog.reset_defaults()


def test_report_reads_the_state_store_and_the_archive(data_dir: Path) -> None:
    """Synced, archived, CRM file removed: the report still counts every complaint once."""
    synced = CliRunner().invoke(app, ["sync", "--once", "--now", "2026-04-02T12:00:00Z"])
    assert synced.exit_code == 0, synced.output
    archived = CliRunner().invoke(app, ["archive", "run", "--now", "2026-06-01T02:00:00Z"])
    assert archived.exit_code == 0, archived.output
    state = build_state(local_settings(data_dir))
    held = state.complaints_page("default", "", 100)
    closed = [c.id for c in held if c.closed]
    assert len(held) == 4 and len(closed) == 3
    state.delete_complaints("default", closed[:2])  # as retention forgets them: archive only
    state.close()
    (data_dir / LOCAL_CRM_FILE).unlink()  # no CRM call is possible now
    result = CliRunner().invoke(
        app,
        [
            "report",
            "-c",
            str(ASTON),
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-30",
            "--now",
            "2026-06-01T00:00:00Z",
            "--period",
            "all",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["complaints"] == 4
    totals = {row["clock"]: row for row in document["totals"]}
    # level 1 resolution: 1 business day from Mon 2 Mar 10:00 -> due Tue 3 Mar 17:00
    assert totals["level1-resolution"]["due"] == 4


OPEN_CASES = [
    # received Mon 2 Mar 10:00 by email: email-reply due Wed 4 Mar 17:00 and level 1
    # resolution due Tue 3 Mar 17:00 -> both breached on Thu 5 Mar 12:00; nothing running
    {"Origin": "Email", "OwnerId": "005A", "CreatedDate": "2026-03-02T10:00:00.000+0000"},
    # received Wed 4 Mar 11:00 by email: level 1 due Thu 5 Mar 17:00, email-reply due
    # Fri 6 Mar 16:30 (Friday closes at 16:30) -> on track, next due Thu 5 Mar 17:00
    {"Origin": "Email", "OwnerId": "005A", "CreatedDate": "2026-03-04T11:00:00.000+0000"},
    # received Thu 5 Mar 09:00 by phone: level 1 due Fri 6 Mar 16:30 -> on track
    {"Origin": "Phone", "OwnerId": "005B", "CreatedDate": "2026-03-05T09:00:00.000+0000"},
    # closed: not listed
    {
        "Origin": "Email",
        "OwnerId": "005A",
        "CreatedDate": "2026-03-02T10:00:00.000+0000",
        "ClosedDate": "2026-03-03T10:00:00.000+0000",
        "IsClosed": True,
    },
]
THURSDAY_NOON = "2026-03-05T12:00:00Z"


@pytest.fixture
def open_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRMSYNC_CHARTER", str(ASTON))
    monkeypatch.setenv("CRMSYNC_MAPPING", str(REPO / "mappings" / "salesforce.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.insert_records("Case", [{"Type": "Complaint", **c} for c in OPEN_CASES])
        assert all(r.ok for r in results)
        ids = [str(r.id) for r in results]
    synced = CliRunner().invoke(app, ["sync", "--once", "--now", THURSDAY_NOON])
    assert synced.exit_code == 0, synced.output
    yield ids
    structlog.reset_defaults()


def status(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["status", "--json", "--now", THURSDAY_NOON, *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_status_lists_open_complaints_worst_first(open_cases: list[str]) -> None:
    """Breached first, then on track by next due; the closed complaint is not listed."""
    late, mid, new, _closed = open_cases
    lines = status()
    assert [(s["complaint_id"], s["status"], s["next_due"]) for s in lines] == [
        (late, "breached", None),
        (mid, "on_track", "2026-03-05T17:00:00Z"),
        (new, "on_track", "2026-03-06T16:30:00Z"),
    ]
    # the complaint's status is breached; each clock says which kind: overdue (unanswered)
    assert lines[0]["clocks"] == {"email-reply": "overdue", "level1-resolution": "overdue"}
    assert [s["complaint_id"] for s in status("--state", "breached")] == [late]
    assert [s["complaint_id"] for s in status("--state", "overdue")] == [late]
    assert status("--state", "late") == []
    assert [s["complaint_id"] for s in status("--owner", "005B")] == [new]
    assert [s["complaint_id"] for s in status("--clock", "email-reply")] == [late, mid]
    assert status("--state", "at_risk") == []


def test_explain_reads_the_record_from_the_profiles_crm(open_cases: list[str]) -> None:
    """explain --id without --input reads the record through the mapping and explains it."""
    mid = open_cases[1]
    result = CliRunner().invoke(
        app, ["explain", "-c", str(ASTON), "--id", mid, "--now", THURSDAY_NOON]
    )
    assert result.exit_code == 0, result.output
    assert mid in result.stdout
    assert "email-reply" in result.stdout and "on_track" in result.stdout
    missing = CliRunner().invoke(app, ["explain", "-c", str(ASTON), "--id", "500XX0000000009"])
    assert missing.exit_code == 2
    assert "no complaint with id '500XX0000000009'" in missing.output


def test_status_table_lists_each_open_complaint(open_cases: list[str]) -> None:
    """Without --json: a table with each open complaint, its status and owner."""
    result = CliRunner().invoke(
        app, ["status", "--now", THURSDAY_NOON, "--format", "table"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    late, mid, new, closed = open_cases
    for complaint_id in (late, mid, new):
        assert complaint_id in result.stdout
    assert closed not in result.stdout
    assert "breached" in result.stdout and "005B" in result.stdout
    assert "3 open complaint(s)" in result.stdout


def test_status_names_the_follow_ups_the_crm_refused(open_cases: list[str], tmp_path: Path) -> None:
    """A follow-up the CRM refused for good (kept ``failed`` by the cycle) is named on
    standard error with its complaint and the CRM's reason; the complaints are listed."""
    late = open_cases[0]
    key = f"crmsync:{late}:level1-resolution:0:breached"
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    try:
        store.ledger_put(
            [
                LedgerEntry(
                    "default",
                    key,
                    late,
                    "level1-resolution",
                    0,
                    "breached",
                    "failed",
                    error="INACTIVE_OWNER_OR_USER: inactive user [005M]",
                )
            ]
        )
    finally:
        store.close()
    result = CliRunner().invoke(app, ["status", "--json", "--now", THURSDAY_NOON])
    assert result.exit_code == 0, result.output
    assert (
        f"follow-up {key} of complaint {late} refused by the CRM: "
        "INACTIVE_OWNER_OR_USER: inactive user [005M]"
    ) in result.stderr
    assert late in [json.loads(line)["complaint_id"] for line in result.stdout.splitlines()]


def test_status_on_a_full_disk_is_one_error_line(open_cases: list[str]) -> None:
    """`crmsync status` (table or JSON) with standard output on /dev/full exits 1 naming
    standard output, without a traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    command = [sys.executable, "-m", "crmsync", "status", "--now", THURSDAY_NOON]
    with open("/dev/full", "wb") as full:
        for extra in ([], ["--json"]):
            done = subprocess.run(
                [*command, *extra], stdout=full, stderr=subprocess.PIPE, timeout=300, check=False
            )
            stderr = done.stderr.decode()
            assert "Traceback" not in stderr
            assert done.returncode == 1, stderr
            assert "cannot write standard output: No space left on device" in stderr


def test_status_names_a_complaint_the_charter_cannot_evaluate_and_exits_3(
    open_cases: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a charter whose deadline is read from a text attribute, each stored complaint
    with a value that is no date is named on standard error; the rest are listed; exit 3."""
    charter = tmp_path / "by-name.yaml"
    charter.write_text(
        ASTON.read_text(encoding="utf-8").replace(
            "    target: 2 business_days\n", "    target_field: description\n", 1
        ),
        encoding="utf-8",
    )
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.update_records("Case", [(open_cases[0], {"Description": "no date"})])
        assert all(r.ok for r in results)
    synced = CliRunner().invoke(app, ["sync", "--once", "--now", THURSDAY_NOON])
    assert synced.exit_code == 0, synced.output
    monkeypatch.setenv("CRMSYNC_CHARTER", str(charter))
    result = CliRunner().invoke(app, ["status", "--json", "--now", THURSDAY_NOON])
    assert result.exit_code == 3, result.output
    assert f"bad complaint {open_cases[0]}" in result.stderr
    listed = [json.loads(line)["complaint_id"] for line in result.stdout.splitlines()]
    assert open_cases[0] not in listed and open_cases[1] in listed


def test_a_mistyped_profile_is_refused_not_reported_empty(
    open_cases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """report and status for a CRMSYNC_PROFILE the state store has never worked (while it
    holds 'default') exit 2 naming the profiles it holds, instead of an empty answer."""
    monkeypatch.setenv("CRMSYNC_PROFILE", "defualt")
    report = CliRunner().invoke(
        app,
        [
            "report",
            "-c",
            str(ASTON),
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            "json",
        ],
    )
    status = CliRunner().invoke(app, ["status", "--json", "--now", THURSDAY_NOON])
    for result in (report, status):
        assert result.exit_code == 2, result.output
        assert "CRMSYNC_PROFILE is 'defualt'" in result.stderr
        assert "it holds 'default'" in result.stderr
        assert result.stdout == ""


def test_status_lists_a_complaint_waiting_on_the_customer_as_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the service-desk example, a case set to Waiting on Customer at Mon 11:00 (its
    Status history) is paused at noon: listed after the running one, alone under --state
    paused, with no next due."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    desk = REPO / "mappings" / "charters" / "examples" / "service-desk.yaml"
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRMSYNC_CHARTER", str(desk))
    monkeypatch.setenv("CRMSYNC_MAPPING", str(REPO / "mappings" / "salesforce.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    received = "2026-03-02T10:00:00.000+0000"
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        made = crm.insert_records(
            "Case", [{"Type": "Complaint", "CreatedDate": received} for _ in range(2)]
        )
        waiting, running = (str(r.id) for r in made)
        history = {
            "CaseId": waiting,
            "Field": "Status",
            "OldValue": "New",
            "NewValue": "Waiting on Customer",
            "CreatedDate": "2026-03-02T11:00:00.000+0000",
        }
        assert all(r.ok for r in crm.insert_records("CaseHistory", [history]))
    noon = "2026-03-02T12:00:00Z"
    synced = CliRunner().invoke(app, ["sync", "--once", "--now", noon])
    assert synced.exit_code == 0, synced.output
    try:

        def listed(*args: str) -> list[tuple[object, object, object]]:
            result = CliRunner().invoke(app, ["status", "--json", "--now", noon, *args])
            assert result.exit_code == 0, result.output
            lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
            return [(s["complaint_id"], s["status"], s["next_due"]) for s in lines]

        # the running one: first reply due Tue 09:00 (7 h 30 min Mon, 30 min Tue)
        assert listed() == [
            (running, "on_track", "2026-03-03T09:00:00Z"),
            (waiting, "paused", None),
        ]
        assert listed("--state", "paused") == [(waiting, "paused", None)]
    finally:
        structlog.reset_defaults()
