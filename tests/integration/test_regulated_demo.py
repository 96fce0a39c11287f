"""``crmsync demo --charter`` for the three regulated charters: the local CRM is filled with
complaints carrying the new reference-org events, and one cycle flags them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.cli import app

ROOT = Path(__file__).resolve().parents[2]

# the Case fields each regulated demo must fill (reference-org.md, the new events)
NEW_FIELDS = {
    "fca-disp": {"Holding_Response_At__c"},
    "housing-ombudsman": {
        "Extension_Notified_At__c",
        "Escalation_Acknowledged_At__c",
        "Escalation_Extended_At__c",
    },
    "cbi-cpc": {"Holding_Response_At__c", "Investigation_Completed_At__c"},
}


@pytest.mark.parametrize("charter", sorted(NEW_FIELDS))
def test_demo_fills_the_new_fields_and_runs_a_cycle(
    charter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo creates the complaints, writes every one's flags and some follow-ups."""
    monkeypatch.chdir(ROOT)
    env = {"CRMSYNC_DATA_DIR": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"}
    result = CliRunner().invoke(
        app, ["demo", "--charter", charter, "--count", "400", "--seed", "3"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    assert "flags written        │   " in result.output
    # the regulator's return the charter's clocks give, ready to copy (cbi-cpc: none)
    expected = {"fca-disp": "--return fca --from", "housing-ombudsman": "--return tsm --homes"}
    for name, command in expected.items():
        assert (command in result.output) == (name == charter)
    db = tmp_path / f"demo-{charter}" / "local-crm.sqlite3"
    exported = CliRunner().invoke(app, ["local", "export", "Case", "--db", str(db)], env=env)
    assert exported.exit_code == 0, exported.output
    cases = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(cases) > 300
    filled = {name for case in cases for name, value in case.items() if value}
    assert NEW_FIELDS[charter] <= filled
    statuses = {case.get("Charter_Status__c") for case in cases}
    assert {"met", "breached"} <= statuses
