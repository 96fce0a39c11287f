"""Salesforce's value formats: ids and their checksum, base62 numbers, datetime text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.adapters.crm.salesforce_values import (
    BASE62,
    base62,
    ceil_millisecond,
    epoch_millis,
    format_sf_datetime,
    millis_text,
    normalize_id,
    parse_sf_datetime,
    salesforce_id,
)

ALNUM = st.text(alphabet=BASE62, min_size=15, max_size=15)
INSTANTS = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)


# The 18-character forms were worked out by hand from the documented algorithm (3 chunks of
# 5, bit i for an upper-case letter at position i, the value an index into A-Z0-5); the
# last three are the worked examples published with that algorithm.
@pytest.mark.parametrize(
    ("fifteen", "eighteen"),
    [
        ("001000000000001", "001000000000001AAA"),  # no upper case: 0, 0, 0
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),  # A at 3 -> 8 'I'; V at 1 -> 2 'C'
        ("ZZZZZZZZZZZZZZZ", "ZZZZZZZZZZZZZZZ555"),  # all upper case: 31, 31, 31
        ("a0B5000000ABCDE", "a0B5000000ABCDEEA5"),  # B at 2 -> 4 'E'; ABCDE -> 31 '5'
        ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),  # D at 2 -> 4; P at 3 -> 8
        ("0019000000B98de", "0019000000B98deAAB"),  # B at 0 -> 1
        ("500x000000003TR", "500x000000003TRAAY"),  # T at 3, R at 4 -> 24 'Y'
    ],
)
def test_the_checksum_of_known_ids(fifteen: str, eighteen: str) -> None:
    """The 18-character form appends one character per 5 telling which are upper case."""
    assert salesforce_id(fifteen) == eighteen
    assert normalize_id(fifteen) == eighteen
    assert normalize_id(eighteen) == eighteen


@given(ALNUM)
def test_the_checksum_tells_ids_that_differ_only_in_case_apart(fifteen: str) -> None:
    """Ids equal but for case get different suffixes, so the 18-character form is
    case-insensitively unique; the suffix uses only upper-case letters and 0-5."""
    made = salesforce_id(fifteen)
    other = fifteen.swapcase()
    assert made[:15] == fifteen
    assert set(made[15:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")
    if other != fifteen:
        assert salesforce_id(other).upper() != made.upper()


@pytest.mark.parametrize(
    "bad", ["", "00100000000000", "0010000000000011", "001000000000 01", "00100000000000é"]
)
def test_malformed_ids(bad: str) -> None:
    """Anything but 15 or 18 letters and digits is no id; ``salesforce_id`` refuses it."""
    assert normalize_id(bad) is None
    with pytest.raises(ValueError, match="not a 15-character Salesforce id"):
        salesforce_id(bad)


@given(st.integers(min_value=0, max_value=62**10 - 1))
def test_base62_round_trips(number: int) -> None:
    """base62 digits read back as the number, padded to the width asked."""
    text = base62(number, 10)
    assert len(text) == 10
    assert sum(BASE62.index(ch) * 62**i for i, ch in enumerate(reversed(text))) == number


def test_base62_digits() -> None:
    """0-9, then A-Z, then a-z; a longer number than the width is not cut."""
    assert [base62(n, 2) for n in (0, 9, 10, 35, 36, 61, 62, 3843)] == [
        "00",
        "09",
        "0A",
        "0Z",
        "0a",
        "0z",
        "10",
        "zz",
    ]
    assert base62(62**3, 2) == "1000"
    with pytest.raises(ValueError, match="negative"):
        base62(-1, 2)


def test_datetime_text() -> None:
    """Salesforce's text is UTC with milliseconds floored and ``+0000``."""
    moment = datetime(2026, 3, 2, 10, 15, 0, 999_999, tzinfo=timezone(timedelta(hours=1)))
    assert format_sf_datetime(moment) == "2026-03-02T09:15:00.999+0000"
    assert parse_sf_datetime("2026-03-02T09:15:00.999+0000") == datetime(
        2026, 3, 2, 9, 15, 0, 999_000, tzinfo=UTC
    )
    assert parse_sf_datetime(" 2026-03-02T10:15:00+01:00 ") == datetime(
        2026, 3, 2, 9, 15, tzinfo=UTC
    )
    assert parse_sf_datetime("2026-03-02T09:15:00Z").tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-03-02", "is not a date-time"),
        ("2026-03-02T09:15:00", "has no UTC offset"),
        ("2026-03-02T25:15:00Z", "is not an ISO-8601 date-time"),
    ],
)
def test_datetime_text_refused(text: str, problem: str) -> None:
    """A date, a naive date-time and malformed text are ``ValueError`` naming the text."""
    with pytest.raises(ValueError, match=problem):
        parse_sf_datetime(text)


@given(INSTANTS)
def test_datetime_text_round_trips_to_the_millisecond(moment: datetime) -> None:
    """Text and back is the instant floored to the millisecond; millis agree with it."""
    back = parse_sf_datetime(format_sf_datetime(moment))
    floored = moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)
    assert back == floored
    assert millis_text(epoch_millis(moment)) == format_sf_datetime(moment)


@given(INSTANTS)
def test_millisecond_ceilings(moment: datetime) -> None:
    """Rounding up gives the least whole millisecond not before the instant."""
    up = ceil_millisecond(moment)
    assert up.microsecond % 1000 == 0
    assert timedelta(0) <= up - moment < timedelta(milliseconds=1)
    assert epoch_millis(moment, ceil=True) == epoch_millis(up)
    whole = moment.microsecond % 1000 == 0
    assert epoch_millis(moment, ceil=True) - epoch_millis(moment) == (0 if whole else 1)


def test_naive_datetimes_are_refused() -> None:
    """Every datetime helper needs an aware datetime and says so."""
    naive = datetime(2026, 3, 2, 9, 15)
    for helper in (format_sf_datetime, epoch_millis, ceil_millisecond):
        with pytest.raises(ValueError, match="has no time zone"):
            helper(naive)
