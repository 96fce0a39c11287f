"""The bundled charter files (the four organisations' and the three regulated ones) against
the tables of spec/charters.md, and the JSON Schema.

The expected tables below are copied by hand from charters.md; the expected instants of the
evaluation checks are worked out by hand (reasoning in the comments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from crmsync.adapters.crm.salesforce_values import sf_instant_text
from crmsync.domain.action_planning import FollowUp
from crmsync.domain.charter import Charter, ClockKind, CompletenessClock, RecurringClock
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import ClockResult, State, evaluate
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.mapping.charter_file import CharterSpec, charter_json_schema, load_charter
from crmsync.mapping.field_mapping import FieldMapping, load_mapping
from crmsync.mapping.yaml_source import load_yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTERS = ROOT / "mappings" / "charters"
SCHEMA = ROOT / "mappings" / "charter.schema.json"
FIRST_LINE = "# yaml-language-server: $schema=../charter.schema.json"


@dataclass(frozen=True)
class Row:
    """One row of a charters.md table (durations written as the file writes them)."""

    kind: str
    start: str
    stop: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()
    target: str | None = None  # for recurring clocks: ``every``
    target_field: str | None = None
    warn_after: str | None = None
    require: tuple[str, ...] = ()
    when: dict[str, tuple[object, ...]] = field(default_factory=dict)
    extend: tuple[str, str, int] | None = None  # (on, by, max)


@dataclass(frozen=True)
class Calendar:
    """The calendar line of a charters.md section."""

    zone: str
    hours: dict[int, tuple[str, ...]]  # date.weekday() -> intervals
    country: str
    subdivision: str | None


def _weekdays(text: str, *days: int) -> dict[int, tuple[str, ...]]:
    return dict.fromkeys(days, (text,))


NINE_TO_FIVE = _weekdays("09:00-17:00", 0, 1, 2, 3, 4)

EXPECTED_CALENDARS: dict[str, Calendar] = {
    "aston": Calendar(
        "Europe/London",
        {**_weekdays("08:30-17:00", 0, 1, 2, 3), 4: ("08:30-16:30",)},
        "GB",
        "ENG",
    ),
    "the-square-mile": Calendar("Europe/Amsterdam", NINE_TO_FIVE, "NL", None),
    "studijob": Calendar("Europe/Amsterdam", NINE_TO_FIVE, "NL", None),
    "kilkenny": Calendar("Europe/Dublin", NINE_TO_FIVE, "IE", None),
    "fca-disp": Calendar("Europe/London", NINE_TO_FIVE, "GB", "ENG"),
    "housing-ombudsman": Calendar("Europe/London", NINE_TO_FIVE, "GB", "ENG"),
    "cbi-cpc": Calendar("Europe/Dublin", NINE_TO_FIVE, "IE", None),
}
REGULATED = ("fca-disp", "housing-ombudsman", "cbi-cpc")

EXPECTED_CLOCKS: dict[str, dict[str, Row]] = {
    "aston": {
        "email-reply": Row(
            "deadline",
            "received",
            stop=("acknowledged", "feedback", "decision"),
            target="2 business_days",
            when={"channel": ("email",)},
        ),
        "callback": Row(
            "deadline", "callback_requested", stop=("callback",), target="1 business_days"
        ),
        "level1-resolution": Row(
            "deadline", "received", stop=("decision", "escalated_l2"), target="1 business_days"
        ),
        "level2-contact": Row(
            "deadline", "escalated_l2", stop=("manager_contact",), target="1 business_days"
        ),
        "level2-resolution": Row(
            "deadline",
            "manager_contact",
            stop=("decision", "escalated_l3"),
            target="10 business_days",
            warn_after="5 business_days",
        ),
        "level3-resolution": Row(
            "deadline",
            "director_contact",
            stop=("decision", "escalated_l4"),
            target="30 business_days",
            warn_after="10 business_days",
        ),
    },
    "the-square-mile": {
        "acknowledge": Row(
            "deadline", "received", stop=("acknowledged",), target="1 business_days"
        ),
        "decision": Row(
            "deadline", "received", stop=("decision",), target="14 days", warn_after="10 days"
        ),
        "progress-notice": Row(
            "deadline", "received", stop=("decision", "customer_update"), target="14 days"
        ),
        "interim-update": Row(
            "recurring",
            "customer_update",
            stop=("decision",),
            reset=("customer_update",),
            target="14 days",
        ),
        "promised-date": Row(
            "deadline", "customer_update", stop=("decision",), target_field="expected_decision"
        ),
        "mediation": Row(
            "deadline", "mediation_requested", stop=("mediation_decided",), target="28 days"
        ),
    },
    "studijob": {
        "registration": Row(
            "completeness",
            "received",
            target="1 business_days",
            require=(
                "registered_by",
                "complainant_type",
                "complainant_name",
                "description",
                "involved",
            ),
        ),
        "feedback": Row(
            "deadline",
            "received",
            stop=("feedback", "decision"),
            target="7 days",
            warn_after="5 days",
        ),
        "root-cause": Row(
            "completeness",
            "closed",
            target="5 business_days",
            require=("root_cause", "solution"),
        ),
    },
    "kilkenny": {
        "acknowledge": Row(
            "deadline", "received", stop=("acknowledged",), target="5 business_days"
        ),
        "full-response": Row(
            "deadline", "received", stop=("decision",), target="28 days", warn_after="20 days"
        ),
        "progress-notice": Row(
            "deadline", "received", stop=("decision", "customer_update"), target="28 days"
        ),
        "callback": Row(
            "deadline",
            "callback_requested",
            stop=("callback",),
            target_field="callback_promised",
        ),
        "language-choice": Row(
            "completeness", "received", target="1 business_days", require=("language",)
        ),
    },
    "fca-disp": {
        "acknowledge": Row(
            "deadline", "received", stop=("acknowledged",), target="5 business_days"
        ),
        "summary-resolution": Row(
            "deadline", "received", stop=("decision",), target="3 business_days"
        ),
        "final-response": Row(
            "deadline",
            "received",
            stop=("decision", "holding_response"),
            target="8 weeks",
            warn_after="6 weeks",
        ),
    },
    "housing-ombudsman": {
        "stage1-acknowledge": Row(
            "deadline", "received", stop=("acknowledged",), target="5 business_days"
        ),
        "stage1-response": Row(
            "deadline",
            "acknowledged",
            stop=("feedback",),
            target="10 business_days",
            extend=("extended", "10 business_days", 1),
        ),
        "stage2-acknowledge": Row(
            "deadline",
            "escalated_l2",
            stop=("escalation_acknowledged",),
            target="5 business_days",
        ),
        "stage2-response": Row(
            "deadline",
            "escalation_acknowledged",
            stop=("decision",),
            target="20 business_days",
            extend=("escalation_extended", "20 business_days", 1),
        ),
    },
    "cbi-cpc": {
        "acknowledge": Row(
            "deadline", "received", stop=("acknowledged",), target="5 business_days"
        ),
        "updates": Row(
            "recurring",
            "received",
            stop=("decision",),
            reset=("customer_update",),
            target="20 business_days",
        ),
        "resolution": Row(
            "deadline",
            "received",
            stop=("decision", "holding_response"),
            target="40 business_days",
            warn_after="30 business_days",
        ),
        "outcome": Row(
            "deadline", "investigation_completed", stop=("decision",), target="5 business_days"
        ),
    },
}

NAMES = sorted(EXPECTED_CLOCKS)


def _path(name: str) -> Path:
    return CHARTERS / f"{name}.yaml"


def _charter(name: str) -> Charter:
    return load_charter(_path(name))


def _row(clock: Any) -> Row:
    """The loaded clock written as a charters.md row."""
    when = {c.attribute: c.allowed for c in clock.when}
    if isinstance(clock, RecurringClock):
        return Row(
            clock.kind.value,
            clock.start,
            stop=clock.stop,
            reset=clock.reset,
            target=str(clock.every),
            warn_after=None if clock.warn_after is None else str(clock.warn_after),
            when=when,
        )
    extend = clock.extend
    return Row(
        clock.kind.value,
        clock.start,
        stop=() if isinstance(clock, CompletenessClock) else clock.stop,
        target=None if clock.target is None else str(clock.target),
        target_field=clock.target_field,
        warn_after=None if clock.warn_after is None else str(clock.warn_after),
        require=clock.require if isinstance(clock, CompletenessClock) else (),
        when=when,
        extend=None if extend is None else (extend.on, str(extend.by), extend.max),
    )


def _comment_above(lines: list[str], line_no: int) -> list[str]:
    """The contiguous comment lines right above 1-based ``line_no`` (empty if none)."""
    block: list[str] = []
    i = line_no - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.insert(0, lines[i].strip())
        i -= 1
    return block


def _clock_lines(name: str) -> dict[str, int]:
    """Clock id -> the 1-based line of its ``- id:`` item."""
    doc = load_yaml(_path(name))
    return {clock["id"]: doc.lines[("clocks", i)] for i, clock in enumerate(doc.data["clocks"])}


# ----------------------------------------------------------------------------- the table


def test_exactly_the_charters_of_charters_md_are_bundled() -> None:
    """mappings/charters holds the seven charter files named by charters.md and nothing else."""
    assert sorted(p.stem for p in CHARTERS.glob("*.yaml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_clocks_equal_the_charters_md_table(name: str) -> None:
    """Clock ids (in order), kinds, events, targets, warnings, requires and conditions match."""
    charter = _charter(name)
    assert charter.name == name
    assert [c.id for c in charter.clocks] == list(EXPECTED_CLOCKS[name])
    for clock in charter.clocks:
        assert _row(clock) == EXPECTED_CLOCKS[name][clock.id], clock.id


@pytest.mark.parametrize("name", NAMES)
def test_calendar_equals_the_charters_md_line(name: str) -> None:
    """Zone, weekly opening hours and holiday country/subdivision match charters.md."""
    expected = EXPECTED_CALENDARS[name]
    calendar = _charter(name).calendar
    assert calendar.zone.key == expected.zone
    hours = {d: tuple(str(i) for i in ivs) for d, ivs in calendar.weekly_hours.items() if ivs}
    assert hours == expected.hours
    spec = CharterSpec.model_validate(load_yaml(_path(name)).data)
    assert spec.calendar.holidays is not None
    assert spec.calendar.holidays.country == expected.country
    assert spec.calendar.holidays.subdivision == expected.subdivision


@pytest.mark.parametrize(
    ("name", "day", "holiday"),
    [
        ("aston", date(2026, 4, 6), "Easter Monday"),
        ("the-square-mile", date(2026, 4, 27), "King's Day"),
        ("studijob", date(2026, 4, 27), "King's Day"),
        ("kilkenny", date(2026, 3, 17), "Saint Patrick's Day"),
    ],
)
def test_national_holiday_closes_the_office(name: str, day: date, holiday: str) -> None:
    """A weekday public holiday of the charter's country is not a working day."""
    calendar = _charter(name).calendar
    assert not calendar.is_working_day(day)
    assert holiday in (calendar.closed_reason(day) or "")


