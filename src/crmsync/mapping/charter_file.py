"""Charter files (``mappings/charters/*.yaml``): pydantic validation and conversion to a Charter.

Every problem of a file is reported at once, each with the file, the line and what is
wrong, before anything runs.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crmsync.domain.business_calendar import (
    OPENING_HOURS_PATTERN,
    WEEKDAYS,
    BusinessCalendar,
    OpeningInterval,
    overlaps,
)
from crmsync.domain.charter import (
    Charter,
    ClockKind,
    CompletenessClock,
    Condition,
    DeadlineClock,
    Extension,
    Notice,
    Pause,
    RecurringClock,
)
from crmsync.domain.durations import DURATION_PATTERN, parse_duration
from crmsync.errors import CharterFileError, Problem
from crmsync.mapping.holiday_source import PublicHolidays, supported_countries
from crmsync.mapping.validation_problems import problems_from_validation
from crmsync.mapping.yaml_source import YamlDocument, dotted, load_yaml, parse_yaml

_NAME = r"^[a-z][a-z0-9_]*$"
_CLOCK_ID = r"^[a-z0-9][a-z0-9_-]*$"


def _duration(text: str) -> str:
    parse_duration(text)
    return text


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())  # scans the tz database: once per process


def _zone(name: str) -> str:
    if name not in _zone_names():
        raise ValueError(
            f"time zone '{name}' does not exist (use an IANA name, e.g. Europe/London)"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed zones load
        raise ValueError(f"time zone '{name}' cannot be loaded: {exc}") from exc
    return name


def _hours(text: str) -> str:
    OpeningInterval.parse(text)
    return text


# The validators parse; the patterns are the same grammars written for the JSON Schema
# (editors), kept beside their parsers in the domain and only put in the schema here.
DurationText = Annotated[
    str,
    AfterValidator(_duration),
    Field(
        description="'N unit', N a whole number >= 1; units: minutes, hours, days, weeks "
        "(wall-clock, in the calendar's zone), business_minutes, business_hours, "
        "business_days (opening time of the calendar); singular or plural",
        examples=["2 business_days", "14 days", "4 business_hours"],
        json_schema_extra={"pattern": DURATION_PATTERN},
    ),
]
EventName = Annotated[
    str,
    Field(
        pattern=_NAME,
        description="a canonical event name (lower case), e.g. received, decision",
        examples=["received", "acknowledged", "decision", "customer_update"],
    ),
]
EventNames = EventName | list[EventName]
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaysSpec(_Strict):
    """Public holidays from the ``holidays`` package."""

    country: str = Field(
        description="ISO 3166-1 alpha-2 country code known to the holidays package",
        examples=["GB", "NL", "IE"],
    )
    subdivision: str | None = Field(
        default=None,
        description="subdivision code of that country in the holidays package, "
        "e.g. ENG for England; omit for the national holidays",
        examples=["ENG", "SCT"],
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        if country not in supported_countries():
            raise ValueError(f"the holidays package knows no country '{country}'")
        return country

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, subdivision: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")  # absent when the country itself is wrong
        if subdivision is None or country is None:
            return subdivision
        subs = supported_countries()[country]
        if subdivision not in subs:
            raise ValueError(
                f"country '{country}' has no subdivision '{subdivision}' "
                f"(known: {', '.join(subs) or 'none'})"
            )
        return subdivision


class ClosedDate(_Strict):
    """An extra closed date with the reason shown by ``crmsync explain``."""

    date: Annotated[date, Field(description="the local date it is closed (YYYY-MM-DD)")]
    reason: str = Field(default="closed", description="why, e.g. 'staff training day'")


class CalendarSpec(_Strict):
    """Section 2 of the contract: zone, weekly hours, closed and open dates."""

    timezone: Annotated[str, AfterValidator(_zone)] = Field(
        description="IANA time zone of the opening hours and of calendar-day durations",
        examples=["Europe/London", "Europe/Amsterdam", "Europe/Dublin"],
    )
    hours: dict[
        Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        list[
            Annotated[
                str,
                AfterValidator(_hours),
                Field(
                    description="opening interval 'HH:MM-HH:MM', local time (end up to 24:00)",
                    examples=["09:00-17:00"],
                    json_schema_extra={"pattern": OPENING_HOURS_PATTERN},
                ),
            ]
        ],
    ] = Field(
        description="weekday (mon..sun) -> opening intervals 'HH:MM-HH:MM' in local time; "
        "a weekday left out is closed",
        examples=[{"mon": ["09:00-17:00"], "fri": ["09:00-12:30", "13:30-16:30"]}],
    )
    holidays: HolidaysSpec | None = Field(
        default=None, description="public holidays (closed days) from the holidays package"
    )
    closed: list[ClosedDate | date] = Field(
        default_factory=list,
        description="extra closed dates: YYYY-MM-DD, or {date, reason}",
    )
    open: list[date] = Field(
        default_factory=list,
        description="extra open dates (YYYY-MM-DD): working days even if a holiday falls on them",
    )

    @model_validator(mode="after")
    def _some_hours(self) -> CalendarSpec:
        # overlapping intervals are found on the raw data (``_overlapping_hours``)
        if not any(self.hours.values()):
            raise ValueError("no opening hours on any weekday")
        return self


class ExtendSpec(_Strict):
    """A notified extension of a clock's deadline (semantics section 4.4)."""

    on: EventName = Field(
        description="the event that notifies the customer of an extension; each instant at "
        "or before the (current) deadline applies one",
        examples=["extended", "escalation_extended"],
    )
    by: DurationText = Field(
        description="how far one extension moves the deadline (and the warning), counted "
        "from the old instant as if it were a start",
        examples=["10 business_days", "20 business_days"],
    )
    max: int = Field(
        default=1,
        description="how many extensions may apply (a whole number >= 1; default 1)",
        examples=[1],
        json_schema_extra={"minimum": 1},
    )

    @field_validator("max")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"'max' must be a whole number >= 1 (got {value})")
        return value


