"""Charter files are refused before anything runs, with the file, the line and what is wrong.

Semantics section 6: every problem of a file is reported at once. Line numbers below are
counted by hand in the YAML texts (the first line is line 1).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crmsync.errors import CharterFileError, ConfigError, Problem
from crmsync.mapping.charter_file import load_charter, load_charter_text
from crmsync.mapping.yaml_source import parse_yaml

REPO = Path(__file__).resolve().parents[2]


def problems(text: str, file: str = "bad.yaml") -> list[Problem]:
    """The problems of a charter text that must not load."""
    with pytest.raises(CharterFileError) as caught:
        load_charter_text(text, file)
    return caught.value.problems


def where(found: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.path) for p in found]


ALL_WRONG = """\
charter: broken
title: Broken
calendar:
  timezone: Europe/Londn
  hours:
    mon: ["25:00-26:00", "17:00-09:00"]
    tue: ["08:00-12:00", "11:00-13:00"]
  holidays:
    country: GB
    subdivision: XYZ
clocks:
  - id: reply
    start: received
    stop: acknowledged
    target: 2 fortnights
  - id: reply
    kind: timer
    start: received
    stop: decision
    target: 2 days
  - id: typo
    start: received
    stop: decision
    targett: 2 days
  - id: no-stop
    start: received
    target: 2 days
  - id: interim
    every: 14 days
    start: customer_update
  - id: registration
    kind: completeness
    start: received
    target: 1 business_days
  - id: promised
    start: received
    stop: decision
    target: 1 days
    target_field: expected_decision
