"""Pauses of a clock while waiting on the customer (semantics section 4.5), rule by rule.

Every test uses the small charter below: Europe/London, Mon-Fri 09:00-17:00, no holidays.
January 2026 is GMT, so local time equals UTC and the expected instants are read straight
off the calendar (worked out by hand in the comments):

    Mon 5 Jan  Tue 6  Wed 7  Thu 8  Fri 9 | Mon 12  Tue 13  Wed 14  Thu 15  Fri 16
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.domain.action_planning import OpenFollowUp, compute_flags, plan
from crmsync.domain.charter import Charter
from crmsync.domain.clock_json import result_line
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import ClockResult, State, evaluate
from crmsync.domain.explanation import explain_clock
from crmsync.domain.instants import format_instant, parse_instant
from crmsync.domain.report import Outcome as ReportOutcome
from crmsync.domain.report import Period, Tally, clock_instances
from crmsync.errors import CharterFileError
from crmsync.mapping.charter_file import load_charter_text
from crmsync.service.evaluate_stream import evaluate_text

LONDON = ZoneInfo("Europe/London")
SERVICE_DESK = (
    Path(__file__).resolve().parents[2] / "mappings" / "charters" / "examples" / "service-desk.yaml"
)

HEAD = """\
charter: pauses
title: Pauses
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
    tue: ["09:00-17:00"]
    wed: ["09:00-17:00"]
    thu: ["09:00-17:00"]
    fri: ["09:00-17:00"]
clocks:
"""
CHARTER_YAML = (
    HEAD
    + """\
  - id: reply
    start: received
    stop: replied
    target: 8 business_hours
    warn_after: 4 business_hours
    pause: {on: paused, off: resumed}
  - id: resolve
    start: received
    stop: decision
    target: 10 days
    warn_after: 2 business_days
    pause: {on: paused, off: resumed}
  - id: extended
    start: received
    stop: decision
    target: 8 business_hours
    extend: {on: extended, by: 1 business_days}
    pause: {on: paused, off: resumed}
  - id: registration
    start: received
    require: [description]
    target: 1 business_days
    pause: {on: paused, off: resumed}
  - id: plain
    start: received
    stop: replied
    target: 8 business_hours