class PauseSpec(_Strict):
    """A clock that stops while the organisation waits for the customer (semantics 4.5)."""

    on: EventName = Field(
        description="the event that pauses the clock (e.g. the case set to 'waiting on "
        "customer'); a pause at or before the deadline moves the deadline (and the "
        "warning) by its length",
        examples=["paused"],
    )
    off: EventName = Field(
        description="the event that resumes the clock; its first instant after the pause's "
        "start ends the pause (so does the clock's stop)",
        examples=["resumed"],
    )

    @model_validator(mode="after")
    def _two_events(self) -> PauseSpec:
        if self.on == self.off:
            raise ValueError(
                f"'on' and 'off' are both '{self.on}': a pause needs one event that starts "
                "it and another that ends it"
            )
        return self


class ClockSpec(_Strict):
    """One clock; ``kind`` may be left out: ``every`` means recurring, ``require`` completeness."""

    id: str = Field(
        pattern=_CLOCK_ID,
        description="unique in the charter and stable (part of follow-up idempotency keys)",
        examples=["email-reply", "decision"],
    )
    kind: Literal["deadline", "recurring", "completeness"] | None = Field(
        default=None,
        description="deadline: start -> first stop against a target; recurring: a cycle "
        "every duration, reset by events; completeness: required attributes filled by the "
        "target. Omitted: recurring if 'every' is given, completeness if 'require', "
        "else deadline",
    )
    description: str | None = Field(default=None, description="free text for people")
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None,
        description="attribute -> value or list of values; the clock applies only when all hold",
        examples=[{"channel": "email"}, {"level": [2, 3]}],
    )
    start: EventName = Field(description="the event whose earliest instant starts the clock")
    stop: EventNames | None = Field(
        default=None,
        description="event(s) whose earliest instant at or after the start stops the clock "
        "(deadline: required; recurring: ends it for good; completeness: not allowed)",
    )
    reset: EventNames | None = Field(
        default=None,
        description="recurring only (required): event(s) that close a cycle and open the next",
    )
    every: DurationText | None = Field(
        default=None, description="recurring only (required): the length of each cycle"
    )
    target: DurationText | None = Field(
        default=None,
        description="deadline/completeness: the duration from the start to the deadline "
        "(exactly one of target or target_field)",
    )
    target_field: str | None = Field(
        default=None,
        pattern=_NAME,
        description="deadline/completeness: the attribute holding the deadline itself (a "
        "date means the end of that local day); exactly one of target or target_field",
        examples=["expected_decision"],
    )
    warn_after: DurationText | None = Field(
        default=None,
        description="optional: from the start (or the cycle's start), when the clock turns at_risk",
    )
    require: list[str] | None = Field(
        default=None,
        description="completeness only (required): attribute names that must be present "
        "and non-empty",
        examples=[["root_cause", "solution"]],
    )
    extend: ExtendSpec | None = Field(
        default=None,
        description="deadline/completeness with a 'target' only: notified extensions "
        "{on: event, by: duration, max: N (default 1)}; an extension notice at or before the "
        "deadline moves the deadline and the warning by 'by'",
        examples=[{"on": "extended", "by": "10 business_days", "max": 1}],
    )
    pause: PauseSpec | None = Field(
        default=None,
        description="deadline/completeness with a 'target' only: the clock pauses from each "
        "'on' instant to the next 'off' instant (waiting on the customer); a pause at or "
        "before the deadline moves the deadline and the warning by its length, in the "
        "target's kind of time (opening time for business units, elapsed time otherwise)",
        examples=[{"on": "paused", "off": "resumed"}],
    )

    def resolved_kind(self) -> ClockKind:
        if self.kind is not None:
            return ClockKind(self.kind)
        if self.every is not None:
            return ClockKind.RECURRING
        if self.require is not None:
            return ClockKind.COMPLETENESS
        return ClockKind.DEADLINE

    @model_validator(mode="after")
    def _shape(self) -> ClockSpec:
        kind = self.resolved_kind()
        rules = _KIND_RULES[kind]
        problems = [
            f"'when' lists no value for '{attribute}': it could never hold"
            for attribute, allowed in (self.when or {}).items()
            if allowed == []
        ]
        problems += [need for name, need in rules.needs if not getattr(self, name)]
        problems += [
            f"a {kind.value} clock takes no '{name}'"
            for name in rules.forbids
            if getattr(self, name) is not None
        ]
        problems += [why for name, why in rules.refuses if getattr(self, name) is not None]
        if rules.has_target and (self.target is None) == (self.target_field is None):
            problems.append(f"a {kind.value} clock needs exactly one of 'target' or 'target_field'")
        if self.extend is not None and self.target_field is not None:
            problems.append(
                "a 'target_field' clock cannot be extended: its deadline is the attribute "
                "itself (drop 'extend', or use a 'target' duration)"
            )
        if self.pause is not None and self.target_field is not None:
            problems.append(
                "a 'target_field' clock cannot pause: its deadline is the date promised in "
                "the attribute itself (drop 'pause', or use a 'target' duration)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NoticeSpec(_Strict):
    """A follow-up raised once when an event happens (no deadline clock)."""

    id: str = Field(
        pattern=_CLOCK_ID,
        description="unique among the charter's clocks and notices, and stable",
        examples=["level4-mediation"],
    )
    description: str | None = Field(default=None, description="free text for people")
    on: EventName = Field(description="the event that raises the follow-up")
    to: Literal["owner", "manager"] = Field(
        default="owner",
        description="who gets the follow-up: the case owner or the complaint manager",
    )
    due: DurationText | None = Field(
        default=None, description="the follow-up's due date, counted from the event"
    )
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None,
        description="attribute -> value or list of values; raised only when all hold",
    )


