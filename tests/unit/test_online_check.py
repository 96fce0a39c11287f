"""``check --online``: the bundled mapping against described objects, problems all at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from crmsync.adapters.local_crm import LocalCrm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import FieldInfo
from crmsync.service.online_check import check_online, compare, expectations

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")


def reference_org(tmp_path: Path) -> dict[str, dict[str, FieldInfo]]:
    """Case and Task as the local CRM describes the reference org."""
    with LocalCrm(tmp_path / "crm.sqlite3", clock=lambda: datetime(2026, 3, 2, tzinfo=UTC)) as crm:
        return {"Case": crm.describe("Case"), "Task": crm.describe("Task")}


def test_the_bundled_mapping_fits_the_reference_org(tmp_path: Path) -> None:
    """Every field the bundled mapping names exists in the reference org and fits."""
    assert compare(expectations(MAPPING).values(), reference_org(tmp_path)) == []


def test_check_online_against_the_local_crm(tmp_path: Path) -> None:
    """check_online describes Case and Task through the port and finds nothing wrong."""
    with LocalCrm(tmp_path / "crm.sqlite3") as crm:
        assert check_online(crm, MAPPING) == []
        assert crm.calls.by_kind == {"describe": 2}


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """A missing event field, a text number, a read-only write-back field, a key that is not
    unique and a Task field the worker cannot create are all reported together."""
    org = reference_org(tmp_path)
    case, task = dict(org["Case"]), dict(org["Task"])
    del case["Decision_At__c"]
    case["Complaint_Level__c"] = replace(case["Complaint_Level__c"], type="string")
    case["Charter_Status__c"] = replace(case["Charter_Status__c"], updateable=False)
    case["Acknowledged_At__c"] = replace(case["Acknowledged_At__c"], type="boolean")
    task["CrmSync_Key__c"] = replace(task["CrmSync_Key__c"], unique=False)
    task["Subject"] = replace(task["Subject"], createable=False)
    problems = sorted(
        str(p) for p in compare(expectations(MAPPING).values(), {"Case": case, "Task": task})
    )
    assert problems == [
        "Case.Acknowledged_At__c: type boolean does not fit read, event acknowledged "
        "(expected date or datetime)",
        "Case.Charter_Status__c: not updateable (the worker writes it: write, write-back status)",
        "Case.Complaint_Level__c: type string does not fit read, attribute level "
        "(expected currency or double or int or long or percent)",
        "Case.Decision_At__c: missing (used as read, event decision)",
        "Task.CrmSync_Key__c: must be a unique external id (external_id, follow-up key); "
        "it is not unique",
        "Task.Subject: not createable (the worker sets it: write, follow-up subject)",
    ]


def test_an_object_the_crm_lacks_is_one_problem(tmp_path: Path) -> None:
    """When Task cannot be described, the report says so once, not once per Task field."""
    org = reference_org(tmp_path)
    problems = compare(expectations(MAPPING).values(), {"Case": org["Case"], "Task": None})
    assert [str(p) for p in problems] == ["Task: object not found in the CRM"]
