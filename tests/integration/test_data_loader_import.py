"""``crmsync local import`` of real Data Loader exports: standard Case and Task fields,
unknown columns, re-imports by Id, delimiters, byte order marks, encodings and quotes that
are never closed; good rows always kept, bad ones named by line in file order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from crmsync.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data_loader"
CASES = FIXTURES / "case_export.csv"
TASKS = FIXTURES / "task_export_semicolons.csv"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def exported(db: Path, object: str) -> list[dict[str, Any]]:
    result = run("local", "export", object, "--db", db)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def problems(result: Result, file: Path) -> list[str]:
    """The reported lines naming ``file``, without the file name."""
    lines = (line.removeprefix("error: ") for line in result.stderr.splitlines())
    return [line.removeprefix(f"{file}:") for line in lines if line.startswith(f"{file}:")]


def test_a_case_export_with_unknown_columns_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """Without --ignore-unknown, the org's own custom columns stop the import (exit 2) and
    the message names them and the option; the standard columns are not among them."""
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", CASES, "--object", "Case", "--db", db)
    assert result.exit_code == 2
    assert problems(result, CASES) == [
        "1: not fields of this object: ENGINEERINGREQNUMBER__C, SLAVIOLATION__C, PRODUCT__C, "
        "POTENTIALLIABILITY__C (--ignore-unknown skips them)"
    ]
    assert exported(db, "Case") == []


def test_a_real_case_export_imports_with_ignore_unknown(tmp_path: Path) -> None:
    """BOM, quoted upper-case header, CRLF and a quoted CRLF inside a cell: every row is
    imported with its standard fields; the unknown columns are listed once."""
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", CASES, "--object", "Case", "--db", db, "--ignore-unknown")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"{CASES}:1: warning: skipping 4 columns that are not fields of this object: "
        "ENGINEERINGREQNUMBER__C, SLAVIOLATION__C, PRODUCT__C, POTENTIALLIABILITY__C"
    ]
    assert "imported 3 Case records" in result.stderr
    rows = exported(db, "Case")
    first = rows[0]
    assert first["Id"] == "5003X00002AbCdEQAV"
    assert first["IsDeleted"] is False
    assert first["CaseNumber"] == "00001001"
    assert (first["ContactId"], first["AccountId"]) == ("0033X00003KmNoPQAV", "0013X00002XyZaBQAV")
    assert (first["Reason"], first["SuppliedPhone"]) == ("Delivery", "+353 1 555 0101")
    assert first["Description"] == (
        'Ordered on 2 March,\r\nthe parcel never came. "Tracking" says delivered.'
    )
    assert first["Acknowledged_At__c"] == "2026-03-02T11:30:00.000+0000"
    assert first["Complaint_Level__c"] == 1
    assert "SLAViolation__c" not in first and "SLAVIOLATION__C" not in first
    assert rows[1]["ParentId"] == "5003X00002AbCdEQAV"
    assert rows[1]["SuppliedName"] == "Seán Ó Briain"
    assert rows[1]["IsClosed"] is True
    assert rows[2]["Description"] == "Wanneer zijn jullie open;\r\nook op zaterdag?"


def test_a_semicolon_task_export_imports_every_standard_field(tmp_path: Path) -> None:
    """A Task export with semicolons (a spreadsheet's save) is read by its detected
    delimiter; a cell holding both ';' and ',' stays one value."""
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", TASKS, "--object", "Task", "--db", db)
    assert result.exit_code == 0, result.stderr
    rows = exported(db, "Task")
    assert [r["Subject"] for r in rows] == ["Call back: parcel", "Email about opening hours"]
    call = rows[0]
    assert call["Description"] == "Called; customer, satisfied"
    assert (call["CallDurationInSeconds"], call["CallType"], call["TaskSubtype"]) == (
        120,
        "Outbound",
        "Call",
    )
    assert call["CompletedDateTime"] == "2026-03-03T09:30:00.000+0000"
    assert rows[1]["ReminderDateTime"] == "2026-03-05T08:00:00.000+0000"
    assert rows[1]["IsReminderSet"] is True


def test_a_tab_separated_file_is_read_by_its_delimiter(tmp_path: Path) -> None:
    """Tab-separated text imports like comma-separated."""
    source = tmp_path / "tasks.csv"
    source.write_text("Subject\tStatus\tDescription\nCall\tCompleted\tsaid a, b; c\n", "utf-8")
    db = tmp_path / "crm.sqlite3"
    assert run("local", "import", source, "--object", "Task", "--db", db).exit_code == 0
    assert [(r["Subject"], r["Description"]) for r in exported(db, "Task")] == [
        ("Call", "said a, b; c")
    ]


def test_upsert_updates_by_id_instead_of_refusing(tmp_path: Path) -> None:
    """A second export of the same Cases, one changed and one new, updates by Id with
    --upsert (no duplicates); without it the known Ids are refused with the hint."""
    db = tmp_path / "crm.sqlite3"
    first = tmp_path / "first.csv"
    first.write_text(
        "Id,Subject,Status,Reason\r\n"
        "5003X00002AbCdEQAV,Parcel never arrived,New,Delivery\r\n"
        "5003X00002AbCeFQAV,Second,New,Other\r\n",
        "utf-8",
    )
    second = tmp_path / "second.csv"
    second.write_text(
        "Id,Subject,Status,Reason\r\n"
        "5003X00002AbCdEQAV,Parcel never arrived,Closed,\r\n"
        "5003X00002AbCgHQAV,Third,New,Other\r\n",
        "utf-8",
    )
    assert run("local", "import", first, "--object", "Case", "--db", db).exit_code == 0
    refused = run("local", "import", second, "--object", "Case", "--db", db)
    assert refused.exit_code == 3
    assert problems(refused, second) == [
        "2: a record with Id 5003X00002AbCdEQAV exists (DUPLICATE_VALUE); --upsert updates it"
    ]
    again = run("local", "import", second, "--object", "Case", "--db", db, "--upsert")
    assert again.exit_code == 0, again.stderr
    assert "imported 2 Case records" in again.stderr
    assert "(2 updated by Id)" in again.stderr  # the refused run had imported the new one
    rows = {r["Id"]: r for r in exported(db, "Case")}
    assert sorted(rows) == ["5003X00002AbCdEQAV", "5003X00002AbCeFQAV", "5003X00002AbCgHQAV"]
    assert rows["5003X00002AbCdEQAV"]["Status"] == "Closed"
    assert "Reason" not in rows["5003X00002AbCdEQAV"]  # an empty cell clears the field
    assert rows["5003X00002AbCeFQAV"]["Status"] == "New"


def test_an_unclosed_quote_is_named_and_the_rows_after_it_are_kept(tmp_path: Path) -> None:
    """A quote opened on line 3 and never closed is an error naming line 3; the rows after
    it are imported, a later bad row is named too, in file order (exit 3)."""
    source = tmp_path / "cases.csv"
    source.write_text(
        "Id,Subject,Complaint_Level__c\r\n"
        "500000000000001AAA,first,1\r\n"
        '500000000000002AAA,"broken,2\r\n'
        "500000000000003AAA,third,3\r\n"
        "500000000000004AAA,fourth,high\r\n"
        '500000000000005AAA,"two\r\nlines",5\r\n',
        "utf-8",
    )
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 3
    assert problems(result, source) == [
        "3: unclosed quote: a quoted cell opened on this line is never closed",
        "5: Complaint_Level__c: 'high' is not a number",
    ]
    assert [(r["Id"], r["Subject"]) for r in exported(db, "Case")] == [
        ("500000000000001AAA", "first"),
        ("500000000000003AAA", "third"),
        ("500000000000005AAA", "two\r\nlines"),
    ]
    assert "imported 3 Case records" in result.stderr
    assert "2 bad rows skipped" in result.stderr


def test_a_quote_closed_lines_later_is_named_by_its_cell_count(tmp_path: Path) -> None:
    """A quote that a later quoted cell happens to close makes a row of too few cells
    spanning lines: named at its first line, the lines after it read again."""
    source = tmp_path / "cases.csv"
    source.write_text(
        "Id,Subject,Description\n"
        '500000000000001AAA,"open,x\n'
        '500000000000002AAA,fine,ok"\n'
        "500000000000003AAA,last,z\n",
        "utf-8",
    )
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 3
    assert problems(result, source) == [
        "2: unclosed quote: the row reads as lines 2-3 with 2 cells but the header has 3"
    ]
    assert [r["Subject"] for r in exported(db, "Case")] == ["fine", "last"]


def test_an_unclosed_quote_on_the_last_row_is_named(tmp_path: Path) -> None:
    """A quote opened on the last row runs into the end of the file: that line is named."""
    source = tmp_path / "cases.csv"
    source.write_text('Id,Subject\n500000000000001AAA,ok\n500000000000002AAA,"open\n', "utf-8")
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 3
    assert problems(result, source) == [
        "3: unclosed quote: a quoted cell opened on this line is never closed"
    ]
    assert [r["Id"] for r in exported(db, "Case")] == ["500000000000001AAA"]


def test_a_windows_1252_file_is_named_before_anything_is_imported(tmp_path: Path) -> None:
    """A Windows-1252 export is refused with the line of the first bad byte and the option
    to read it; with --encoding cp1252 it imports."""
    source = tmp_path / "cases.csv"
    source.write_bytes(
        "Id,SuppliedName\r\n500000000000001AAA,Ann\r\n500000000000002AAA,Seán\r\n".encode("cp1252")
    )
    db = tmp_path / "crm.sqlite3"
    refused = run("local", "import", source, "--object", "Case", "--db", db)
    assert refused.exit_code == 2
    assert (
        f"{source}:3: byte 0xe1 is not utf-8; it may be Windows-1252 or Latin-1: pass "
        "--encoding cp1252 (or save the file as UTF-8); nothing was imported"
    ) in refused.stderr.replace("\n", " ")
    assert not db.exists()
    ok = run("local", "import", source, "--object", "Case", "--db", db, "--encoding", "cp1252")
    assert ok.exit_code == 0, ok.stderr
    assert [r["SuppliedName"] for r in exported(db, "Case")] == ["Ann", "Seán"]


def test_a_utf16_file_is_named_and_reads_with_its_encoding(tmp_path: Path) -> None:
    """A UTF-16 file (as some spreadsheets save 'Unicode text') is named as such; with
    --encoding utf-16 it imports."""
    source = tmp_path / "tasks.csv"
    source.write_bytes("Subject\tStatus\nBel terug\tCompleted\n".encode("utf-16"))
    db = tmp_path / "crm.sqlite3"
    refused = run("local", "import", source, "--object", "Task", "--db", db)
    assert refused.exit_code == 2
    assert "is UTF-16" in refused.stderr and "--encoding utf-16" in refused.stderr
    ok = run("local", "import", source, "--object", "Task", "--db", db, "--encoding", "utf-16")
    assert ok.exit_code == 0, ok.stderr
    assert [r["Subject"] for r in exported(db, "Task")] == ["Bel terug"]


def test_a_utf32_file_is_named_as_utf32_not_utf16(tmp_path: Path) -> None:
    """A UTF-32 file's byte-order mark starts with UTF-16's: it is named UTF-32 (the same
    sniffer as evaluate's), nothing is imported, and --encoding utf-32 reads it."""
    source = tmp_path / "tasks.csv"
    source.write_bytes("Subject\tStatus\nBel terug\tCompleted\n".encode("utf-32"))
    db = tmp_path / "crm.sqlite3"
    refused = run("local", "import", source, "--object", "Task", "--db", db)
    assert refused.exit_code == 2
    assert f"{source} is UTF-32LE text (byte-order mark FF FE 00 00)" in refused.stderr
    assert "--encoding utf-32" in refused.stderr
    assert not db.exists()
    ok = run("local", "import", source, "--object", "Task", "--db", db, "--encoding", "utf-32")
    assert ok.exit_code == 0, ok.stderr
    assert [r["Subject"] for r in exported(db, "Task")] == ["Bel terug"]


def test_an_unknown_encoding_name_is_a_usage_error(tmp_path: Path) -> None:
    """--encoding with a name Python does not know exits 2 naming it."""
    result = run("local", "import", TASKS, "--object", "Task", "--encoding", "klingon")
    assert result.exit_code == 2
    assert "unknown encoding 'klingon'" in result.stderr