"""

ALL_WRONG_EXPECTED = [
    (4, "calendar.timezone", "time zone 'Europe/Londn' does not exist"),
    (6, "calendar.hours.mon[0]", "opening time 25:00 is not a time of day"),
    (6, "calendar.hours.mon[1]", "the closing time must be after the opening time"),
    (7, "calendar.hours.tue", "opening hours 08:00-12:00 and 11:00-13:00 overlap"),
    (10, "calendar.holidays.subdivision", "country 'GB' has no subdivision 'XYZ'"),
    (15, "clocks[0].target", "unknown unit 'fortnights'"),
    (16, "clocks[1].id", "duplicate clock id 'reply' (first at line 12)"),
    (17, "clocks[1].kind", "'deadline', 'recurring' or 'completeness' (got 'timer')"),
    (24, "clocks[2].targett", "unknown key 'targett' (did you mean 'target'?)"),
    (25, "clocks[3]", "a deadline clock needs 'stop'"),
    (28, "clocks[4]", "a recurring clock needs 'reset'"),
    (31, "clocks[5]", "a completeness clock needs 'require'"),
    (35, "clocks[6]", "needs exactly one of 'target' or 'target_field'"),
]


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    """Thirteen different mistakes in one file: all thirteen, in line order, each at its line."""
    found = problems(ALL_WRONG)
    assert where(found) == [(line, path) for line, path, _ in ALL_WRONG_EXPECTED]
    for problem, (_, _, fragment) in zip(found, ALL_WRONG_EXPECTED, strict=True):
        assert fragment in problem.message
        assert problem.file == "bad.yaml"


def test_the_error_message_names_file_line_and_problem() -> None:
    """The exception text is what a person reads: `file:line:column (path): what is wrong`."""
    with pytest.raises(CharterFileError) as caught:
        load_charter_text(ALL_WRONG, "mappings/charters/broken.yaml")
    text = str(caught.value)
    assert text.startswith("mappings/charters/broken.yaml: 13 problem(s)")
    assert (
        "mappings/charters/broken.yaml:24:5 (clocks[2].targett): "
        "unknown key 'targett' (did you mean 'target'?)" in text
    )
    assert isinstance(caught.value, ConfigError)


def test_load_charter_names_the_path_on_disk(tmp_path: Path) -> None:
    """A charter file read from disk is reported by its path."""
    path = tmp_path / "broken.yaml"
    path.write_text(ALL_WRONG, encoding="utf-8")
    with pytest.raises(CharterFileError) as caught:
        load_charter(path)
    assert caught.value.file == str(path)
    assert f"{path}:4:3 (calendar.timezone)" in str(caught.value)


def test_a_missing_charter_file_is_a_charter_file_error(tmp_path: Path) -> None:
    """A file that cannot be read is refused with its path, not a traceback."""
    with pytest.raises(CharterFileError, match="cannot read"):
        load_charter(tmp_path / "absent.yaml")


def charter_with_clock(clock: str) -> str:
    """A valid calendar (lines 1-6) and one clock starting at line 8 (`- id: c` on line 8)."""
    return (
        "charter: one\n"
        "title: One\n"
        "calendar:\n"
        "  timezone: UTC\n"
        "  hours:\n"
        '    mon: ["09:00-17:00"]\n'
        "clocks:\n"
        "  - id: c\n" + clock
    )


@pytest.mark.parametrize(
    ("clock", "line", "path", "fragment"),
    [
        (
            "    start: received\n    stop: done\n    target: 3 moons\n",
            11,
            "clocks[0].target",
            "unknown unit 'moons'",
        ),
        (
            "    start: received\n    stop: done\n    target: 0 days\n",
            11,
            "clocks[0].target",
            "whole number >= 1",
        ),
        (
            "    start: received\n    stop: done\n    target: soon\n",
            11,
            "clocks[0].target",
            "is not a duration",
        ),
        (
            "    kind: stopwatch\n    start: received\n    stop: done\n    target: 1 days\n",
            9,
            "clocks[0].kind",
            "(got 'stopwatch')",
        ),
        (
            "    start: received\n    target: 1 days\n",
            8,
            "clocks[0]",
            "a deadline clock needs 'stop'",
        ),
        (
            "    start: received\n    stop: []\n    target: 1 days\n",
            8,
            "clocks[0]",
            "a deadline clock needs 'stop'",
        ),
        (
            "    kind: recurring\n    start: received\n    reset: update\n",
            8,
            "clocks[0]",
            "a recurring clock needs 'every'",
        ),
        (
            "    start: received\n    every: 7 days\n",
            8,
            "clocks[0]",
            "a recurring clock needs 'reset'",
        ),
        (
            "    kind: completeness\n    start: received\n    target: 1 days\n",
            8,
            "clocks[0]",
            "a completeness clock needs 'require'",
        ),
        (
            "    kind: deadline\n    start: received\n    stop: done\n    require: [a]\n"
            "    target: 1 days\n",
            8,
            "clocks[0]",
            "a deadline clock takes no 'require'",
        ),
        (
            "    start: received\n    stop: done\n    target: 1 days\n    target_field: due\n",
            8,
            "clocks[0]",
            "exactly one of 'target' or 'target_field'",
        ),
        (
            "    start: received\n    stop: done\n",
            8,
            "clocks[0]",
            "exactly one of 'target' or 'target_field'",
        ),
        (
            "    start: received\n    stop: done\n    targett: 1 days\n",
            11,
            "clocks[0].targett",
            "unknown key 'targett' (did you mean 'target'?)",
        ),
        ("    stop: done\n    target: 1 days\n", 8, "clocks[0].start", "'start' is required"),
        (
            "    start: Received\n    stop: done\n    target: 1 days\n",
            9,
            "clocks[0].start",
            "(got 'Received')",
        ),
        (
            "    start: received\n    stop: done\n    target: 1 days\n    when: {level: []}\n",
            8,
            "clocks[0]",
            "'when' lists no value for 'level'",
        ),
    ],
    ids=[
        "unknown-unit",
        "zero-amount",
        "not-a-duration",
        "unknown-kind",
        "deadline-without-stop",
        "deadline-with-empty-stop",
        "recurring-without-every",
        "recurring-without-reset",
        "completeness-without-require",
        "deadline-with-require",
        "target-and-target-field",
        "neither-target",
        "typo-key",
        "missing-start",
        "event-name-case",
        "empty-when-list",
    ],
)
def test_a_bad_clock_is_refused_at_its_line(
    clock: str, line: int, path: str, fragment: str
) -> None:
    """Each clock mistake is one problem at the line of the offending key (or of the clock)."""
    found = problems(charter_with_clock(clock))
    assert where(found) == [(line, path)]
    assert fragment in found[0].message


def charter_with_calendar(calendar: str) -> str:
    """A calendar block from line 4 on, then a valid clock."""
    return (
        "charter: cal\n"
        "title: Cal\n"
        "calendar:\n"
        + calendar
        + "clocks:\n  - id: c\n    start: received\n    stop: done\n    target: 1 days\n"
    )


@pytest.mark.parametrize(
    ("calendar", "line", "path", "fragment"),
    [
        (
            '  timezone: Mars/Olympus_Mons\n  hours:\n    mon: ["09:00-17:00"]\n',
            4,
            "calendar.timezone",
            "time zone 'Mars/Olympus_Mons' does not exist",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["25:00-26:00"]\n',
            6,
            "calendar.hours.mon[0]",
            "opening time 25:00 is not a time of day",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-24:30"]\n',
            6,
            "calendar.hours.mon[0]",
            "closing time 24:30 is not a time of day",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["17:00-09:00"]\n',
            6,
            "calendar.hours.mon[0]",
            "the closing time must be after the opening time",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-09:00"]\n',
            6,
            "calendar.hours.mon[0]",
            "the closing time must be after the opening time",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["9-5"]\n',
            6,
            "calendar.hours.mon[0]",
            "'9-5' is not opening hours",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n'
            '    wed: ["13:00-17:00", "09:00-12:00", "11:30-12:30"]\n',
            7,
            "calendar.hours.wed",
            "opening hours 09:00-12:00 and 11:30-12:30 overlap",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n    sat: ["10:00-12:00"]\n'
            '    mon: ["08:00-12:00"]\n',
            8,
            "calendar.hours.mon",
            "duplicate key 'mon' (first at line 6)",
        ),
        (
            '  timezone: UTC\n  hours:\n    funday: ["09:00-17:00"]\n',
            6,
            "calendar.hours.funday",
            "Input should be 'mon', 'tue'",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n  holidays:\n    country: XX\n',
            8,
            "calendar.holidays.country",
            "the holidays package knows no country 'XX'",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n  holidays:\n    country: GB\n'
            "    subdivision: ZZZ\n",
            9,
            "calendar.holidays.subdivision",
            "country 'GB' has no subdivision 'ZZZ' (known: ",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n  closed: [2026-02-30]\n',
            7,
            "calendar.closed[0]",
            "day value is outside expected range",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\n'
            "  closed:\n    - {date: 2026-12-24, reasn: Christmas Eve}\n",
            8,
            "calendar.closed[0].reasn",
            "unknown key 'reasn' (did you mean 'reason'?)",
        ),
        (
            '  timezone: UTC\n  hours:\n    mon: ["09:00-17:00"]\nclocks_extra: 1\n',
            7,
            "clocks_extra",
            "unknown key 'clocks_extra'",
        ),
        ("  timezone: UTC\n  hours: {}\n", 3, "calendar", "no opening hours on any weekday"),
    ],
    ids=[
        "unknown-zone",
        "hour-25",
        "closing-after-24",
        "closing-before-opening",
        "empty-interval",
        "not-hh-mm",
        "overlap",
        "duplicate-weekday",
        "unknown-weekday",
        "unknown-country",
        "unknown-subdivision",
        "impossible-closed-date",
        "closed-date-typo-key",
        "unknown-top-level-key",
        "no-hours-at-all",
    ],
)
def test_a_bad_calendar_is_refused_at_its_line(
    calendar: str, line: int, path: str, fragment: str
) -> None:
    """Each calendar mistake is one problem at its own line."""
    found = problems(charter_with_calendar(calendar))
    assert where(found) == [(line, path)]
    assert fragment in found[0].message


def test_touching_opening_intervals_are_not_an_overlap() -> None:
    """`09:00-12:00` and `12:00-17:00` share only an end point: accepted, 8 hours open."""
    charter = load_charter_text(
        charter_with_calendar(
            '  timezone: UTC\n  hours:\n    mon: ["12:00-17:00", "09:00-12:00", "17:00-24:00"]\n'
        )
    )
    spans = charter.calendar.opening_instants(date(2026, 3, 2))  # a Monday
    assert sum(b - a for a, b in spans) == 15 * 3600  # 09:00-24:00


DUPLICATE_KEYS = """\
charter: dup
title: Dup
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
  timezone: UTC
