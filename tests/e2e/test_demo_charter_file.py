"""``crmsync demo --charter PATH``: any charter file can be demonstrated, and the complaints
it creates follow that file's time zone, opening hours and holidays, not a bundled one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from crmsync.mapping.charter_file import load_charter

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
# staff events: the generator puts them inside opening hours (received and call-back
# requests are the customer's and may come at any time)
STAFF_FIELDS = ("Acknowledged_At__c", "Feedback_At__c", "Decision_At__c", "ClosedDate")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """No CRMSYNC_* setting from the outside; data under tmp_path."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    values = dict(os.environ)
    values.update(
        CRMSYNC_CONFIG=str(tmp_path / "none.toml"),
        CRMSYNC_DATA_DIR=str(tmp_path / "data"),
        NO_COLOR="1",
    )
    yield values


def crmsync(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command, run from the project folder, its output on pipes."""
    return subprocess.run(
        [sys.executable, "-m", "crmsync", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def own_charter(tmp_path: Path) -> Path:
    """Aston's charter moved to New York: 10:00-14:00 on weekdays, Saturday 09:00-12:00,
    US holidays."""
    text = ASTON.read_text(encoding="utf-8")
    head, tail = text.split("  timezone: Europe/London\n", 1)
    tail = tail.split("\nclocks:\n", 1)[1]
    calendar = (
        "  timezone: America/New_York\n"
        "  hours:\n"
        + "".join(f'    {day}: ["10:00-14:00"]\n' for day in ("mon", "tue", "wed", "thu", "fri"))
        + '    sat: ["09:00-12:00"]\n'
        "  holidays:\n"
        "    country: US\n"
    )
    path = tmp_path / "mine.yaml"
    path.write_text(head + calendar + "\nclocks:\n" + tail, encoding="utf-8")
    return path


def sf_instant(text: str) -> int:
    """A Salesforce date-time text (``2026-03-02T09:15:00.000+0000``) as epoch seconds."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp())


@pytest.mark.slow
def test_demo_of_an_own_charter_file_follows_its_hours(env: dict[str, str], tmp_path: Path) -> None:
    """The demo runs on a charter file given by path; staff act only in that file's opening
    hours (New York, Saturday mornings, US holidays) and most complaints arrive in them."""
    path = own_charter(tmp_path)
    charter = load_charter(path)
    done = crmsync(["demo", "--charter", str(path), "--count", "200", "--seed", "5"], env)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    db = tmp_path / "data" / "demo-mine" / "local-crm.sqlite3"
    exported = crmsync(["local", "export", "Case", "--db", str(db)], env)
    assert exported.returncode == 0, exported.stderr
    cases = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(cases) > 150

    def in_hours(instant: int) -> bool:
        day = datetime.fromtimestamp(instant, charter.calendar.zone).date()
        return any(a <= instant < b for a, b in charter.calendar.opening_instants(day))

    staff = [sf_instant(c[f]) for c in cases for f in STAFF_FIELDS if c.get(f)]
    assert len(staff) > 200
    assert all(in_hours(t) for t in staff)
    received = [sf_instant(c["CreatedDate"]) for c in cases]
    assert sum(map(in_hours, received)) / len(received) > 0.7
    saturdays = [
        t for t in staff if datetime.fromtimestamp(t, charter.calendar.zone).weekday() == 5
    ]
    assert saturdays  # this charter works on Saturday mornings, and so do its staff
    assert "CRMSYNC_CHARTER=" + str(path) in done.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        (
            ASTON.read_text(encoding="utf-8").replace("Europe/London", "Mars/Olympus"),
            "Mars/Olympus",
        ),
    ],
    ids=["missing", "bad time zone"],
)
def test_a_bad_charter_file_is_one_line_naming_it(
    env: dict[str, str], tmp_path: Path, content: str | None, expected: str
) -> None:
    """A missing or invalid charter file: exit 2, one error line naming the file, no data."""
    path = tmp_path / "mine.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    done = crmsync(["demo", "--charter", str(path), "--count", "5"], env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: --charter: ")
    assert str(path) in lines[0]
    assert expected in lines[0]
    assert not (tmp_path / "data" / "demo-mine").exists()


def test_an_unknown_bundled_name_lists_the_bundled_ones(env: dict[str, str]) -> None:
    """A name that is no bundled charter: exit 2, the bundled names and the path option."""
    done = crmsync(["demo", "--charter", "acme", "--count", "5"], env)
    assert done.returncode == 2
    assert "unknown charter 'acme'" in done.stderr
    assert "aston" in done.stderr
    assert "path of a charter file" in done.stderr


def test_the_service_desk_example_demo_shows_paused_clocks(env: dict[str, str]) -> None:
    """`crmsync demo --charter mappings/charters/examples/service-desk.yaml` waits on some
    customers: the local CRM holds their Status history and some complaints are flagged
    paused."""
    example = "mappings/charters/examples/service-desk.yaml"
    done = crmsync(["demo", "--charter", example, "--count", "150", "--seed", "3"], env)
    assert done.returncode == 0, done.stderr
    [paused_row] = [line for line in done.stdout.splitlines() if line.split()[1:2] == ["paused"]]
    assert int(paused_row.split()[3]) > 0, done.stdout
    db = Path(env["CRMSYNC_DATA_DIR"]) / "demo-service-desk" / "local-crm.sqlite3"
    exported = crmsync(["local", "export", "CaseHistory", "--db", str(db)], env)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    waiting = [r for r in rows if r.get("NewValue") == "Waiting on Customer"]
    resumed = [r for r in rows if r.get("OldValue") == "Waiting on Customer"]
    assert waiting
    assert resumed
    assert all(r["Field"] == "Status" and r["CaseId"].startswith("500") for r in rows)