"""
)


@pytest.fixture(scope="module")
def charter() -> Charter:
    """The test charter."""
    return load_charter_text(CHARTER_YAML, "pauses.yaml")


def at(text: str) -> int:
    return parse_instant(text, LONDON)


def utc(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


def results(
    charter: Charter, now: str, attributes: dict[str, Any] | None = None, **events: Any
) -> dict[str, ClockResult]:
    """The clocks of one complaint with ``events`` at ``now``, by id."""
    data = {"id": "P-1", "events": events, "attributes": attributes or {}}
    parsed = complaint_from_json(data, LONDON, "test")
    return {r.clock: r for r in evaluate(charter, parsed, at(now))}


def summary(r: ClockResult) -> tuple[str, str | None, str | None, str | None, int | None]:
    return r.state.value, utc(r.due_at), utc(r.warn_at), utc(r.stopped_at), r.pauses


# ----------------------------------------------------------------------------- boundaries
def test_a_pause_at_exactly_the_due_instant_counts(charter: Charter) -> None:
    """Received Mon 09:00: 8 business hours -> due Mon 17:00, warning (4 h) Mon 13:00.
    Paused at exactly Mon 17:00, resumed Tue 10:00: 1 h of opening time (Tue 09-10), so the
    due moves to Tue 10:00 and the warning to Mon 14:00; at Tue 10:00 the clock is at risk,
    not breached."""
    r = results(
        charter,
        "2026-01-06T10:00:00Z",
        received="2026-01-05T09:00:00Z",
        paused="2026-01-05T17:00:00Z",
        resumed="2026-01-06T10:00:00Z",
    )
    assert summary(r["reply"]) == (
        "at_risk",
        "2026-01-06T10:00:00Z",
        "2026-01-05T14:00:00Z",
        None,
        1,
    )
    # the same complaint on a clock without pause: breached since Mon 17:00:01
    assert r["plain"].state is State.BREACHED
    assert r["plain"].pauses is None


def test_a_pause_one_second_after_the_due_instant_changes_nothing(charter: Charter) -> None:
    """Paused Mon 17:00:01, one second after the due Mon 17:00: not counted, still breached."""
    r = results(
        charter,
        "2026-01-06T10:00:00Z",
        received="2026-01-05T09:00:00Z",
        paused="2026-01-05T17:00:01Z",
        resumed="2026-01-06T10:00:00Z",
    )
    assert summary(r["reply"]) == (
        "breached",
        "2026-01-05T17:00:00Z",
        "2026-01-05T13:00:00Z",
        None,
        0,
    )


def test_a_pause_wholly_outside_opening_hours_moves_no_business_deadline(
    charter: Charter,
) -> None:
    """Received Mon 12:00: reply due Tue 12:00 (5 h Mon + 3 h Tue), warning Mon 16:00.
    Paused Mon 18:00 to Tue 08:00 holds no opening time: the pause counts (it started before
    the due) but moves nothing. The 10-days clock (due Thu 15 Jan 12:00) moves by the 14 h
    elapsed to Fri 16 Jan 02:00, while its warning (2 business_days: Wed 7 Jan 17:00) stays."""
    r = results(
        charter,
        "2026-01-06T11:00:00Z",
        received="2026-01-05T12:00:00Z",
        paused="2026-01-05T18:00:00Z",
        resumed="2026-01-06T08:00:00Z",
    )
    assert summary(r["reply"]) == (
        "at_risk",
        "2026-01-06T12:00:00Z",
        "2026-01-05T16:00:00Z",
        None,
        1,
    )
    assert summary(r["resolve"]) == (
        "on_track",
        "2026-01-16T02:00:00Z",
        "2026-01-07T17:00:00Z",
        None,
        1,
    )


def test_a_stop_inside_a_pause_ends_it_and_is_judged_against_the_moved_due(
    charter: Charter,
) -> None:
    """Received Mon 12:00 (reply due Tue 12:00, warning Mon 16:00), paused Mon 15:00, replied
    Tue 11:00 with no 'resumed': the pause ends at the reply. It held 4 h of opening time
    (Mon 15-17, Tue 09-11): due Tue 16:00, warning Tue 12:00 (Mon 16-17 then Tue 09-12); the
    reply is met. The resolve clock, not stopped, is still paused: no due, no warning."""
    r = results(
        charter,
        "2026-01-06T12:00:00Z",
        received="2026-01-05T12:00:00Z",
        paused="2026-01-05T15:00:00Z",
        replied="2026-01-06T11:00:00Z",
    )
    assert summary(r["reply"]) == (
        "met",
        "2026-01-06T16:00:00Z",
        "2026-01-06T12:00:00Z",
        "2026-01-06T11:00:00Z",
        1,
    )
    assert summary(r["resolve"]) == ("paused", None, None, None, 1)
    assert r["resolve"].started_at == at("2026-01-05T12:00:00Z")


def test_a_pause_still_open_pauses_the_clock_however_late_it_is(charter: Charter) -> None:
    """Paused Mon 15:00 and never resumed: at Fri 16 Jan, long after every original due
    instant, every pausing clock is paused with no due or warning instant."""
    r = results(
        charter,
        "2026-01-16T12:00:00Z",
        {"description": ""},
        received="2026-01-05T12:00:00Z",
        paused="2026-01-05T15:00:00Z",
    )
    for clock in ("reply", "resolve", "extended", "registration"):
        assert summary(r[clock]) == ("paused", None, None, None, 1), clock
    assert r["plain"].state is State.BREACHED


def test_pauses_do_not_nest_and_each_ends_at_the_first_resume_after_it(
    charter: Charter,
) -> None:
    """Received Mon 12:00. 'paused' at Mon 13:00, 14:00 and 16:30; 'resumed' at Mon 15:00,
    16:00 and Tue 09:30. Pauses: 13:00-15:00 (the 14:00 one falls inside it, the 16:00
    resume ends nothing) and Mon 16:30-Tue 09:30.
    reply: due Tue 12:00 + 2 h + 1 h of opening time = Tue 15:00; warning Mon 16:00 + 2 h =
    Tue 10:00, + 1 h = Tue 11:00. resolve: due Thu 15 Jan 12:00 + 2 h + 17 h elapsed = Fri 16
    Jan 07:00; warning Wed 7 Jan 17:00 + 2 h of opening time = Thu 11:00, + 1 h = Thu 12:00."""
    r = results(
        charter,
        "2026-01-06T09:45:00Z",
        received="2026-01-05T12:00:00Z",
        paused=["2026-01-05T13:00:00Z", "2026-01-05T14:00:00Z", "2026-01-05T16:30:00Z"],
        resumed=["2026-01-05T15:00:00Z", "2026-01-05T16:00:00Z", "2026-01-06T09:30:00Z"],
    )
    assert summary(r["reply"]) == (
        "on_track",
        "2026-01-06T15:00:00Z",
        "2026-01-06T11:00:00Z",
        None,
        2,
    )
    assert summary(r["resolve"]) == (
        "on_track",
        "2026-01-16T07:00:00Z",
        "2026-01-08T12:00:00Z",
        None,
        2,
    )


def test_an_extension_and_a_pause_at_one_instant_apply_the_extension_first(
    charter: Charter,
) -> None:
    """Received Mon 09:00: due Mon 17:00. At Mon 17:00 an extension notice and a pause; resumed
    Tue 10:00. The extension first: 1 business_days from Mon 17:00 (day0 is Mon, not after
    its closing) -> Tue 17:00; then the pause (1 h of opening time) -> Wed 10:00. (The other
    order would give Tue 10:00 + 1 business_days = Wed 17:00.)"""
    r = results(
        charter,
        "2026-01-07T09:00:00Z",
        received="2026-01-05T09:00:00Z",
        extended="2026-01-05T17:00:00Z",
        paused="2026-01-05T17:00:00Z",
        resumed="2026-01-06T10:00:00Z",
    )
    extended = r["extended"]
    assert summary(extended) == ("on_track", "2026-01-07T10:00:00Z", None, None, 1)
    assert extended.extensions == 1


def test_a_pause_moves_the_due_instant_a_later_extension_is_tested_against(
    charter: Charter,
) -> None:
    """Due Mon 17:00; paused Mon 16:00 to Tue 09:30 (1 h 30 min of opening time): due Tue
    10:30. An extension notified Tue 10:00 is at or before that due, so it applies:
    1 business_days from Tue 10:30 -> Wed 17:00. Without the pause it would be too late."""
    r = results(
        charter,
        "2026-01-07T12:00:00Z",
        received="2026-01-05T09:00:00Z",
        paused="2026-01-05T16:00:00Z",
        resumed="2026-01-06T09:30:00Z",
        extended="2026-01-06T10:00:00Z",
    )
    assert summary(r["extended"]) == ("on_track", "2026-01-07T17:00:00Z", None, None, 1)
    assert r["extended"].extensions == 1


def test_a_pause_before_the_start_or_after_the_stop_does_not_count(charter: Charter) -> None:
    """A 'paused' before the start is not a pause of the clock; one after the reply neither:
    the reply's due stays Tue 12:00 and its pause count 0."""
    r = results(
        charter,
        "2026-01-07T12:00:00Z",
        received="2026-01-05T12:00:00Z",
        paused=["2026-01-05T11:00:00Z", "2026-01-06T10:00:00Z"],
        replied="2026-01-06T10:00:00Z",
    )
    assert summary(r["reply"]) == (
        "met",
        "2026-01-06T12:00:00Z",
        "2026-01-05T16:00:00Z",
        "2026-01-06T10:00:00Z",
        0,
    )