# ----------------------------------------------------------------------------- the files


@pytest.mark.parametrize("name", NAMES)
def test_first_line_points_editors_at_the_schema(name: str) -> None:
    """The first line is the yaml-language-server schema comment."""
    assert _path(name).read_text(encoding="utf-8").splitlines()[0] == FIRST_LINE


@pytest.mark.parametrize("name", NAMES)
def test_every_clock_is_preceded_by_a_comment_and_names_its_kind(name: str) -> None:
    """Each clock item has a comment line right above it and an explicit ``kind``."""
    lines = _path(name).read_text(encoding="utf-8").splitlines()
    data = load_yaml(_path(name)).data
    for clock_id, line_no in _clock_lines(name).items():
        assert _comment_above(lines, line_no), f"{name}: clock {clock_id} has no comment"
    for clock in data["clocks"]:
        assert clock.get("kind") in ("deadline", "recurring", "completeness"), clock["id"]


@pytest.mark.parametrize(
    ("name", "clock_id"),
    [
        ("the-square-mile", "acknowledge"),  # charters.md: "1 business_days (house default)"
        ("the-square-mile", "decision"),  # warn_after 10 days: the procedure gives none
        ("studijob", "registration"),  # the procedure gives no time for registering
        ("studijob", "feedback"),  # warn_after 5 days: the procedure gives none
        ("studijob", "root-cause"),  # the procedure gives no time for cause and solution
        ("kilkenny", "full-response"),  # warn_after 20 days: no document gives one
        ("kilkenny", "language-choice"),  # the plan gives no time
        ("fca-disp", "acknowledge"),  # DISP 1.6.1R says "prompt"
        ("fca-disp", "final-response"),  # warn_after 6 weeks: DISP gives none
        ("cbi-cpc", "resolution"),  # warn_after 30 business days: the Code gives none
    ],
)
def test_house_defaults_are_marked(name: str, clock_id: str) -> None:
    """A number that no source document gives is called the house default in its comment."""
    lines = _path(name).read_text(encoding="utf-8").splitlines()
    comment = " ".join(_comment_above(lines, _clock_lines(name)[clock_id]))
    assert "house default" in comment


