"""``crmsync archive``: run, verify, show, search and export, as staff use them.

Most commands run in this process through typer's runner (fast); one test runs the
installed command as a real process. Data: the embedded local CRM in a temporary
CRMSYNC_DATA_DIR with three complaints closed in March 2026 (Aston charter, London time),
archived by ``archive run --now 2026-06-01T02:00:00Z``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from crmsync.adapters.archive.local import entry_path
from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import ARCHIVE_DIR, LOCAL_CRM_FILE
from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-06-01T02:00:00Z"
CLOSINGS = [  # UTC; London is GMT until 29 March, BST (UTC+1) after
    "2026-03-10T10:00:00.000+0000",
    "2026-03-31T23:30:00.000+0000",  # 1 April 00:30 in London
    "2026-04-20T10:00:00.000+0000",
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A data folder with three closed complaints; CRMSYNC_* pointing at it."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    values = {
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CHARTER": str(REPO / "mappings" / "charters" / "aston.yaml"),
        "CRMSYNC_MAPPING": str(REPO / "mappings" / "salesforce.yaml"),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
        "CRMSYNC_LOG_FORMAT": "json",
        "CRMSYNC_ACTOR": "mary.staff",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        results = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "CreatedDate": "2026-03-02T10:00:00.000+0000",
                    "ClosedDate": closed,
                    "SuppliedName": f"Customer {i}",
                }
                for i, closed in enumerate(CLOSINGS)
            ],
        )
        assert all(r.ok for r in results)
    yield values
    structlog.reset_defaults()  # the commands configured logging onto the runner's stream


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def case_ids(data_dir: str) -> list[str]:
    with LocalCrm(Path(data_dir) / LOCAL_CRM_FILE) as crm:
        return [r.id for r in crm.export_records("Case")]


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def test_run_archives_then_verify_show_search_and_export(env: dict[str, str]) -> None:
    """One run archives the three cases; verify exits 0; show, search and export read them."""
    result = cli("archive", "run", "--now", NOW, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["archived"], report["marked"]) == (3, 3)
    assert cli("archive", "verify").exit_code == 0
    ids = case_ids(env["CRMSYNC_DATA_DIR"])

    shown = cli("archive", "show", "default/2")
    assert shown.exit_code == 0
    document = json.loads(shown.stdout)
    assert document["ref"] == "default/2"
    assert document["body"]["record"]["fields"]["SuppliedName"] == "Customer 1"
    assert [e["actor"] for e in events(shown.stderr, "archive_read")] == ["mary.staff"]
    by_complaint = cli("archive", "show", ids[0])
    assert json.loads(by_complaint.stdout)["header"]["complaint_id"] == ids[0]

    # April in London: 31 March 23:30 UTC is 1 April 00:30 BST, so it is in; 10 March is not
    april = cli("archive", "search", "--from", "2026-04-01", "--to", "2026-04-30", "--json")
    assert [json.loads(x)["ref"] for x in april.stdout.splitlines()] == ["default/2", "default/3"]
    one = cli("archive", "search", "--complaint", ids[2], "--charter", "aston", "--json")
    assert [json.loads(x)["complaint_id"] for x in one.stdout.splitlines()] == [ids[2]]
    none = cli("archive", "search", "--charter", "kilkenny", "--json")
    assert none.stdout == ""

    lines = cli("archive", "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(x)["header"]["seq"] for x in lines] == [1, 2, 3]
    out = Path(env["CRMSYNC_DATA_DIR"]) / "export.csv"
    exported = cli("archive", "export", "--format", "csv", "--output", str(out))
    assert exported.exit_code == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["ref"], r["complaint_id"], r["closed_at"]) for r in rows] == [
        ("default/1", ids[0], "2026-03-10T10:00:00Z"),
        ("default/2", ids[1], "2026-03-31T23:30:00Z"),
        ("default/3", ids[2], "2026-04-20T10:00:00Z"),
    ]
    assert "level1-resolution=" in rows[0]["clock_states_at_close"]
    assert events(exported.stderr, "archive_read") == []
    [summary] = events(exported.stderr, "archive_exported")
    assert summary["refs"] == ["default/1", "default/2", "default/3"]


def test_verify_exits_4_and_names_the_broken_entries(env: dict[str, str]) -> None:
    """An edited entry makes verify exit 4, naming the first broken link and the bad entry,
    and logs the result at level error."""
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    assert [e["level"] for e in events(cli("archive", "verify").stderr, "archive_verified")] == [
        "info"
    ]
    path = entry_path(Path(env["CRMSYNC_DATA_DIR"]) / ARCHIVE_DIR, "default", 2)
    path.write_text(path.read_text(encoding="utf-8").replace("Customer 1", "Customer X"))
    result = cli("archive", "verify", "--json")
    assert result.exit_code == 4
    assert [e["level"] for e in events(result.stderr, "archive_verified")] == ["error"]
    report = json.loads(result.stdout)
    assert report["first_broken"].startswith("default/2: content altered")
    assert len(report["bad"]) == 1
    refused = cli("archive", "show", "default/2")
    assert refused.exit_code == 1
    assert "content altered" in refused.stderr


def test_verify_holds_the_chain_against_the_state_stores_witness(env: dict[str, str]) -> None:
    """The last entry cut together with its index line: verify still exits 4, because the
    state store witnessed entry 3; the plain text says how far it was witnessed."""
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    intact = cli("archive", "verify", "--format", "table")
    assert intact.exit_code == 0
    assert "3 entries, head 3, witnessed up to 3: intact" in intact.stdout
    root = Path(env["CRMSYNC_DATA_DIR"]) / ARCHIVE_DIR
    entry_path(root, "default", 3).unlink()
    index = root / "default" / "index.jsonl"
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:2]))
    result = cli("archive", "verify", "--json")
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    assert (report["entries"], report["head"], report["witness"]) == (2, 2, 3)
    assert report["first_broken"] == (
        "chain: entry 3 was witnessed outside the archive but the chain ends at 2: "
        "entries 3..3 were removed together with the head"
    )


def test_a_changed_index_line_is_reported_refused_and_rebuilt(env: dict[str, str]) -> None:
    """One complaint id changed in index.jsonl: verify exits 4 naming the line, search and
    show by complaint refuse pointing at reindex, show by reference still reads the entry;
    after reindex search finds the complaint again and verify is intact."""
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    ids = case_ids(env["CRMSYNC_DATA_DIR"])
    index = Path(env["CRMSYNC_DATA_DIR"]) / ARCHIVE_DIR / "default" / "index.jsonl"
    lines = index.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace(ids[1], "500TAMPERED")
    index.write_text("".join(lines), encoding="utf-8")

    verify = cli("archive", "verify", "--json")
    assert verify.exit_code == 4
    assert json.loads(verify.stdout)["index_bad"] == [
        "default/2: index line 2 differs from the entry in complaint_id"
    ]
    plain = cli("archive", "verify", "--format", "table")
    assert "index: default/2: index line 2 differs" in plain.stdout
    for args in (("search", "--complaint", ids[1]), ("show", ids[1])):
        refused = cli("archive", *args)
        assert refused.exit_code == 1
        assert "disagrees with its entries" in refused.stderr
        assert "crmsync archive reindex" in refused.stderr
    assert cli("archive", "show", "default/2").exit_code == 0

    rebuilt = cli("archive", "reindex")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "index rebuilt from 3 entries" in rebuilt.stdout
    found = cli("archive", "search", "--complaint", ids[1], "--json")
    assert [json.loads(x)["ref"] for x in found.stdout.splitlines()] == ["default/2"]
    assert cli("archive", "verify", "--format", "table").exit_code == 0


def test_a_wrong_or_malformed_key_is_a_clear_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries sealed with one key: another key exits 1 saying so; a bad key exits 2."""
    monkeypatch.setenv("CRMSYNC_ARCHIVE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    monkeypatch.setenv("CRMSYNC_ARCHIVE_KEY", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
    wrong = cli("archive", "show", "default/1")
    assert wrong.exit_code == 1
    assert "wrong key" in wrong.stderr
    assert cli("archive", "verify").exit_code == 1
    monkeypatch.setenv("CRMSYNC_ARCHIVE_KEY", "c2hvcnQ=")
    bad = cli("archive", "show", "default/1")
    assert bad.exit_code == 2
    assert "CRMSYNC_ARCHIVE_KEY" in bad.stderr and "c2hvcnQ=" not in bad.stderr


def test_after_a_key_rotation_verify_is_intact_and_old_entries_read(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Three entries sealed with key A; then key B current and A kept in the secret file
    crmsync_archive_keys: a new entry is sealed with B, verify is intact with every body
    checked, and show, search and export read old and new entries. No key is ever printed."""
    old_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    new_key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    monkeypatch.setenv("CRMSYNC_ARCHIVE_KEY", old_key)
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    with LocalCrm(Path(env["CRMSYNC_DATA_DIR"]) / LOCAL_CRM_FILE) as crm:
        [added] = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "CreatedDate": "2026-04-01T10:00:00.000+0000",
                    "ClosedDate": "2026-04-25T10:00:00.000+0000",
                    "SuppliedName": "Customer after the rotation",
                }
            ],
        )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "crmsync_archive_keys").write_text(f"{old_key}\n", encoding="utf-8")
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("CRMSYNC_ARCHIVE_KEY", new_key)
    rotated = cli("archive", "run", "--now", "2026-06-02T02:00:00Z", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["archived"] == 1

    root = Path(env["CRMSYNC_DATA_DIR"]) / ARCHIVE_DIR
    key_ids = [
        json.loads(entry_path(root, "default", n).read_text())["sealed"]["key_id"]
        for n in (1, 2, 3, 4)
    ]
    assert key_ids[0] == key_ids[1] == key_ids[2] != key_ids[3]
    verify = cli("archive", "verify", "--json")
    assert verify.exit_code == 0, verify.stdout
    assert json.loads(verify.stdout)["unchecked_bodies"] == 0
    old = json.loads(cli("archive", "show", "default/1").stdout)
    assert old["body"]["record"]["fields"]["SuppliedName"] == "Customer 0"
    new = cli("archive", "show", added.id)
    assert json.loads(new.stdout)["body"]["record"]["fields"]["SuppliedName"] == (
        "Customer after the rotation"
    )
    found = cli("archive", "search", "--from", "2026-03-01", "--json")
    assert [json.loads(x)["ref"] for x in found.stdout.splitlines()] == [
        f"default/{n}" for n in (1, 2, 3, 4)
    ]
    exported = cli("archive", "export")
    assert exported.exit_code == 0
    assert len(exported.stdout.splitlines()) == 4

    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "none"))  # the old key dropped
    lost = cli("archive", "verify")
    assert lost.exit_code == 1
    assert key_ids[0] in lost.stderr and "CRMSYNC_ARCHIVE_KEYS" in lost.stderr
    for result in (rotated, verify, new, found, exported, lost):
        assert old_key not in result.output and new_key not in result.output


def test_the_installed_command_logs_who_read_an_entry(env: dict[str, str]) -> None:
    """A real `crmsync archive show` process logs archive_read with CRMSYNC_ACTOR."""
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    beside = Path(sys.executable).with_name("crmsync")
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "crmsync"]
    result = subprocess.run(
        [*command, "archive", "show", "default/1"],
        env={**os.environ, "CRMSYNC_ACTOR": "auditor.jo"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ref"] == "default/1"
    reads = events(result.stderr, "archive_read")
    assert [(e["actor"], e["ref"]) for e in reads] == [("auditor.jo", "default/1")]


def test_a_profile_held_elsewhere_is_named_and_a_bad_wait_refused(env: dict[str, str]) -> None:
    """archive run and reindex while another process holds the profile's lock exit 5 naming
    it and change nothing; --wait that is not a duration exits 2 naming the option."""
    from crmsync.adapters.profile_lock import FileProfileLock

    other = FileProfileLock(Path(env["CRMSYNC_DATA_DIR"]) / "locks", command="crmsync run")
    assert other.try_acquire("default")
    try:
        for args in (("run", "--now", NOW), ("reindex",)):
            busy = cli("archive", *args)
            assert busy.exit_code == 5, busy.output
            assert "profile 'default' is being worked by 'crmsync run' (pid" in busy.stderr
        assert not (Path(env["CRMSYNC_DATA_DIR"]) / ARCHIVE_DIR / "default").exists()
    finally:
        other.close()
    bad = cli("archive", "run", "--now", NOW, "--wait", "soon")
    assert bad.exit_code == 2
    assert "--wait" in bad.stderr
    assert cli("archive", "run", "--now", NOW, "--wait", "30s").exit_code == 0


def test_verify_where_nothing_ran_is_refused_and_creates_nothing(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CRMSYNC_DATA_DIR mistyped (a folder with neither an archive nor a state store):
    `archive verify` said "0 entries, head 0: intact" (exit 0) and left an empty archive
    there. Now exit 2 naming both paths and CRMSYNC_DATA_DIR, nothing made."""
    typo = tmp_path / "typo"
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(typo))
    done = CliRunner().invoke(app, ["archive", "verify"])
    assert done.exit_code == 2, done.output
    assert f"no archive at {typo / 'archive'} and no state store at" in done.stderr
    assert "CRMSYNC_DATA_DIR" in done.stderr
    assert "Traceback" not in done.output
    assert not typo.exists()


def test_verify_without_a_state_store_still_checks_an_archive_that_exists(
    env: dict[str, str],
) -> None:
    """An archive whose state store is gone is still verified (no witness, said on
    standard error): only a place where nothing ran at all is refused."""
    assert cli("archive", "run", "--now", NOW).exit_code == 0
    (Path(env["CRMSYNC_DATA_DIR"]) / "state.sqlite3").unlink()
    done = CliRunner().invoke(app, ["archive", "verify", "--format", "table"])
    assert done.exit_code == 0, done.output
    assert "3 entries" in done.stdout and "intact" in done.stdout
    assert "no witness" in done.stderr
