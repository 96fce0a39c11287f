"""The whole CLI, as real processes, over a corpus of hostile records and arguments.

One embedded local CRM is filled by ``local import`` with good complaints (open and
closed) and hostile rows: a NUL character, a lone surrogate, terminal escape sequences
and a bidirectional override, a 200,000-character value, a far-future and a malformed
date, lines that are not JSON or not objects. Then, in order, as an operator would:
``sync --once``, out-of-range and future ``--now`` for the commands that write,
``status``, ``explain``, ``report`` (``--by`` a hostile value, a typo in ``--by``),
``archive run`` and ``verify``, a complaint reopened and closed again at an earlier
instant (archived once more), complaints deleted in the CRM (forgotten, their archived
versions kept), ``state prune``; and ``evaluate`` over hostile canonical
complaints. Every step: no traceback, no Python warning, the documented exit status;
and nothing lost: the good records are imported, flagged, archived and counted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import LocalCrm

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
MAPPING = REPO / "mappings" / "salesforce.yaml"
CYCLE = "2026-03-20T12:00:00Z"
ARCHIVE_AT = "2026-06-01T02:00:00Z"
ESCAPES = "\x1b[2J\x1b[31mred\u202eevil"


def command() -> list[str]:
    beside = Path(sys.executable).with_name("crmsync")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crmsync")
    return [found] if found else [sys.executable, "-m", "crmsync"]


class Cli:
    """Runs crmsync on one data folder; every run is checked for tracebacks and warnings."""

    def __init__(self, data: Path) -> None:
        self.data = data
        base = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        self.env = base | {
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "CRMSYNC_DATA_DIR": str(data),
            "CRMSYNC_CHARTER": str(ASTON),
            "CRMSYNC_MAPPING": str(MAPPING),
            "CRMSYNC_CONFIG": str(data.parent / "none.toml"),
            "CRMSYNC_SECRETS_DIR": str(data.parent / "no-secrets"),
            "CRMSYNC_LOG_FORMAT": "json",
            "CRMSYNC_ACTOR": "mary.staff",
        }

    def __call__(self, *args: str | Path, expect: int) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*command(), *map(str, args)],
            capture_output=True,
            text=True,
            errors="backslashreplace",
            env=self.env,
            cwd=self.data.parent,
            timeout=300,
            check=False,
        )
        shown = f"crmsync {' '.join(map(str, args))}\n{done.stderr[-4000:]}"
        assert "Traceback" not in done.stderr, shown
        assert "Warning:" not in done.stderr, shown
        assert done.returncode == expect, shown
        return done

    def cases(self) -> dict[str, dict[str, Any]]:
        """Every Case in the local CRM by Subject."""
        with LocalCrm(self.data / "local-crm.sqlite3") as crm:
            return {str(r.fields.get("Subject")): r.fields for r in crm.export_records("Case")}


def case(subject: str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Complaint",
        "Origin": "Email",
        "Status": "New",
        "CreatedDate": "2026-03-02T10:00:00.000+0000",
        "SuppliedName": "A Customer",
        "Subject": subject,
    } | fields


def closed(subject: str) -> dict[str, Any]:
    return case(
        subject,
        Status="Closed",
        ClosedDate="2026-03-10T10:00:00.000+0000",
        Solution__c="Apology sent",
    )


GOOD_OPEN = [f"open {i}" for i in range(5)]
GOOD_CLOSED = [f"closed {i}" for i in range(3)]


def corpus(path: Path) -> None:
    rows = [case(s) for s in GOOD_OPEN] + [closed(s) for s in GOOD_CLOSED]
    rows += [
        case("nul name", SuppliedName="Nul\x00Person"),  # line 9
        case("escapes", SuppliedName=ESCAPES),  # line 10
        case("huge", Description="x" * 200_000),  # line 11
        case("far future", CreatedDate="9999-12-31T23:59:59.000+0000"),  # line 12
        case("bad date", CreatedDate="not a date"),  # line 13: refused by the CRM
    ]
    lines = [json.dumps(r) for r in rows]
    lines.append(json.dumps(case("surrogate X")).replace("X", "\\ud800"))  # line 14
    lines += ["{not json", "[1, 2]"]  # lines 15 and 16
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def in_future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_cli_survives_a_hostile_corpus_and_loses_nothing(tmp_path: Path) -> None:
    """Import, sync, refuse bad --now, read, archive, re-close, delete, prune, in order."""
    cli = Cli(tmp_path / "data")
    source = tmp_path / "cases.jsonl"
    corpus(source)
    import_the_corpus(cli, source)
    by_subject = sync_flags_all_but_the_bad(cli)
    refuse_bad_now(cli)
    read_reports(cli, by_subject, tmp_path / "report.html")
    archive_and_re_close(cli, by_subject)
    delete_and_forget(cli, by_subject)
    # retention counts back from a past --now: nothing good is lost from the CRM
    cli("state", "prune", "--now", "2026-06-03T13:00:00Z", expect=0)
    kept = set(GOOD_OPEN + GOOD_CLOSED) - {"open 4", "closed 1"}  # those two were deleted
    assert kept <= set(cli.cases())


def import_the_corpus(cli: Cli, source: Path) -> None:
    """The four bad lines named (exit 3), the twelve others in."""
    done = cli("local", "import", source, "--object", "Case", expect=3)
    for line, what in (
        (13, "'not a date' is not a date-time"),
        (14, "field 'Subject' holds a lone surrogate"),
        (15, "not valid JSON"),
        (16, "not a JSON object"),
    ):
        assert f"{source}:{line}: " in done.stderr and what in done.stderr, (line, done.stderr)
    assert "imported 12 Case records" in done.stderr
    cases = cli.cases()
    assert set(GOOD_OPEN + GOOD_CLOSED) <= set(cases)
    assert len(cases["huge"]["Description"]) == 200_000


def sync_flags_all_but_the_bad(cli: Cli) -> dict[str, str]:
    """A cycle: the NUL and the far-future record are their own errors (exit 3), named;
    every other complaint is flagged. Returns the Case ids by Subject."""
    done = cli("sync", "--once", "--now", CYCLE, "--json", expect=3)
    report = json.loads(done.stdout)
    errors = {(e["record_id"], e["field"]) for e in report["errors"]}
    by_subject = {k: str(v["Id"]) for k, v in cli.cases().items()}
    assert (by_subject["nul name"], "complainant_name") in errors
    assert any(rid == by_subject["far future"] for rid, _ in errors)
    flagged = cli.cases()
    for subject in [*GOOD_OPEN, *GOOD_CLOSED, "escapes", "huge", "nul name"]:
        assert flagged[subject].get("Charter_Status__c"), subject
    assert "\x1b" not in done.stderr  # escape sequences from the CRM are never replayed
    return by_subject


def refuse_bad_now(cli: Cli) -> None:
    """--now out of range, or in the future for commands that write: refused (exit 2),
    nothing written to the CRM or the archive."""
    before = cli.cases()
    for args in (
        ("sync", "--once", "--now", "9999-12-31T23:59:59Z"),
        ("sync", "--once", "--now", "0206-03-20T12:00:00Z"),
        ("sync", "--once", "--now", in_future(400)),
        ("archive", "run", "--now", "9999-12-31T23:59:59Z"),
        ("archive", "run", "--now", in_future(30)),
        ("state", "prune", "--now", in_future(400)),
        ("status", "--now", "1969-07-20T20:17:00Z"),
    ):
        cli(*args, expect=2)
    assert cli.cases() == before
    assert cli("archive", "export", expect=0).stdout.strip() == ""


def read_reports(cli: Cli, by_subject: dict[str, str], page: Path) -> None:
    """status, explain of the record with escapes, report --by a hostile value and a typo."""
    status = cli("status", "--json", "--now", CYCLE, expect=0).stdout.splitlines()
    assert len([json.loads(line) for line in status if line.strip()]) >= len(GOOD_OPEN)
    done = cli("explain", "-c", ASTON, "--id", by_subject["escapes"], "--now", CYCLE, expect=0)
    assert "\x1b" not in done.stdout + done.stderr
    report_args = ["report", "-c", ASTON, "--from", "2026-03-01", "--to", "2026-04-30"]
    cli(*report_args, "--now", CYCLE, "--by", "complainant_name", "-o", page, expect=0)
    assert "Customer" in page.read_text(encoding="utf-8")
    done = cli(*report_args, "--now", CYCLE, "--by", "complainant_nam", expect=2)
    assert "(did you mean 'complainant_name'?)" in done.stderr
    document = json.loads(cli(*report_args, "--now", CYCLE, "--format", "json", expect=0).stdout)
    assert document["complaints"] >= len(GOOD_OPEN) + len(GOOD_CLOSED)


def archive_and_re_close(cli: Cli, by_subject: dict[str, str]) -> None:
    """The three closed complaints are archived; one reopened and closed again at an
    earlier instant with a new solution is archived once more, and only once."""
    done = cli("archive", "run", "--now", ARCHIVE_AT, "--json", expect=0)
    assert json.loads(done.stdout)["archived"] == 3
    target = by_subject["closed 0"]
    with LocalCrm(cli.data / "local-crm.sqlite3") as crm:
        reopened = crm.update_records(
            "Case", [(target, {"ClosedDate": None, "Status": "Reopened"})]
        )
        again = {
            "ClosedDate": "2026-03-09T09:00:00.000+0000",
            "Status": "Closed",
            "Solution__c": "Refund of the fee",
        }
        closed_again = crm.update_records("Case", [(target, again)])
        assert reopened[0].ok and closed_again[0].ok
    done = cli("archive", "run", "--now", "2026-06-02T02:00:00Z", "--json", expect=0)
    assert json.loads(done.stdout)["archived"] == 1
    cli("archive", "verify", expect=0)
    done = cli("archive", "run", "--now", "2026-06-03T02:00:00Z", "--json", expect=0)
    assert json.loads(done.stdout)["archived"] == 0
    exported = cli("archive", "export", expect=0).stdout.splitlines()
    ids = sorted(json.loads(line)["header"]["complaint_id"] for line in exported if line.strip())
    assert ids == sorted([by_subject[s] for s in GOOD_CLOSED] + [target])


def delete_and_forget(cli: Cli, by_subject: dict[str, str]) -> None:
    """An open and an archived complaint deleted in the CRM (and an id that is no record,
    named): the next cycle forgets both, neither is an error; status no longer lists the open
    one; the archived versions stay."""
    gone = [by_subject["open 4"], by_subject["closed 1"]]
    done = cli("local", "delete", "Case", *gone, ESCAPES, expect=3)
    assert "deleted 2 Case records" in done.stderr and "\x1b" not in done.stderr
    # exit 3: the far-future record, kept as a failure, is read and reported again
    done = cli("sync", "--once", "--now", "2026-06-03T12:00:00Z", "--json", expect=3)
    summary = json.loads(done.stdout)
    assert summary["complaints_deleted"] == 2, summary
    assert {e["record_id"] for e in summary["errors"]} == {by_subject["far future"]}
    status = cli("status", "--json", "--now", "2026-06-03T12:00:00Z", expect=0).stdout
    listed = {json.loads(line)["complaint_id"] for line in status.splitlines() if line.strip()}
    assert by_subject["open 4"] not in listed and by_subject["open 0"] in listed
    exported = cli("archive", "export", expect=0).stdout.splitlines()
    ids = {json.loads(line)["header"]["complaint_id"] for line in exported if line.strip()}
    assert by_subject["closed 1"] in ids


def test_evaluate_over_hostile_canonical_complaints(tmp_path: Path) -> None:
    """`evaluate` over good and hostile lines: each bad line named (exit 3), every good
    complaint evaluated, no traceback."""
    good = [
        {"id": f"G-{i}", "events": {"received": "2026-03-02T10:00:00Z"}, "attributes": {}}
        for i in range(3)
    ]
    hostile: list[str] = [
        json.dumps({"id": "N-1", "events": {"received": "2026-03-02T10:00:00Z"},
                    "attributes": {"name": "a\x00b"}}),
        json.dumps({"id": "S-1", "events": {"received": "2026-03-02T10:00:00Z"},
                    "attributes": {"name": "X"}}).replace("X", "\\udc80"),
        json.dumps({"id": ESCAPES, "events": {"received": "2099-13-01T00:00:00Z"}}),
        json.dumps({"id": "F-1", "events": {"received": "9999-12-31T23:59:59Z"}}),
        json.dumps({"id": "H-1", "events": {"received": "2026-03-02T10:00:00Z"},
                    "attributes": {"huge": "y" * 1_000_000}}),
        json.dumps({"id": "", "events": {}}),
        "[" * 100_000 + "]" * 100_000,
        "not json at all",
    ]  # fmt: skip
    source = tmp_path / "hostile.jsonl"
    text = "\n".join([json.dumps(g) for g in good] + hostile) + "\n"
    source.write_bytes(text.encode("utf-8") + b"\xff\xfe not utf-8\n")
    cli = Cli(tmp_path / "data")
    done = cli("evaluate", "-c", ASTON, "-i", source, "--now", CYCLE, expect=3)
    evaluated = {json.loads(line)["complaint_id"] for line in done.stdout.splitlines()}
    assert {"G-0", "G-1", "G-2", "N-1", "H-1"} <= evaluated
    assert not {"S-1", "F-1", ""} & evaluated
    for named in ("line 5", "line 6", "line 7", "line 9", "line 10", "line 11", "line 12"):
        assert named in done.stderr, named
    assert "\x1b" not in done.stderr