def test_a_completeness_clock_pauses_until_its_attributes_are_filled(charter: Charter) -> None:
    """Registration (1 business_days from Mon 12:00: Tue 17:00) is paused from Mon 13:00 while
    the description is missing; once filled it is met whatever the pause."""
    events = {"received": "2026-01-05T12:00:00Z", "paused": "2026-01-05T13:00:00Z"}
    missing = results(charter, "2026-01-09T12:00:00Z", {"description": " "}, **events)
    assert summary(missing["registration"]) == ("paused", None, None, None, 1)
    assert missing["registration"].missing == ("description",)
    filled = results(charter, "2026-01-09T12:00:00Z", {"description": "late bus"}, **events)
    assert filled["registration"].state is State.MET


def test_a_clock_not_started_reports_zero_pauses(charter: Charter) -> None:
    """Before its start a pausing clock is pending with "pauses": 0, others carry none."""
    r = results(charter, "2026-01-05T12:00:00Z")
    assert (r["reply"].state, r["reply"].pauses) == (State.PENDING, 0)
    assert r["plain"].pauses is None


# ----------------------------------------------------------------------------- output
def test_evaluate_lines_carry_the_paused_state_and_the_pause_count(charter: Charter) -> None:
    """`crmsync evaluate` writes "state": "paused" with null instants and "pauses": N; its
    fast writer and the one serialiser agree byte for byte."""
    data = {
        "id": "X-1",
        "events": {"received": "2026-01-05T12:00:00Z", "paused": "2026-01-05T15:00:00Z"},
    }
    text = evaluate_text(charter, json.dumps(data) + "\n", 1, at("2026-01-06T12:00:00Z")).text
    lines = {json.loads(x)["clock"]: x for x in text.splitlines()}
    assert lines["reply"] == (
        '{"complaint_id": "X-1", "clock": "reply", "state": "paused", '
        '"started_at": "2026-01-05T12:00:00Z", "due_at": null, "warn_at": null, '
        '"stopped_at": null, "occurrence": 0, "pauses": 1}'
    )
    assert json.loads(lines["extended"])["extensions"] == 0
    assert json.loads(lines["extended"])["pauses"] == 1
    assert "pauses" not in json.loads(lines["plain"])
    parsed = complaint_from_json(data, LONDON, "test")
    for r in evaluate(charter, parsed, at("2026-01-06T12:00:00Z")):
        assert result_line("X-1", r) == lines[r.clock]


