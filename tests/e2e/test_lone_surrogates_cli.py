"""A lone surrogate (``"\\ud800"`` in JSON) is not text: the record holding one is that
record's error, named by line and field (exit 3), and every other record goes on, through
``local import``, ``evaluate`` and ``report --by`` in each format. Real processes: the
failure this guards against was a UTF-8 encoder's, where the output is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.domain.unicode_text import lone_surrogate_at, lone_surrogate_problem

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
SURROGATE = "\\ud800"  # as JSON spells it


def crmsync(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).with_name("crmsync")
    command = [str(beside)] if beside.exists() else [shutil.which("crmsync") or "crmsync"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        errors="replace",
        env={**base, "NO_COLOR": "1", "CRMSYNC_SECRETS_DIR": "/nonexistent", **(env or {})},
        timeout=120,
        check=False,
    )


def test_the_rule_names_the_field() -> None:
    """Keys, values and list items are searched; the path is printable."""
    assert lone_surrogate_at({"a": "ok", "b": {"c": ["x", "y\ud800"]}}) == "b.c[1]"
    assert lone_surrogate_at({"k\udfff": 1}) == "k\\udfff"
    assert lone_surrogate_at({"a": "emoji 😀 is fine", "n": 1, "z": None}) is None
    assert lone_surrogate_problem("Subject") == (
        "field 'Subject' holds a lone surrogate (such as \\ud800), which is not text"
    )


def test_local_import_imports_the_nine_good_rows_and_names_the_bad_one(tmp_path: Path) -> None:
    """Ten rows, the fifth with a lone surrogate in Subject: nine imported, exit 3, line
    5 and the field named, no traceback."""
    rows = [
        json.dumps({"Type": "Complaint", "Subject": f"complaint {i}", "Origin": "Email"})
        for i in range(10)
    ]
    rows[4] = rows[4].replace("complaint 4", f"bad {SURROGATE} here")
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    done = crmsync(
        "local", "import", cases, "--object", "Case", env={"CRMSYNC_DATA_DIR": str(data)}
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 3
    assert f"{cases}:5: field 'Subject' holds a lone surrogate" in done.stderr
    assert "imported 9 Case records" in done.stderr
    with LocalCrm(data / "local-crm.sqlite3") as crm:
        subjects = sorted(r.fields["Subject"] for r in crm.export_records("Case"))
    assert subjects == [f"complaint {i}" for i in range(10) if i != 4]


def complaints(tmp_path: Path) -> Path:
    """Ten complaints received Mon 5 Jan 2026, by team t0..t2; line 5's team is a lone
    surrogate."""
    rows = [
        json.dumps(
            {
                "id": f"C-{i}",
                "events": {"received": "2026-01-05T10:00:00Z"},
                "attributes": {"channel": "email", "team": f"t{i % 3}"},
            }
        )
        for i in range(10)
    ]
    rows[4] = rows[4].replace('"t1"', f'"bad {SURROGATE}"')
    path = tmp_path / "complaints.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_report_by_a_lone_surrogate_counts_the_others(tmp_path: Path, fmt: str) -> None:
    """`report --by team`: line 5 named, exit 3, the output written with the nine others."""
    out = tmp_path / f"report.{fmt}"
    done = crmsync(
        "report", "-c", ASTON, "-i", complaints(tmp_path), "--from", "2026-01-01",
        "--to", "2026-01-31", "--now", "2026-03-01T00:00:00Z", "--by", "team", "-o", out,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 3
    assert "line 5: field 'attributes.team' holds a lone surrogate" in done.stderr
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        document = json.loads(text)
        assert document["complaints"] == 9
        groups = {r["group"] for r in document["rows"] if r["clock"] == "email-reply"}
        assert groups == {"t0", "t1", "t2"}
    else:
        assert "t0" in text and "t2" in text


def test_evaluate_skips_the_line_with_a_lone_surrogate(tmp_path: Path) -> None:
    """`evaluate`: nine complaints evaluated, line 5 named, exit 3."""
    done = crmsync(
        "evaluate", "-c", ASTON, "-i", complaints(tmp_path), "--now", "2026-03-01T00:00:00Z"
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 3
    assert "line 5: field 'attributes.team' holds a lone surrogate" in done.stderr
    ids = {json.loads(line)["complaint_id"] for line in done.stdout.splitlines()}
    assert ids == {f"C-{i}" for i in range(10) if i != 4}
