"""The installed `crmsync report` command (reports contract sections 5 and 6).

Charter: Aston (Europe/London, Mon-Thu 08:30-17:00, Fri 08:30-16:30, England's bank
holidays); email-reply is 2 business_days from `received` to `acknowledged`/`decision`
when the channel is email. January 2026 is GMT. Expected values are counted by hand.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
from tests.e2e.test_evaluate_cli import ASTON, crmsync_command, jsonl, run

NOW = "2026-03-01T00:00:00Z"


def aston_fast(tmp_path: Path) -> Path:
    """Aston with a 1-business-day email reply (the what-if)."""
    text = ASTON.read_text(encoding="utf-8")
    fast = text.replace("charter: aston", "charter: aston-fast", 1).replace(
        "target: 2 business_days", "target: 1 business_days", 1
    )
    path = tmp_path / "aston-fast.yaml"
    path.write_text(fast, encoding="utf-8")
    return path


COMPLAINTS = [
    # Mon 5 Jan 10:00, due Wed 7 Jan 17:00; acknowledged Tue 6 Jan 10:00 -> met
    # elapsed 24 h; opening: Mon 10:00-17:00 (7 h) + Tue 08:30-10:00 (1.5 h) = 8.5 h
    {
        "id": "C-1",
        "events": {"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-06T10:00:00Z"},
        "attributes": {"channel": "email", "level": 1},
    },
    # Mon 12 Jan 10:00, due Wed 14 Jan 17:00; acknowledged Thu 15 Jan 09:30 -> late
    # elapsed 71.5 h; opening: 7 + 8.5 + 8.5 + 1 = 25 h
    {
        "id": "C-2",
        "events": {"received": "2026-01-12T10:00:00Z", "acknowledged": "2026-01-15T09:30:00Z"},
        "attributes": {"channel": "email", "level": 1},
    },
    # Mon 2 Feb 10:00, due Wed 4 Feb 17:00, never acknowledged -> overdue at 1 Mar
    {
        "id": "C-3",
        "events": {"received": "2026-02-02T10:00:00Z"},
        "attributes": {"channel": "email", "level": 1},
    },
]


def email_rows(document: dict[str, object], key: str = "rows") -> list[dict[str, object]]:
    rows = document[key]
    assert isinstance(rows, list)
    return [r for r in rows if r["clock"] == "email-reply"]


def test_report_json_counts_each_email_reply_by_month(tmp_path: Path) -> None:
    """JSON on a pipe: one row per month, a total over the range, figures to the second."""
    result = run(
        [
            "report",
            "--charter",
            ASTON,
            "--input",
            "-",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--now",
            NOW,
        ],
        stdin=jsonl(*COMPLAINTS),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("charter", "from", "to", "now", "period", "by")} == {
        "charter": "aston",
        "from": "2026-01-01",
        "to": "2026-02-28",
        "now": NOW,
        "period": "month",
        "by": None,
    }
    assert document["complaints"] == 3
    assert email_rows(document) == [
        {
            "clock": "email-reply",
            "period": "2026-01",
            "group": None,
            "due": 2,
            "met": 1,
            "late": 1,
            "overdue": 0,
            "open": 0,
            "breached": 1,
            "paused": 0,
            "achievement": 50.0,
            "elapsed_p50_s": 24 * 3600,
            "elapsed_p90_s": 71 * 3600 + 1800,
            "business_p50_s": 8 * 3600 + 1800,
            "business_p90_s": 25 * 3600,
        },
        {
            "clock": "email-reply",
            "period": "2026-02",
            "group": None,
            "due": 1,
            "met": 0,
            "late": 0,
            "overdue": 1,
            "open": 0,
            "breached": 1,
            "paused": 0,
            "achievement": 0.0,
            "elapsed_p50_s": None,
            "elapsed_p90_s": None,
            "business_p50_s": None,
            "business_p90_s": None,
        },
    ]
    total = email_rows(document, "totals")
    assert [(t["period"], t["due"], t["met"], t["achievement"]) for t in total] == [
        ("all", 3, 1, 33.3)
    ]


def test_range_is_inclusive_of_due_dates_and_groups_are_text(tmp_path: Path) -> None:
    """--to 2026-01-14 keeps C-2 (due 14 Jan 17:00); --by level groups as the text '1'."""
    source = tmp_path / "in.jsonl"
    source.write_text(jsonl(*COMPLAINTS), encoding="utf-8")
    args = ["report", "-c", ASTON, "-i", source, "--from", "2026-01-07", "--to", "2026-01-14"]
    result = run([*args, "--now", NOW, "--by", "level", "--period", "week", "--format", "json"])
    assert result.returncode == 0, result.stderr
    rows = email_rows(json.loads(result.stdout))
    assert [(r["period"], r["group"], r["met"], r["late"]) for r in rows] == [
        ("2026-W02", "1", 1, 0),
        ("2026-W03", "1", 0, 1),
    ]


def test_csv_has_the_row_fields_as_columns(tmp_path: Path) -> None:
    """--format csv: a header of the row fields, rows then totals, null as empty."""
    result = run(
        [
            "report",
            "-c",
            ASTON,
            "-i",
            "-",
            "--from",
            "2026-02-01",
            "--to",
            "2026-02-28",
            "--now",
            NOW,
            "--format",
            "csv",
        ],
        stdin=jsonl(*COMPLAINTS),
    )
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0][:4] == ["clock", "period", "group", "due"]
    email = [r for r in table if r[0] == "email-reply"]
    assert email == [
        ["email-reply", "2026-02", "", "1", "0", "0", "1", "0", "1", "0", "0.0", "", "", "", ""],
        ["email-reply", "all", "", "1", "0", "0", "1", "0", "1", "0", "0.0", "", "", "", ""],
    ]


def test_bad_complaints_are_named_and_the_rest_counted() -> None:
    """A naive instant and a broken line: exit 3, both named, the good complaint counted."""
    good = jsonl(COMPLAINTS[0])
    naive = jsonl({"id": "C-bad", "events": {"received": "2026-01-05T10:00:00"}})
    result = run(
        [
            "report",
            "-c",
            ASTON,
            "-i",
            "-",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--now",
            NOW,
        ],
        stdin=good + naive + "{not json\n",
    )
    assert result.returncode == 3
    assert "C-bad (line 2)" in result.stderr and "line 3" in result.stderr
    assert json.loads(result.stdout)["complaints"] == 1


def test_bad_arguments_exit_2_with_nothing_output() -> None:
    """A bad date, a reversed range and a bad charter exit 2 and write nothing."""
    base = ["report", "-c", ASTON, "-i", "-", "--now", NOW]
    for extra in (
        ["--from", "2026-13-01", "--to", "2026-12-31"],
        ["--from", "2026-02-01", "--to", "2026-01-01"],
    ):
        result = run([*base, *extra], stdin="")
        assert result.returncode == 2 and result.stdout == ""
    missing = run(
        ["report", "-c", "nope.yaml", "-i", "-", "--from", "2026-01-01", "--to", "2026-01-02"],
        stdin="",
    )
    assert missing.returncode == 2 and missing.stdout == ""


def test_what_if_lists_flips_and_both_figures(tmp_path: Path) -> None:
    """Under a 1-day reply C-1 (ack after 24 h, due Tue 17:00) stays met; C-2 stays late.

    C-1: received Mon 10:00, 1 business day -> due Tue 6 Jan 17:00, ack Tue 10:00: met under
    both. A 4 h later acknowledgement (Wed 7 Jan 10:00) would flip; C-4 is that case.
    """
    flipping = {
        "id": "C-4",
        "events": {"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-07T10:00:00Z"},
        "attributes": {"channel": "email", "level": 1},
    }
    result = run(
        [
            "report",
            "-c",
            ASTON,
            "-i",
            "-",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--now",
            NOW,
            "--compare",
            aston_fast(tmp_path),
            "--period",
            "all",
        ],
        stdin=jsonl(*COMPLAINTS, flipping),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    compare = document["compare"]
    assert compare["charter"] == "aston-fast"
    # C-4 is due Wed 7 Jan 17:00 under A (met) and Tue 6 Jan 17:00 under B (late)
    assert compare["flips"] == [
        {"complaint_id": "C-4", "clock": "email-reply", "occurrence": 0, "a": "met", "b": "late"}
    ]
    a_total = email_rows(document, "totals")[0]
    b_total = email_rows(compare, "totals")[0]
    assert (a_total["met"], a_total["late"]) == (2, 1)
    assert (b_total["met"], b_total["late"]) == (1, 2)
    assert compare["follow_ups"]["b"]["email-reply"]["breached"] == 2
    assert compare["follow_ups"]["a"]["email-reply"]["breached"] == 1


def test_a_report_that_cannot_be_written_is_one_error_line(tmp_path: Path) -> None:
    """Standard output or --output on a full disk exits 1 naming it; an --output folder
    that does not exist exits 2; never a traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    args = ["report", "-c", ASTON, "-i", "-", "--from", "2026-01-01", "--to", "2026-01-31"]
    with open("/dev/full", "wb") as full:
        for fmt in ("json", "html"):
            done = subprocess.run(
                [*crmsync_command(), *map(str, args), "--now", NOW, "--format", fmt],
                input=jsonl(*COMPLAINTS).encode(),
                stdout=full,
                stderr=subprocess.PIPE,
                timeout=300,
                check=False,
            )
            stderr = done.stderr.decode()
            assert "Traceback" not in stderr
            assert done.returncode == 1, stderr
            assert "cannot write standard output: No space left on device" in stderr
    full_file = run([*args, "--now", NOW, "--output", "/dev/full"], stdin=jsonl(*COMPLAINTS))
    assert full_file.returncode == 1 and "Traceback" not in full_file.stderr
    assert "--output: cannot write /dev/full: No space left on device" in full_file.stderr
    nowhere = tmp_path / "missing" / "report.json"
    no_folder = run([*args, "--now", NOW, "--output", nowhere], stdin=jsonl(*COMPLAINTS))
    assert no_folder.returncode == 2 and "Traceback" not in no_folder.stderr
    assert f"--output: cannot write {nowhere}: No such file or directory" in no_folder.stderr


