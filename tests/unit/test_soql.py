"""SOQL text from names and values: every literal escaped, every name checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from crmsync.adapters.crm import soql
from crmsync.errors import QueryValueError
from crmsync.ports import FieldFilter
from fakes.salesforce_fake import parse_soql


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ("line\nbreak", r"'line\nbreak'"),
        ("cr\rtab\t", r"'cr\rtab\t'"),
        ('say "hi"', r"""'say \"hi\"'"""),
        ("bs\bff\f", r"'bs\bff\f'"),
        ("' OR Id != null OR Name = '", r"'\' OR Id != null OR Name = \''"),
        ("Gaeilge: fáilte", "'Gaeilge: fáilte'"),
    ],
)
def test_text_literals_escape_quotes_backslashes_and_control_characters(
    value: str, expected: str
) -> None:
    """Quotes, backslashes, newlines and other control characters become SOQL escapes."""
    assert soql.literal(value) == expected


@pytest.mark.parametrize(
    "value", ["O'Brien", "a\\'b", "end\\", "x\n'y'\r\n\\n", "\\\\'\\'", 'q"q', "\t\b\f"]
)
def test_escaped_text_parses_back_to_the_same_text(value: str) -> None:
    """A value put in a condition comes back unchanged from a SOQL parser (the fake's)."""
    statement = soql.select("Case", ["Id"], [soql.condition(FieldFilter("Subject", "=", value))])  # type: ignore[list-item]
    [condition] = parse_soql(statement).where
    assert (condition.field, condition.op, condition.value) == ("Subject", "=", value)


def test_other_literals() -> None:
    """Numbers, booleans, null, dates and date-times (UTC, milliseconds) are unquoted."""
    plus_one = timezone(timedelta(hours=1))
    assert soql.literal(None) == "null"
    assert soql.literal(True) == "true"
    assert soql.literal(False) == "false"
    assert soql.literal(2) == "2"
    assert soql.literal(2.5) == "2.5"
    assert soql.literal(date(2026, 3, 2)) == "2026-03-02"
    # 10:15:00.123456 at +01:00 is 09:15:00.123 UTC (microseconds floored to milliseconds)
    assert (
        soql.literal(datetime(2026, 3, 2, 10, 15, 0, 123456, tzinfo=plus_one))
        == "2026-03-02T09:15:00.123Z"
    )
    with pytest.raises(QueryValueError):
        soql.literal(float("nan"))
    with pytest.raises(QueryValueError):
        soql.literal({"a": 1})
    with pytest.raises(QueryValueError):
        soql.datetime_literal(datetime(2026, 3, 2))  # naive


@pytest.mark.parametrize("bad", ["Id; DELETE", "Name'", "1Field", "", "a b", "Owner..Name"])
def test_names_are_checked(bad: str) -> None:
    """Anything but an API name (letters, digits, underscores, dotted) is refused."""
    with pytest.raises(QueryValueError, match="not a Salesforce API name"):
        soql.select("Case", [bad])


def test_conditions_for_each_operator() -> None:
    """'=' and '!=' compare, 'in' lists distinct values, an empty 'in' matches nothing."""
    assert soql.condition(FieldFilter("Type", "=", "Complaint")) == "Type = 'Complaint'"
    assert soql.condition(FieldFilter("Type", "!=", None)) == "Type != null"
    assert soql.condition(FieldFilter("Level__c", "in", (1, 2, 1))) == "Level__c IN (1, 2)"
    assert soql.condition(FieldFilter("Type", "in", ())) is None
    with pytest.raises(QueryValueError):
        soql.condition(FieldFilter("Type", "in", "Complaint"))


def test_select_in_chunks_covers_every_value_within_the_length() -> None:
    """IN-list queries stay within max_length and together hold every value once, in order."""
    ids = [f"500000000000{i:03d}AAA" for i in range(100)]
    chunks = list(
        soql.select_in_chunks(
            "Task", ["Id", "WhatId"], "WhatId", ids, ["IsDeleted = false"], max_length=500
        )
    )
    assert all(len(text) <= 500 for text, _chunk in chunks)
    assert [v for _text, chunk in chunks for v in chunk] == ids
    # head "SELECT Id, WhatId FROM Task WHERE WhatId IN (" is 45 characters, the tail
    # ") AND IsDeleted = false" 23: 432 left for quoted ids of 20 characters joined by
    # ", " -> n ids take 22n - 2: 19 take 416 (fit), 20 take 438 (do not)
    assert len(chunks[0][1]) == 19
    first = parse_soql(chunks[0][0])
    assert first.where[0].value == ids[:19]
    assert first.where[1].field == "IsDeleted"


def test_datetime_literal_is_utc() -> None:
    """An aware datetime in any zone is written in UTC."""
    assert soql.datetime_literal(datetime(2026, 3, 2, 9, 15, tzinfo=UTC)) == (
        "2026-03-02T09:15:00.000Z"
    )
