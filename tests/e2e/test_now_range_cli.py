"""``--now`` is range-checked, and a command that writes refuses a future ``--now`` unless
``--allow-future-now``: nothing is written to the CRM, the state or the archive.

Runs in this process through typer's runner on the embedded local CRM (a temporary
CRMSYNC_DATA_DIR holding one complaint closed in March 2026 and one open)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import ARCHIVE_DIR, LOCAL_CRM_FILE
from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
PAST = "2026-06-01T02:00:00Z"


def future(days: int = 400) -> str:
    """An instant ``days`` after this machine's clock (within the supported years)."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder with one closed and one open complaint; CRMSYNC_* pointing at it."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    values = {
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CHARTER": str(REPO / "mappings" / "charters" / "aston.yaml"),
        "CRMSYNC_MAPPING": str(REPO / "mappings" / "salesforce.yaml"),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
        "CRMSYNC_LOG_FORMAT": "json",
        "CRMSYNC_SECRETS_DIR": str(tmp_path / "no-secrets"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": "2026-03-02T10:00:00.000+0000",
                    "ClosedDate": "2026-03-10T10:00:00.000+0000",
                },
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": "2026-03-02T10:00:00.000+0000",
                },
            ],
        )
        assert all(r.ok for r in results)
    yield tmp_path
    structlog.reset_defaults()


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def tasks_and_flags(data: Path) -> tuple[int, list[Any]]:
    """The follow-up tasks in the CRM and each case's charter status."""
    with LocalCrm(data / LOCAL_CRM_FILE) as crm:
        tasks = len(list(crm.export_records("Task")))
        flags = [r.fields.get("Charter_Status__c") for r in crm.export_records("Case")]
    return tasks, flags


def archived(data: Path) -> list[Path]:
    return [p for p in (data / ARCHIVE_DIR).rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "now",
    ["9999-12-31T23:59:59Z", "0206-03-01T10:00:00Z", "1969-12-31T23:59:59Z"],
)
@pytest.mark.parametrize(
    "command",
    [("sync", "--once"), ("archive", "run"), ("status",)],
    ids=" ".join,
)
def test_a_now_outside_the_supported_years_is_refused(
    data: Path, command: tuple[str, ...], now: str
) -> None:
    """Every command refuses a --now outside 1970..2199 with exit 2; nothing is written,
    --allow-future-now or not."""
    extra = ("--allow-future-now",) if command[0] != "status" else ()
    done = cli(*command, "--now", now, *extra)
    assert done.exit_code == 2, done.output
    assert f"--now: '{now}' is outside the supported range" in done.stderr
    assert "Traceback" not in done.output
    assert tasks_and_flags(data) == (0, [None, None])
    assert archived(data) == []


@pytest.mark.parametrize("command", [("sync", "--once"), ("archive", "run")], ids=" ".join)
def test_a_future_now_is_refused_by_commands_that_write(
    data: Path, command: tuple[str, ...]
) -> None:
    """`sync --once` and `archive run` at a --now a year ahead: exit 2 naming the way to
    force it; no flag, task or archive entry is written."""
    done = cli(*command, "--now", future())
    assert done.exit_code == 2, done.output
    assert "is in the future" in done.stderr
    assert "--allow-future-now" in done.stderr
    assert tasks_and_flags(data) == (0, [None, None])
    assert archived(data) == []


def test_state_prune_refuses_a_future_now(data: Path) -> None:
    """`state prune --now` a year ahead would forget state early: exit 2."""
    done = cli("state", "prune", "--now", future())
    assert done.exit_code == 2, done.output
    assert "is in the future" in done.stderr


def test_a_future_now_is_accepted_when_forced_or_when_nothing_is_written(data: Path) -> None:
    """--dry-run and status take a future --now; --allow-future-now lets sync write."""
    ahead = future()
    assert cli("sync", "--once", "--dry-run", "--now", ahead).exit_code == 0
    assert tasks_and_flags(data) == (0, [None, None])
    evaluated = cli("status", "--now", ahead)
    assert evaluated.exit_code == 0, evaluated.output
    forced = cli("sync", "--once", "--now", ahead, "--allow-future-now")
    assert forced.exit_code == 0, forced.output
    _tasks, flags = tasks_and_flags(data)
    assert "breached" in flags  # the open complaint, written as of the forced instant


def test_a_past_now_still_writes(data: Path) -> None:
    """A --now in the past is what replays use: `archive run` archives the closed case."""
    done = cli("archive", "run", "--now", PAST)
    assert done.exit_code == 0, done.output
    assert archived(data) != []


@pytest.mark.parametrize(
    "command", [("sync", "--help"), ("archive", "run", "--help"), ("state", "prune", "--help")]
)
def test_the_help_of_each_writing_command_says_so(command: tuple[str, ...]) -> None:
    """Each writing command's help names --allow-future-now and the future refusal."""
    done = CliRunner().invoke(app, list(command), env={"COLUMNS": "200"})
    assert done.exit_code == 0
    text = " ".join(done.output.split())
    assert "--allow-future-now" in text
    assert "later than this machine's clock" in text
