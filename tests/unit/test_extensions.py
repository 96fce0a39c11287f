"""Notified extensions of a clock's deadline (semantics section 4.4), rule by rule.

Every test uses the small charter below: Europe/London, Mon-Fri 09:00-17:00, no holidays.
January 2026 is GMT, so local time equals UTC and the expected instants are read straight
off the calendar (worked out by hand in the comments):

    Mon 5 Jan  Tue 6  Wed 7  Thu 8  Fri 9 | Mon 12  Tue 13  Wed 14  Thu 15  Fri 16
    Mon 19     Tue 20 Wed 21 Thu 22 Fri 23 | Mon 26

March 2026: GMT until Sun 29 Mar 01:00 UTC, then BST (UTC+1).
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmsync.domain.charter import Charter
from crmsync.domain.clock_json import result_line
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import (
    ClockResult,
    Outcome,
    State,
    clock_extension_steps,
    evaluate,
    extension_steps,
)
from crmsync.domain.explanation import explain_extensions
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.domain.report import Outcome as ReportOutcome
from crmsync.domain.report import clock_instances
from crmsync.mapping.charter_file import load_charter_text
from crmsync.service.evaluate_stream import evaluate_text

LONDON = ZoneInfo("Europe/London")

CHARTER_YAML = """\
charter: extensions
title: Extensions
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
    tue: ["09:00-17:00"]
    wed: ["09:00-17:00"]
    thu: ["09:00-17:00"]
    fri: ["09:00-17:00"]
clocks:
  - id: response
    start: received
    stop: decision
    target: 5 business_days
    warn_after: 3 business_days
    extend: {on: extended, by: 5 business_days}
  - id: twice
    start: received
    stop: decision
    target: 2 business_days
    extend: {on: extended, by: 2 business_days, max: 2}
  - id: hours
    start: received
    stop: decision
    target: 4 business_hours
    extend: {on: extended, by: 2 business_hours}
  - id: calendar-days
    start: received
    stop: decision
    target: 14 days
    warn_after: 10 days
    extend: {on: extended, by: 7 days}
  - id: days-then-business
    start: received
    stop: decision
    target: 12 days
    extend: {on: extended, by: 2 business_days}
  - id: complete
    start: received
    require: [root_cause]
    target: 2 business_days
    extend: {on: extended, by: 1 business_days}
  - id: plain
    start: received
    stop: decision
    target: 5 business_days