@pytest.mark.parametrize("name", ["the-square-mile", "studijob"])
def test_dutch_opening_hours_are_marked_house_default(name: str) -> None:
    """charters.md marks the Dutch charters' Mon-Fri 09:00-17:00 as the house default."""
    text = _path(name).read_text(encoding="utf-8")
    calendar_block = text.split("calendar:", 1)[1].split("clocks:", 1)[0]
    assert "house default" in calendar_block


@pytest.mark.parametrize("name", REGULATED)
def test_regulated_opening_hours_are_marked_house_default(name: str) -> None:
    """The regulated rules count business/working days and name no hours: house default."""
    text = _path(name).read_text(encoding="utf-8")
    calendar_block = text.split("calendar:", 1)[1].split("clocks:", 1)[0]
    assert "house default" in calendar_block


@pytest.mark.parametrize(
    ("name", "references"),
    [
        ("fca-disp", {"acknowledge": "DISP 1.6.1R", "summary-resolution": "DISP 1.5.1R",
                      "final-response": "DISP 1.6.2R"}),
        ("housing-ombudsman", {"stage1-acknowledge": "6.2:", "stage1-response": "6.3:",
                               "stage2-acknowledge": "6.11:", "stage2-response": "stage 2"}),
        ("cbi-cpc", {"acknowledge": "10.9(b)", "updates": "10.9(d)", "resolution": "10.9(e)",
                     "outcome": "10.9(f)"}),
    ],
)  # fmt: skip
def test_regulated_clocks_quote_their_paragraph(name: str, references: dict[str, str]) -> None:
    """Each regulated clock's comment names the paragraph it implements and quotes it."""
    lines = _path(name).read_text(encoding="utf-8").splitlines()
    for clock_id, line_no in _clock_lines(name).items():
        comment = " ".join(_comment_above(lines, line_no))
        assert references[clock_id] in comment, clock_id
        assert '"' in comment, f"{clock_id}: no quotation"


@pytest.mark.parametrize("name", REGULATED)
def test_regulated_files_cite_no_internal_paths(name: str) -> None:
    """A regulated file cites the rule by title and paragraph, not a path of ours."""
    assert "shared/" not in _path(name).read_text(encoding="utf-8")


def test_kilkenny_notes_irish_and_ombudsman() -> None:
    """The Kilkenny file notes Irish text for `ga` complaints and the Ombudsman in final replies."""
    text = _path("kilkenny").read_text(encoding="utf-8")
    assert "`language` is `ga`" in text
    assert "Irish follow-up text" in text
    assert "A final reply refers the customer to the Ombudsman" in text


# ----------------------------------------------------------------------------- the schema


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return data


def _validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_shipped_schema_is_what_the_models_generate() -> None:
    """mappings/charter.schema.json equals charter_json_schema() (regenerate it if this fails)."""
    assert _schema() == charter_json_schema()


@pytest.mark.parametrize("name", NAMES)
def test_bundled_file_validates_against_the_shipped_schema(name: str) -> None:
    """Each bundled file, read as the loader reads it (YAML 1.2 core), passes the JSON Schema."""
    errors = [e.message for e in _validator().iter_errors(load_yaml(_path(name)).data)]
    assert errors == []


