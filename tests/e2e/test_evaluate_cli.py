"""The installed `crmsync` command, run as a user runs it (semantics section 5).

Every expected line is worked out by hand from the charter files and the contract; the
comments give the counting. Aston: Europe/London, Mon-Thu 08:30-17:00, Fri 08:30-16:30,
England's bank holidays; March 2026 is GMT until Sun 29 Mar, then BST (UTC+1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer

REPO = Path(__file__).resolve().parents[2]
CHARTERS = REPO / "mappings" / "charters"
ASTON = CHARTERS / "aston.yaml"


def crmsync_command() -> list[str]:
    """The console script installed beside this interpreter, else on PATH, else `-m crmsync`."""
    beside = Path(sys.executable).with_name("crmsync")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crmsync")
    return [found] if found else [sys.executable, "-m", "crmsync"]


def run(
    args: Sequence[str | Path], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*crmsync_command(), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def jsonl(*complaints: dict[str, Any]) -> str:
    return "".join(json.dumps(c) + "\n" for c in complaints)


def line(
    complaint_id: str,
    clock: str,
    state: str,
    *,
    started: str | None = None,
    due: str | None = None,
    warn: str | None = None,
    stopped: str | None = None,
    occurrence: int = 0,
    **extra: Any,
) -> str:
    """One output line in the contract's format (`json.dumps` gives its `", "`/`": "` spacing)."""
    fields: dict[str, Any] = {
        "complaint_id": complaint_id,
        "clock": clock,
        "state": state,
        "started_at": started,
        "due_at": due,
        "warn_at": warn,
        "stopped_at": stopped,
        "occurrence": occurrence,
    }
    fields.update(extra)
    return json.dumps(fields)


def pending(complaint_id: str, *clocks: str) -> list[str]:
    return [line(complaint_id, c, "pending") for c in clocks]


# ---------------------------------------------------------------------------- Aston cases
NOW = "2026-03-12T12:00:00Z"  # Thu 12 Mar 2026 12:00 GMT

A1 = {  # email received Mon 2 Mar 10:00, nothing since
    "id": "A-1",
    "events": {"received": "2026-03-02T10:00:00Z"},
    "attributes": {"channel": "email"},
}
A1_LINES = [
    # 2 business days: day 0 Mon 2, 1st Tue 3, 2nd Wed 4 closes 17:00 -> breached by Thu 12
    line(
        "A-1", "email-reply", "breached", started="2026-03-02T10:00:00Z", due="2026-03-04T17:00:00Z"
    ),
    *pending("A-1", "callback"),
    # 1 business day: Tue 3 Mar 17:00
    line(
        "A-1",
        "level1-resolution",
        "breached",
        started="2026-03-02T10:00:00Z",
        due="2026-03-03T17:00:00Z",
    ),
    *pending("A-1", "level2-contact", "level2-resolution", "level3-resolution"),
]

A2 = {  # by phone, Fri 6 Mar 16:45, after Friday's 16:30 closing
    "id": "A-2",
    "events": {
        "received": "2026-03-06T16:45:00Z",
        "callback_requested": "2026-03-06T16:45:00Z",
        "callback": "2026-03-09T09:00:00Z",
        "decision": "2026-03-10T16:00:00Z",
    },
    "attributes": {"channel": "phone"},
}
A2_LINES = [
    # email-reply does not apply (channel phone). After closing: day 0 is Mon 9, 1st is Tue 10.
    line(
        "A-2",
        "callback",
        "met",
        started="2026-03-06T16:45:00Z",
        due="2026-03-10T17:00:00Z",
        stopped="2026-03-09T09:00:00Z",
    ),
    line(
        "A-2",
        "level1-resolution",
        "met",
        started="2026-03-06T16:45:00Z",
        due="2026-03-10T17:00:00Z",
        stopped="2026-03-10T16:00:00Z",
    ),
    *pending("A-2", "level2-contact", "level2-resolution", "level3-resolution"),
]