"""

RECEIVED = "2026-01-05T10:00:00Z"  # Mon 5 Jan 10:00
# response: 5 working days after day0 Mon 5 Jan -> Mon 12 Jan 17:00; warning 3 -> Thu 8 17:00
RESPONSE_DUE = "2026-01-12T17:00:00Z"
RESPONSE_WARN = "2026-01-08T17:00:00Z"
# extended once: 5 working days counted from Mon 12 Jan 17:00 as a start. That instant is not
# after Mon 12's last closing, so day0 is Mon 12 itself (not Tue 13) -> Mon 19 Jan 17:00; the
# warning from Thu 8 17:00 (day0 Thu 8) -> Thu 15 Jan 17:00.
EXTENDED_DUE = "2026-01-19T17:00:00Z"
EXTENDED_WARN = "2026-01-15T17:00:00Z"


@pytest.fixture(scope="module")
def charter() -> Charter:
    """The test charter."""
    return load_charter_text(CHARTER_YAML, "extensions.yaml")


def at(text: str) -> int:
    return parse_instant(text, LONDON)


def utc(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


def complaint(
    extended: str | list[str] | None = None, received: str = RECEIVED, **events: Any
) -> dict[str, Any]:
    """A complaint received at ``received`` with extension notices ``extended``."""
    all_events: dict[str, Any] = {"received": received, **events}
    if extended is not None:
        all_events["extended"] = extended
    return {"id": "X-1", "events": all_events, "attributes": {}}


def clock(
    charter: Charter, data: dict[str, Any], now: str, clock_id: str = "response"
) -> ClockResult:
    """The result of one clock for ``data`` at ``now``."""
    parsed = complaint_from_json(data, LONDON, "test")
    found = {r.clock: r for r in evaluate(charter, parsed, at(now))}
    return found[clock_id]


# ----------------------------------------------------------------------------- the due instant


def test_without_a_notice_nothing_moves(charter: Charter) -> None:
    """No notice: the clock is the plain 4.1 clock, with "extensions": 0."""
    result = clock(charter, complaint(), "2026-01-09T12:00:00Z")
    assert (utc(result.due_at), utc(result.warn_at)) == (RESPONSE_DUE, RESPONSE_WARN)
    assert (result.state, result.extensions) == (State.AT_RISK, 0)


def test_a_notice_before_the_due_instant_moves_due_and_warning(charter: Charter) -> None:
    """A notice on Fri 9 Jan moves D to Mon 19 Jan and W to Thu 15 Jan (both by 5 days)."""
    result = clock(charter, complaint("2026-01-09T11:00:00Z"), "2026-01-12T12:00:00Z")
    assert (utc(result.due_at), utc(result.warn_at)) == (EXTENDED_DUE, EXTENDED_WARN)
    assert (result.state, result.extensions) == (State.ON_TRACK, 1)


def test_a_notice_exactly_at_the_due_instant_applies(charter: Charter) -> None:
    """X == D applies: at D + 1 s the clock is on track against the extended instants."""
    result = clock(charter, complaint(RESPONSE_DUE), "2026-01-12T17:00:01Z")
    assert utc(result.due_at) == EXTENDED_DUE
    assert (result.state, result.extensions) == (State.ON_TRACK, 1)


def test_a_notice_one_second_after_the_due_instant_applies_nothing(charter: Charter) -> None:
    """X == D + 1 s comes too late: D stays, the clock is breached, no extension counted."""
    result = clock(charter, complaint("2026-01-12T17:00:01Z"), "2026-01-12T17:00:01Z")
    assert (utc(result.due_at), utc(result.warn_at)) == (RESPONSE_DUE, RESPONSE_WARN)
    assert (result.state, result.extensions) == (State.BREACHED, 0)


def test_the_moved_warning_decides_at_risk(charter: Charter) -> None:
    """Between the old W (Thu 8) and the new W (Thu 15 17:00) an extended clock is on track."""
    extended = complaint("2026-01-08T10:00:00Z")
    assert clock(charter, extended, "2026-01-15T16:59:59Z").state is State.ON_TRACK
    assert clock(charter, extended, "2026-01-15T17:00:00Z").state is State.AT_RISK
    assert clock(charter, complaint(), "2026-01-08T17:00:00Z").state is State.AT_RISK


def test_a_notice_after_the_warning_still_extends(charter: Charter) -> None:
    """An at_risk clock extended before D turns on_track (W moves too)."""
    before = clock(charter, complaint(), "2026-01-12T16:00:00Z")
    after = clock(charter, complaint("2026-01-12T15:00:00Z"), "2026-01-12T16:00:00Z")
    assert (before.state, after.state) == (State.AT_RISK, State.ON_TRACK)


# ----------------------------------------------------------------------------- which notices count


def test_a_notice_before_the_start_does_not_count(charter: Charter) -> None:
    """X < S is ignored (only S <= X <= now count); X == S counts."""
    early = clock(charter, complaint("2026-01-05T09:59:59Z"), "2026-01-12T12:00:00Z")
    assert (utc(early.due_at), early.extensions) == (RESPONSE_DUE, 0)
    same = clock(charter, complaint(RECEIVED), "2026-01-12T12:00:00Z")
    assert (utc(same.due_at), same.extensions) == (EXTENDED_DUE, 1)


def test_a_notice_after_now_does_not_count_yet(charter: Charter) -> None:
    """An event dated after ``now`` has not happened: at X - 1 s nothing moved, at X it did."""
    data = complaint("2026-01-12T13:00:00Z")
    assert clock(charter, data, "2026-01-12T12:59:59Z").extensions == 0
    assert clock(charter, data, "2026-01-12T13:00:00Z").extensions == 1


def test_max_one_applies_only_the_first_notice(charter: Charter) -> None:
    """With max 1 (the default) a second notice before the new D applies nothing."""
    data = complaint(["2026-01-14T10:00:00Z", "2026-01-09T10:00:00Z"])
    result = clock(charter, data, "2026-01-16T12:00:00Z")
    assert (utc(result.due_at), result.extensions) == (EXTENDED_DUE, 1)


def test_each_notice_is_compared_with_the_current_due_instant(charter: Charter) -> None:
    """max 2: a second notice after the first D but before the extended D applies."""
    # twice: 2 working days from Mon 5 -> Wed 7 17:00. Notice Wed 7 12:00 -> 2 working days
    # from Wed 7 17:00 (day0 Wed 7) -> Fri 9 17:00. Notice Thu 8 12:00 (after the first D,
    # before the current one) -> 2 working days from Fri 9 17:00 -> Tue 13 Jan 17:00.
    data = complaint(["2026-01-07T12:00:00Z", "2026-01-08T12:00:00Z"])
    result = clock(charter, data, "2026-01-12T12:00:00Z", "twice")
    assert (utc(result.due_at), result.extensions) == ("2026-01-13T17:00:00Z", 2)
    assert result.state is State.ON_TRACK


def test_notices_beyond_max_apply_nothing(charter: Charter) -> None:
    """max 2: the third notice, though before D, is not an extension."""
    # Notices Wed 7 12:00 and Fri 9 17:00 (exactly the once-extended D) -> Tue 13 17:00;
    # the third on Mon 12 applies nothing.
    data = complaint(["2026-01-07T12:00:00Z", "2026-01-09T17:00:00Z", "2026-01-12T09:00:00Z"])
    result = clock(charter, data, "2026-01-13T17:00:01Z", "twice")
    assert (utc(result.due_at), result.extensions) == ("2026-01-13T17:00:00Z", 2)
    assert result.state is State.BREACHED


def test_a_late_notice_does_not_let_a_later_one_apply(charter: Charter) -> None:
    """Once a notice is after D, D does not move, so every later notice is too late."""
    data = complaint(["2026-01-07T17:00:01Z", "2026-01-08T10:00:00Z"])
    result = clock(charter, data, "2026-01-09T12:00:00Z", "twice")
    assert (utc(result.due_at), result.extensions) == ("2026-01-07T17:00:00Z", 0)


def test_one_notice_recorded_twice_is_one_extension(charter: Charter) -> None:
    """Two records of the same instant are one notice (instants are distinct)."""
    data = complaint(["2026-01-07T12:00:00Z", "2026-01-07T12:00:00Z"])
    result = clock(charter, data, "2026-01-12T12:00:00Z", "twice")
    assert (utc(result.due_at), result.extensions) == ("2026-01-09T17:00:00Z", 1)


def test_extension_steps_say_what_each_notice_did(charter: Charter) -> None:
    """extension_steps lists applied, too-late and over-max notices with the instants moved."""
    twice = charter.clock("twice")
    assert twice.kind.value == "deadline"
    data = complaint_from_json(
        complaint(["2026-01-07T12:00:00Z", "2026-01-09T17:00:00Z", "2026-01-12T09:00:00Z"]),
        LONDON,
        "test",
    )
    extension = getattr(twice, "extend", None)
    assert extension is not None
    steps = extension_steps(
        charter.calendar,
        extension,
        data,
        start=at(RECEIVED),
        now=at("2026-01-20T00:00:00Z"),
        due=at("2026-01-07T17:00:00Z"),
        warn=None,
    )
    assert [(utc(s.notice), s.outcome, utc(s.due_before), utc(s.due_after)) for s in steps] == [
        ("2026-01-07T12:00:00Z", Outcome.APPLIED, "2026-01-07T17:00:00Z", "2026-01-09T17:00:00Z"),
        ("2026-01-09T17:00:00Z", Outcome.APPLIED, "2026-01-09T17:00:00Z", "2026-01-13T17:00:00Z"),
        ("2026-01-12T09:00:00Z", Outcome.OVER_MAX, "2026-01-13T17:00:00Z", "2026-01-13T17:00:00Z"),
    ]
    late = extension_steps(
        charter.calendar,
        extension,
        complaint_from_json(complaint("2026-01-07T17:00:01Z"), LONDON, "test"),
        start=at(RECEIVED),
        now=at("2026-01-20T00:00:00Z"),
        due=at("2026-01-07T17:00:00Z"),
        warn=None,
    )
    assert [s.outcome for s in late] == [Outcome.TOO_LATE]


# ----------------------------------------------------------------------------- the state after it


def test_a_stop_before_the_extended_due_instant_is_met(charter: Charter) -> None:
    """Decision Wed 14 Jan: met_late against the plain D, met against the extended one."""
    plain = clock(charter, complaint(decision="2026-01-14T10:00:00Z"), "2026-01-20T00:00:00Z")
    assert plain.state is State.MET_LATE
    data = complaint("2026-01-09T10:00:00Z", decision="2026-01-14T10:00:00Z")
    extended = clock(charter, data, "2026-01-20T00:00:00Z")
    assert (extended.state, extended.extensions) == (State.MET, 1)
    assert utc(extended.stopped_at) == "2026-01-14T10:00:00Z"


def test_a_breached_clock_is_on_track_again_after_a_notice_at_d(charter: Charter) -> None:
    """Notified exactly at D: one second later the clock is on track, not breached."""
    assert clock(charter, complaint(), "2026-01-12T17:00:01Z").state is State.BREACHED
    extended = clock(charter, complaint(RESPONSE_DUE), "2026-01-12T17:00:01Z")
    assert extended.state is State.ON_TRACK


def test_the_extended_due_instant_is_breached_one_second_after(charter: Charter) -> None:
    """The extended D is a due instant like any other: now == D is on time, D + 1 s breached."""
    data = complaint("2026-01-09T10:00:00Z")
    assert clock(charter, data, EXTENDED_DUE).state is State.AT_RISK
    assert clock(charter, data, "2026-01-19T17:00:01Z").state is State.BREACHED


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("received", "notice", "due", "extended"),
    [
        # 4 business hours from Mon 15:00: 2 h Mon, 2 h Tue -> Tue 6 Jan 11:00; + 2 h from it
        # -> Tue 13:00.
        (
            "2026-01-05T15:00:00Z",
            "2026-01-06T11:00:00Z",
            "2026-01-06T11:00:00Z",
            "2026-01-06T13:00:00Z",
        ),
        # from Mon 13:00 the count ends exactly at Mon 17:00 (a closing time); + 2 h from
        # that closing time counts from the next opening -> Tue 6 Jan 11:00.
        (
            "2026-01-05T13:00:00Z",
            "2026-01-05T16:00:00Z",
            "2026-01-05T17:00:00Z",
            "2026-01-06T11:00:00Z",
        ),
    ],
)
def test_business_hours_extend_from_the_old_due_instant(
    charter: Charter, received: str, notice: str, due: str, extended: str
) -> None:
    """Business hours: the extension counts opening time from the old D."""
    plain = clock(charter, complaint(received=received), received, "hours")
    assert utc(plain.due_at) == due
    result = clock(charter, complaint(notice, received=received), notice, "hours")
    assert (utc(result.due_at), result.extensions) == (extended, 1)


def test_calendar_days_extend_at_the_same_local_time_across_dst(charter: Charter) -> None:
    """14 days then 7 more keep 10:00 local across the change to BST on Sun 29 Mar 2026."""
    # Received Mon 16 Mar 10:00 GMT. D = Mon 30 Mar 10:00 BST = 09:00Z; W (10 days) = Thu
    # 26 Mar 10:00 GMT. Extended by 7 days: D -> Mon 6 Apr 10:00 BST = 09:00Z; W -> Thu 2 Apr
    # 10:00 BST = 09:00Z.
    data = complaint("2026-03-20T12:00:00Z", received="2026-03-16T10:00:00Z")
    result = clock(charter, data, "2026-03-31T00:00:00Z", "calendar-days")
    assert (utc(result.due_at), utc(result.warn_at)) == (
        "2026-04-06T09:00:00Z",
        "2026-04-02T09:00:00Z",
    )
    assert result.state is State.ON_TRACK


@pytest.mark.parametrize(
    ("received", "due", "extended"),
    [
        # 12 days from Thu 8 Jan 12:00 -> Tue 20 Jan 12:00, before closing on a working day:
        # day0 is Tue 20 -> 2 working days later, Thu 22 Jan 17:00.
        ("2026-01-08T12:00:00Z", "2026-01-20T12:00:00Z", "2026-01-22T17:00:00Z"),
        # from Thu 8 Jan 18:00 -> Tue 20 Jan 18:00, after closing: day0 is Wed 21 -> Fri 23.
        ("2026-01-08T18:00:00Z", "2026-01-20T18:00:00Z", "2026-01-23T17:00:00Z"),
        # from Tue 6 Jan 10:00 -> Sun 18 Jan 10:00, not a working day: day0 Mon 19 -> Wed 21.
        ("2026-01-06T10:00:00Z", "2026-01-18T10:00:00Z", "2026-01-21T17:00:00Z"),
    ],
)
def test_business_days_from_the_old_due_instant_use_the_day0_rule(
    charter: Charter, received: str, due: str, extended: str
) -> None:
    """An extension in business days treats the old D as a start: day0 rules apply to it."""
    plain = clock(charter, complaint(received=received), received, "days-then-business")
    assert utc(plain.due_at) == due
    result = clock(charter, complaint(due, received=received), due, "days-then-business")
    assert (utc(result.due_at), result.extensions) == (extended, 1)


# ----------------------------------------------------------------------------- clock kinds


def test_a_completeness_clock_is_extended_too(charter: Charter) -> None:
    """A completeness clock's D moves (Wed 7 17:00 -> Thu 8 17:00); filled it is met."""
    data = complaint("2026-01-07T17:00:00Z")
    result = clock(charter, data, "2026-01-08T12:00:00Z", "complete")
    assert (utc(result.due_at), result.state, result.extensions) == (
        "2026-01-08T17:00:00Z",
        State.ON_TRACK,
        1,
    )
    assert result.missing == ("root_cause",)
    filled = {**data, "attributes": {"root_cause": "Staff shortage"}}
    met = clock(charter, filled, "2026-01-08T12:00:00Z", "complete")
    assert (met.state, met.extensions) == (State.MET, 1)