def test_every_schema_property_has_a_description() -> None:
    """An editor shows a description for every key of a charter file."""
    schema = _schema()
    objects = {"CharterSpec": schema, **schema["$defs"]}
    undocumented = [
        f"{owner}.{prop}"
        for owner, obj in objects.items()
        for prop, body in obj.get("properties", {}).items()
        if not body.get("description")
    ]
    assert undocumented == []


def test_schema_enumerates_kinds_weekdays_and_recipients() -> None:
    """Clock kinds, weekdays and notice recipients are enums an editor can complete."""
    defs = _schema()["$defs"]
    kinds = [m for m in defs["ClockSpec"]["properties"]["kind"]["anyOf"] if "enum" in m]
    assert kinds == [{"enum": ["deadline", "recurring", "completeness"], "type": "string"}]
    weekdays = defs["CalendarSpec"]["properties"]["hours"]["propertyNames"]["enum"]
    assert weekdays == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert defs["NoticeSpec"]["properties"]["to"]["enum"] == ["owner", "manager"]


@pytest.mark.parametrize(
    ("target", "valid"),
    [
        ("2 business_days", True),
        ("1 business_day", True),
        ("14 days", True),
        ("3 weeks", True),
        ("90 minutes", True),
        ("0 days", False),  # N must be >= 1
        ("2 fortnights", False),
        ("2days", False),
        ("two days", False),
    ],
)
def test_schema_checks_durations_like_the_loader(target: str, valid: bool) -> None:
    """The schema's duration pattern accepts and refuses what the charter loader does."""
    data = load_yaml(_path("aston")).data
    data["clocks"][0]["target"] = target
    assert (not list(_validator().iter_errors(data))) is valid


@pytest.mark.parametrize(
    ("hours", "valid"),
    [("09:00-17:00", True), ("00:00-24:00", True), ("9:00-17:00", False), ("09:00-24:30", False)],
)
def test_schema_checks_opening_hours(hours: str, valid: bool) -> None:
    """The schema's opening-hours pattern refuses what is not 'HH:MM-HH:MM' within a day."""
    data = load_yaml(_path("aston")).data
    data["calendar"]["hours"]["sat"] = [hours]
    assert (not list(_validator().iter_errors(data))) is valid


# ----------------------------------------------------------------------------- evaluation


def _evaluate(name: str, complaint: dict[str, Any], now: str) -> dict[str, ClockResult]:
    charter = _charter(name)
    zone = charter.calendar.zone
    parsed = complaint_from_json(complaint, zone, "test")
    return {r.clock: r for r in evaluate(charter, parsed, parse_instant(now, zone))}