clocks:
  - id: reply
    start: received
    stop: decision
    stop: acknowledged
    target: 2 dayz
"""


def test_duplicate_yaml_keys_are_reported_with_the_other_problems() -> None:
    """A repeated key is refused (never a silent overwrite), beside the file's other problems."""
    found = problems(DUPLICATE_KEYS)
    assert [(p.line, p.path, p.message) for p in found][:2] == [
        (7, "calendar.timezone", "duplicate key 'timezone' (first at line 4)"),
        (12, "clocks[0].stop", "duplicate key 'stop' (first at line 11)"),
    ]
    assert where(found)[2:] == [(13, "clocks[0].target")]
    assert "unknown unit 'dayz'" in found[2].message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "charter: x\ntitle: [unclosed\ncalendar:\n  timezone: UTC\n",
            3,
            "flow sequence started at line 2",
        ),
        (
            "charter: x\ntitle: X\ncalendar:\n  timezone: Europe/London: x\n",
            4,
            "mapping values are not allowed here",
        ),
        ("charter: x\n---\ncharter: y\n", 2, "expected a single document"),
        ("charter: x\ntitle: X\n\tcalendar: {}\n", 3, "'\\t'"),
        ("charter: x\ntitle: \x00\n", 2, "unacceptable character"),
    ],
    ids=["unclosed-list", "colon-in-value", "two-documents", "tab", "nul-character"],
)
def test_a_yaml_syntax_error_is_refused_with_its_line(text: str, line: int, fragment: str) -> None:
    """Broken YAML is one problem naming the line and what the parser expected."""
    found = problems(text)
    assert where(found) == [(line, "")]
    assert found[0].message.startswith("YAML syntax: ")
    assert fragment in found[0].message


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"]
)
def test_an_empty_file_is_refused(text: str) -> None:
    """A file with no YAML document says so, at line 1."""
    assert [(p.line, p.message) for p in problems(text)] == [(1, "the file is empty")]


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    """A YAML list at the top level is not a charter."""
    found = problems("- charter: x\n- title: X\n")
    assert where(found) == [(1, "")]
    assert "expected a mapping" in found[0].message


