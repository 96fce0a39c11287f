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


@st.composite
def nearly_shaped(draw: st.DrawFn) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` then ``Z`` or ``+hh:mm``, each field drawn beyond its range
    (day 31 of February, hour 24, second 60, year 0000, offset +24:00) and sometimes one
    character replaced: the values the field-by-field fast path must read exactly as
    ``datetime.fromisoformat`` does, or leave to it."""
    fields = (
        f"{draw(st.integers(0, 9999)):04d}-{draw(st.integers(0, 13)):02d}-"
        f"{draw(st.integers(0, 32)):02d}{draw(st.sampled_from('TT t'))}"
        f"{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}:"
        f"{draw(st.integers(0, 61)):02d}"
    )
    hours, minutes = draw(st.integers(0, 25)), draw(st.integers(0, 61))
    offset = draw(
        st.sampled_from(["Z", "z", f"+{hours:02d}:{minutes:02d}", f"-{hours:02d}:{minutes:02d}"])
    )
    text = fields + offset
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("09-:T+Z \u0663")) + text[at + 1 :]
    return text


@settings(max_examples=600, deadline=None)
@given(value=nearly_shaped())
def test_the_usual_shapes_read_as_the_plain_definition(value: str) -> None:
    """Values of the usual shapes (20 or 25 characters), valid or one field out of range,
    parse to what the plain definition says, or are refused by both."""
    zone = ZoneInfo("Europe/London")
    assert parsed_or_none(value, zone) == plain(value, zone)


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-29T23:59:59Z",  # a leap day
        "2000-02-29T00:00:00+00:00",  # divisible by 400: leap
        "0001-01-01T00:00:00+00:00",  # the first day datetime knows
        "9999-12-31T23:59:59-23:59",
        "1969-12-31T23:59:59+00:00",  # before the epoch: negative seconds
    ],
)
def test_shaped_edges(value: str) -> None:
    """Leap days, the first and last years and negative seconds read as the plain definition."""
    assert parse_instant(value, ZoneInfo("Europe/London")) == plain(value, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    "value", ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "0000-01-01T00:00:00Z"]
)
def test_shaped_non_dates_are_refused(value: str) -> None:
    """A day that does not exist (29 February of a common year, year 0) is bad input."""
    with pytest.raises(InstantError, match="is not an ISO-8601 instant"):
        parse_instant(value, ZoneInfo("Europe/London"))