class CharterSpec(_Strict):
    """A charter file."""

    # duplicate ids are found on the raw data, at their lines (``_duplicate_ids``)

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "crmsync charter",
            "$id": "crmsync-charter.schema.json",
        },
    )

    charter: str = Field(pattern=_CLOCK_ID, description="short stable name, e.g. aston")
    title: str = Field(description="the organisation or charter, for people")
    source: str | None = Field(default=None, description="the document the charter implements")
    language: str = Field(
        default="en", description="language of follow-up texts when the complaint names none"
    )
    calendar: CalendarSpec = Field(description="the business calendar every clock counts on")
    clocks: list[ClockSpec] = Field(
        min_length=1, description="the clocks, in report order; ids unique and stable"
    )
    notices: list[NoticeSpec] = Field(
        default_factory=list,
        description="follow-ups raised once when an event happens (no deadline clock)",
    )


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _conditions(when: dict[str, Scalar | list[Scalar]] | None) -> tuple[Condition, ...]:
    if not when:
        return ()
    return tuple(Condition(k, tuple(v) if isinstance(v, list) else (v,)) for k, v in when.items())


def _optional_duration(text: str | None) -> Any:
    return None if text is None else parse_duration(text)


def _extension(spec: ExtendSpec | None) -> Extension | None:
    return None if spec is None else Extension(spec.on, parse_duration(spec.by), spec.max)


