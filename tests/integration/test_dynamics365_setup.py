"""`crmsync dynamics365 setup`: crmsync's columns, choice and key created through the
metadata endpoints of the fake org; idempotent; --check-only changes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.adapters.crm.dynamics365_setup import Wanted, apply, plan, wanted_for
from crmsync.cli import app
from crmsync.errors import CrmError
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.online_check import FIXED_SCHEMA, check_online
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
OURS = (
    "crmsync_charterstatus",
    "crmsync_charterbreaches",
    "crmsync_charternextdue",
    "crmsync_charterchecked",
    "crmsync_archiveref",
    "crmsync_archivedon",
)


@pytest.fixture
def bare() -> Iterator[FakeDataverse]:
    """The reference org before set-up: without crmsync's columns and key."""
    with FakeDataverseServer(ManualClock(datetime(2026, 3, 2, tzinfo=UTC))) as server:
        org = server.org
        incident, task = org.tables["incident"], org.tables["task"]
        org.tables = {
            **org.tables,
            "incident": dataclasses.replace(
                incident, columns={k: v for k, v in incident.columns.items() if k not in OURS}
            ),
            "task": dataclasses.replace(
                task,
                columns={k: v for k, v in task.columns.items() if k != "crmsync_key"},
                keys=(),
            ),
        }
        yield org


def wanted() -> list[Wanted]:
    wb, fu = MAPPING.spec.write_back, MAPPING.spec.follow_ups
    roles = ("status", "breaches", "next_due", "checked_at", "archived_at", "archive_ref")
    return wanted_for(
        "incident", {r: getattr(wb, r) for r in roles}, wb.status_values, "task", fu.key_field
    )


def test_setup_creates_what_is_missing_and_a_second_run_does_nothing(bare: FakeDataverse) -> None:
    crm = dataverse_client(bare)
    steps = plan(crm, wanted())
    assert [s.wanted.describe() for s in steps] == [
        "column incident.crmsync_charterstatus (choice, 5 values)",
        "column incident.crmsync_charterbreaches (text)",
        "column incident.crmsync_charternextdue (datetime)",
        "column incident.crmsync_charterchecked (datetime)",
        "column incident.crmsync_archivedon (datetime)",
        "column incident.crmsync_archiveref (text)",
        "column task.crmsync_key (text)",
        "alternate key crmsync_key on task.crmsync_key",
    ]
    results = apply(crm, steps)
    assert [reason for _step, reason in results] == [None] * 8
    assert bare.tables["task"].keys == ("crmsync_key",)
    assert bare.tables["incident"].columns["crmsync_charterstatus"] == "Picklist"
    assert bare.created_options[("incident", "crmsync_charterstatus")] == [
        100000000, 100000001, 100000002, 100000003, 100000004,
    ]  # fmt: skip
    assert plan(crm, wanted()) == []
    assert check_online(crm, MAPPING, remedies=FIXED_SCHEMA) == []


def test_check_online_names_what_setup_would_create(bare: FakeDataverse) -> None:
    problems = check_online(dataverse_client(bare), MAPPING, remedies=FIXED_SCHEMA)
    named = {(p.object, p.field) for p in problems}
    assert {("incident", c) for c in OURS} | {("task", "crmsync_key")} <= named


def test_a_column_of_another_type_is_named_and_left_alone(bare: FakeDataverse) -> None:
    incident = bare.tables["incident"]
    bare.tables = {
        **bare.tables,
        "incident": dataclasses.replace(
            incident, columns={**incident.columns, "crmsync_charterstatus": "String"}
        ),
    }
    steps = plan(dataverse_client(bare), wanted())
    [conflict] = [s for s in steps if s.action == "conflict"]
    assert (conflict.wanted.column, conflict.note) == (
        "crmsync_charterstatus",
        "it exists as string",
    )
    apply(dataverse_client(bare), steps)
    assert bare.tables["incident"].columns["crmsync_charterstatus"] == "String"


def test_a_status_choice_needs_numbers() -> None:
    with pytest.raises(CrmError, match="status_values: Dataverse needs"):
        wanted_for("incident", {"status": "crmsync_charterstatus"}, None, "task", "crmsync_key")
    with pytest.raises(CrmError, match="on_track: a Dataverse choice value is a whole number"):
        wanted_for("incident", {"status": "s"}, {"on_track": "x"}, "task", "crmsync_key")


def test_the_command_check_only_changes_nothing_then_setup_creates(
    bare: FakeDataverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI (the adapter built from settings, its sign-in replaced by the fake
    org's): --check-only lists eight missing items, exit 1, nothing changed; setup creates
    them, exit 0; setup again: nothing to do."""
    from crmsync.adapters.crm import dynamics365_wiring

    monkeypatch.setattr(dynamics365_wiring, "build_dataverse", lambda _s: dataverse_client(bare))
    monkeypatch.setenv("CRMSYNC_CRM", "dynamics365")
    monkeypatch.setenv("CRMSYNC_MAPPING", str(ROOT / "mappings" / "dynamics365.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(ROOT / "no-such-crmsync.toml"))
    runner = CliRunner()
    checked = runner.invoke(app, ["dynamics365", "setup", "--check-only"])
    assert checked.exit_code == 1, checked.output
    assert checked.stdout.count("would create ") == 8
    assert "check only: 8 to create, nothing changed" in checked.stdout
    assert "crmsync_key" not in bare.tables["task"].columns
    made = runner.invoke(app, ["dynamics365", "setup"])
    assert made.exit_code == 0, made.output
    assert "8 created, 0 already there; next: crmsync check --online" in made.stdout
    again = runner.invoke(app, ["dynamics365", "setup"])
    assert again.exit_code == 0, again.output
    assert "0 created, 8 already there" in again.stdout


def test_the_command_without_sign_in_settings_names_them_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No CRMSYNC_D365_* settings: exit 2 and one line naming them, no traceback."""
    for name in ("ORG_URL", "TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "CERTIFICATE_FILE"):
        monkeypatch.delenv(f"CRMSYNC_D365_{name}", raising=False)
    monkeypatch.setenv("CRMSYNC_CRM", "dynamics365")
    monkeypatch.setenv("CRMSYNC_MAPPING", str(ROOT / "mappings" / "dynamics365.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(ROOT / "no-such-crmsync.toml"))
    result = CliRunner().invoke(app, ["dynamics365", "setup", "--check-only"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Dataverse sign-in needs CRMSYNC_D365_ORG_URL" in result.stderr