def test_pending_clocks_report_zero_extensions_only_when_they_have_extend(
    charter: Charter,
) -> None:
    """Before the start, a clock with extend reports 0 extensions; one without, none."""
    data = {"id": "X-2", "events": {}, "attributes": {}}
    results = {r.clock: r for r in evaluate(charter, complaint_from_json(data, LONDON, "t"), 0)}
    assert results["response"].state is State.PENDING
    assert results["response"].extensions == 0
    assert results["complete"].extensions == 0
    assert results["plain"].extensions is None


def test_two_charters_with_one_clock_id_do_not_share_a_pending_result(charter: Charter) -> None:
    """A clock id with extend in one charter and without in another keeps each its own shape."""
    other = load_charter_text(CHARTER_YAML.replace("    extend: {on: extended, by: 5 b", "    # "))
    data = complaint_from_json({"id": "X-3", "events": {}}, LONDON, "t")
    first = {r.clock: r for r in evaluate(other, data, 0)}["response"]
    second = {r.clock: r for r in evaluate(charter, data, 0)}["response"]
    third = {r.clock: r for r in evaluate(other, data, 0)}["response"]
    assert (first.extensions, second.extensions, third.extensions) == (None, 0, None)


# ----------------------------------------------------------------------------- evaluate output


def test_evaluate_lines_carry_extensions_only_for_clocks_with_extend(charter: Charter) -> None:
    """The output line of a clock with extend ends with "extensions": N; others do not."""
    data = complaint("2026-01-09T10:00:00Z")
    text = evaluate_text(charter, json.dumps(data) + "\n", 1, at("2026-01-12T12:00:00Z")).text
    lines = {json.loads(x)["clock"]: x for x in text.splitlines()}
    assert lines["response"] == (
        '{"complaint_id": "X-1", "clock": "response", "state": "on_track", '
        '"started_at": "2026-01-05T10:00:00Z", "due_at": "2026-01-19T17:00:00Z", '
        '"warn_at": "2026-01-15T17:00:00Z", "stopped_at": null, "occurrence": 0, '
        '"extensions": 1}'
    )
    # complete was due Wed 7 Jan 17:00: the notice of Fri 9 came too late for it
    assert lines["complete"].endswith('"missing": ["root_cause"], "extensions": 0}')
    assert "extensions" not in lines["plain"]
    parsed = complaint_from_json(data, LONDON, "t")
    for r in evaluate(charter, parsed, at("2026-01-12T12:00:00Z")):
        assert result_line("X-1", r) == lines[r.clock]


