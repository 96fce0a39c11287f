"""Parsing ``N unit`` durations (semantics section 3)."""

from __future__ import annotations

import pytest

from crmsync.domain.durations import Duration, Unit, elapsed_seconds, parse_duration

UNIT_NAMES = [
    ("minute", "minutes", Unit.MINUTES),
    ("hour", "hours", Unit.HOURS),
    ("day", "days", Unit.DAYS),
    ("week", "weeks", Unit.WEEKS),
    ("business_minute", "business_minutes", Unit.BUSINESS_MINUTES),
    ("business_hour", "business_hours", Unit.BUSINESS_HOURS),
    ("business_day", "business_days", Unit.BUSINESS_DAYS),
]


@pytest.mark.parametrize(("singular", "plural", "unit"), UNIT_NAMES)
def test_each_unit_parses_singular_and_plural(singular: str, plural: str, unit: Unit) -> None:
    """Every unit is accepted in its singular and its plural spelling."""
    assert parse_duration(f"1 {singular}") == Duration(1, unit)
    assert parse_duration(f"12 {plural}") == Duration(12, unit)
    assert parse_duration(f"1 {plural}") == Duration(1, unit)


def test_there_are_exactly_seven_units() -> None:
    """The contract names seven units, no more."""
    assert {u.value for u in Unit} == {plural for _, plural, _ in UNIT_NAMES}


def test_surrounding_and_inner_whitespace_is_allowed() -> None:
    """Spaces around the text and between number and unit are ignored."""
    assert parse_duration("  3   business_days ") == Duration(3, Unit.BUSINESS_DAYS)


def test_leading_zeros_are_a_whole_number() -> None:
    """``05 days`` is five days."""
    assert parse_duration("05 days") == Duration(5, Unit.DAYS)


def test_duration_prints_as_amount_and_plural_unit() -> None:
    """A duration prints as ``N unit`` with the plural unit name, and parses back."""
    assert str(parse_duration("1 business_day")) == "1 business_days"
    assert parse_duration(str(Duration(14, Unit.DAYS))) == Duration(14, Unit.DAYS)


def test_business_units_are_marked() -> None:
    """Only the three business_ units count opening time."""
    assert {u for u in Unit if u.is_business} == {
        Unit.BUSINESS_MINUTES,
        Unit.BUSINESS_HOURS,
        Unit.BUSINESS_DAYS,
    }


@pytest.mark.parametrize("text", ["0 days", "0 business_hours", "-1 days", "-3 business_days"])
def test_zero_and_negative_amounts_are_refused(text: str) -> None:
    """The number must be a whole number >= 1, and the message says so."""
    with pytest.raises(ValueError, match=">= 1") as caught:
        parse_duration(text)
    assert text in str(caught.value)


@pytest.mark.parametrize("text", ["2 fortnights", "3 business_weeks", "1 seconds", "2 Days"])
def test_unknown_unit_is_refused_with_the_unit_list(text: str) -> None:
    """An unknown unit is named, and the allowed units are listed."""
    with pytest.raises(ValueError, match="business_days") as caught:
        parse_duration(text)
    assert text in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "days",
        "2",
        "two days",
        "2days",
        "2.5 hours",
        "1e3 minutes",
        "2 days extra",
        "2 business days",
        "2 business-days",
        "\u0662 days",  # ARABIC-INDIC DIGIT TWO: not an ASCII whole number
    ],
)
def test_garbage_is_refused_with_a_hint(text: str) -> None:
    """Text that is not ``N unit`` raises ValueError quoting it and showing the form."""
    with pytest.raises(ValueError, match="'N unit'") as caught:
        parse_duration(text)
    assert f"'{text}'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2 days", 172800), ("5m", 300), ("PT1M", 60), ("7", 7)]
)
def test_elapsed_time_shares_the_n_unit_reader(text: str, seconds: int) -> None:
    """Elapsed time takes a charter's wall-clock `N unit` as well as seconds and short forms."""
    assert elapsed_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0 days", "2days", "-5m", "1 fortnight"])
def test_elapsed_time_refuses_what_is_no_duration(text: str) -> None:
    """A zero `N unit`, a missing space before a long unit and a minus sign are no duration."""
    with pytest.raises(ValueError, match="is not a duration"):
        elapsed_seconds(text)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("3 weks", "3 weeks"),
        ("2 wrking days", "2 business_days"),
        ("2 working days", "2 business_days"),
        ("1 Business Day", "1 business_day"),
        ("10 work-hours", "10 business_hours"),
        ("2days", "2 days"),
        ("5 min", "5 minutes"),
        ("4 bussiness_hours", "4 business_hours"),
    ],
)
def test_a_near_miss_unit_names_the_duration_meant(text: str, meant: str) -> None:
    """A misspelt unit, another case, words for `_`, "working" for "business": the error
    quotes the text and suggests the duration meant, amount kept."""
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert f"'{text}'" in str(caught.value)
    assert f"(did you mean '{meant}'?)" in str(caught.value)


@pytest.mark.parametrize("text", ["2 months", "3 moons", "soon", "0 weks", "1 fortnight"])
def test_no_suggestion_for_what_is_no_near_miss(text: str) -> None:
    """Months (no unit, and not minutes), far-off words, no amount or a zero amount: the
    error says what is wrong and suggests nothing."""
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert "did you mean" not in str(caught.value)