def _utc(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


# The Square Mile, decision (14 days, warn 10 days) across the Dutch change to summer time on
# Sun 29 Mar 2026: received Fri 20 Mar 10:00 CET (09:00Z). 14 days later at 10:00 local is
# Fri 3 Apr 10:00 CEST = 08:00Z (not 09:00Z); 10 days later is Mon 30 Mar 10:00 CEST = 08:00Z.
TSM_RECEIVED = "2026-03-20T10:00:00+01:00"


@pytest.mark.parametrize(
    ("now", "decision", "state"),
    [
        ("2026-03-30T07:59:59Z", None, State.ON_TRACK),
        ("2026-03-30T08:00:00Z", None, State.AT_RISK),
        ("2026-04-03T08:00:00Z", None, State.AT_RISK),
        ("2026-04-03T08:00:01Z", None, State.BREACHED),
        ("2026-04-10T00:00:00Z", "2026-04-03T08:00:00Z", State.MET),
        ("2026-04-10T00:00:00Z", "2026-04-03T08:00:01Z", State.MET_LATE),
    ],
)
def test_square_mile_decision_across_dst(now: str, decision: str | None, state: State) -> None:
    """The 14-day decision keeps the local wall-clock time across the change to CEST."""
    events: dict[str, Any] = {"received": TSM_RECEIVED}
    if decision is not None:
        events["decision"] = decision
    result = _evaluate("the-square-mile", {"id": "T-1", "events": events}, now)["decision"]
    assert _utc(result.started_at) == "2026-03-20T09:00:00Z"
    assert _utc(result.due_at) == "2026-04-03T08:00:00Z"
    assert _utc(result.warn_at) == "2026-03-30T08:00:00Z"
    assert result.state is state


def test_square_mile_interim_updates_every_two_weeks() -> None:
    """Each customer update opens a new 14-day cycle; a missed cycle counts as a breach."""
    # First update Mon 16 Mar 10:00 CET (09:00Z): cycle 0 due Mon 30 Mar 10:00 CEST = 08:00Z.
    # Second update Mon 30 Mar 09:00 CEST (07:00Z) is in time; cycle 1 is due Mon 13 Apr
    # 09:00 CEST = 07:00Z, so on 14 Apr it is breached: occurrence 1, one breach.
    complaint = {
        "id": "T-2",
        "events": {
            "received": "2026-03-02T09:15:00Z",
            "customer_update": ["2026-03-30T09:00:00+02:00", "2026-03-16T10:00:00+01:00"],
        },
    }
    result = _evaluate("the-square-mile", complaint, "2026-04-14T00:00:00Z")["interim-update"]
    assert result.kind is ClockKind.RECURRING
    assert (result.occurrence, _utc(result.started_at)) == (1, "2026-03-30T07:00:00Z")
    assert _utc(result.due_at) == "2026-04-13T07:00:00Z"
    assert (result.state, result.breaches) == (State.BREACHED, 1)


def test_square_mile_promised_date_is_the_end_of_that_day() -> None:
    """A promised decision date alone is due at the next local midnight in Amsterdam."""
    # 2026-04-10 ends at Sat 11 Apr 00:00 CEST = Fri 10 Apr 22:00Z.
    complaint = {
        "id": "T-3",
        "events": {"received": "2026-03-02", "customer_update": "2026-03-16T10:00:00+01:00"},
        "attributes": {"expected_decision": "2026-04-10"},
    }
    results = _evaluate("the-square-mile", complaint, "2026-04-10T21:59:59Z")
    assert _utc(results["promised-date"].due_at) == "2026-04-10T22:00:00Z"
    assert results["promised-date"].state is State.ON_TRACK
    later = _evaluate("the-square-mile", complaint, "2026-04-10T22:00:01Z")
    assert later["promised-date"].state is State.BREACHED


@pytest.mark.parametrize(
    ("now", "state"),
    [("2026-03-24T17:00:00Z", State.ON_TRACK), ("2026-03-24T17:00:01Z", State.BREACHED)],
)
def test_kilkenny_acknowledge_skips_st_patricks_day(now: str, state: State) -> None:
    """Five working days from Mon 16 Mar 2026 skip Tue 17 Mar (St Patrick's Day)."""
    # day0 = Mon 16 Mar (received 10:00 GMT, before closing). Working days after it: Wed 18,
    # Thu 19, Fri 20, Mon 23, Tue 24 -> Tue 24 Mar 17:00 GMT (Ireland is on GMT until 29 Mar).
    complaint = {"id": "K-1", "events": {"received": "2026-03-16T10:00:00Z"}}
    result = _evaluate("kilkenny", complaint, now)["acknowledge"]
    assert _utc(result.due_at) == "2026-03-24T17:00:00Z"
    assert result.state is state


def test_kilkenny_full_response_and_language_choice() -> None:
    """28 calendar days keep 10:00 local across the Irish DST change; language is required."""
    # Received Mon 16 Mar 10:00 GMT. 28 days -> Mon 13 Apr 10:00 IST = 09:00Z; warn 20 days
    # -> Sun 5 Apr 10:00 IST = 09:00Z. language-choice: 1 business day -> Tue 17 Mar is a
    # holiday, so Wed 18 Mar 17:00 GMT.
    complaint = {"id": "K-2", "events": {"received": "2026-03-16T10:00:00Z"}}
    results = _evaluate("kilkenny", complaint, "2026-04-06T12:00:00Z")
    assert _utc(results["full-response"].due_at) == "2026-04-13T09:00:00Z"
    assert _utc(results["full-response"].warn_at) == "2026-04-05T09:00:00Z"
    assert results["full-response"].state is State.AT_RISK
    assert _utc(results["language-choice"].due_at) == "2026-03-18T17:00:00Z"
    assert results["language-choice"].state is State.BREACHED
    assert results["language-choice"].missing == ("language",)
    irish = {**complaint, "attributes": {"language": "ga"}}
    assert _evaluate("kilkenny", irish, "2026-04-06T12:00:00Z")["language-choice"].state is (
        State.MET
    )


def test_kilkenny_callback_is_due_when_promised() -> None:
    """The callback clock is pending without a promised time and due at it otherwise."""
    events = {"received": "2026-03-16T10:00:00Z", "callback_requested": "2026-03-16T11:00:00Z"}
    pending = _evaluate("kilkenny", {"id": "K-3", "events": events}, "2026-03-16T12:00:00Z")
    assert (pending["callback"].state, pending["callback"].due_at) == (State.PENDING, None)
    promised = {
        "id": "K-3",
        "events": {**events, "callback": "2026-03-18T10:00:00Z"},
        "attributes": {"callback_promised": "2026-03-18T09:30:00+00:00"},
    }
    result = _evaluate("kilkenny", promised, "2026-03-19T00:00:00Z")["callback"]
    assert _utc(result.due_at) == "2026-03-18T09:30:00Z"
    assert result.state is State.MET_LATE


STUDIJOB_FIELDS = {
    "registered_by": "Debby",
    "complainant_type": "worker",
    "complainant_name": "J. Jansen",
    "description": "Late payslip",
    "involved": "payroll",
}


@pytest.mark.parametrize(
    ("now", "attributes", "state", "missing"),
    [
        ("2026-04-28T15:00:00Z", {}, State.ON_TRACK, tuple(STUDIJOB_FIELDS)),
        ("2026-04-28T15:00:01Z", {}, State.BREACHED, tuple(STUDIJOB_FIELDS)),
        (
            "2026-04-28T15:00:01Z",
            {k: v for k, v in STUDIJOB_FIELDS.items() if k != "involved"},
            State.BREACHED,
            ("involved",),
        ),
        ("2026-04-28T15:00:01Z", STUDIJOB_FIELDS, State.MET, ()),
    ],
)
def test_studijob_registration_skips_kings_day(
    now: str, attributes: dict[str, str], state: State, missing: tuple[str, ...]
) -> None:
    """One working day from Fri 24 Apr 2026 skips the weekend and Mon 27 Apr (King's Day)."""
    # day0 = Fri 24 Apr (received 16:00 CEST, before 17:00); next working day is Tue 28 Apr
    # -> due Tue 28 Apr 17:00 CEST = 15:00Z.
    complaint = {
        "id": "S-1",
        "events": {"received": "2026-04-24T16:00:00+02:00"},
        "attributes": attributes,
    }
    result = _evaluate("studijob", complaint, now)["registration"]
    assert _utc(result.due_at) == "2026-04-28T15:00:00Z"
    assert result.state is state
    assert result.missing == missing


def test_studijob_feedback_and_root_cause() -> None:
    """Feedback is due a week after receipt; root cause waits for the complaint to close."""
    # Received Fri 24 Apr 16:00 CEST: feedback due Fri 1 May 16:00 CEST = 14:00Z, warn Wed
    # 29 Apr 14:00Z. root-cause is pending until `closed` (after now here).
    complaint = {
        "id": "S-2",
        "events": {"received": "2026-04-24T16:00:00+02:00", "closed": "2026-05-04T10:00:00Z"},
    }
    results = _evaluate("studijob", complaint, "2026-04-29T14:00:00Z")
    assert _utc(results["feedback"].due_at) == "2026-05-01T14:00:00Z"
    assert results["feedback"].state is State.AT_RISK
    assert results["root-cause"].state is State.PENDING
    # Closed Mon 4 May 12:00 CEST: 5 working days after it -> Mon 11 May 17:00 CEST = 15:00Z.
    later = _evaluate("studijob", complaint, "2026-05-11T15:00:01Z")["root-cause"]
    assert _utc(later.due_at) == "2026-05-11T15:00:00Z"
    assert (later.state, later.missing) == (State.BREACHED, ("root_cause", "solution"))


@pytest.mark.parametrize(("channel", "applies"), [("email", True), ("phone", False), (None, False)])
def test_aston_email_reply_applies_to_email_only(channel: str | None, applies: bool) -> None:
    """email-reply is reported only for e-mail complaints and is due two working days later."""
    # Received Mon 2 Mar 2026 10:00 GMT: 2 business days -> Wed 4 Mar 17:00 GMT.
    attributes = {} if channel is None else {"channel": channel}
    complaint = {
        "id": "A-1",
        "events": {"received": "2026-03-02T10:00:00Z"},
        "attributes": attributes,
    }
    results = _evaluate("aston", complaint, "2026-03-03T12:00:00Z")
    assert ("email-reply" in results) is applies
    if applies:
        assert _utc(results["email-reply"].due_at) == "2026-03-04T17:00:00Z"


def test_aston_callback_over_easter() -> None:
    """A callback asked for on Maundy Thursday is due after Good Friday and Easter Monday."""
    # Requested Thu 2 Apr 2026 12:00 BST: day0 Thu; Fri 3 Apr and Mon 6 Apr are bank holidays
    # in England -> the first working day after is Tue 7 Apr, closing 17:00 BST = 16:00Z.
    complaint = {"id": "A-2", "events": {"callback_requested": "2026-04-02T12:00:00+01:00"}}
    result = _evaluate("aston", complaint, "2026-04-07T16:00:00Z")["callback"]
    assert _utc(result.due_at) == "2026-04-07T16:00:00Z"
    assert result.state is State.ON_TRACK


# ----------------------------------------------------------------------------- regulated charters
# England's bank holidays 2026: Fri 3 Apr (Good Friday), Mon 6 Apr, Mon 4 May, Mon 25 May.
# Ireland's public holidays 2026: Tue 17 Mar, Mon 6 Apr (not Good Friday), Mon 4 May, Mon 1 Jun.
# BST/IST from Sun 29 Mar 2026: 17:00 local = 16:00Z.


def test_fca_summary_resolution_and_acknowledgement_over_easter() -> None:
    """Received Maundy Thursday: the third business day skips Good Friday and Easter Monday."""
    # Received Thu 2 Apr 10:00 BST, in opening hours: day0 Thu 2. Business days after it:
    # Tue 7 (1), Wed 8 (2), Thu 9 (3) -> summary resolution by Thu 9 Apr 17:00 BST = 16:00Z;
    # Fri 10 (4), Mon 13 (5) -> acknowledgement by Mon 13 Apr 16:00Z.
    complaint = {"id": "F-1", "events": {"received": "2026-04-02T10:00:00+01:00"}}
    results = _evaluate("fca-disp", complaint, "2026-04-09T16:00:00Z")
    assert _utc(results["summary-resolution"].due_at) == "2026-04-09T16:00:00Z"
    assert results["summary-resolution"].state is State.ON_TRACK
    assert _utc(results["acknowledge"].due_at) == "2026-04-13T16:00:00Z"
    later = _evaluate("fca-disp", complaint, "2026-04-09T16:00:01Z")
    assert later["summary-resolution"].state is State.BREACHED


def test_fca_after_closing_counts_from_the_next_business_day_and_keeps_wall_time() -> None:
    """Received Fri 27 Mar 18:00 GMT: day0 is Mon 30 Mar; eight weeks keep 18:00 local."""
    # After closing on Fri 27 Mar: day0 Mon 30 Mar; Tue 31 (1), Wed 1 Apr (2), Thu 2 Apr (3)
    # -> Thu 2 Apr 17:00 BST = 16:00Z. Eight weeks later at the same local time: Fri 22 May
    # 18:00 BST = 17:00Z (not 18:00Z); six weeks: Fri 8 May 18:00 BST = 17:00Z.
    complaint = {"id": "F-2", "events": {"received": "2026-03-27T18:00:00Z"}}
    results = _evaluate("fca-disp", complaint, "2026-05-08T17:00:00Z")
    assert _utc(results["summary-resolution"].due_at) == "2026-04-02T16:00:00Z"
    final = results["final-response"]
    assert (_utc(final.due_at), _utc(final.warn_at)) == (
        "2026-05-22T17:00:00Z",
        "2026-05-08T17:00:00Z",
    )
    assert final.state is State.AT_RISK


@pytest.mark.parametrize(
    ("events", "state"),
    [
        ({"holding_response": "2026-05-22T17:00:00Z"}, State.MET),
        ({"holding_response": "2026-05-22T17:00:01Z"}, State.MET_LATE),
        ({"decision": "2026-05-20T12:00:00Z"}, State.MET),
    ],
)
def test_fca_final_response_is_met_by_a_holding_response(
    events: dict[str, str], state: State
) -> None:
    """A DISP 1.6.2R(2) holding response by the end of eight weeks meets the clock."""
    complaint = {"id": "F-3", "events": {"received": "2026-03-27T18:00:00Z", **events}}
    result = _evaluate("fca-disp", complaint, "2026-06-30T00:00:00Z")["final-response"]
    assert result.state is state


# Housing Ombudsman: received on the May bank holiday, acknowledged the next day.
HO_EVENTS = {"received": "2026-05-04T10:00:00+01:00", "acknowledged": "2026-05-05T11:00:00+01:00"}


def test_housing_ombudsman_stage1_acknowledge_from_a_bank_holiday() -> None:
    """Received on Mon 4 May (a bank holiday): day0 Tue 5 May, five working days -> Tue 12."""
    # Wed 6 (1), Thu 7 (2), Fri 8 (3), Mon 11 (4), Tue 12 (5) -> Tue 12 May 17:00 BST = 16:00Z.
    results = _evaluate(
        "housing-ombudsman", {"id": "H-1", "events": HO_EVENTS}, "2026-05-06T00:00:00Z"
    )
    assert _utc(results["stage1-acknowledge"].due_at) == "2026-05-12T16:00:00Z"
    assert results["stage1-acknowledge"].state is State.MET


@pytest.mark.parametrize(
    ("notice", "due", "extensions", "state"),
    [
        # no notice: 10 working days from the acknowledgement (day0 Tue 5 May): Wed 6 ... Tue
        # 19 May (Wed 6, Thu 7, Fri 8, Mon 11, Tue 12, Wed 13, Thu 14, Fri 15, Mon 18, Tue 19)
        # -> Tue 19 May 17:00 BST = 16:00Z, breached one second later.
        (None, "2026-05-19T16:00:00Z", 0, State.BREACHED),
        # notified exactly at the due instant: 10 working days from Tue 19 May 17:00 (day0 Tue
        # 19): Wed 20, Thu 21, Fri 22, (Mon 25 bank holiday), Tue 26, Wed 27, Thu 28, Fri 29,
        # Mon 1 Jun, Tue 2, Wed 3 -> Wed 3 Jun 17:00 BST = 16:00Z.
        ("2026-05-19T16:00:00Z", "2026-06-03T16:00:00Z", 1, State.ON_TRACK),
        # notified one second after it: too late, nothing moves.
        ("2026-05-19T16:00:01Z", "2026-05-19T16:00:00Z", 0, State.BREACHED),
    ],
)
def test_housing_ombudsman_stage1_response_extension_at_the_due_instant(
    notice: str | None, due: str, extensions: int, state: State
) -> None:
    """6.4: a notified extension at or before the stage 1 due instant adds 10 working days."""
    events = dict(HO_EVENTS)
    if notice is not None:
        events["extended"] = notice
    result = _evaluate(
        "housing-ombudsman", {"id": "H-2", "events": events}, "2026-05-19T16:00:01Z"
    )["stage1-response"]
    assert (_utc(result.due_at), result.extensions, result.state) == (due, extensions, state)


def test_housing_ombudsman_stage2_extended_by_twenty_working_days() -> None:
    """Stage 2: 20 working days from the escalation's acknowledgement, extended by 20 more."""
    # Escalated Mon 8 Jun 09:30 BST: acknowledge within 5 working days -> Tue 9, Wed 10,
    # Thu 11, Fri 12, Mon 15 -> Mon 15 Jun 16:00Z (acknowledged Wed 10: met).
    # Acknowledged Wed 10 Jun 14:00 (day0 Wed 10): 20 working days -> Thu 11 ... Wed 8 Jul
    # (11, 12, 15-19, 22-26, 29, 30, 1 Jul, 2, 3, 6, 7, 8) -> Wed 8 Jul 17:00 BST = 16:00Z.
    # Extension notified Mon 6 Jul: 20 working days from Wed 8 Jul 17:00 -> Thu 9 ... Wed 5
    # Aug (9, 10, 13-17, 20-24, 27-31, 3 Aug, 4, 5) -> Wed 5 Aug 16:00Z. Decision Tue 4 Aug.
    events = {
        **HO_EVENTS,
        "feedback": "2026-05-18T12:00:00+01:00",
        "escalated_l2": "2026-06-08T09:30:00+01:00",
        "escalation_acknowledged": "2026-06-10T14:00:00+01:00",
        "escalation_extended": "2026-07-06T10:00:00+01:00",
        "decision": "2026-08-04T15:00:00+01:00",
    }
    results = _evaluate(
        "housing-ombudsman", {"id": "H-3", "events": events}, "2026-09-01T00:00:00Z"
    )
    assert (_utc(results["stage2-acknowledge"].due_at), results["stage2-acknowledge"].state) == (
        "2026-06-15T16:00:00Z",
        State.MET,
    )
    stage2 = results["stage2-response"]
    assert (_utc(stage2.due_at), stage2.extensions, stage2.state) == (
        "2026-08-05T16:00:00Z",
        1,
        State.MET,
    )
    # the stage 2 notice does not extend stage 1 (met on Mon 18 May, before Tue 19)
    assert (results["stage1-response"].extensions, results["stage1-response"].state) == (
        0,
        State.MET,
    )


def test_cbi_acknowledgement_updates_and_resolution() -> None:
    """5, 20 and 40 business days from Mon 16 Mar 2026 skip St Patrick's Day and Easter Monday."""
    # day0 Mon 16 Mar (10:00 GMT). Business days after it: Wed 18 (1), Thu 19, Fri 20,
    # Mon 23, Tue 24 (5) -> acknowledge by Tue 24 Mar 17:00 GMT = 17:00Z. Then Wed 25 (6),
    # Thu 26, Fri 27, Mon 30, Tue 31 (10), Wed 1 Apr, Thu 2, Fri 3 (13; Good Friday is no
    # Irish public holiday), Tue 7 (14), Wed 8, Thu 9, Fri 10, Mon 13, Tue 14 (19), Wed 15
    # (20) -> first update by Wed 15 Apr 17:00 IST = 16:00Z. Thu 16 (21) ... Wed 29 Apr (30)
    # -> warning; Thu 30 (31), Fri 1 May (32), Tue 5 (33; Mon 4 May holiday) ... Thu 14 May
    # (40) -> resolution by Thu 14 May 16:00Z.
    complaint = {"id": "C-1", "events": {"received": "2026-03-16T10:00:00Z"}}
    results = _evaluate("cbi-cpc", complaint, "2026-04-15T16:00:01Z")
    assert _utc(results["acknowledge"].due_at) == "2026-03-24T17:00:00Z"
    updates = results["updates"]
    assert (_utc(updates.due_at), updates.state, updates.breaches) == (
        "2026-04-15T16:00:00Z",
        State.BREACHED,
        1,
    )
    resolution = results["resolution"]
    assert (_utc(resolution.due_at), _utc(resolution.warn_at)) == (
        "2026-05-14T16:00:00Z",
        "2026-04-29T16:00:00Z",
    )
    assert resolution.state is State.ON_TRACK


def test_cbi_an_update_opens_the_next_twenty_business_days() -> None:
    """An update on Tue 14 Apr is in time; the next is due 20 business days after it."""
    # Tue 14 Apr 11:00 IST: Wed 15 (1) ... Fri 1 May (13), Tue 5 (14; Mon 4 May holiday),
    # Wed 6, Thu 7, Fri 8, Mon 11, Tue 12, Wed 13 May (20) -> Wed 13 May 16:00Z.
    complaint = {
        "id": "C-2",
        "events": {
            "received": "2026-03-16T10:00:00Z",
            "customer_update": ["2026-04-14T11:00:00+01:00"],
        },
    }
    updates = _evaluate("cbi-cpc", complaint, "2026-05-13T16:00:00Z")["updates"]
    assert (updates.occurrence, _utc(updates.started_at)) == (1, "2026-04-14T10:00:00Z")
    assert (_utc(updates.due_at), updates.state, updates.breaches) == (
        "2026-05-13T16:00:00Z",
        State.ON_TRACK,
        0,
    )


def test_cbi_outcome_within_five_business_days_of_the_investigation() -> None:
    """The outcome letter is due 5 business days after the investigation, skipping 1 June."""
    # Completed Fri 29 May 15:00 IST (day0 Fri 29): Tue 2 Jun (1; Mon 1 Jun holiday), Wed 3,
    # Thu 4, Fri 5, Mon 8 Jun (5) -> Mon 8 Jun 17:00 IST = 16:00Z.
    complaint = {
        "id": "C-3",
        "events": {
            "received": "2026-03-16T10:00:00Z",
            "holding_response": "2026-05-14T12:00:00+01:00",
            "investigation_completed": "2026-05-29T15:00:00+01:00",
            "decision": "2026-06-09T10:00:00+01:00",
        },
    }
    results = _evaluate("cbi-cpc", complaint, "2026-06-10T00:00:00Z")
    assert (_utc(results["outcome"].due_at), results["outcome"].state) == (
        "2026-06-08T16:00:00Z",
        State.MET_LATE,
    )
    assert results["resolution"].state is State.MET  # the holding response by 14 May


# ----------------------------------------------------------------------------- follow-up texts


def _mapping() -> FieldMapping:
    return load_mapping(ROOT / "mappings" / "salesforce.yaml")


@pytest.mark.parametrize("name", REGULATED)
def test_regulated_clocks_have_english_follow_up_names(name: str) -> None:
    """The bundled mapping names every regulated clock in English (no bare clock id)."""
    english = _mapping().spec.follow_ups.templates["en"].clock_names
    for clock in _charter(name).clocks:
        assert english.get(clock.id), f"{name}: {clock.id}"


def test_cbi_clocks_have_irish_follow_up_names() -> None:
    """Every cbi-cpc clock has an Irish name for complaints whose language is ga."""
    irish = _mapping().spec.follow_ups.templates["ga"].clock_names
    for clock in _charter("cbi-cpc").clocks:
        assert irish.get(clock.id), clock.id


def test_an_irish_cbi_complaint_gets_an_irish_follow_up() -> None:
    """A breached cbi-cpc outcome on a `ga` complaint: Irish subject with the Irish clock name."""
    charter = _charter("cbi-cpc")
    complaint = complaint_from_json(
        {"id": "C-9", "events": {}, "attributes": {"language": "ga", "owner": "005O"}},
        charter.calendar.zone,
        "t",
    )
    follow_up = FollowUp(
        "crmsync:C-9:outcome:0:breached",
        "C-9",
        "outcome",
        0,
        "breached",
        "breached",
        "owner",
        parse_instant("2026-06-08T16:00:00Z", charter.calendar.zone),
    )
    fields = _mapping().task_fields(follow_up, complaint, charter, sf_instant_text)
    assert fields["Subject"].startswith("Gearán C-9: toradh an imscrúdaithe i scríbhinn")