def test_pending_evaluate_lines_carry_zero_pauses_for_every_complaint(charter: Charter) -> None:
    """A not-started pausing clock says "pauses": 0 for every complaint alike."""
    text = evaluate_text(
        charter, '{"id": "P-1", "events": {}}\n{"id": "P-2", "events": {}}\n', 1, 0
    ).text
    lines = [json.loads(x) for x in text.splitlines() if '"clock": "reply"' in x]
    assert [(x["complaint_id"], x["pauses"]) for x in lines] == [("P-1", 0), ("P-2", 0)]


def test_explain_lists_each_pause_whether_it_counted_and_what_it_moved(
    charter: Charter,
) -> None:
    """explain names each pause, its span, whether it counted and the due/warning it moved."""
    data = {
        "id": "E-1",
        "events": {
            "received": "2026-01-05T09:00:00Z",
            "paused": ["2026-01-05T16:00:00Z", "2026-01-08T10:00:00Z"],
            "resumed": "2026-01-06T10:00:00Z",
        },
    }
    parsed = complaint_from_json(data, LONDON, "test")
    now = at("2026-01-08T12:00:00Z")
    by_id = {r.clock: r for r in evaluate(charter, parsed, now)}
    lines = explain_clock(charter.calendar, charter.clock("reply"), by_id["reply"], parsed, now)
    # due Mon 17:00, warning Mon 13:00; pause Mon 16:00-Tue 10:00 holds 2 h of opening time:
    # due Tue 11:00, warning Mon 15:00. The second pause (Thu 10:00) is after that due.
    assert lines[-2:] == [
        "pause 1: paused Mon 5 Jan 2026 16:00 to Tue 6 Jan 2026 10:00, at or before the due "
        "Mon 5 Jan 2026 17:00: 2 h of opening time, due moved to Tue 6 Jan 2026 11:00; "
        "warning (2 h of opening time) moved to Mon 5 Jan 2026 15:00",
        "paused Thu 8 Jan 2026 10:00, still open: not counted (after the due "
        "Tue 6 Jan 2026 11:00 or the stop)",
    ]
    assert by_id["reply"].state is State.BREACHED
    resolve = explain_clock(
        charter.calendar, charter.clock("resolve"), by_id["resolve"], parsed, now
    )
    # resolve: due Thu 15 Jan 09:00 + 18 h elapsed -> Fri 16 Jan 03:00; the second pause
    # (Thu 8 Jan 10:00) is before that due and still open: the clock is paused
    assert resolve[-2].startswith(
        "pause 1: paused Mon 5 Jan 2026 16:00 to Tue 6 Jan 2026 10:00, at or before the due "
        "Thu 15 Jan 2026 09:00: 18 h elapsed, due moved to Fri 16 Jan 2026 03:00"
    )
    assert resolve[-1].startswith(
        "pause 2: paused Thu 8 Jan 2026 10:00, still open, at or before the due "
        "Fri 16 Jan 2026 03:00: the clock is paused, no due instant until 'resumed'"
    )
    assert by_id["resolve"].state is State.PAUSED


