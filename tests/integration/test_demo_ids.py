"""The demo takes its ids from the CRM it seeds: a local CRM keeping Salesforce's formats
makes Case and User ids, one keeping Dataverse's makes GUIDs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from crmsync.adapters.crm.local import LocalCrm
from fakes.dynamics365_fake import REFERENCE_TABLES, schema_data

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_salesforce_shaped_store_makes_case_and_user_ids(tmp_path: Path) -> None:
    """Serial 1 is ``500`` + twelve base62 digits + the case checksum (no upper case: AAA)."""
    with LocalCrm(tmp_path / "crm.sqlite3", clock=lambda: NOW) as crm:
        assert crm.demo_record_id("complaint", 1) == "500000000000001AAA"
        assert crm.demo_record_id("user", 62) == "005000000000010AAA"


def test_a_dataverse_shaped_store_makes_guids_marked_by_kind(tmp_path: Path) -> None:
    """A store keeping Dataverse's formats makes GUIDs: the kind, then the serial."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(schema_data(REFERENCE_TABLES)), encoding="utf-8")
    with LocalCrm(tmp_path / "crm.sqlite3", clock=lambda: NOW, schema_file=schema) as crm:
        assert crm.demo_record_id("complaint", 1) == "000000c0-0000-0000-0000-000000000001"
        assert crm.demo_record_id("user", 2**80) == "00000005-0001-0000-0000-000000000000"
