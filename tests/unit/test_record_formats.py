"""The id and datetime formats a local CRM schema may name (record_formats)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmsync.adapters.crm.record_formats import DATAVERSE, FORMATS, SALESFORCE

INSTANT = datetime(2026, 3, 2, 9, 15, 0, 123456, tzinfo=UTC)


def test_salesforce_text_and_ids() -> None:
    assert SALESFORCE.instant_text(INSTANT) == "2026-03-02T09:15:00.123+0000"
    assert SALESFORCE.millis_text(1_772_442_900_123) == "2026-03-02T09:15:00.123+0000"
    assert SALESFORCE.parse_datetime("2026-03-02T10:15:00.123+01:00") == datetime(
        2026, 3, 2, 9, 15, 0, 123000, tzinfo=UTC
    )
    assert SALESFORCE.normalize_id("500000000000001") == "500000000000001AAA"
    assert SALESFORCE.made_id("500", 1) == "500LC0000000001YAA"  # L, C upper: Y


def test_dataverse_text_is_utc_z_to_the_millisecond() -> None:
    assert DATAVERSE.instant_text(INSTANT) == "2026-03-02T09:15:00.123Z"
    assert DATAVERSE.millis_text(1_772_442_900_000) == "2026-03-02T09:15:00.000Z"
    assert DATAVERSE.parse_datetime("2026-03-02T09:15:00.5Z") == datetime(
        2026, 3, 2, 9, 15, 0, 500000, tzinfo=UTC
    )
    assert DATAVERSE.parse_datetime("2026-03-02") == datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-03-02T09:15:00+0000", "2026-03-02T09:15:00+01:00", "2026-03-02T09:15:00", "x"]
)
def test_dataverse_refuses_other_offsets_and_naive_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a UTC date-time"):
        DATAVERSE.parse_datetime(text)


def test_dataverse_ids_are_lower_case_guids() -> None:
    assert DATAVERSE.normalize_id("ABCDEF01-0000-0000-0000-00000000000A") == (
        "abcdef01-0000-0000-0000-00000000000a"
    )
    assert DATAVERSE.normalize_id("500000000000001AAA") is None
    assert DATAVERSE.made_id("2", 255) == "00000002-0000-4000-8000-0000000000ff"
    assert DATAVERSE.made_id("2", 1) != DATAVERSE.made_id("1", 1)


def test_formats_by_name() -> None:
    assert FORMATS == {"salesforce": SALESFORCE, "dataverse": DATAVERSE}