# ----------------------------------------------------------------------------- the file
@pytest.mark.parametrize(
    ("clock", "message"),
    [
        (
            "  - id: c\n    start: received\n    every: 14 days\n    reset: update\n"
            "    pause: {on: paused, off: resumed}\n",
            "a recurring clock takes no 'pause'",
        ),
        (
            "  - id: c\n    start: received\n    stop: done\n    target_field: promised\n"
            "    pause: {on: paused, off: resumed}\n",
            "a 'target_field' clock cannot pause",
        ),
        (
            "  - id: c\n    start: received\n    stop: done\n    target: 2 days\n"
            "    pause: {on: waiting, off: waiting}\n",
            "'on' and 'off' are both 'waiting'",
        ),
        (
            "  - id: c\n    start: received\n    stop: done\n    target: 2 days\n"
            "    pause: {on: paused}\n",
            "off",
        ),
        (
            "  - id: c\n    start: received\n    stop: done\n    target: 2 days\n"
            "    pause: {on: paused, off: resumed, by: 2 days}\n",
            "by",
        ),
    ],
    ids=["recurring", "target_field", "same-event", "no-off", "unknown-key"],
)
def test_a_bad_pause_is_refused_at_its_line_with_the_reason(clock: str, message: str) -> None:
    """A pause on a recurring or target_field clock, with one event for both ends, without
    'off' or with an unknown key is refused naming the file, the clock's line and why."""
    with pytest.raises(CharterFileError) as caught:
        load_charter_text(HEAD + clock, "bad.yaml")
    text = str(caught.value)
    assert "bad.yaml" in text
    assert message in text
    assert any(p.line is not None and p.line >= 12 for p in caught.value.problems)


def test_the_pause_events_are_events_of_the_clock_and_the_charter(charter: Charter) -> None:
    """The pause's events are among those the clock uses and the charter's (the mapping
    check and the CRM reads are derived from them)."""
    assert charter.clock("reply").events() == ("received", "replied", "paused", "resumed")
    assert {"paused", "resumed"} <= charter.event_names


# ----------------------------------------------------------------------------- flags, follow-ups
def test_the_flag_of_a_paused_complaint_is_paused_below_running_clocks(charter: Charter) -> None:
    """Paused ranks above met and below on_track (reference-org.md): a complaint whose only
    unmet clocks are paused shows paused and no next due; one running clock shows through."""
    events = {
        "received": "2026-01-05T12:00:00Z",
        "paused": "2026-01-05T13:00:00Z",
        "replied": "2026-01-05T12:30:00Z",
    }
    data = {"id": "F-1", "events": events, "attributes": {"description": "x"}}
    parsed = complaint_from_json(data, LONDON, "test")
    by_id = evaluate(charter, parsed, at("2026-01-06T09:00:00Z"))
    states = {r.clock: r.state for r in by_id}
    assert states == {
        "reply": State.MET,  # replied before the pause
        "resolve": State.PAUSED,
        "extended": State.PAUSED,
        "registration": State.MET,
        "plain": State.MET,
    }
    flags = compute_flags(by_id)
    assert (flags.status, flags.breaches, flags.next_due) == ("paused", "", None)
    running = complaint_from_json(
        {"id": "F-2", "events": {**events, "replied": "2026-01-07T09:00:00Z"}},
        LONDON,
        "test",
    )
    # reply (due Tue 12:00, paused Mon 13:00 and still open) and plain (on track) run
    results_ = evaluate(charter, running, at("2026-01-05T14:00:00Z"))
    assert {r.clock: r.state for r in results_}["plain"] is State.ON_TRACK
    assert compute_flags(results_).status == "on_track"


def test_a_paused_clock_gets_no_follow_up_and_its_at_risk_one_is_completed(
    charter: Charter,
) -> None:
    """At Tue 10:00 the reply (due Tue 12:00, warning Mon 16:00) is at risk and gets its
    follow-up. A pause recorded at Tue 10:30 pauses it: at Tue 11:00 nothing is created for
    it and the open at_risk follow-up is completed."""
    received = {"received": "2026-01-05T12:00:00Z"}
    before = complaint_from_json({"id": "A-1", "events": received}, LONDON, "test")
    first = plan(charter, before, evaluate(charter, before, at("2026-01-06T10:00:00Z")), 0)
    made = [f for f in first.create if f.clock == "reply"]
    assert [(f.state, f.key) for f in made] == [("at_risk", "crmsync:A-1:reply:0:at_risk")]
    paused = complaint_from_json(
        {"id": "A-1", "events": {**received, "paused": "2026-01-06T10:30:00Z"}},
        LONDON,
        "test",
    )
    now = at("2026-01-06T11:00:00Z")
    later = plan(
        charter,
        paused,
        evaluate(charter, paused, now),
        now,
        [OpenFollowUp(made[0].key, "reply", 0, "at_risk", at("2026-01-06T10:00:00Z"))],
    )
    assert later.create == ()  # reply paused; plain (no warning) on track until Tue 12:00
    assert later.complete == ("crmsync:A-1:reply:0:at_risk",)
    assert later.flags.status == "on_track"