def test_the_page_shows_dollar_signs_in_groups_as_text(tmp_path: Path) -> None:
    """A group value with '$' signs (which matplotlib would parse as TeX and fail on) is
    drawn as plain text: exit 0 and the value in the page."""
    odd = {
        "id": "C-9",
        "events": {"received": "2026-01-05T10:00:00Z"},
        "attributes": {"channel": "email", "level": "refund $x^$ or $5"},
    }
    page = tmp_path / "report.html"
    args = ["report", "-c", ASTON, "-i", "-", "--from", "2026-01-01", "--to", "2026-01-31"]
    result = run([*args, "--now", NOW, "--by", "level", "--output", page], stdin=jsonl(odd))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "refund $x^$ or $5" in page.read_text(encoding="utf-8")


def test_an_output_suffix_that_names_no_format_is_refused(tmp_path: Path) -> None:
    """``--output report.pdf`` without --format exits 2 naming the suffix and the formats,
    and writes no file; with --format, or a .csv suffix, the file is written as asked."""
    args = ["report", "-c", ASTON, "-i", "-", "--from", "2026-01-01", "--to", "2026-01-31"]
    pdf = tmp_path / "report.pdf"
    refused = run([*args, "--now", NOW, "--output", pdf], stdin=jsonl(*COMPLAINTS))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "cannot tell the format of 'report.pdf' from '.pdf'" in refused.stderr
    assert ".json, .csv or .html, or give --format" in refused.stderr
    assert not pdf.exists()
    table = tmp_path / "Report.CSV"
    assert run([*args, "--now", NOW, "-o", table], stdin=jsonl(*COMPLAINTS)).returncode == 0
    assert table.read_text(encoding="utf-8").startswith("clock,period,group,due,")
    forced = tmp_path / "report.txt"
    chosen = run([*args, "--now", NOW, "-o", forced, "--format", "json"], stdin=jsonl(*COMPLAINTS))
    assert chosen.returncode == 0 and json.loads(forced.read_text())["charter"] == "aston"