def test_pending_evaluate_lines_carry_zero_extensions(charter: Charter) -> None:
    """A not-started clock with extend says "extensions": 0, for every complaint alike."""
    text = evaluate_text(
        charter, '{"id": "P-1", "events": {}}\n{"id": "P-2", "events": {}}\n', 1, 0
    ).text
    lines = [json.loads(x) for x in text.splitlines() if '"clock": "response"' in x]
    assert [(x["complaint_id"], x["extensions"]) for x in lines] == [("P-1", 0), ("P-2", 0)]


# ----------------------------------------------------------------------------- explain


def _explained(charter: Charter, clock_id: str, data: dict[str, Any], now: str) -> list[str]:
    clock_ = charter.clock(clock_id)
    extension = getattr(clock_, "extend", None)
    assert extension is not None
    parsed = complaint_from_json(data, LONDON, "test")
    steps = clock_extension_steps(charter.calendar, clock_, parsed, at(now))
    return explain_extensions(charter.calendar, extension, steps)


def test_explain_names_the_notice_and_the_new_due_instant(charter: Charter) -> None:
    """explain says which notice extended the deadline, to when, and that later ones did not."""
    data = complaint(["2026-01-09T11:00:00Z", "2026-01-14T10:00:00Z"])
    assert _explained(charter, "response", data, "2026-01-16T12:00:00Z") == [
        "extension 1: 'extended' notified Fri 9 Jan 2026 11:00, at or before the due "
        "Mon 12 Jan 2026 17:00; deadline extended to Mon 19 Jan 2026 17:00 (from the old due "
        "Mon 12 Jan 2026 17:00; day 0; 5th working day Mon 19 Jan 2026, closes 17:00); "
        "warning moved to Thu 15 Jan 2026 17:00",
        "'extended' notified Wed 14 Jan 2026 10:00: 1 extension(s) already applied, no more",
    ]