# ----------------------------------------------------------------------------- reports
def test_a_paused_instance_is_open_and_counted_as_paused(charter: Charter) -> None:
    """Received Mon 12:00, paused Mon 15:00 and still open at Tue 12:00: the reply instance is
    open, due as the pause has moved it so far (Tue 12:00 + 5 h of opening time, Mon 15-17 and
    Tue 09-12 -> Tue 17:00), and counted in the `paused` figure; the plain clock is not."""
    data = {
        "id": "R-1",
        "events": {"received": "2026-01-05T12:00:00Z", "paused": "2026-01-05T15:00:00Z"},
        "attributes": {"description": "x"},
    }
    parsed = complaint_from_json(data, LONDON, "test")
    now = at("2026-01-06T12:00:00Z")
    instances, undated = clock_instances(charter, parsed, now)
    by_id = {i.clock: i for i in instances}
    assert undated == []
    reply = by_id["reply"]
    assert (utc(reply.due), reply.end, reply.outcome, reply.paused) == (
        "2026-01-06T17:00:00Z",
        None,
        ReportOutcome.OPEN,
        True,
    )
    # resolve: Thu 15 Jan 12:00 + 21 h elapsed
    assert utc(by_id["resolve"].due) == "2026-01-16T09:00:00Z"
    assert by_id["plain"].paused is False
    tally = Tally(Period.MONTH, None, date(2026, 1, 1), date(2026, 1, 31))
    tally.add(charter, parsed, instances, undated)
    rows = {r["clock"]: r for r in tally.figures(charter).rows}
    assert (rows["reply"]["open"], rows["reply"]["paused"]) == (1, 1)
    assert (rows["plain"]["breached"], rows["plain"]["paused"]) == (0, 0)
    # registration is met (its description is filled), yet a completeness clock has no stop
    # instant, so the pause at or before its due counted (section 4.5) and so is figured
    assert (rows["registration"]["met"], rows["registration"]["paused"]) == (1, 1)


def test_a_pause_that_ended_still_counts_in_the_paused_figure(charter: Charter) -> None:
    """The reply stopped inside a pause (met against the moved due Tue 16:00) is a met
    instance that counted a pause."""
    data = {
        "id": "R-2",
        "events": {
            "received": "2026-01-05T12:00:00Z",
            "paused": "2026-01-05T15:00:00Z",
            "replied": "2026-01-06T11:00:00Z",
        },
    }
    parsed = complaint_from_json(data, LONDON, "test")
    instances, _ = clock_instances(charter, parsed, at("2026-01-06T12:00:00Z"))
    reply = next(i for i in instances if i.clock == "reply")
    assert (utc(reply.due), utc(reply.end), reply.outcome, reply.paused) == (
        "2026-01-06T16:00:00Z",
        "2026-01-06T11:00:00Z",
        ReportOutcome.MET,
        True,
    )


def test_the_service_desk_report_counts_paused_instances_and_the_page_says_so(
    tmp_path: Path,
) -> None:
    """The example charter's report: a complaint waiting on the customer since Mon 11:00 is
    open on both clocks and counted as paused; one acknowledged at once is not. The JSON
    totals carry the paused figure and the HTML page a paused column and sentence."""
    source = tmp_path / "in.jsonl"
    waiting = {"received": "2026-01-05T10:00:00Z", "paused": "2026-01-05T11:00:00Z"}
    answered = {"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-05T12:00:00Z"}
    source.write_text(
        json.dumps({"id": "W-1", "events": waiting})
        + "\n"
        + json.dumps({"id": "A-1", "events": answered})
        + "\n",
        encoding="utf-8",
    )
    base = ["report", "-c", str(SERVICE_DESK), "-i", str(source), "--now"]
    base += ["2026-01-07T12:00:00Z", "--from", "2026-01-01", "--to", "2026-01-31"]
    result = CliRunner().invoke(app, [*base, "--period", "all", "--format", "json"])
    assert result.exit_code == 0, result.output
    totals = {t["clock"]: t for t in json.loads(result.stdout)["totals"]}
    figures = {c: (t["due"], t["met"], t["open"], t["paused"]) for c, t in totals.items()}
    assert figures == {"first-reply": (2, 1, 1, 1), "resolved": (2, 0, 2, 1)}
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, [*base, "--format", "html", "-o", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "<th>paused</th>" in text
    assert "Paused: first-reply 1, resolved 1 of the instances counted a pause" in text