def _pause(spec: PauseSpec | None) -> Pause | None:
    return None if spec is None else Pause(spec.on, spec.off)


def _recurring(c: ClockSpec) -> RecurringClock:
    assert c.every is not None  # the spec's shape check requires it
    return RecurringClock(
        c.id,
        c.start,
        parse_duration(c.every),
        _names(c.reset),
        _names(c.stop),
        _optional_duration(c.warn_after),
        _conditions(c.when),
    )


def _completeness(c: ClockSpec) -> CompletenessClock:
    return CompletenessClock(
        c.id,
        c.start,
        tuple(c.require or ()),
        _optional_duration(c.target),
        c.target_field,
        _optional_duration(c.warn_after),
        _conditions(c.when),
        extend=_extension(c.extend),
        pause=_pause(c.pause),
    )


def _deadline(c: ClockSpec) -> DeadlineClock:
    return DeadlineClock(
        c.id,
        c.start,
        _names(c.stop),
        _optional_duration(c.target),
        c.target_field,
        _optional_duration(c.warn_after),
        _conditions(c.when),
        extend=_extension(c.extend),
        pause=_pause(c.pause),
    )


@dataclass(frozen=True)
class _KindRules:
    """What a clock of one kind must hold (``needs``: key, problem when it is missing or
    empty), may not hold (``forbids``: keys; ``refuses``: key, why), whether it counts
    towards a target, and how its spec becomes the domain's clock."""

    needs: tuple[tuple[str, str], ...]
    forbids: tuple[str, ...]
    refuses: tuple[tuple[str, str], ...]
    has_target: bool
    build: Callable[[ClockSpec], DeadlineClock | RecurringClock | CompletenessClock]


_KIND_RULES: dict[ClockKind, _KindRules] = {
    ClockKind.DEADLINE: _KindRules(
        needs=(("stop", "a deadline clock needs 'stop' (the events that meet it)"),),
        forbids=("every", "reset", "require"),
        refuses=(),
        has_target=True,
        build=_deadline,
    ),
    ClockKind.RECURRING: _KindRules(
        needs=(
            ("every", "a recurring clock needs 'every'"),
            ("reset", "a recurring clock needs 'reset' (the events that close a cycle)"),
        ),
        forbids=("target", "target_field", "require"),
        refuses=(
            (
                "extend",
                "a recurring clock takes no 'extend' (only deadline and completeness "
                "clocks can be extended)",
            ),
            (
                "pause",
                "a recurring clock takes no 'pause' (only deadline and completeness "
                "clocks can pause; a cycle's reset already restarts its count)",
            ),
        ),
        has_target=False,
        build=_recurring,
    ),
    ClockKind.COMPLETENESS: _KindRules(
        needs=(("require", "a completeness clock needs 'require' (attribute names)"),),
        forbids=("every", "reset", "stop"),
        refuses=(),
        has_target=True,
        build=_completeness,
    ),
}
"""Each clock kind's shape and builder: the one place the file format dispatches on kind."""


