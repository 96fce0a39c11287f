"""``parse_instant`` (with its fast paths and caches) against the plain definition.

The plain definition is semantics section 1 written the obvious way: a date alone is local
midnight (``fold=0``) in the charter's zone; a date-time needs an offset and is truncated
to whole seconds; anything else is bad input.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.domain.instants import parse_instant
from crmsync.errors import InstantError

ZONES = [ZoneInfo(name) for name in ("Europe/London", "Europe/Dublin", "America/St_Johns")]


def plain(value: str, zone: ZoneInfo) -> int | None:
    """The instant ``value`` means, or ``None`` when it is bad input."""
    text = value.strip()
    try:
        if len(text) == 10:
            return int(datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone).timestamp())
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    seconds = (parsed - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    return int(seconds // 1)


def parsed_or_none(value: str, zone: ZoneInfo) -> int | None:
    try:
        return parse_instant(value, zone)
    except InstantError:
        return None


instants = st.integers(min_value=0, max_value=7_258_118_399)  # 1970 .. 2199
offsets = st.one_of(
    st.sampled_from([0, 3600, 7200, -18000, 19800, -12 * 3600, 14 * 3600, 20700]),
    st.integers(min_value=-86399, max_value=86399),
)


@st.composite
def written(draw: st.DrawFn) -> str:
    """An instant as exports write it: Z, an offset, a date alone, a fraction, or broken."""
    moment = datetime.fromtimestamp(draw(instants), timezone(timedelta(seconds=draw(offsets))))
    if draw(st.integers(0, 9)) == 0:
        moment = moment.replace(microsecond=draw(st.integers(0, 999_999)))
    form = draw(st.sampled_from(["iso", "z", "date", "naive", "space", "cut", "padded"]))
    if form == "z":
        text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif form == "date":
        text = moment.date().isoformat()
    elif form == "naive":
        text = moment.replace(tzinfo=None).isoformat()
    elif form == "space":
        text = moment.isoformat(sep=" ")
    elif form == "cut":
        text = moment.isoformat()[: draw(st.integers(1, 24))]
    elif form == "padded":
        text = f"  {moment.isoformat()} "
    else:
        text = moment.isoformat()
    return text


@pytest.mark.slow  # 3,000 examples, ~20 s on a shared machine
@settings(max_examples=3000, deadline=None)
@given(value=written(), zone=st.sampled_from(ZONES))
def test_parse_instant_agrees_with_the_plain_definition(value: str, zone: ZoneInfo) -> None:
    """Every written instant parses to what the plain definition says, or is refused by both."""
    assert parsed_or_none(value, zone) == plain(value, zone)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-29T01:30:00+00:00", 1774747800),
        ("2026-03-29T02:30:00+01:00", 1774747800),
        ("2026-03-28T20:30:00-05:00", 1774747800),
        ("2026-03-29T07:00:00+05:30", 1774747800),
        ("2026-03-29T01:30:00Z", 1774747800),
        ("2026-03-29", 1774742400),  # London midnight, still GMT that night
        ("2026-03-30", 1774825200),  # London midnight in BST: 23:00 UTC the day before
    ],
)
def test_known_instants(value: str, expected: int) -> None:
    """Hand-computed instants: the same moment in four offsets, and London midnights."""
    assert parse_instant(value, ZoneInfo("Europe/London")) == expected
    assert parse_instant(value, ZoneInfo("Europe/London")) == expected  # cached answer too