def test_missing_top_level_keys_are_all_named() -> None:
    """Every required top-level key that is absent is named, each once."""
    found = problems("charter: x\n")
    assert sorted(p.message for p in found) == [
        "'calendar' is required",
        "'clocks' is required",
        "'title' is required",
    ]


def test_an_unknown_top_level_key_suggests_the_known_one() -> None:
    """`clock:` for `clocks:` is refused with a suggestion."""
    text = charter_with_clock("    start: received\n    stop: done\n    target: 1 days\n")
    found = problems(text + "clock: []\n")
    assert [(p.line, p.path, p.message) for p in found] == [
        (12, "clock", "unknown key 'clock' (did you mean 'clocks'?)")
    ]


def test_yaml_1_1_traps_are_read_as_written() -> None:
    """`NO`, `on`, `yes` and `08:30` stay text (YAML 1.1 would read False, True, True, 510)."""
    doc = parse_yaml("country: NO\non: yes\nat: 08:30\nlevel: 2\nflag: true\nnone: ~\n", "t.yaml")
    assert doc.data == {
        "country": "NO",
        "on": "yes",
        "at": "08:30",
        "level": 2,
        "flag": True,
        "none": None,
    }


def test_norway_loads_as_norway() -> None:
    """`country: NO` unquoted is Norway: Ascension Day, Thu 14 May 2026, is closed."""
    charter = load_charter_text(
        "charter: oslo\ntitle: Oslo\ncalendar:\n  timezone: Europe/Oslo\n  hours:\n"
        "    thu: [08:30-16:00]\n    fri: [08:30-16:00]\n  holidays:\n    country: NO\n"
        "clocks:\n  - id: c\n    start: received\n    stop: done\n    target: 1 business_days\n"
    )
    assert not charter.calendar.is_working_day(date(2026, 5, 14))  # Ascension Day
    assert charter.calendar.is_working_day(date(2026, 5, 15))
    # the unquoted 08:30 opening time is read as text, i.e. 08:30 local
    assert charter.calendar.weekly_hours[3][0].start == 8 * 60 + 30


