"""Salesforce's datetime text, as its adapter (and the local CRM, which keeps the reference
org's formats) writes instants back, against the plain definition: ``strftime`` of the
instant in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from crmsync.adapters.crm.salesforce_values import sf_instant_text
from crmsync.mapping.field_mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")


@given(st.integers(min_value=-62_000_000_000, max_value=253_000_000_000))
def test_written_datetimes_are_strftimes_text(instant: int) -> None:
    """Write-back datetimes are ``strftime``'s text of the instant in UTC, milliseconds 000."""
    expected = datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    assert sf_instant_text(instant) == expected
    flags = {"status": "open", "breaches": "", "next_due": None}
    assert MAPPING.flag_fields(flags, instant, sf_instant_text)["Charter_Checked_At__c"] == expected