A3 = {  # a letter escalated to level 2; the manager called Wed 4 Mar 10:00
    "id": "A-3",
    "events": {
        "received": "2026-03-02T09:00:00Z",
        "escalated_l2": "2026-03-03T10:00:00Z",
        "manager_contact": "2026-03-04T10:00:00Z",
    },
    "attributes": {"channel": "letter"},
}
A3_LINES = [
    *pending("A-3", "callback"),
    line(
        "A-3",
        "level1-resolution",
        "met",
        started="2026-03-02T09:00:00Z",
        due="2026-03-03T17:00:00Z",
        stopped="2026-03-03T10:00:00Z",
    ),
    line(
        "A-3",
        "level2-contact",
        "met",
        started="2026-03-03T10:00:00Z",
        due="2026-03-04T17:00:00Z",
        stopped="2026-03-04T10:00:00Z",
    ),
    # from Wed 4: Thu 5, Fri 6, Mon 9, Tue 10, Wed 11 (5th: warning), Thu 12, Fri 13,
    # Mon 16, Tue 17, Wed 18 (10th: due). Thu 12 12:00 is past the warning: at_risk.
    line(
        "A-3",
        "level2-resolution",
        "at_risk",
        started="2026-03-04T10:00:00Z",
        due="2026-03-18T17:00:00Z",
        warn="2026-03-11T17:00:00Z",
    ),
    *pending("A-3", "level3-resolution"),
]

A4 = {  # Easter: received Thu 2 Apr 16:00 BST; acknowledged Wed 8 Apr 17:00 BST
    "id": "A-4",
    "events": {
        "received": "2026-04-02T16:00:00+01:00",
        "acknowledged": "2026-04-08T17:00:00+01:00",
    },
    "attributes": {"channel": "email"},
}
A4_NOW = "2026-04-09T12:00:00Z"
A4_LINES = [
    # Fri 3 Apr (Good Friday) and Mon 6 Apr (Easter Monday) are closed: 1st working day is
    # Tue 7, 2nd Wed 8 closing 17:00 BST = 16:00Z; acknowledged exactly then: met.
    line(
        "A-4",
        "email-reply",
        "met",
        started="2026-04-02T15:00:00Z",
        due="2026-04-08T16:00:00Z",
        stopped="2026-04-08T16:00:00Z",
    ),
    *pending("A-4", "callback"),
    line(
        "A-4",
        "level1-resolution",
        "breached",
        started="2026-04-02T15:00:00Z",
        due="2026-04-07T16:00:00Z",
    ),
    *pending("A-4", "level2-contact", "level2-resolution", "level3-resolution"),
]

A5 = {  # a date alone: Mon 1 Jun 2026 00:00 BST = Sun 31 May 23:00Z
    "id": "A-5",
    "events": {"received": "2026-06-01"},
    "attributes": {"channel": "email"},
}
A5_NOW = "2026-06-01T12:00:00+01:00"
A5_LINES = [
    # day 0 Mon 1 Jun; 2nd working day Wed 3 Jun 17:00 BST, 1st Tue 2 Jun 17:00 BST
    line(
        "A-5", "email-reply", "on_track", started="2026-05-31T23:00:00Z", due="2026-06-03T16:00:00Z"
    ),
    *pending("A-5", "callback"),
    line(
        "A-5",
        "level1-resolution",
        "on_track",
        started="2026-05-31T23:00:00Z",
        due="2026-06-02T16:00:00Z",
    ),
    *pending("A-5", "level2-contact", "level2-resolution", "level3-resolution"),
]


@pytest.fixture(scope="module")
def aston_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """`crmsync evaluate` of A-1, A-2, A-3 against Aston as of NOW (run once, read by tests)."""
    source = tmp_path_factory.mktemp("aston") / "in.jsonl"
    source.write_text(jsonl(A1, A2, A3), encoding="utf-8")
    return run(["evaluate", "--charter", ASTON, "--input", source, "--now", NOW])


def test_the_output_line_has_the_contract_format(
    aston_run: subprocess.CompletedProcess[str],
) -> None:
    """The first line, byte for byte, as section 5 shows it."""
    assert aston_run.stdout.splitlines()[0] == (
        '{"complaint_id": "A-1", "clock": "email-reply", "state": "breached", '
        '"started_at": "2026-03-02T10:00:00Z", "due_at": "2026-03-04T17:00:00Z", '
        '"warn_at": null, "stopped_at": null, "occurrence": 0}'
    )


def test_evaluate_aston_complaints(aston_run: subprocess.CompletedProcess[str]) -> None:
    """Three Aston complaints as of Thu 12 Mar: every line exact, in input then charter order."""
    assert (aston_run.returncode, aston_run.stderr) == (0, "")
    assert aston_run.stdout.splitlines() == [*A1_LINES, *A2_LINES, *A3_LINES]
    assert aston_run.stdout.endswith("\n")