def test_the_bundled_aston_charter_loads_with_its_clock_ids() -> None:
    """The shipped Aston charter validates and has exactly the clock ids of charters.md."""
    charter = load_charter(REPO / "mappings" / "charters" / "aston.yaml")
    assert [c.id for c in charter.clocks] == [
        "email-reply",
        "callback",
        "level1-resolution",
        "level2-contact",
        "level2-resolution",
        "level3-resolution",
    ]
    assert charter.calendar.zone.key == "Europe/London"


@pytest.mark.parametrize(
    ("clock", "line", "path", "fragment"),
    [
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: extended, by: 10 business_days, max: 0}\n",
            12,
            "clocks[0].extend.max",
            "'max' must be a whole number >= 1 (got 0)",
        ),
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: extended, by: 10 business_days, max: -2}\n",
            12,
            "clocks[0].extend.max",
            "'max' must be a whole number >= 1 (got -2)",
        ),
        (
            "    start: received\n    stop: done\n    target_field: promised\n"
            "    extend: {on: extended, by: 10 business_days}\n",
            8,
            "clocks[0]",
            "a 'target_field' clock cannot be extended",
        ),
        (
            "    start: received\n    reset: update\n    every: 20 business_days\n"
            "    extend: {on: extended, by: 10 business_days}\n",
            8,
            "clocks[0]",
            "a recurring clock takes no 'extend'",
        ),
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: Extended, by: 10 business_days}\n",
            12,
            "clocks[0].extend.on",
            "(got 'Extended')",
        ),
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {by: 10 business_days}\n",
            12,
            "clocks[0].extend.on",
            "'on' is required",
        ),
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: extended, by: 10 fortnights}\n",
            12,
            "clocks[0].extend.by",
            "unknown unit 'fortnights'",
        ),
        (
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: extended, by: 10 business_days, maxx: 2}\n",
            12,
            "clocks[0].extend.maxx",
            "unknown key 'maxx' (did you mean 'max'?)",
        ),
    ],
    ids=[
        "max-zero",
        "max-negative",
        "target-field-clock",
        "recurring-clock",
        "event-name-case",
        "no-event",
        "bad-duration",
        "typo-key",
    ],
)
def test_a_bad_extend_is_refused_at_its_line(
    clock: str, line: int, path: str, fragment: str
) -> None:
    """Each mistake in a clock's `extend` is one problem naming the line and what is wrong."""
    found = problems(charter_with_clock(clock))
    assert where(found) == [(line, path)]
    assert fragment in found[0].message


def test_extend_loads_with_max_defaulting_to_one() -> None:
    """`extend: {on, by}` loads with max 1, and its event is one the charter uses."""
    charter = load_charter_text(
        charter_with_clock(
            "    start: received\n    stop: done\n    target: 10 business_days\n"
            "    extend: {on: extended, by: 10 business_days}\n"
        )
    )
    extension = getattr(charter.clock("c"), "extend", None)
    assert extension is not None
    assert (extension.on, str(extension.by), extension.max) == (
        "extended",
        "10 business_days",
        1,
    )
    assert "extended" in charter.event_names


def test_a_misspelt_unit_is_suggested_at_file_line_and_column() -> None:
    """`3 weks` and `2 wrking days` are refused at their line and column, each with
    the duration meant, like every other charter problem."""
    text = charter_with_clock("    start: received\n    stop: done\n    target: 3 weks\n")
    recurring = (
        "  - id: r\n    kind: recurring\n    start: received\n    reset: update\n"
        "    every: 2 wrking days\n"
    )
    with pytest.raises(CharterFileError) as caught:
        load_charter_text(text + recurring, "mine.yaml")
    message = str(caught.value)
    assert (
        "mine.yaml:11:5 (clocks[0].target): unknown unit 'weks' in '3 weks' "
        "(did you mean '3 weeks'?)" in message
    )
    assert (
        "mine.yaml:16:5 (clocks[1].every): '2 wrking days' is not a duration "
        "(did you mean '2 business_days'?)" in message
    )
