"""`crmsync check --online` against the fake Dataverse org with the bundled
mappings/dynamics365.yaml: missing columns, choice values and privileges of the application
user's security role, each named with its fix (the set-up command, the maker portal, the
role to grant)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.adapters.crm.dynamics365_remedies import DATAVERSE_REMEDIES
from crmsync.cli import app
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.online_check import check_online
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")


@pytest.fixture
def org() -> Iterator[FakeDataverse]:
    with FakeDataverseServer(ManualClock(datetime(2026, 3, 2, tzinfo=UTC))) as server:
        yield server.org


def lines(org: FakeDataverse) -> list[str]:
    return [
        str(p) for p in check_online(dataverse_client(org), MAPPING, remedies=DATAVERSE_REMEDIES)
    ]


def without_column(org: FakeDataverse, table: str, column: str) -> None:
    shape = org.tables[table]
    columns = {k: v for k, v in shape.columns.items() if k != column}
    org.tables = {**org.tables, table: dataclasses.replace(shape, columns=columns)}


def test_the_reference_org_with_the_set_up_done_passes(org: FakeDataverse) -> None:
    """Every column, choice value and privilege the mapping needs is there: no problem."""
    assert lines(org) == []


def test_a_status_choice_without_a_value_the_worker_writes_names_the_value(
    org: FakeDataverse,
) -> None:
    """The status choice lacks "paused" (100000004): one line naming the column and value,
    with where to add it."""
    org.options[("incident", "crmsync_charterstatus")].remove(100000004)
    assert lines(org) == [
        "incident.crmsync_charterstatus: '100000004' (written as the status flag) is not a "
        "value of the org's picklist: add it as an option of the column's choice in the "
        "maker portal"
    ]


def test_choice_values_the_mapping_and_the_org_do_not_share_are_named(
    org: FakeDataverse,
) -> None:
    """The org's channel choice has Facebook (2483) the mapping does not map, and no longer
    "letter" (100000000) that it does; the complaint type filter's value is gone too."""
    origins = org.options[("incident", "caseorigincode")]
    origins.remove(100000000)
    origins.append(2483)
    org.options[("incident", "casetypecode")].remove(100000000)
    assert sorted(lines(org)) == [
        "incident.caseorigincode: mapped value '100000000' (attributes.channel.values) is not "
        "a value of the org's picklist (it has: 1, 2, 3, 100000001, 2483)",
        "incident.caseorigincode: the org's picklist value '2483' is not mapped: add it to "
        "attributes.channel.values (or say `unmapped: keep`/`drop` for the attribute)",
        "incident.casetypecode: '100000000' (a filter value) is not a value of the org's "
        "picklist: add it as an option of the column's choice in the maker portal",
    ]


def test_a_missing_privilege_names_it_and_the_role_to_grant(org: FakeDataverse) -> None:
    """Without Create on activities, the follow-ups cannot be made; read on cases held at
    user level reaches only the application user's own (business unit level is enough):
    each is one line naming the privilege and what to grant in the security role."""
    org.privileges["prvWriteIncident"] = "Local"
    del org.privileges["prvCreateActivity"]
    org.privileges["prvReadIncident"] = "Basic"
    assert lines(org) == [
        "incident: the application user may read its rows only at User level "
        "(prvReadIncident): set Read on Incident to Business Unit or Organization in its "
        "security role",
        "task: the application user may not create rows (no prvCreateActivity): grant Create "
        "on Activity at any level in its security role",
    ]


def test_a_custom_tables_privilege_is_named_by_its_schema_name(org: FakeDataverse) -> None:
    """The status-change table's read privilege carries its schema name."""
    del org.privileges["prvReadnew_CaseStatusChange"]
    assert lines(org) == [
        "new_casestatuschange: the application user may not read its rows (no "
        "prvReadnew_CaseStatusChange): grant Read on new_CaseStatusChange at Business Unit "
        "or Organization level in its security role"
    ]


def test_missing_columns_name_the_set_up_command_or_the_maker_portal(
    org: FakeDataverse,
) -> None:
    """crmsync's own column is made by `crmsync dynamics365 setup`; the org's own column
    is added in the maker portal or named otherwise in the mapping."""
    without_column(org, "incident", "crmsync_charterchecked")
    without_column(org, "incident", "new_acknowledgedon")
    assert sorted(lines(org)) == [
        "incident.crmsync_charterchecked: missing (used as write, write-back checked_at): "
        "create it with `crmsync dynamics365 setup`",
        "incident.new_acknowledgedon: missing (used as read, event acknowledged): add the "
        "column to the table in the maker portal, or name the org's column in the mapping",
    ]


def test_the_command_prints_each_problem_and_fails(
    org: FakeDataverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI (the adapter built from settings, its sign-in replaced by the fake
    org's): all well, exit 0; each problem on its own line, exit 2."""
    from crmsync.adapters.crm import dynamics365_wiring

    monkeypatch.setattr(dynamics365_wiring, "build_dataverse", lambda _s: dataverse_client(org))
    monkeypatch.setenv("CRMSYNC_CRM", "dynamics365")
    monkeypatch.setenv("CRMSYNC_MAPPING", str(ROOT / "mappings" / "dynamics365.yaml"))
    monkeypatch.setenv("CRMSYNC_CONFIG", str(ROOT / "no-such-crmsync.toml"))
    runner = CliRunner()
    monkeypatch.chdir(ROOT)
    args = [
        "check",
        "--online",
        "mappings/charters/aston.yaml",
        "--mapping",
        "mappings/dynamics365.yaml",
    ]
    fine = runner.invoke(app, args)
    assert fine.exit_code == 0, fine.output
    del org.privileges["prvWriteIncident"]
    broken = runner.invoke(app, args)
    assert broken.exit_code == 2, broken.output
    assert (
        "dynamics365 CRM: incident: the application user may not update its rows (no "
        "prvWriteIncident): grant Write on Incident at Business Unit or Organization level "
        "in its security role"
    ) in " ".join(broken.stderr.split())


def test_privileges_the_org_will_not_tell_are_one_line_and_the_rest_is_checked(
    org: FakeDataverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dataverse refuses to list the application user's privileges (403): one line says
    access could not be checked, naming the org's reason; columns and choices are still
    checked."""
    refusal = (403, {"Content-Type": "application/json"}, json.dumps(
        {"error": {"code": "0x80040220", "message": "Principal user is missing prvReadUser"}}
    ))  # fmt: skip
    monkeypatch.setattr(org, "_user_privileges", lambda: refusal)
    without_column(org, "incident", "crmsync_charterchecked")
    found = lines(org)
    assert len(found) == 2
    assert found[0].startswith("incident.crmsync_charterchecked: missing")
    assert found[1].startswith("incident: access could not be checked: ")
    assert "missing prvReadUser" in found[1]