def build_charter(spec: CharterSpec, source: str = "<memory>", content_hash: str = "") -> Charter:
    """Turn a validated ``CharterSpec`` into the domain ``Charter``."""
    cal = spec.calendar
    weekly = {
        WEEKDAYS.index(day): [OpeningInterval.parse(t) for t in texts]
        for day, texts in cal.hours.items()
    }
    closed = {
        (c.date if isinstance(c, ClosedDate) else c): (
            c.reason if isinstance(c, ClosedDate) else "closed"
        )
        for c in cal.closed
    }
    holidays = cal.holidays
    calendar = BusinessCalendar(
        ZoneInfo(cal.timezone),
        weekly,
        holidays=PublicHolidays(holidays.country, holidays.subdivision) if holidays else _none,
        extra_closed=closed,
        extra_open=frozenset(cal.open),
    )
    clocks = tuple(_KIND_RULES[c.resolved_kind()].build(c) for c in spec.clocks)
    notices = tuple(
        Notice(n.id, n.on, n.to, _optional_duration(n.due), _conditions(n.when))
        for n in spec.notices
    )
    return Charter(
        name=spec.charter,
        title=spec.title,
        calendar=calendar,
        clocks=clocks,
        notices=notices,
        source=source,
        content_hash=content_hash,
        language=spec.language,
    )


def _none(_year: int) -> dict[date, str]:
    return {}


def _duplicate_ids(doc: YamlDocument) -> list[Problem]:
    """Duplicate clock/notice ids, found on the raw data so they show beside other problems."""
    problems: list[Problem] = []
    if not isinstance(doc.data, dict):
        return problems
    seen: dict[str, int | None] = {}
    for section in ("clocks", "notices"):
        items = doc.data.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            line = doc.line_of((section, i, "id"))
            if item["id"] in seen:
                problems.append(
                    Problem(
                        doc.file,
                        line,
                        dotted((section, i, "id")),
                        f"duplicate clock id '{item['id']}' (first at line {seen[item['id']]})",
                        doc.column_of((section, i, "id")),
                    )
                )
            else:
                seen[item["id"]] = line
    return problems


def _overlapping_hours(doc: YamlDocument) -> list[Problem]:
    """Overlapping opening intervals of one weekday, found on the raw data (line of the day).

    Checked here rather than only in ``CalendarSpec`` so that an overlap is reported beside
    any other problem of the calendar, at the weekday's own line.
    """
    calendar = doc.data.get("calendar") if isinstance(doc.data, dict) else None
    hours = calendar.get("hours") if isinstance(calendar, dict) else None
    if not isinstance(hours, dict):
        return []
    problems: list[Problem] = []
    for day, texts in hours.items():
        if not isinstance(texts, list):
            continue
        intervals = []
        for text in texts:
            try:
                intervals.append(OpeningInterval.parse(text))
            except (TypeError, ValueError):
                continue  # reported by the schema
        for a, b in overlaps(intervals):
            loc = ("calendar", "hours", day)
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(loc),
                    dotted(loc),
                    f"opening hours {a} and {b} overlap",
                    doc.column_of(loc),
                )
            )
    return problems


def charter_from_document(doc: YamlDocument, content_hash: str) -> Charter:
    """Validate a parsed document as a charter; ``CharterFileError`` lists every problem.

    Problems kept by a ``keep_going`` parse (duplicate YAML keys) are reported too.
    """
    problems = [*doc.problems, *_duplicate_ids(doc), *_overlapping_hours(doc)]
    spec: CharterSpec | None = None
    try:
        spec = CharterSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from_validation(doc, exc, CharterSpec)
    if problems or spec is None:
        raise CharterFileError(doc.file, sorted(problems, key=lambda p: (p.line or 0, p.path)))
    return build_charter(spec, doc.file, content_hash)


def load_charter(path: Path | str) -> Charter:
    """Load and validate a charter file; raise ``CharterFileError`` naming file and lines."""
    path = Path(path)
    doc = load_yaml(path, keep_going=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return charter_from_document(doc, digest)


def load_charter_text(text: str, file: str = "<text>") -> Charter:
    """Validate charter YAML given as text (tests, the what-if replay)."""
    doc = parse_yaml(text, file, keep_going=True)
    return charter_from_document(doc, hashlib.sha256(text.encode()).hexdigest())


def charter_json_schema() -> dict[str, Any]:
    """The JSON Schema shipped as ``mappings/charter.schema.json``."""
    return CharterSpec.model_json_schema()
