"""The demo's seeding sends each related event's rows to that event's own object: a mapping
with two related objects gets customer updates as Tasks and call-backs as records of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from crmsync.adapters.crm.local import LocalCrm
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping

REPO = Path(__file__).resolve().parents[2]


def test_each_related_row_goes_to_its_own_object(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "mappings" / "salesforce.yaml").read_text(encoding="utf-8"))
    complaints = spec["complaints"]
    del complaints["events"]["callback"]
    del spec["fields"]["Case"]["Callback_At__c"]  # no longer a field the mapping reads
    complaints["related_events"]["callback"] = {
        "object": "Call_Back__c",
        "parent_field": "Case__c",
        "field": "Sent_At__c",
    }
    path = tmp_path / "two-related.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    mapping = load_mapping(path)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with LocalCrm(tmp_path / "crm.sqlite3") as crm:
        created = seed_local_crm(
            crm,
            mapping,
            "kilkenny",
            count=300,
            seed=7,
            start=now - timedelta(days=75),
            span_days=70,
            now=now,
        )
        tasks = [r.fields for r in crm.export_records("Task")]
        feedback = [r.fields for r in crm.export_records("Call_Back__c")]
        cases = {r.id for r in crm.export_records("Case")}
    assert feedback, "the kilkenny generator gives some complaints a callback"
    assert tasks, "and some a customer update"
    assert all(f.get("Sent_At__c") and f.get("Case__c") in cases for f in feedback)
    assert not any("Sent_At__c" in t or "Case__c" in t for t in tasks)
    assert all(t.get("Type") == "Customer Update" and t.get("WhatId") in cases for t in tasks)
    assert created.tasks == len(tasks) + len(feedback)
