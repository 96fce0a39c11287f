"""Salesforce's record rules apart from any storage: what a write may store, by mode."""

from __future__ import annotations

import pytest

from crmsync.adapters.crm.local import SCHEMA_FILE
from crmsync.adapters.crm.salesforce_records import Mode, RecordRules, _RecordError, load_schema
from crmsync.adapters.crm.salesforce_values import salesforce_id

RULES = RecordRules(load_schema(SCHEMA_FILE))


def refusal(object: str, values: dict[str, object], mode: Mode) -> tuple[str, tuple[str, ...]]:
    """The error code and fields refusing ``values`` (fails when they are taken)."""
    with pytest.raises(_RecordError) as caught:
        RULES.prepare(object, values, mode=mode)
    return caught.value.code, caught.value.fields


def test_values_are_normalised_as_salesforce_stores_them() -> None:
    """Datetimes become UTC text with milliseconds, ids 18 characters, empty text null."""
    prepared = RULES.prepare(
        "Case",
        {
            "Charter_Next_Due__c": "2026-03-05T10:00:00+01:00",
            "OwnerId": "005000000000001",
            "Subject": "",
            "Expected_Decision_Date__c": "2026-03-05",
            "Complaint_Level__c": 2,
        },
        mode="update",
    )
    assert prepared == {
        "Charter_Next_Due__c": "2026-03-05T09:00:00.000+0000",
        "OwnerId": "005000000000001AAA",
        "Subject": None,
        "Expected_Decision_Date__c": "2026-03-05",
        "Complaint_Level__c": 2,
    }


def test_read_only_and_system_fields_only_import_sets() -> None:
    """An update or create refuses read-only and system fields; an import sets them."""
    assert refusal("Case", {"IsClosed": True}, "update") == (
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        ("IsClosed",),
    )
    assert refusal("Case", {"CreatedDate": "2026-03-02T09:00:00Z"}, "create") == (
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        ("CreatedDate",),
    )
    assert RULES.prepare(
        "Case", {"IsClosed": True, "CreatedDate": "2026-03-02T10:00:00+01:00"}, mode="import"
    ) == {"IsClosed": True, "CreatedDate": "2026-03-02T09:00:00.000+0000"}


def test_unknown_fields_wrong_types_and_non_json_fail_the_record() -> None:
    """Each refusal names its code and the field."""
    assert refusal("Case", {"Subjekt": "x"}, "update") == ("INVALID_FIELD", ("Subjekt",))
    assert refusal("Case", {"Complaint_Level__c": "two"}, "update") == (
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        ("Complaint_Level__c",),
    )
    assert refusal("Case", {"Charter_Checked_At__c": "2026-03-05T10:00:00"}, "update") == (
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        ("Charter_Checked_At__c",),
    )
    assert refusal("Case", {"Complaint_Level__c": float("inf")}, "update") == (
        "INVALID_FIELD",
        ("Complaint_Level__c",),
    )
    assert refusal("User", {"bad name": 1}, "create") == ("INVALID_FIELD", ("bad name",))


def test_objects_without_schema_take_any_named_field_as_given() -> None:
    """No declared schema: any field name, any JSON value, kept as it is."""
    assert RULES.fields_of("User") is None
    assert RULES.prepare("User", {"Name": "", "Tags": ["a"]}, mode="create") == {
        "Name": "",
        "Tags": ["a"],
    }


def test_unique_fields_and_made_ids() -> None:
    """External ids are unique; made ids carry the key prefix, LC and a valid checksum,
    and an unlisted object gets a stable prefix of its own."""
    assert RULES.unique_fields("Task") == {"CrmSync_Key__c"}
    assert RULES.unique_fields("User") == frozenset()
    made = RULES.made_id("Case", 62)
    assert made == salesforce_id("500LC0000000010")
    custom = RULES.made_id("Complaint_Note__c", 1)
    assert custom[:3] == RULES.made_id("Complaint_Note__c", 2)[:3]
    assert custom[:3] not in {"500", "00T", "005"}
