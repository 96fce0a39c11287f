"""The example reports of docs/examples/regulated-2026/ are what the documented commands
give today (the demo year's generator and `crmsync report`), so the figures quoted in
docs/regulated-charters.md cannot drift from the code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.demo.bundled_charters import demo_charter
from crmsync.demo.sample_complaints import generate_complaints

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "regulated-2026"
NOW = "2027-03-01T00:00:00Z"

# (example file, charter, from, to, period, extra options) as docs/regulated-charters.md runs them
REPORTS = [
    ("fca-disp-2026-H1.csv", "fca-disp", "2026-01-01", "2026-06-30", "all", []),
    ("fca-disp-2026-H2.csv", "fca-disp", "2026-07-01", "2026-12-31", "all", []),
    ("housing-ombudsman-2026.csv", "housing-ombudsman", "2026-01-01", "2026-12-31", "year", []),
    ("cbi-cpc-2026.csv", "cbi-cpc", "2026-01-01", "2026-12-31", "quarter", ["--by", "language"]),
]


@pytest.mark.parametrize("report", REPORTS, ids=[r[0] for r in REPORTS])
def test_example_report_is_what_the_documented_command_gives(
    tmp_path: Path, report: tuple[str, str, str, str, str, list[str]]
) -> None:
    """Regenerate the demo year and the report; the committed CSV matches byte for byte."""
    example, charter, start, end, period, extra = report
    source = tmp_path / f"{charter}-2026.jsonl"
    with source.open("w", encoding="utf-8") as out:
        for c in generate_complaints(
            demo_charter(charter),
            2000,
            seed=2026,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            span_days=365,
        ):
            out.write(json.dumps(c, ensure_ascii=False) + "\n")
    target = tmp_path / example
    result = CliRunner().invoke(
        app,
        [
            "report", "-c", str(ROOT / "mappings" / "charters" / f"{charter}.yaml"),
            "-i", str(source), "--now", NOW, "--from", start, "--to", end,
            "--period", period, *extra, "--format", "csv", "-o", str(target),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == (EXAMPLES / example).read_text(encoding="utf-8"), (
        f"docs/examples/regulated-2026/{example} drifted: rerun the commands of the doc"
    )