@pytest.mark.parametrize(
    ("complaint", "now", "expected"),
    [(A4, A4_NOW, A4_LINES), (A5, A5_NOW, A5_LINES)],
    ids=["easter", "date-alone"],
)
def test_evaluate_aston_holidays_and_dates(
    tmp_path: Path, complaint: dict[str, Any], now: str, expected: list[str]
) -> None:
    """Bank holidays and a date-only event, with instants output in UTC."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(complaint), encoding="utf-8")
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", now])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected


def test_bad_complaints_exit_3_and_the_good_ones_are_still_output(tmp_path: Path) -> None:
    """Bad lines are reported on stderr by id and line; the good ones before and after print."""
    naive = {"id": "B-1", "events": {"received": "2026-03-02T10:00:00"}}
    number = {"id": "B-2", "events": {"received": ["2026-03-02T10:00:00Z", 5]}}
    no_id = {"events": {"received": "2026-03-02T10:00:00Z"}}
    text = (
        jsonl(A1, naive)
        + "{not json\n"
        + jsonl(no_id, number)
        + "\n"  # a blank line is skipped, not an error
        + jsonl(A2)
    )
    source = tmp_path / "in.jsonl"
    source.write_text(text, encoding="utf-8")
    done = run(["evaluate", "--charter", ASTON, "--input", source, "--now", NOW])
    assert done.returncode == 3
    assert done.stdout.splitlines() == [*A1_LINES, *A2_LINES]
    errors = done.stderr.splitlines()
    assert len(errors) == 4
    assert "B-1 (line 2)" in errors[0]
    assert "received" in errors[0]
    assert "line 3" in errors[1]
    assert "JSON" in errors[1]
    assert "line 4" in errors[2]
    assert "no id" in errors[2]
    assert "B-2 (line 5)" in errors[3]


def test_a_byte_order_mark_is_ignored_and_a_non_utf8_line_is_bad_input(tmp_path: Path) -> None:
    """A BOM before line 1 is not part of it; a Latin-1 line 2 is reported, line 3 still runs."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b"\xef\xbb\xbf"
        + jsonl(A1).encode()
        + b'{"id": "L-\xe9", "events": {}}\n'  # 0xe9 is 'e-acute' in Latin-1, not UTF-8
        + jsonl(A3).encode()
    )
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW])
    assert done.returncode == 3
    assert done.stdout.splitlines() == [*A1_LINES, *A3_LINES]
    assert done.stderr.splitlines() == [
        f"bad complaint line 2: not UTF-8 text (byte 0xe9 at column 11 of {source}; "
        "crmsync reads UTF-8)"
    ]


def test_a_bad_charter_exits_2_with_nothing_output(tmp_path: Path) -> None:
    """A charter with a typo is refused with its file, line and column; no output, not even a
    file."""
    charter = tmp_path / "typo.yaml"
    charter.write_text(
        ASTON.read_text(encoding="utf-8").replace("target: 2 business_days", "target: 2 bizdays"),
        encoding="utf-8",
    )
    line_no = 1 + charter.read_text(encoding="utf-8").splitlines().index("    target: 2 bizdays")
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(A1), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = run(["evaluate", "-c", charter, "-i", source, "--now", NOW, "--output", out])
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{charter}:{line_no}:5 (clocks[0].target)" in done.stderr
    assert "unknown unit 'bizdays'" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "now",
    ["2026-03-12T12:00:00", "2026-03-12", "tomorrow"],
    ids=["naive", "date", "words"],
)
def test_a_bad_now_exits_2_with_nothing_output(tmp_path: Path, now: str) -> None:
    """--now must be a date-time with offset."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(A1), encoding="utf-8")
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", now])
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--now" in done.stderr


def test_a_missing_input_file_exits_2(tmp_path: Path) -> None:
    """An input file that does not exist is a bad argument."""
    done = run(["evaluate", "-c", ASTON, "-i", tmp_path / "absent.jsonl", "--now", NOW])
    assert done.returncode == 2
    assert done.stdout == ""
    assert "absent.jsonl" in done.stderr


def test_input_dash_reads_standard_input() -> None:
    """`--input -` evaluates what arrives on standard input."""
    done = run(["evaluate", "-c", ASTON, "--input", "-", "--now", NOW], stdin=jsonl(A1, A3))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [*A1_LINES, *A3_LINES]


def test_output_writes_the_file_and_nothing_on_stdout(tmp_path: Path) -> None:
    """`--output FILE` gets exactly the lines; standard output stays empty."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(A2), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW, "--output", out])
    assert (done.returncode, done.stdout) == (0, "")
    assert out.read_text(encoding="utf-8") == "".join(x + "\n" for x in A2_LINES)


