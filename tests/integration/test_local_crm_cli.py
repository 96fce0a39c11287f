"""``crmsync local import`` / ``export``: files in and out of the local CRM, bad rows named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from crmsync.cli import app

CASES = [
    {
        "Id": "500000000000001AAA",
        "CreatedDate": "2026-03-02T09:15:00.000+0000",
        "LastModifiedDate": "2026-03-02T10:00:00.000+0000",
        "SystemModstamp": "2026-03-02T10:00:00.000+0000",
        "Type": "Complaint",
        "Subject": "Late delivery",
        "Description": "Ordered in January,\nstill waiting. ‘Quotes’ and ünïcode.",
        "Origin": "Email",
        "Complaint_Level__c": 2,
        "Expected_Decision_Date__c": "2026-03-20",
        "Acknowledged_At__c": "2026-03-02T11:30:00.000+0000",
        "IsClosed": False,
    },
    {
        "Id": "500000000000002AAA",
        "CreatedDate": "2026-03-03T08:00:00.000+0000",
        "LastModifiedDate": "2026-03-03T08:00:00.000+0000",
        "SystemModstamp": "2026-03-03T08:00:00.000+0000",
        "Type": "Complaint",
        "Subject": 'Rude agent, "twice"',
        "Complaint_Level__c": 1.5,
        "IsClosed": True,
    },
]


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def exported(db: Path, object: str) -> list[dict[str, Any]]:
    result = run("local", "export", object, "--db", db)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_csv_bad_row_in_the_middle_is_named_and_skipped(tmp_path: Path) -> None:
    """A CSV row with a bad number is reported by its line and skipped; the others import."""
    source = tmp_path / "cases.csv"
    # line 1 header; lines 2-3 one record (quoted newline); line 4 bad; line 5 good
    source.write_text(
        "ID,SUBJECT,COMPLAINT_LEVEL__C,CREATEDDATE\n"
        '500000000000001AAA,"two\nlines",1,2026-03-02T09:15:00.000Z\n'
        "500000000000002AAA,bad level,high,2026-03-02T09:16:00.000Z\n"
        "500000000000003AAA,fine,,2026-03-02T09:17:00.000Z\n",
        "utf-8",
    )
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 3
    assert f"{source}:4: Complaint_Level__c: 'high' is not a number" in result.stderr
    assert ":2:" not in result.stderr
    assert ":5:" not in result.stderr
    rows = exported(db, "Case")
    assert [(r["Id"], r["Subject"], r.get("Complaint_Level__c")) for r in rows] == [
        ("500000000000001AAA", "two\nlines", 1),
        ("500000000000003AAA", "fine", None),
    ]
    # Data Loader's ...Z text is stored in Salesforce's own format
    assert rows[0]["CreatedDate"] == "2026-03-02T09:15:00.000+0000"


def test_jsonl_round_trip_import_then_export_is_equal(tmp_path: Path) -> None:
    """Records imported from JSON Lines export as the same JSON objects, in the same order."""
    source = write_jsonl(tmp_path / "cases.jsonl", CASES)
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert "imported 2 Case records" in result.stderr
    assert exported(db, "Case") == CASES


def test_exported_csv_imports_again(tmp_path: Path) -> None:
    """A CSV export imports into a fresh local CRM and exports the same records again."""
    first_db, second_db = tmp_path / "one.sqlite3", tmp_path / "two.sqlite3"
    source = write_jsonl(tmp_path / "cases.jsonl", CASES)
    assert run("local", "import", source, "--object", "Case", "--db", first_db).exit_code == 0
    csv_file = tmp_path / "cases.csv"
    result = run("local", "export", "Case", "--db", first_db, "--output", csv_file)
    assert result.exit_code == 0, result.stderr
    assert csv_file.read_text("utf-8").startswith("Id,")
    result = run("local", "import", csv_file, "--object", "Case", "--db", second_db)
    assert result.exit_code == 0, result.stderr
    assert exported(second_db, "Case") == CASES


def test_jsonl_bad_lines_are_named(tmp_path: Path) -> None:
    """Broken JSON, a non-object and an unknown field are each reported with their line."""
    source = tmp_path / "tasks.jsonl"
    source.write_text(
        '{"Subject": "ok 1"}\n'
        "{not json\n"
        "\n"
        "[1, 2]\n"
        '{"Subject": "ok 2", "No_Such__c": 1}\n'
        '{"Subject": "ok 3", "CrmSync_Key__c": "k"}\n',
        "utf-8",
    )
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Task", "--db", db)
    assert result.exit_code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(source))]
    assert [e.split(":")[1] for e in errors] == ["2", "4", "5"]
    assert "No_Such__c" in errors[2]
    assert [r["Subject"] for r in exported(db, "Task")] == ["ok 1", "ok 3"]


def test_importing_the_same_ids_twice_reports_duplicates(tmp_path: Path) -> None:
    """A second import of the same Ids keeps the first records and names every duplicate."""
    source = write_jsonl(tmp_path / "cases.jsonl", CASES)
    db = tmp_path / "crm.sqlite3"
    assert run("local", "import", source, "--object", "Case", "--db", db).exit_code == 0
    again = run("local", "import", source, "--object", "Case", "--db", db)
    assert again.exit_code == 3
    assert f"{source}:1: a record with Id 500000000000001AAA exists" in again.stderr
    assert f"{source}:2: a record with Id 500000000000002AAA exists" in again.stderr
    assert len(exported(db, "Case")) == 2


def test_csv_header_with_unknown_field_imports_nothing(tmp_path: Path) -> None:
    """A CSV column that is not a field of the object stops the import before any row."""
    source = tmp_path / "cases.csv"
    source.write_text("Id,Subject,Owner.Name\n500000000000001AAA,s,Ann\n", "utf-8")
    db = tmp_path / "crm.sqlite3"
    result = run("local", "import", source, "--object", "Case", "--db", db)
    assert result.exit_code == 2
    assert f"{source}:1: not fields of this object: Owner.Name" in result.stderr
    assert exported(db, "Case") == []


def test_default_db_lives_in_the_data_dir(tmp_path: Path) -> None:
    """Without --db the local CRM is CRMSYNC_DATA_DIR/local-crm.sqlite3."""
    source = write_jsonl(tmp_path / "users.json", [{"Id": "005000000000001AAA", "Name": "Ann"}])
    env = {"CRMSYNC_DATA_DIR": str(tmp_path / "data")}
    assert run("local", "import", source, "--object", "User", env=env).exit_code == 0
    assert (tmp_path / "data" / "local-crm.sqlite3").is_file()
    result = run("local", "export", "User", env=env)
    assert result.exit_code == 0
    assert [json.loads(line)["Name"] for line in result.stdout.splitlines()] == ["Ann"]


def test_format_from_option_and_unknown_extension(tmp_path: Path) -> None:
    """An unknown extension needs --format; with it the file imports."""
    source = write_jsonl(tmp_path / "cases.txt", CASES[:1])
    db = tmp_path / "crm.sqlite3"
    refused = run("local", "import", source, "--object", "Case", "--db", db)
    assert refused.exit_code == 2
    assert "--format" in refused.stderr
    ok = run("local", "import", source, "--object", "Case", "--db", db, "--format", "jsonl")
    assert ok.exit_code == 0, ok.stderr
    assert exported(db, "Case") == CASES[:1]


def test_export_without_a_database_fails(tmp_path: Path) -> None:
    """Exporting from a local CRM file that does not exist exits 2 and creates nothing."""
    db = tmp_path / "missing.sqlite3"
    result = run("local", "export", "Case", "--db", db)
    assert result.exit_code == 2
    assert "no local CRM at" in result.stderr
    assert not db.exists()


def test_an_object_the_local_crm_does_not_know_is_refused_with_a_suggestion(
    tmp_path: Path,
) -> None:
    """`--object Kase` exits 2 suggesting Case and creates no file; a custom object (`__c`)
    and an object that already holds records still import; export suggests the same."""
    source = write_jsonl(tmp_path / "cases.jsonl", CASES[:1])
    db = tmp_path / "crm.sqlite3"
    refused = run("local", "import", source, "--object", "Kase", "--db", db)
    assert refused.exit_code == 2
    assert "--object: the local CRM has no object 'Kase' (did you mean 'Case'?)" in refused.stderr
    assert "Case, Task, User" in refused.stderr and "Traceback" not in refused.stderr
    assert not db.exists()
    custom = write_jsonl(tmp_path / "notes.jsonl", [{"Body__c": "called back"}])
    assert run("local", "import", custom, "--object", "Note__c", "--db", db).exit_code == 0
    assert [r["Body__c"] for r in exported(db, "Note__c")] == ["called back"]
    assert run("local", "import", source, "--object", "case", "--db", db).exit_code == 2
    missing = run("local", "export", "Kase", "--db", db)
    assert missing.exit_code == 2 and "(did you mean 'Case'?)" in missing.stderr


def test_a_file_without_records_says_nothing_was_imported(tmp_path: Path) -> None:
    """A header-only CSV or an empty JSON Lines file (what export writes for no records)
    exits 0 with a warning that nothing was imported; an empty CSV (no header) exits 2."""
    db = tmp_path / "crm.sqlite3"
    header_only = tmp_path / "cases.csv"
    header_only.write_text("Id,Subject\n", "utf-8")
    empty_jsonl = tmp_path / "cases.jsonl"
    empty_jsonl.write_text("\n", "utf-8")
    for source in (header_only, empty_jsonl):
        result = run("local", "import", source, "--object", "Case", "--db", db)
        assert result.exit_code == 0, result.stderr
        assert f"{source}: warning: the file holds no records; nothing was imported" in (
            result.stderr
        )
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("", "utf-8")
    refused = run("local", "import", empty_csv, "--object", "Case", "--db", db)
    assert refused.exit_code == 2
    assert f"{empty_csv}:1: no CSV header row (the file is empty); nothing was imported" in (
        refused.stderr
    )
    assert exported(db, "Case") == []
