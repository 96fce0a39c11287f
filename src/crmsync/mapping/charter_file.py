"""Charter files (``mappings/charters/*.yaml``): pydantic validation and conversion to a Charter.

Every problem of a file is reported at once, each with the file, the line and what is
wrong, before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import re
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
    model_validator,
)

from crmsync.domain.business_calendar import WEEKDAYS, BusinessCalendar, OpeningInterval
from crmsync.domain.charter import (
    Charter,
    ClockKind,
    CompletenessClock,
    Condition,
    DeadlineClock,
    Notice,
    RecurringClock,
)
from crmsync.domain.durations import parse_duration
from crmsync.errors import CharterFileError, Problem
from crmsync.mapping.holiday_source import PublicHolidays, supported_countries
from crmsync.mapping.yaml_source import YamlDocument, dotted, load_yaml, parse_yaml

_NAME = r"^[a-z][a-z0-9_]*$"
_CLOCK_ID = r"^[a-z0-9][a-z0-9_-]*$"
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _zone(name: str) -> str:
    if name not in available_timezones():
        raise ValueError(
            f"time zone '{name}' does not exist (use an IANA name, e.g. Europe/London)"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed zones load
        raise ValueError(f"time zone '{name}' cannot be loaded: {exc}") from None
    return name


def _hours(text: str) -> str:
    match = _HOURS.match(text)
    if not match:
        raise ValueError(f"'{text}' is not opening hours: write 'HH:MM-HH:MM', e.g. '09:00-17:00'")
    start = int(match.group(1)) * 60 + int(match.group(2))
    end = int(match.group(3)) * 60 + int(match.group(4))
    if end > 1440:
        raise ValueError(f"'{text}': a day ends at 24:00")
    if end <= start:
        raise ValueError(f"'{text}': the closing time must be after the opening time")
    return text


DurationText = Annotated[
    str,
    AfterValidator(_duration),
    Field(
        pattern=r"^\s*[0-9]+\s+(minute|hour|day|week|business_minute|business_hour|business_day)s?\s*$",
        description="'N unit': minutes, hours, days, weeks, business_minutes, business_hours, "
        "business_days (singular or plural)",
        examples=["2 business_days", "14 days", "4 business_hours"],
    ),
]
EventName = Annotated[str, Field(pattern=_NAME, description="a canonical event name")]
EventNames = EventName | list[EventName]
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaysSpec(_Strict):
    """Public holidays from the ``holidays`` package."""

    country: str = Field(description="ISO 3166 country code, e.g. GB, NL, IE")
    subdivision: str | None = Field(default=None, description="e.g. ENG for England")

    @model_validator(mode="after")
    def _known(self) -> HolidaysSpec:
        countries = supported_countries()
        if self.country not in countries:
            raise ValueError(f"the holidays package knows no country '{self.country}'")
        subs = countries[self.country]
        if self.subdivision is not None and self.subdivision not in subs:
            raise ValueError(
                f"country '{self.country}' has no subdivision '{self.subdivision}' "
                f"(known: {', '.join(subs) or 'none'})"
            )
        return self


class ClosedDate(_Strict):
    """An extra closed date with the reason shown by ``crmsync explain``."""

    date: date
    reason: str = "closed"


class CalendarSpec(_Strict):
    """Section 2 of the contract: zone, weekly hours, closed and open dates."""

    timezone: Annotated[str, AfterValidator(_zone)] = Field(description="IANA time zone")
    hours: dict[
        Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        list[Annotated[str, AfterValidator(_hours), Field(pattern=r"^\d\d:\d\d-\d\d:\d\d$")]],
    ] = Field(description="weekday -> opening intervals 'HH:MM-HH:MM' (local time)")
    holidays: HolidaysSpec | None = None
    closed: list[ClosedDate | date] = Field(default_factory=list, description="extra closed dates")
    open: list[date] = Field(default_factory=list, description="extra open dates (not closed)")

    @model_validator(mode="after")
    def _intervals(self) -> CalendarSpec:
        for day, texts in self.hours.items():
            intervals = sorted((_interval(t) for t in texts), key=lambda i: i.start)
            for a, b in itertools.pairwise(intervals):
                if b.start < a.end:
                    raise ValueError(f"opening hours {a} and {b} on {day} overlap")
        if not any(self.hours.values()):
            raise ValueError("no opening hours on any weekday")
        return self


def _interval(text: str) -> OpeningInterval:
    match = _HOURS.match(text)
    assert match is not None
    return OpeningInterval(
        int(match.group(1)) * 60 + int(match.group(2)),
        int(match.group(3)) * 60 + int(match.group(4)),
    )


class ClockSpec(_Strict):
    """One clock; ``kind`` may be left out: ``every`` means recurring, ``require`` completeness."""

    id: str = Field(pattern=_CLOCK_ID, description="unique in the charter and stable")
    kind: Literal["deadline", "recurring", "completeness"] | None = None
    description: str | None = None
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None, description="attribute -> value or list of values; all must hold"
    )
    start: EventName
    stop: EventNames | None = None
    reset: EventNames | None = None
    every: DurationText | None = None
    target: DurationText | None = None
    target_field: str | None = Field(default=None, pattern=_NAME)
    warn_after: DurationText | None = None
    require: list[str] | None = None

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
        problems: list[str] = []

        def forbid(name: str) -> None:
            if getattr(self, name) is not None:
                problems.append(f"a {kind.value} clock takes no '{name}'")

        if kind is ClockKind.RECURRING:
            if self.every is None:
                problems.append("a recurring clock needs 'every'")
            if self.reset is None:
                problems.append("a recurring clock needs 'reset'")
            for name in ("target", "target_field", "require"):
                forbid(name)
        else:
            for name in ("every", "reset"):
                forbid(name)
            if (self.target is None) == (self.target_field is None):
                problems.append(
                    f"a {kind.value} clock needs exactly one of 'target' or 'target_field'"
                )
        if kind is ClockKind.DEADLINE:
            if self.stop is None:
                problems.append("a deadline clock needs 'stop' (the events that meet it)")
            forbid("require")
        if kind is ClockKind.COMPLETENESS:
            if not self.require:
                problems.append("a completeness clock needs 'require' (attribute names)")
            forbid("stop")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NoticeSpec(_Strict):
    """A follow-up raised once when an event happens (no deadline clock)."""

    id: str = Field(pattern=_CLOCK_ID)
    description: str | None = None
    on: EventName = Field(description="the event that raises the follow-up")
    to: Literal["owner", "manager"] = "owner"
    due: DurationText | None = Field(default=None, description="the follow-up's due date")
    when: dict[str, Scalar | list[Scalar]] | None = None


class CharterSpec(_Strict):
    """A charter file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "crmsync charter", "$id": "crmsync-charter.schema.json"},
    )

    charter: str = Field(pattern=_CLOCK_ID, description="short stable name, e.g. aston")
    title: str
    source: str | None = Field(default=None, description="the document the charter implements")
    calendar: CalendarSpec
    clocks: list[ClockSpec] = Field(min_length=1)
    notices: list[NoticeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> CharterSpec:
        seen: set[str] = set()
        for item_id in [c.id for c in self.clocks] + [n.id for n in self.notices]:
            if item_id in seen:
                raise ValueError(f"duplicate clock id '{item_id}'")
            seen.add(item_id)
        return self


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


def build_charter(spec: CharterSpec, source: str = "<memory>", content_hash: str = "") -> Charter:
    """Turn a validated ``CharterSpec`` into the domain ``Charter``."""
    cal = spec.calendar
    weekly = {
        WEEKDAYS.index(day): [_interval(t) for t in texts] for day, texts in cal.hours.items()
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
    clocks: list[DeadlineClock | RecurringClock | CompletenessClock] = []
    events: set[str] = set()
    for c in spec.clocks:
        kind = c.resolved_kind()
        when = _conditions(c.when)
        events.add(c.start)
        events.update(_names(c.stop))
        events.update(_names(c.reset))
        if kind is ClockKind.RECURRING:
            assert c.every is not None
            clocks.append(
                RecurringClock(
                    c.id,
                    c.start,
                    parse_duration(c.every),
                    _names(c.reset),
                    _names(c.stop),
                    _optional_duration(c.warn_after),
                    when,
                )
            )
        elif kind is ClockKind.COMPLETENESS:
            clocks.append(
                CompletenessClock(
                    c.id,
                    c.start,
                    tuple(c.require or ()),
                    _optional_duration(c.target),
                    c.target_field,
                    _optional_duration(c.warn_after),
                    when,
                )
            )
        else:
            clocks.append(
                DeadlineClock(
                    c.id,
                    c.start,
                    _names(c.stop),
                    _optional_duration(c.target),
                    c.target_field,
                    _optional_duration(c.warn_after),
                    when,
                )
            )
    notices = tuple(
        Notice(n.id, n.on, n.to, _optional_duration(n.due), _conditions(n.when))
        for n in spec.notices
    )
    events.update(n.on for n in notices)
    return Charter(
        name=spec.charter,
        title=spec.title,
        calendar=calendar,
        clocks=tuple(clocks),
        notices=notices,
        source=source,
        content_hash=content_hash,
        event_names=frozenset(events),
    )


def _none(_year: int) -> dict[date, str]:
    return {}


def problems_from_validation(doc: YamlDocument, exc: ValidationError) -> list[Problem]:
    """Translate pydantic errors into problems with the file, the line and a plain message."""
    problems: list[Problem] = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        elif error["type"] == "missing":
            message = f"'{loc[-1]}' is required"
        elif error["type"] == "literal_error":
            message = f"{message} (got {error.get('input')!r})"
        problems.append(Problem(doc.file, doc.line_of(loc), dotted(loc), message))
    # one union member's failure is usually repeated per member: keep each message once
    unique: dict[tuple[int | None, str, str], Problem] = {}
    for p in problems:
        unique.setdefault((p.line, p.path, p.message), p)
    return sorted(unique.values(), key=lambda p: (p.line or 0, p.path))


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the member type to the location of union errors (e.g. 'list[str]')
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "float", "bool", "date", "ClosedDate"}
    )


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
                    )
                )
            else:
                seen[item["id"]] = line
    return problems


def charter_from_document(doc: YamlDocument, content_hash: str) -> Charter:
    """Validate a parsed document as a charter; ``CharterFileError`` lists every problem."""
    duplicates = _duplicate_ids(doc)
    try:
        spec = CharterSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems = [
            p for p in problems_from_validation(doc, exc) if "duplicate clock id" not in p.message
        ]
        raise CharterFileError(
            doc.file, sorted([*problems, *duplicates], key=lambda p: (p.line or 0, p.path))
        ) from None
    if duplicates:
        raise CharterFileError(doc.file, duplicates)
    return build_charter(spec, doc.file, content_hash)


def load_charter(path: Path | str) -> Charter:
    """Load and validate a charter file; raise ``CharterFileError`` naming file and lines."""
    path = Path(path)
    doc = load_yaml(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return charter_from_document(doc, digest)


def load_charter_text(text: str, file: str = "<text>") -> Charter:
    """Validate charter YAML given as text (tests, the what-if replay)."""
    doc = parse_yaml(text, file)
    return charter_from_document(doc, hashlib.sha256(text.encode()).hexdigest())


def charter_json_schema() -> dict[str, Any]:
    """The JSON Schema shipped as ``mappings/charter.schema.json``."""
    return CharterSpec.model_json_schema()