def test_recurring_output_has_breaches(tmp_path: Path) -> None:
    """The Square Mile (Europe/Amsterdam, CET = UTC+1 in winter), as of Tue 10 Feb 12:00Z."""
    complaint = {
        "id": "SM-1",
        "events": {
            "received": "2026-01-05T10:00:00+01:00",
            "customer_update": ["2026-02-06T10:00:00+01:00", "2026-01-19T10:00:00+01:00"],
        },
        "attributes": {"expected_decision": "2026-02-20"},
    }
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(complaint), encoding="utf-8")
    done = run(
        [
            "evaluate",
            "-c",
            CHARTERS / "the-square-mile.yaml",
            "-i",
            source,
            "--now",
            "2026-02-10T12:00:00Z",
        ]
    )
    assert done.returncode == 0, done.stderr
    received = "2026-01-05T09:00:00Z"
    assert done.stdout.splitlines() == [
        # 1 business day: day 0 Mon 5 Jan, due Tue 6 Jan 17:00 CET
        line("SM-1", "acknowledge", "breached", started=received, due="2026-01-06T16:00:00Z"),
        # 14 days -> Mon 19 Jan 10:00 CET; warning 10 days -> Thu 15 Jan 10:00 CET
        line(
            "SM-1",
            "decision",
            "breached",
            started=received,
            due="2026-01-19T09:00:00Z",
            warn="2026-01-15T09:00:00Z",
        ),
        # the first update came exactly at the 14-day deadline: met
        line(
            "SM-1",
            "progress-notice",
            "met",
            started=received,
            due="2026-01-19T09:00:00Z",
            stopped="2026-01-19T09:00:00Z",
        ),
        # cycle 0 from Jan 19 due Feb 2 10:00 CET; reset Feb 6 is late (1 breach) and opens
        # cycle 1, due Fri 20 Feb 10:00 CET
        line(
            "SM-1",
            "interim-update",
            "on_track",
            started="2026-02-06T09:00:00Z",
            due="2026-02-20T09:00:00Z",
            occurrence=1,
            breaches=1,
        ),
        # promised 2026-02-20: the end of that day, 21 Feb 00:00 CET = 20 Feb 23:00Z
        line(
            "SM-1",
            "promised-date",
            "on_track",
            started="2026-01-19T09:00:00Z",
            due="2026-02-20T23:00:00Z",
        ),
        *pending("SM-1", "mediation"),
    ]


