"""The mapping's datetime text read from records (canonical instants) against the plain
definition: parse, convert to UTC, ``strftime``. What is written back is the CRM adapter's
own text (``test_salesforce_datetime_text.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crmsync.errors import MappingError
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import Record

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")

OFFSETS = st.sampled_from([0, 60, 120, -300, 330, -720, 840]).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
MOMENTS = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=OFFSETS
)


def plain_canonical(text: str) -> str | None:
    """The canonical text of a CRM datetime value, or None when it is bad input."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_received(text: str) -> str | None:
    record = Record("Case", "500000000000001AAA", {"Id": "500000000000001AAA", "CreatedDate": text})
    try:
        return str(MAPPING.to_canonical(record)["events"]["received"])
    except MappingError:
        return None


def salesforce_texts(moment: datetime) -> list[str]:
    """The ways a CRM writes one moment: Salesforce's UTC text, ISO with offsets, ``Z``."""
    u = moment.astimezone(UTC)
    return [
        u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}+0000",
        moment.isoformat(),
        moment.isoformat(timespec="seconds"),
        u.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        " " + moment.isoformat() + " ",
    ]


@settings(max_examples=400, deadline=None)
@given(MOMENTS)
@example(datetime(999, 12, 31, 23, 0, tzinfo=UTC))
@example(datetime(1000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
def test_record_datetimes_read_as_strftime_writes_them(moment: datetime) -> None:
    """Every way of writing a moment reads as the UTC text ``strftime`` makes of it."""
    for text in salesforce_texts(moment):
        assert canonical_received(text) == plain_canonical(text), text


@given(st.text(alphabet="0123456789-T:.+Z 24", min_size=10, max_size=30))
@example("2026-03-02T24:00:00.000+0000")
@example("0999-03-02T09:00:00.000+0000")
@example("2026-03-02T09:00:00,000+0000")
def test_odd_texts_read_as_the_plain_definition(text: str) -> None:
    """Malformed or unusual text is refused, or read, exactly as the plain definition does."""
    assert canonical_received(text) == plain_canonical(text)