def test_explain_says_a_late_notice_did_not_extend(charter: Charter) -> None:
    """A notice one second after D is explained as too late."""
    data = complaint("2026-01-12T17:00:01Z")
    assert _explained(charter, "response", data, "2026-01-13T12:00:00Z") == [
        "'extended' notified Mon 12 Jan 2026 17:00: after the due Mon 12 Jan 2026 17:00, "
        "too late to extend"
    ]


def test_explain_without_a_notice_says_so(charter: Charter) -> None:
    """No notice: explain says the deadline was not extended."""
    assert _explained(charter, "twice", complaint(), "2026-01-13T12:00:00Z") == [
        "no 'extended' notice: deadline not extended (up to 2 x)"
    ]


# ----------------------------------------------------------------------------- the report


def test_the_report_counts_an_instance_at_its_extended_due_instant(charter: Charter) -> None:
    """clock_instances (the report's) carries the extended D, so the outcome is met."""
    data = complaint("2026-01-09T10:00:00Z", decision="2026-01-14T10:00:00Z")
    parsed = complaint_from_json(data, LONDON, "test")
    instances, _ = clock_instances(charter, parsed, at("2026-01-20T00:00:00Z"))
    response = next(i for i in instances if i.clock == "response")
    assert utc(response.due) == EXTENDED_DUE
    assert response.outcome is ReportOutcome.MET
    plain = complaint_from_json(complaint(decision="2026-01-14T10:00:00Z"), LONDON, "test")
    instances, _ = clock_instances(charter, plain, at("2026-01-20T00:00:00Z"))
    assert next(i for i in instances if i.clock == "response").outcome is ReportOutcome.LATE