def test_completeness_output_has_missing(tmp_path: Path) -> None:
    """StudiJob (Europe/Amsterdam) as of Tue 6 Jan 12:00Z: blank and empty values are missing."""
    complaint = {
        "id": "SJ-1",
        "events": {"received": "2026-01-05T10:00:00+01:00"},
        "attributes": {
            "registered_by": "Eva",
            "complainant_type": "client",
            "complainant_name": "  ",
            "description": "late payment",
            "involved": [],
        },
    }
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(complaint), encoding="utf-8")
    done = run(
        [
            "evaluate",
            "-c",
            CHARTERS / "studijob.yaml",
            "-i",
            source,
            "--now",
            "2026-01-06T12:00:00Z",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        # 1 business day from Mon 5 Jan: Tue 6 Jan 17:00 CET
        line(
            "SJ-1",
            "registration",
            "on_track",
            started="2026-01-05T09:00:00Z",
            due="2026-01-06T16:00:00Z",
            missing=["complainant_name", "involved"],
        ),
        # 7 days -> Mon 12 Jan 10:00 CET, warning 5 days -> Sat 10 Jan 10:00 CET
        line(
            "SJ-1",
            "feedback",
            "on_track",
            started="2026-01-05T09:00:00Z",
            due="2026-01-12T09:00:00Z",
            warn="2026-01-10T09:00:00Z",
        ),
        line("SJ-1", "root-cause", "pending", missing=["root_cause", "solution"]),
    ]


def big_input(count: int) -> str:
    """`count` varied complaints (plus a bad one every 997 lines), the same on every call."""
    lines = []
    for i in range(count):
        if i % 997 == 500:
            lines.append(json.dumps({"id": f"X-{i}", "events": {"received": "2026-01-01T09:00"}}))
            continue
        day = 1 + i % 28
        month = 1 + (i // 28) % 12
        hour = 7 + i % 12
        received = f"2026-{month:02d}-{day:02d}T{hour:02d}:{(i * 7) % 60:02d}:00Z"
        events: dict[str, Any] = {"received": received}
        if i % 3 == 0:
            events["decision"] = f"2026-{month:02d}-{min(day + 1 + i % 5, 28):02d}T12:00:00+01:00"
        if i % 5 == 0:
            events["escalated_l2"] = received
            events["manager_contact"] = f"2026-{month:02d}-{min(day + 2, 28):02d}T10:00:00Z"
        if i % 7 == 0:
            events["callback_requested"] = received
        channel = ("email", "phone", "letter", "web")[i % 4]
        lines.append(
            json.dumps({"id": f"C-{i}", "events": events, "attributes": {"channel": channel}})
        )
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_many_workers_give_the_same_bytes_as_one(tmp_path: Path) -> None:
    """20,000 complaints through worker processes: output identical to --workers 1.

    The input (~2.8 MB) spans several read blocks; line 18,000 is Latin-1, not UTF-8, and
    is reported by its number while the lines around it are evaluated.
    """
    lines = big_input(20_000).encode().splitlines(keepends=True)
    lines[17_999] = b'{"id": "L-\xe9", "events": {}}\n'
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"".join(lines))
    now = "2026-07-01T00:00:00Z"
    one = run(["evaluate", "-c", ASTON, "-i", source, "--now", now, "--workers", "1"])
    many = run(["evaluate", "-c", ASTON, "-i", source, "--now", now, "--workers", "2"])
    naive = len(range(500, 20_000, 997))
    assert one.returncode == many.returncode == 3
    assert many.stdout == one.stdout
    # the same reports; a line that is not UTF-8 is reported when read, so order may vary
    assert sorted(many.stderr.splitlines()) == sorted(one.stderr.splitlines())
    errors = one.stderr.splitlines()
    assert len(errors) == naive + 1
    assert (
        f"bad complaint line 18000: not UTF-8 text (byte 0xe9 at column 11 of {source}; "
        "crmsync reads UTF-8)"
    ) in errors
    # C-17998 and C-18000 (lines 17,999 and 18,001) around the bad line are evaluated
    ids = {json.loads(x)["complaint_id"] for x in one.stdout.splitlines()}
    assert {"C-17998", "C-18000"} <= ids
    assert "C-17999" not in ids
    # every good complaint has at least the five clocks without a `when`
    assert len(one.stdout.splitlines()) >= 5 * (20_000 - naive - 1)


def test_explain_shows_the_easter_count(tmp_path: Path) -> None:
    """Received Thu 2 Apr 2026 16:00 BST: the closures and the 1st working day are named."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(A4), encoding="utf-8")
    done = run(
        ["explain", "-c", ASTON, "-i", source, "--id", "A-4", "--now", "2026-04-07T12:00:00+01:00"]
    )
    assert done.returncode == 0, done.stderr
    assert "Good Friday" in done.stdout
    assert "Easter Monday" in done.stdout
    assert "1st working day Tue 7 Apr" in done.stdout
    assert "2nd working day Wed 8 Apr" in done.stdout


def test_explain_of_an_unknown_id_exits_2(tmp_path: Path) -> None:
    """Asking for a complaint that is not in the file is a bad argument."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(A1), encoding="utf-8")
    done = run(["explain", "-c", ASTON, "-i", source, "--id", "NOPE", "--now", NOW])
    assert done.returncode == 2
    assert "NOPE" in done.stderr


def _commands() -> list[str]:
    from crmsync.cli import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return sorted(group.commands)


def test_the_known_commands_are_there() -> None:
    """At least the charter commands exist (others are added by other parts)."""
    assert {"evaluate", "explain", "schema"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str) -> None:
    """`crmsync COMMAND --help` exits 0 and shows its usage."""
    done = run([command, "--help"])
    assert done.returncode == 0, done.stderr
    assert f"crmsync {command}" in done.stdout
    assert "--help" in done.stdout


def test_the_program_has_help() -> None:
    """`crmsync --help` lists the commands."""
    done = run(["--help"])
    assert done.returncode == 0
    for command in ("evaluate", "explain"):
        assert command in done.stdout
