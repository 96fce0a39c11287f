"""The bundled field mapping: records -> canonical complaints, write-back and task fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsync.adapters.crm.salesforce_values import sf_instant_text
from crmsync.domain.action_planning import FollowUp
from crmsync.domain.complaint import complaint_from_json
from crmsync.errors import CharterFileError, MappingError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import (
    iso_instant_text,
    load_mapping,
    load_mapping_text,
    mapping_json_schema,
)
from crmsync.ports import FieldFilter, Record

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")


def case(**fields: object) -> Record:
    base: dict[str, object] = {
        "Id": "500000000000001AAA",
        "Type": "Complaint",
        "CreatedDate": "2026-03-02T09:15:00.000+0000",
        "SystemModstamp": "2026-03-02T09:15:00.000+0000",
    }
    base.update(fields)
    return Record("Case", str(base["Id"]), base)


def test_record_becomes_the_canonical_complaint_of_the_contract() -> None:
    """Datetimes become ISO UTC, picklists are mapped, numbers are numbers, empties dropped."""
    record = case(
        Origin="Email",
        Complaint_Level__c=2.0,
        Acknowledged_At__c="2026-03-03T10:00:00.000+0100",
        Expected_Decision_Date__c="2026-04-10",
        Preferred_Language__c="Irish",
        Description="",
        Decision_At__c=None,
    )
    related = {
        "customer_update": [
            Record("Task", "00T1", {"CompletedDateTime": "2026-03-30T07:00:00.000+0000"}),
            Record("Task", "00T2", {"CompletedDateTime": "2026-03-16T09:00:00.000+0000"}),
        ]
    }
    assert MAPPING.to_canonical(record, related) == {
        "id": "500000000000001AAA",
        "events": {
            "received": "2026-03-02T09:15:00Z",
            "acknowledged": "2026-03-03T09:00:00Z",
            "customer_update": ["2026-03-16T09:00:00Z", "2026-03-30T07:00:00Z"],
        },
        "attributes": {
            "channel": "email",
            "level": 2,
            "expected_decision": "2026-04-10",
            "language": "ga",
        },
    }


def test_a_malformed_datetime_names_the_record_and_field() -> None:
    """A CRM value that is not a date-time is a MappingError naming record and field."""
    with pytest.raises(MappingError) as caught:
        MAPPING.to_canonical(case(Decision_At__c="yesterday"))
    assert caught.value.record_id == "500000000000001AAA"
    assert caught.value.field == "Decision_At__c"


def test_a_non_numeric_level_is_refused() -> None:
    """Complaint_Level__c must be a number."""
    with pytest.raises(MappingError, match="Complaint_Level__c"):
        MAPPING.to_canonical(case(Complaint_Level__c="high"))


def test_to_record_is_the_inverse_of_to_canonical() -> None:
    """A canonical complaint written with to_record reads back the same."""
    canonical = {
        "id": "500000000000002AAA",
        "events": {
            "received": "2026-03-02T09:15:00Z",
            "decision": "2026-03-20T15:00:00Z",
            "customer_update": ["2026-03-10T10:00:00Z"],
        },
        "attributes": {
            "channel": "in_person",
            "level": 3,
            "complainant_type": "client",
            "callback_promised": "2026-03-04T12:00:00Z",
            "owner": "005000000000001AAA",
        },
    }
    fields, related = MAPPING.to_record(canonical, sf_instant_text)
    assert fields["Origin"] == "In Person"
    assert fields["Type"] == "Complaint"
    assert related == {
        "customer_update": [
            {"CompletedDateTime": "2026-03-10T10:00:00.000+0000", "Type": "Customer Update"}
        ]
    }
    record = Record("Case", "500000000000002AAA", {**fields, "Id": "500000000000002AAA"})
    children = {"customer_update": [Record("Task", "00T9", related["customer_update"][0])]}
    assert MAPPING.to_canonical(record, children) == canonical


def test_to_record_writes_a_choice_kept_by_number_as_that_number() -> None:
    """Dataverse keeps choices by number: the inverse writes 3 (not the text "3") for a
    mapping whose CRM values are whole numbers, and the record reads back the same."""
    mapping = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
    canonical = {
        "id": "5b1b3d2e-0000-4000-8000-000000000001",
        "events": {"received": "2026-03-02T09:15:00Z"},
        "attributes": {"channel": "web", "complainant_type": "citizen", "language": "ga"},
    }
    fields, _related = mapping.to_record(
        canonical, lambda instant: f"{datetime.fromtimestamp(instant, UTC):%Y-%m-%dT%H:%M:%SZ}"
    )
    assert (fields["caseorigincode"], fields["new_complainanttype"]) == (3, 100000002)
    assert fields["new_preferredlanguage"] == 100000001
    assert fields["casetypecode"] == 100000000
    record = Record("incident", canonical["id"], {**fields, "incidentid": canonical["id"]})
    assert mapping.to_canonical(record)["attributes"] == canonical["attributes"]


def test_to_record_keeps_text_choices_as_text() -> None:
    """A picklist of text values (Salesforce's) is written as its text."""
    fields, _related = MAPPING.to_record(
        {"id": "500000000000002AAA", "events": {}, "attributes": {"channel": "web"}},
        sf_instant_text,
    )
    assert fields["Origin"] == "Web"


def test_flag_fields_use_the_write_back_names_and_salesforce_datetimes() -> None:
    """Write-back goes only to the four mapped flag fields."""
    fields = MAPPING.flag_fields(
        {"status": "at_risk", "breaches": "", "next_due": "2026-03-04T17:00:00Z"},
        1772600000,
        sf_instant_text,
    )
    assert fields == {
        "Charter_Status__c": "at_risk",
        "Charter_Breaches__c": "",
        "Charter_Next_Due__c": "2026-03-04T17:00:00.000+0000",
        "Charter_Checked_At__c": "2026-03-04T04:53:20.000+0000",
    }


def _follow_up(reason: str, to: str, state: str = "breached") -> FollowUp:
    return FollowUp(
        "crmsync:C:full-response:0:breached", "C", "full-response", 0, state, reason, to, 1775055600
    )  # 2026-04-01T15:00:00Z


def test_task_text_follows_the_complaint_language_and_owner_rule() -> None:
    """Kilkenny complaint in Irish: Irish subject; breached -> the complaint manager."""
    charter = load_charter(ROOT / "mappings" / "charters" / "kilkenny.yaml")
    complaint = complaint_from_json(
        {
            "id": "C",
            "events": {},
            "attributes": {"language": "ga", "owner": "005O", "manager": "005M"},
        },
        charter.calendar.zone,
        "t",
    )
    fields = MAPPING.task_fields(
        _follow_up("breached", "manager"), complaint, charter, sf_instant_text
    )
    assert fields["Subject"].startswith("Gearán C:")
    assert fields["OwnerId"] == "005M"
    assert fields["CrmSync_Key__c"] == "crmsync:C:full-response:0:breached"
    assert fields["WhatId"] == "C"
    assert fields["ActivityDate"] == "2026-04-01"  # 16:00 Irish summer time, same date
    assert fields["Status"] == "Not Started"
    assert fields["Priority"] == "High"


def test_manager_falls_back_to_owner_and_language_to_the_charter() -> None:
    """No manager -> owner; no language attribute -> the charter's language (nl for StudiJob)."""
    charter = load_charter(ROOT / "mappings" / "charters" / "studijob.yaml")
    complaint = complaint_from_json(
        {"id": "C", "events": {}, "attributes": {"owner": "005O"}}, charter.calendar.zone, "t"
    )
    fields = MAPPING.task_fields(
        _follow_up("breached", "manager"), complaint, charter, sf_instant_text
    )
    assert fields["OwnerId"] == "005O"
    assert fields["Subject"].startswith("Klacht C:")


def test_unknown_placeholder_is_refused_with_its_line() -> None:
    """A template naming an unknown placeholder is refused with the file's line."""
    text = (ROOT / "mappings" / "salesforce.yaml").read_text()
    broken = text.replace(
        'subject: "Complaint {complaint_id}: {clock_name} due {due}"',
        'subject: "Complaint {complaint_id}: {clok} due {due}"',
    )
    line = (
        broken.splitlines().index('        subject: "Complaint {complaint_id}: {clok} due {due}"')
        + 1
    )
    with pytest.raises(CharterFileError) as caught:
        load_mapping_text(broken, "m.yaml")
    [problem] = caught.value.problems
    assert problem.line == line
    assert "{clok}" in problem.message


def test_structural_errors_are_all_reported_with_lines() -> None:
    """A missing section and a bad filter are reported together, each with its line."""
    text = (ROOT / "mappings" / "salesforce.yaml").read_text()
    broken = text.replace("    - {field: Type, equals: Complaint}", "    - {field: Type}")
    broken = broken.replace("  checked_at: Charter_Checked_At__c\n", "")
    with pytest.raises(CharterFileError) as caught:
        load_mapping_text(broken, "m.yaml")
    messages = {(p.path, p.line) for p in caught.value.problems}
    filter_line = broken.splitlines().index("    - {field: Type}") + 1
    assert ("complaints.where[0]", filter_line) in messages
    assert any(p.path == "write_back.checked_at" for p in caught.value.problems)


def test_shipped_mapping_schema_matches_the_models() -> None:
    """mappings/mapping.schema.json is what the models generate (it cannot drift)."""
    shipped = json.loads((ROOT / "mappings" / "mapping.schema.json").read_text())
    assert shipped == mapping_json_schema()


def test_an_unmapped_picklist_value_is_an_error_for_that_record() -> None:
    """By default a CRM value the picklist map lacks is refused, naming record and field."""
    with pytest.raises(MappingError) as caught:
        MAPPING.to_canonical(case(Origin="E-mail"))
    assert (caught.value.record_id, caught.value.field) == ("500000000000001AAA", "Origin")
    assert "picklist value 'E-mail' is not mapped" in caught.value.message


@pytest.mark.parametrize(("policy", "expected"), [("keep", "E-mail"), ("drop", None)])
def test_unmapped_keep_and_drop_are_explicit_choices(policy: str, expected: str | None) -> None:
    """`unmapped: keep` passes the CRM value through; `unmapped: drop` leaves it out."""
    text = (ROOT / "mappings" / "salesforce.yaml").read_text(encoding="utf-8")
    text = text.replace("      field: Origin\n", f"      field: Origin\n      unmapped: {policy}\n")
    mapping = load_mapping_text(text, "m.yaml")
    attributes = mapping.to_canonical(case(Origin="E-mail"))["attributes"]
    assert attributes.get("channel") == expected


def _registration(language: str) -> dict[str, str]:
    """The StudiJob registration follow-up's texts for a complaint in ``language``."""
    charter = load_charter(ROOT / "mappings" / "charters" / "studijob.yaml")
    complaint = complaint_from_json(
        {"id": "C", "events": {}, "attributes": {"language": language, "owner": "005O"}},
        charter.calendar.zone,
        "t",
    )
    follow_up = FollowUp(
        "crmsync:C:registration:0:breached",
        "C",
        "registration",
        0,
        "breached",
        "incomplete",
        "owner",
        1790091540,  # 2026-09-22T15:39:00Z: 17:39 in Amsterdam (CEST)
        ("description", "involved"),
    )
    fields = MAPPING.task_fields(follow_up, complaint, charter, sf_instant_text)
    return {"subject": fields["Subject"], "description": fields["Description"]}


def test_dates_and_attribute_names_are_written_in_the_complaints_language() -> None:
    """Dutch, Irish and English follow-ups carry the due date the language's way (in the
    charter's zone) and the missing attributes by their labels in that language."""
    assert _registration("nl") == {
        "subject": "Klacht C: registratie onvolledig (Omschrijving, Betrokkenen)",
        "description": "De klachtenregeling van StudiJob vraagt deze gegevens uiterlijk "
        "di 22 sep 2026 17:39: Omschrijving, Betrokkenen.",
    }
    assert _registration("ga")["description"].endswith(
        "roimh Máirt 22 MFómh 2026 17:39: Cur síos, Páirtithe bainteacha."
    )
    assert _registration("en")["subject"] == (
        "Complaint C: registration incomplete (Description, Involved)"
    )
    assert "by Tue, 22 Sept 2026 17:39:" in _registration("en")["description"]


def test_the_breached_dutch_subject_has_a_dutch_date() -> None:
    """'te laat sinds' is followed by a Dutch weekday and month, not an English one."""
    charter = load_charter(ROOT / "mappings" / "charters" / "studijob.yaml")
    complaint = complaint_from_json(
        {"id": "C", "events": {}, "attributes": {"language": "nl", "owner": "005O"}},
        charter.calendar.zone,
        "t",
    )
    follow_up = FollowUp(
        "crmsync:C:decision:0:breached",
        "C",
        "decision",
        0,
        "breached",
        "breached",
        "owner",
        1790091540,
    )
    subject = MAPPING.task_fields(follow_up, complaint, charter, sf_instant_text)["Subject"]
    assert subject == "Klacht C: beslissing op de klacht te laat sinds di 22 sep 2026 17:39"


@pytest.mark.parametrize("name", ["salesforce.yaml", "dynamics365.yaml"])
def test_a_mapping_without_its_modification_stamp_field_is_refused_naming_the_line(
    name: str,
) -> None:
    """No CRM's watermark field is assumed: a mapping that names none is a problem at the
    complaints section's line."""
    text = (ROOT / "mappings" / name).read_text()
    kept = "\n".join(line for line in text.splitlines() if "modstamp:" not in line)
    with pytest.raises(CharterFileError) as caught:
        load_mapping_text(kept, "m.yaml")
    line = next(n for n, t in enumerate(kept.splitlines(), start=1) if t == "complaints:")
    assert f"m.yaml:{line} (complaints.modstamp): 'modstamp' is required" in str(caught.value)


def test_to_record_and_flag_fields_write_instants_as_the_crm_does() -> None:
    """The mapping writes no datetime text of its own: the CRM adapter's (here ISO ``Z``
    text, a CRM without formats of its own) goes into every instant written."""
    fields = MAPPING.flag_fields(
        {"status": "breached", "breaches": "x", "next_due": "2026-03-04T17:00:00+01:00"},
        0,
        iso_instant_text,
    )
    assert fields["Charter_Next_Due__c"] == "2026-03-04T16:00:00Z"
    assert fields["Charter_Checked_At__c"] == "1970-01-01T00:00:00Z"
    record, _related = MAPPING.to_record(
        {"id": "C", "events": {"received": "2026-03-02T09:15:00Z"}, "attributes": {}},
        iso_instant_text,
    )
    assert record["CreatedDate"] == "2026-03-02T09:15:00Z"


def test_related_events_kept_in_one_object_are_one_read() -> None:
    """The paused and resumed events both come from CaseHistory: one read sends the filter
    they share, and each row goes to the events whose own filter it passes."""
    by_object = {r.object: r for r in MAPPING.related_reads()}
    assert sorted(by_object) == ["CaseHistory", "Task"]
    history = by_object["CaseHistory"]
    assert history.parent_field == "CaseId"
    assert history.where == (FieldFilter("Field", "=", "Status"),)
    assert set(history.fields) == {"CaseId", "CreatedDate", "NewValue", "OldValue"}
    row = {"Field": "Status", "CaseId": "C", "CreatedDate": "2026-03-02T09:00:00Z"}
    waiting = "Waiting on Customer"
    assert history.events_of(Record("CaseHistory", "h1", {**row, "NewValue": waiting})) == [
        "paused"
    ]
    assert history.events_of(Record("CaseHistory", "h2", {**row, "OldValue": waiting})) == [
        "resumed"
    ]
    assert history.events_of(Record("CaseHistory", "h3", {**row, "NewValue": "Closed"})) == []
    [(name, own)] = by_object["Task"].events
    assert (name, own) == ("customer_update", ())


def test_a_due_field_that_holds_an_instant_gets_the_due_instant() -> None:
    """``due_as: instant`` (a date-time column such as Dataverse's ``scheduledend``): the due
    instant in the CRM's datetime text, not the local due day."""
    charter = load_charter(ROOT / "mappings" / "charters" / "kilkenny.yaml")
    complaint = complaint_from_json(
        {"id": "C", "events": {}, "attributes": {"owner": "005O"}}, charter.calendar.zone, "t"
    )
    text = (ROOT / "mappings" / "salesforce.yaml").read_text()
    assert "  due_date: ActivityDate\n" in text
    instant = load_mapping_text(
        text.replace("  due_date: ActivityDate\n", "  due_date: ActivityDate\n  due_as: instant\n")
    )
    follow_up = _follow_up("breached", "manager")
    fields = instant.task_fields(follow_up, complaint, charter, sf_instant_text)
    # 2026-04-01 16:00 Irish summer time is 15:00 UTC
    assert fields["ActivityDate"] == "2026-04-01T15:00:00.000+0000"
    dated = MAPPING.task_fields(follow_up, complaint, charter, sf_instant_text)
    assert dated["ActivityDate"] == "2026-04-01"
