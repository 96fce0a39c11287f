"""``check --online``: the bundled mapping against described objects, problems all at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.salesforce_remedies import SALESFORCE_REMEDIES
from crmsync.mapping.field_mapping import load_mapping, load_mapping_text
from crmsync.ports import FieldInfo
from crmsync.service.online_check import (
    FIXED_SCHEMA,
    check_online,
    compare,
    expectations,
    picklists,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")


def reference_org(tmp_path: Path) -> dict[str, dict[str, FieldInfo]]:
    """Case, its Status history and Task as the local CRM describes the reference org."""
    with LocalCrm(tmp_path / "crm.sqlite3", clock=lambda: datetime(2026, 3, 2, tzinfo=UTC)) as crm:
        return {name: crm.describe(name) for name in ("Case", "CaseHistory", "Task")}


def test_the_bundled_mapping_fits_the_reference_org(tmp_path: Path) -> None:
    """Every field the bundled mapping names exists in the reference org and fits."""
    assert compare(expectations(MAPPING).values(), reference_org(tmp_path)) == []


def test_check_online_against_the_local_crm(tmp_path: Path) -> None:
    """check_online describes Case, CaseHistory and Task through the port and finds nothing
    wrong."""
    with LocalCrm(tmp_path / "crm.sqlite3") as crm:
        assert check_online(crm, MAPPING) == []
        assert crm.calls.by_kind == {"describe": 3}


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
        str(p)
        for p in compare(
            expectations(MAPPING).values(),
            {**org, "Case": case, "Task": task},
            remedies=SALESFORCE_REMEDIES,
        )
    )
    assert problems == [
        "Case.Acknowledged_At__c: type boolean does not fit read, event acknowledged "
        "(expected date or datetime)",
        "Case.Charter_Status__c: not updateable (the worker writes it: write, write-back status): "
        "assign the permission set CrmSync_Integration to the integration user",
        "Case.Complaint_Level__c: type string does not fit read, attribute level "
        "(expected currency or double or int or long or percent)",
        "Case.Decision_At__c: missing or hidden from the integration user (used as read, event "
        "decision): create it with `crmsync salesforce deploy` (or `sf project deploy start "
        "--source-dir salesforce`) and assign the permission set CrmSync_Integration to the "
        "integration user",
        "Task.CrmSync_Key__c: must be a unique external id (external_id, follow-up key); "
        "it is not unique",
        "Task.Subject: not createable (the worker sets it: write, follow-up subject): give the "
        "integration user edit access to it (field-level security)",
    ]


def test_an_object_the_crm_lacks_is_one_problem(tmp_path: Path) -> None:
    """When Task cannot be described, the report says so once, not once per Task field."""
    org = reference_org(tmp_path)
    problems = compare(
        expectations(MAPPING).values(), {**org, "Task": None}, remedies=SALESFORCE_REMEDIES
    )
    assert [str(p) for p in problems] == ["Task: object not found in the CRM"]


def test_a_hidden_standard_field_asks_for_read_access(tmp_path: Path) -> None:
    """A standard field describe does not show (no field-level security) asks for access,
    not for a deploy."""
    org = reference_org(tmp_path)
    case = dict(org["Case"])
    del case["SuppliedName"]
    problems = [
        str(p)
        for p in compare(
            expectations(MAPPING).values(), {**org, "Case": case}, remedies=SALESFORCE_REMEDIES
        )
    ]
    assert problems == [
        "Case.SuppliedName: missing or hidden from the integration user (used as read, "
        "attribute complainant_name): give the integration user read access to it"
    ]


def test_the_bundled_mapping_fits_the_reference_orgs_picklists(tmp_path: Path) -> None:
    """Every picklist map and written value fits the reference org's picklist values."""
    assert picklists(MAPPING, reference_org(tmp_path)) == []


def test_picklist_maps_are_held_against_the_orgs_values(tmp_path: Path) -> None:
    """An org value the mapping does not map, a mapped value the org lacks, a status the
    worker writes and a follow-up constant missing from the org's picklists are each named."""
    org = reference_org(tmp_path)
    case, task = dict(org["Case"]), dict(org["Task"])
    case["Origin"] = replace(case["Origin"], picklist_values=("Email", "Phone", "Web", "Fax"))
    case["Charter_Status__c"] = replace(
        case["Charter_Status__c"], picklist_values=("on_track", "at_risk", "breached")
    )
    task["Type"] = replace(task["Type"], picklist_values=("Call", "Customer Update"))
    problems = sorted(
        str(p)
        for p in picklists(
            MAPPING, {**org, "Case": case, "Task": task}, remedies=SALESFORCE_REMEDIES
        )
    )
    assert problems == [
        "Case.Charter_Status__c: 'met' (written as the status flag) is not a value of the "
        "org's picklist: run `crmsync salesforce deploy`",
        "Case.Charter_Status__c: 'paused' (written as the status flag) is not a value of the "
        "org's picklist: run `crmsync salesforce deploy`",
        "Case.Origin: mapped value 'In Person' (attributes.channel.values) is not a value of "
        "the org's picklist (it has: Email, Phone, Web, Fax)",
        "Case.Origin: mapped value 'Letter' (attributes.channel.values) is not a value of the "
        "org's picklist (it has: Email, Phone, Web, Fax)",
        "Case.Origin: the org's picklist value 'Fax' is not mapped: add it to "
        "attributes.channel.values (or say `unmapped: keep`/`drop` for the attribute)",
        "Task.Type: 'Charter Follow-up' (a follow-up constant) is not a value of the org's "
        "picklist: add it to the org's picklist values",
    ]


def test_an_explicit_unmapped_rule_accepts_the_orgs_other_values(tmp_path: Path) -> None:
    """With `unmapped: keep` said for the attribute, org values it does not map are fine;
    mapped values the org lacks are still reported."""
    text = (ROOT / "mappings" / "salesforce.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "values: {Email: email, Phone: phone, Web: web, Letter: letter, In Person: in_person}",
        "values: {Email: email, Phone: phone, Web: web, Letter: letter, In Person: in_person}\n"
        "      unmapped: keep",
    )
    mapping = load_mapping_text(text)
    org = reference_org(tmp_path)
    case = dict(org["Case"])
    values = ("Email", "Phone", "Web", "Letter", "Fax")
    case["Origin"] = replace(case["Origin"], picklist_values=values)
    assert [str(p) for p in picklists(mapping, {**org, "Case": case})] == [
        "Case.Origin: mapped value 'In Person' (attributes.channel.values) is not a value of "
        "the org's picklist (it has: Email, Phone, Web, Letter, Fax)"
    ]


def test_against_the_local_crm_a_missing_field_names_no_salesforce_fix(
    tmp_path: Path,
) -> None:
    """The local CRM's schema is fixed: a field it lacks is a mapping mistake, not a deploy."""
    org = reference_org(tmp_path)
    case = dict(org["Case"])
    del case["Decision_At__c"]
    problems = [
        str(p)
        for p in compare(
            expectations(MAPPING).values(), {**org, "Case": case}, remedies=FIXED_SCHEMA
        )
    ]
    assert problems == [
        "Case.Decision_At__c: missing (used as read, event decision): the CRM has no such field"
    ]
