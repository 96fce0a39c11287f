"""The clock rules of semantics section 4 and the complaint rules of sections 1 and 6.

Every test uses the small charter below: Europe/London, Mon-Fri 09:00-17:00, no holidays.
Winter dates (January, early March 2026) are GMT, so local time equals UTC and the
expected instants can be read straight off the calendar:

    Mon 5 Jan 2026 ... Fri 9 Jan; Mon 12 Jan; Mon 19 Jan; Mon 26 Jan; Mon 2 Feb
    Mon 2 Mar 2026, Tue 3 Mar, Wed 4 Mar

June dates are BST (UTC+1), used where the charter's zone matters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.evaluation import ClockResult, State, evaluate
from crmsync.errors import BadComplaintError
from crmsync.mapping.charter_file import load_charter_text

CHARTER_YAML = """\
charter: clock-rules
title: Clock rules
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
    tue: ["09:00-17:00"]
    wed: ["09:00-17:00"]
    thu: ["09:00-17:00"]
    fri: ["09:00-17:00"]
clocks:
  - id: reply
    start: received
    stop: [acknowledged, decision]
    target: 2 business_days
    warn_after: 1 business_days
  - id: email-only
    when: {channel: email}
    start: received
    stop: decision
    target: 1 business_days
  - id: senior
    when: {level: [2, 3]}
    start: received
    stop: decision
    target: 10 business_days
  - id: promised
    start: received
    stop: decision
    target_field: expected_decision
  - id: interim
    start: customer_update
    every: 14 days
    reset: customer_update
    stop: decision
  - id: check-in
    start: received
    every: 7 days
    reset: [customer_update, callback]
  - id: registration
    start: received
    require: [registered_by, complainant_type, description]
    target: 1 business_days
    warn_after: 4 business_hours
"""

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def charter() -> Charter:
    return load_charter_text(CHARTER_YAML, "clock-rules.yaml")


def at(text: str) -> int:
    """Epoch seconds of an ISO date-time with offset (standard library, not the code under test)."""
    return int(datetime.fromisoformat(text).timestamp())


def complaint(
    events: dict[str, Any] | None = None, attributes: dict[str, Any] | None = None
) -> Complaint:
    data = {"id": "C-1", "events": events or {}, "attributes": attributes or {}}
    return complaint_from_json(data, LONDON, "line 1")


def results(
    charter: Charter,
    now: str,
    events: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, ClockResult]:
    return {r.clock: r for r in evaluate(charter, complaint(events, attributes), at(now))}


def clock(
    charter: Charter,
    clock_id: str,
    now: str,
    events: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> ClockResult:
    return results(charter, now, events, attributes)[clock_id]


RECEIVED = "2026-03-02T10:00:00Z"  # Mon 2 Mar 10:00
# reply (2 business_days, warn 1 business_days) from Mon 10:00: day 0 is Monday (open until
# 17:00), the 1st working day after it is Tue, the 2nd is Wed; both close at 17:00.
REPLY_DUE = "2026-03-04T17:00:00Z"  # Wed 4 Mar 17:00
REPLY_WARN = "2026-03-03T17:00:00Z"  # Tue 3 Mar 17:00


# --------------------------------------------------------------------------- 4.1 deadline


def test_deadline_is_pending_before_its_start_event(charter: Charter) -> None:
    """Without a start event the clock is pending with every instant null."""
    r = clock(charter, "reply", "2026-03-05T12:00:00Z")
    assert (r.state, r.started_at, r.due_at, r.warn_at, r.stopped_at, r.occurrence) == (
        State.PENDING,
        None,
        None,
        None,
        None,
        0,
    )


def test_deadline_start_after_now_is_pending(charter: Charter) -> None:
    """A start event one second after now has not happened yet: pending."""
    r = clock(charter, "reply", "2026-03-02T09:59:59Z", {"received": RECEIVED})
    assert r.state is State.PENDING
    assert r.started_at is None


def test_deadline_starts_at_the_earliest_start_instant(charter: Charter) -> None:
    """Several start instants, listed out of order: S is the earliest one."""
    r = clock(
        charter,
        "reply",
        "2026-03-03T12:00:00Z",
        {"received": ["2026-03-03T10:00:00Z", RECEIVED]},
    )
    assert r.started_at == at(RECEIVED)
    assert r.due_at == at(REPLY_DUE)
    assert r.warn_at == at(REPLY_WARN)
    assert r.state is State.ON_TRACK


def test_deadline_ignores_a_stop_before_the_start(charter: Charter) -> None:
    """An acknowledgement dated before the complaint was received does not meet the clock."""
    r = clock(
        charter,
        "reply",
        "2026-03-05T09:00:00Z",
        {"received": RECEIVED, "acknowledged": "2026-03-01T12:00:00Z"},
    )
    assert r.stopped_at is None
    assert r.state is State.BREACHED


def test_deadline_stop_at_the_start_instant_counts(charter: Charter) -> None:
    """S <= E: a stop at the very start instant meets the clock."""
    r = clock(
        charter, "reply", "2026-03-05T09:00:00Z", {"received": RECEIVED, "acknowledged": RECEIVED}
    )
    assert (r.state, r.stopped_at) == (State.MET, at(RECEIVED))


def test_deadline_stops_at_the_earliest_of_several_stop_events(charter: Charter) -> None:
    """E is the earliest instant over every stop event and every instant of each."""
    r = clock(
        charter,
        "reply",
        "2026-03-10T09:00:00Z",
        {
            "received": RECEIVED,
            "acknowledged": "2026-03-03T12:00:00Z",
            "decision": ["2026-03-04T09:00:00Z", "2026-03-03T11:00:00Z"],
        },
    )
    assert (r.state, r.stopped_at) == (State.MET, at("2026-03-03T11:00:00Z"))


def test_deadline_ignores_a_stop_after_now(charter: Charter) -> None:
    """As of Tue 11:00 an acknowledgement at Tue 12:00 has not happened: still running."""
    r = clock(
        charter,
        "reply",
        "2026-03-03T11:00:00Z",
        {"received": RECEIVED, "acknowledged": "2026-03-03T12:00:00Z"},
    )
    assert (r.state, r.stopped_at) == (State.ON_TRACK, None)


def test_deadline_now_equal_to_due_is_not_breached(charter: Charter) -> None:
    """At exactly D the clock is not breached (past its warning, so at_risk)."""
    r = clock(charter, "reply", REPLY_DUE, {"received": RECEIVED})
    assert r.state is State.AT_RISK


def test_deadline_one_second_after_due_is_breached(charter: Charter) -> None:
    """now > D with no stop: breached."""
    r = clock(charter, "reply", "2026-03-04T17:00:01Z", {"received": RECEIVED})
    assert r.state is State.BREACHED


def test_deadline_stop_equal_to_due_is_met(charter: Charter) -> None:
    """E == D is on time."""
    r = clock(
        charter, "reply", "2026-03-09T09:00:00Z", {"received": RECEIVED, "decision": REPLY_DUE}
    )
    assert (r.state, r.stopped_at) == (State.MET, at(REPLY_DUE))


def test_deadline_stop_after_due_is_met_late(charter: Charter) -> None:
    """E one second after D is late, and stays met_late at any later now."""
    r = clock(
        charter,
        "reply",
        "2026-03-09T09:00:00Z",
        {"received": RECEIVED, "decision": "2026-03-04T17:00:01Z"},
    )
    assert r.state is State.MET_LATE


@pytest.mark.parametrize(
    ("now", "state"),
    [
        ("2026-03-03T16:59:59Z", State.ON_TRACK),
        (REPLY_WARN, State.AT_RISK),
        ("2026-03-04T09:00:00Z", State.AT_RISK),
    ],
)
def test_deadline_turns_at_risk_exactly_at_the_warning(
    charter: Charter, now: str, state: State
) -> None:
    """W = Tue 17:00 (1 business day): on_track one second before, at_risk from W on."""
    assert clock(charter, "reply", now, {"received": RECEIVED}).state is state


@pytest.mark.parametrize(
    ("attributes", "applies"),
    [
        ({"channel": "email"}, True),
        ({"channel": "phone"}, False),
        ({}, False),  # attribute missing
        ({"channel": None}, False),  # attribute empty
        ({"channel": "Email"}, False),  # strings compare exactly
    ],
)
def test_when_equality(charter: Charter, attributes: dict[str, Any], applies: bool) -> None:
    """`when: {channel: email}`: reported only when the attribute equals the value."""
    found = results(charter, "2026-03-02T12:00:00Z", {"received": RECEIVED}, attributes)
    assert ("email-only" in found) is applies


@pytest.mark.parametrize(
    ("level", "applies"),
    [
        (2, True),
        (3, True),
        (1, False),
        (4, False),
        ("2", True),  # chosen: a numeric text equals its number (CRMs send picklists as text)
        (3.0, True),  # numbers compare numerically
        ("two", False),
        (True, False),  # booleans only equal booleans
    ],
)
def test_when_membership(charter: Charter, level: object, applies: bool) -> None:
    """`when: {level: [2, 3]}`: reported only when the attribute is one of the values."""
    found = results(charter, "2026-03-02T12:00:00Z", {"received": RECEIVED}, {"level": level})
    assert ("senior" in found) is applies


def test_clocks_are_reported_in_charter_order(charter: Charter) -> None:
    """Output order is the charter's clock order; clocks whose `when` fails are left out."""
    found = evaluate(charter, complaint({"received": RECEIVED}, {"level": 2}), at(RECEIVED))
    assert [r.clock for r in found] == [
        "reply",
        "senior",
        "promised",
        "interim",
        "check-in",
        "registration",
    ]


# target_field: the complaint is received Mon 1 Jun 2026 09:00 BST (08:00Z).
JUNE_RECEIVED = "2026-06-01T09:00:00+01:00"


def test_target_field_date_alone_means_the_next_local_midnight(charter: Charter) -> None:
    """`2026-06-10` in Europe/London (BST) ends at 2026-06-11 00:00+01:00 = 2026-06-10T23:00Z."""
    events = {"received": JUNE_RECEIVED}
    attributes = {"expected_decision": "2026-06-10"}
    due = at("2026-06-10T23:00:00+00:00")
    before = clock(charter, "promised", "2026-06-10T23:00:00Z", events, attributes)
    after = clock(charter, "promised", "2026-06-10T23:00:01Z", events, attributes)
    assert (before.due_at, before.state) == (due, State.ON_TRACK)
    assert after.state is State.BREACHED


def test_target_field_date_time_is_the_deadline_itself(charter: Charter) -> None:
    """A date-time with offset is the deadline, converted to UTC."""
    r = clock(
        charter,
        "promised",
        "2026-06-12T12:00:00Z",
        {"received": JUNE_RECEIVED, "decision": "2026-06-10T10:00:00Z"},
        {"expected_decision": "2026-06-10T12:00:00+02:00"},
    )
    assert (r.due_at, r.state, r.stopped_at) == (
        at("2026-06-10T10:00:00+00:00"),
        State.MET,
        at("2026-06-10T10:00:00+00:00"),
    )


@pytest.mark.parametrize("value", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_target_field_missing_is_pending_with_no_due(charter: Charter, value: object) -> None:
    """No promised date: the clock has started but its deadline is unknown -> pending."""
    attributes = {} if value is None else {"expected_decision": value}
    r = clock(charter, "promised", "2026-06-30T12:00:00Z", {"received": JUNE_RECEIVED}, attributes)
    assert (r.state, r.started_at, r.due_at) == (State.PENDING, at(JUNE_RECEIVED), None)


@pytest.mark.parametrize(
    "value",
    ["next Tuesday", "2026-06-31", "2026-06-10T12:00:00", 20260610, True, "0206-06-10"],
    ids=["words", "no-such-day", "naive", "number", "boolean", "year-206"],
)
def test_target_field_malformed_is_a_bad_complaint(charter: Charter, value: object) -> None:
    """A target_field value that is not a date or instant rejects the complaint, by id."""
    with pytest.raises(BadComplaintError) as caught:
        results(
            charter,
            "2026-06-05T12:00:00Z",
            {"received": JUNE_RECEIVED},
            {"expected_decision": value},
        )
    assert caught.value.ref == "C-1"
    assert "expected_decision" in caught.value.reason


def test_target_field_malformed_is_rejected_before_the_clock_starts(charter: Charter) -> None:
    """Chosen: the rejection does not depend on now (same answer before the start event)."""
    with pytest.raises(BadComplaintError, match="expected_decision"):
        results(charter, "2026-06-05T12:00:00Z", {}, {"expected_decision": "soon"})


# --------------------------------------------------------------------------- 4.2 recurring
# interim: start customer_update, reset customer_update (the Square Mile shape), every 14
# days, stop decision. In January London is on GMT, so D = R + 14 x 24 h.


def test_recurring_is_pending_before_its_start(charter: Charter) -> None:
    """No customer update yet: pending, occurrence 0, no breaches."""
    r = clock(charter, "interim", "2026-01-20T00:00:00Z", {"received": "2026-01-05T10:00:00Z"})
    assert (r.state, r.occurrence, r.breaches, r.due_at) == (State.PENDING, 0, 0, None)


def test_recurring_start_after_now_is_pending(charter: Charter) -> None:
    """The first update after now has not happened yet."""
    r = clock(
        charter, "interim", "2026-01-05T09:00:00Z", {"customer_update": "2026-01-05T10:00:00Z"}
    )
    assert r.state is State.PENDING


def test_recurring_first_cycle(charter: Charter) -> None:
    """One update Mon 5 Jan 10:00 opens cycle 0, due Mon 19 Jan 10:00."""
    r = clock(
        charter, "interim", "2026-01-12T00:00:00Z", {"customer_update": "2026-01-05T10:00:00Z"}
    )
    assert (r.state, r.occurrence, r.started_at, r.due_at, r.stopped_at, r.breaches) == (
        State.ON_TRACK,
        0,
        at("2026-01-05T10:00:00+00:00"),
        at("2026-01-19T10:00:00+00:00"),
        None,
        0,
    )


def test_recurring_counts_occurrences_from_events_out_of_order(charter: Charter) -> None:
    """Updates Jan 23, Jan 5, Jan 19 (unsorted): R0 Jan 5, R1 Jan 19 (== D0, met), R2 Jan 23.

    The start event is also the reset event: R0 itself does not reset (R(k+1) > Rk).
    """
    r = clock(
        charter,
        "interim",
        "2026-02-01T00:00:00Z",
        {
            "customer_update": [
                "2026-01-23T10:00:00Z",
                "2026-01-05T10:00:00Z",
                "2026-01-19T10:00:00Z",
            ]
        },
    )
    assert (r.occurrence, r.started_at, r.due_at, r.state, r.breaches) == (
        2,
        at("2026-01-23T10:00:00+00:00"),
        at("2026-02-06T10:00:00+00:00"),
        State.ON_TRACK,
        0,
    )


def test_recurring_reset_one_second_late_counts_a_breach(charter: Charter) -> None:
    """D0 = Jan 19 10:00; a reset at 10:00:01 closed cycle 0 met_late; cycle 1 runs from it."""
    r = clock(
        charter,
        "interim",
        "2026-01-20T00:00:00Z",
        {"customer_update": ["2026-01-05T10:00:00Z", "2026-01-19T10:00:01Z"]},
    )
    assert (r.occurrence, r.state, r.breaches, r.due_at) == (
        1,
        State.ON_TRACK,
        1,
        at("2026-02-02T10:00:01+00:00"),
    )


@pytest.mark.parametrize(
    ("now", "state", "breaches"),
    [
        ("2026-01-19T10:00:00Z", State.ON_TRACK, 0),
        ("2026-01-19T10:00:01Z", State.BREACHED, 1),
    ],
)
def test_recurring_current_cycle_breached(
    charter: Charter, now: str, state: State, breaches: int
) -> None:
    """Cycle 0 due Jan 19 10:00 with no reset: on time at D0, breached (and counted) after."""
    r = clock(charter, "interim", now, {"customer_update": "2026-01-05T10:00:00Z"})
    assert (r.state, r.breaches, r.occurrence) == (state, breaches, 0)


def test_recurring_late_reset_and_breached_current_cycle_both_count(charter: Charter) -> None:
    """Reset Jan 20 (after D0 Jan 19) and cycle 1 overdue past Feb 3 10:00: two breaches."""
    r = clock(
        charter,
        "interim",
        "2026-02-03T10:00:01Z",
        {"customer_update": ["2026-01-05T10:00:00Z", "2026-01-20T10:00:00Z"]},
    )
    assert (r.occurrence, r.state, r.breaches, r.due_at) == (
        1,
        State.BREACHED,
        2,
        at("2026-02-03T10:00:00+00:00"),
    )


def test_recurring_stop_ends_the_clock_met(charter: Charter) -> None:
    """Decision Jan 20 inside cycle 1 (Jan 12 -> due Jan 26): met for good, even much later."""
    r = clock(
        charter,
        "interim",
        "2026-03-01T00:00:00Z",
        {
            "customer_update": ["2026-01-05T10:00:00Z", "2026-01-12T10:00:00Z"],
            "decision": "2026-01-20T10:00:00Z",
        },
    )
    assert (r.state, r.occurrence, r.stopped_at, r.due_at, r.breaches) == (
        State.MET,
        1,
        at("2026-01-20T10:00:00+00:00"),
        at("2026-01-26T10:00:00+00:00"),
        0,
    )


def test_recurring_stop_after_the_cycle_due_is_met_late(charter: Charter) -> None:
    """Decision Jan 20 after D0 Jan 19 10:00 with no update between: met_late, one breach."""
    r = clock(
        charter,
        "interim",
        "2026-03-01T00:00:00Z",
        {"customer_update": "2026-01-05T10:00:00Z", "decision": "2026-01-20T10:00:00Z"},
    )
    assert (r.state, r.occurrence, r.breaches) == (State.MET_LATE, 0, 1)


def test_recurring_resets_at_or_after_the_stop_open_no_cycle(charter: Charter) -> None:
    """Updates at the decision instant (Jan 12) and after it (Jan 14) do not open cycles."""
    r = clock(
        charter,
        "interim",
        "2026-02-01T00:00:00Z",
        {
            "customer_update": [
                "2026-01-05T10:00:00Z",
                "2026-01-12T10:00:00Z",
                "2026-01-14T10:00:00Z",
            ],
            "decision": "2026-01-12T10:00:00Z",
        },
    )
    assert (r.state, r.occurrence, r.started_at, r.due_at, r.stopped_at, r.breaches) == (
        State.MET,
        0,
        at("2026-01-05T10:00:00+00:00"),
        at("2026-01-19T10:00:00+00:00"),
        at("2026-01-12T10:00:00+00:00"),
        0,
    )


def test_recurring_ignores_a_stop_before_its_first_cycle(charter: Charter) -> None:
    """A decision dated before the first update does not end the clock."""
    r = clock(
        charter,
        "interim",
        "2026-01-10T00:00:00Z",
        {"customer_update": "2026-01-05T10:00:00Z", "decision": "2026-01-01T10:00:00Z"},
    )
    assert (r.state, r.stopped_at) == (State.ON_TRACK, None)


def test_recurring_ignores_resets_and_stops_after_now(charter: Charter) -> None:
    """As of Jan 19 12:00 the Jan 20 update and decision have not happened: cycle 0 breached."""
    r = clock(
        charter,
        "interim",
        "2026-01-19T12:00:00Z",
        {
            "customer_update": ["2026-01-05T10:00:00Z", "2026-01-20T10:00:00Z"],
            "decision": "2026-01-20T11:00:00Z",
        },
    )
    assert (r.state, r.occurrence, r.breaches, r.stopped_at) == (State.BREACHED, 0, 1, None)


def test_recurring_with_separate_start_and_reset_events(charter: Charter) -> None:
    """check-in: R0 = received Jan 5 10:00 (the Jan 2 update is before R0 and ignored);
    callback Jan 9 (<= D0 Jan 12, met) opens cycle 1 due Jan 16; update Jan 20 is late
    (one breach) and opens cycle 2 due Jan 27 10:00."""
    r = clock(
        charter,
        "check-in",
        "2026-01-21T00:00:00Z",
        {
            "received": "2026-01-05T10:00:00Z",
            "customer_update": ["2026-01-02T10:00:00Z", "2026-01-20T10:00:00Z"],
            "callback": "2026-01-09T10:00:00Z",
        },
    )
    assert (r.occurrence, r.breaches, r.started_at, r.due_at, r.state, r.stopped_at) == (
        2,
        1,
        at("2026-01-20T10:00:00+00:00"),
        at("2026-01-27T10:00:00+00:00"),
        State.ON_TRACK,
        None,
    )


# --------------------------------------------------------------------------- 4.3 completeness
# registration: from received Mon 2 Mar 10:00, due 1 business day = Tue 3 Mar 17:00,
# warning after 4 business hours = Mon 14:00.
REQUIRED_ALL = {"registered_by": "Ann", "complainant_type": "client", "description": "late pay"}


def test_completeness_is_pending_before_its_start(charter: Charter) -> None:
    """Before received it is pending (like every clock), still listing what is missing."""
    r = clock(charter, "registration", "2026-03-05T00:00:00Z", {}, {"registered_by": "Ann"})
    assert (r.state, r.started_at, r.due_at, r.missing) == (
        State.PENDING,
        None,
        None,
        ("complainant_type", "description"),
    )


def test_completeness_met_when_everything_required_is_present(charter: Charter) -> None:
    """All three attributes present: met, even long after the deadline, with nothing missing."""
    r = clock(charter, "registration", "2026-03-20T00:00:00Z", {"received": RECEIVED}, REQUIRED_ALL)
    assert (r.state, r.missing, r.due_at, r.stopped_at) == (
        State.MET,
        (),
        at("2026-03-03T17:00:00+00:00"),
        None,
    )


def test_completeness_blank_text_and_empty_list_count_as_missing(charter: Charter) -> None:
    """A whitespace-only text and an empty list are missing; the rest are present."""
    attributes = {"registered_by": "   ", "complainant_type": "client", "description": []}
    r = clock(charter, "registration", "2026-03-02T11:00:00Z", {"received": RECEIVED}, attributes)
    assert (r.state, r.missing) == (State.ON_TRACK, ("registered_by", "description"))


def test_completeness_missing_is_listed_in_charter_order(charter: Charter) -> None:
    """`missing` follows the charter's `require` order, not the complaint's attribute order."""
    attributes = {"description": None, "complainant_type": "", "registered_by": ""}
    r = clock(charter, "registration", "2026-03-02T11:00:00Z", {"received": RECEIVED}, attributes)
    assert r.missing == ("registered_by", "complainant_type", "description")


@pytest.mark.parametrize(
    ("now", "state"),
    [
        ("2026-03-02T13:59:59Z", State.ON_TRACK),
        ("2026-03-02T14:00:00Z", State.AT_RISK),
        ("2026-03-03T17:00:00Z", State.AT_RISK),
        ("2026-03-03T17:00:01Z", State.BREACHED),
    ],
)
def test_completeness_incomplete_follows_the_deadline_rules(
    charter: Charter, now: str, state: State
) -> None:
    """Something missing: on_track, at_risk from W (Mon 14:00), breached after D (Tue 17:00)."""
    r = clock(charter, "registration", now, {"received": RECEIVED}, {"registered_by": "Ann"})
    assert r.state is state
    assert r.warn_at == at("2026-03-02T14:00:00+00:00")


# --------------------------------------------------------------------------- complaints (1, 6)


def test_instants_with_z_and_offset_are_read_as_utc() -> None:
    """`Z` and `+hh:mm` offsets both give the UTC instant."""
    c = complaint({"received": "2026-03-02T10:00:00+01:00", "decision": "2026-03-02T09:00:00Z"})
    assert c.events["received"] == (at("2026-03-02T09:00:00+00:00"),)
    assert c.events["decision"] == (at("2026-03-02T09:00:00+00:00"),)


@pytest.mark.parametrize(
    ("day", "midnight"),
    [
        ("2026-06-01", "2026-05-31T23:00:00+00:00"),  # BST: local midnight is 23:00 UTC
        ("2026-03-02", "2026-03-02T00:00:00+00:00"),  # GMT
    ],
)
def test_a_date_alone_is_local_midnight_in_the_charter_zone(day: str, midnight: str) -> None:
    """A date-only event is the start of that day in the charter's zone."""
    assert complaint({"received": day}).events["received"] == (at(midnight),)


def test_a_date_alone_starts_the_clock_at_local_midnight(charter: Charter) -> None:
    """Through evaluation: received `2026-06-01` starts at 2026-05-31T23:00Z (London, BST)."""
    r = clock(charter, "reply", "2026-06-01T12:00:00Z", {"received": "2026-06-01"})
    assert r.started_at == at("2026-05-31T23:00:00+00:00")


def test_a_naive_date_time_is_rejected_with_the_id() -> None:
    """No offset: the complaint is bad input, reported by its id and the event's name."""
    with pytest.raises(BadComplaintError) as caught:
        complaint_from_json(
            {"id": "C-7", "events": {"received": "2026-03-02T10:00:00"}}, LONDON, "line 3"
        )
    assert caught.value.ref == "C-7"
    assert "received" in caught.value.reason
    assert "2026-03-02T10:00:00" in caught.value.reason


@pytest.mark.parametrize(
    "value",
    [
        1772445600,
        {"at": "2026-03-02T10:00:00Z"},
        ["2026-03-02T10:00:00Z", 5],
        True,
        "yesterday",
        "2026-02-30",
        [None],
        "0206-03-02T10:00:00Z",  # chosen: years outside 1970..2199 are typos, not dates
        "9999-12-31",
    ],
    ids=[
        "number",
        "object",
        "list-with-number",
        "boolean",
        "words",
        "no-such-day",
        "list-with-null",
        "year-206",
        "year-9999",
    ],
)
def test_an_event_value_that_is_not_an_instant_is_rejected(value: object) -> None:
    """Event values must be instants or lists of instants; anything else rejects the complaint."""
    with pytest.raises(BadComplaintError) as caught:
        complaint_from_json({"id": "C-8", "events": {"decision": value}}, LONDON, "line 4")
    assert caught.value.ref == "C-8"
    assert "decision" in caught.value.reason


@pytest.mark.parametrize(
    "data",
    [{"events": {}}, {"id": None}, {"id": ""}, {"id": "  "}, {"id": True}, ["C-9"]],
    ids=["absent", "null", "empty", "blank", "boolean", "not-an-object"],
)
def test_a_complaint_without_an_id_is_rejected_by_line(data: object) -> None:
    """No usable id: the error names the line instead."""
    with pytest.raises(BadComplaintError) as caught:
        complaint_from_json(data, LONDON, "line 12")
    assert caught.value.ref == "line 12"


def test_a_null_event_value_means_the_event_has_not_happened(charter: Charter) -> None:
    """Chosen behaviour: `null` (an empty CRM field) is treated as absent, not as bad input."""
    c = complaint({"received": RECEIVED, "decision": None, "acknowledged": []})
    assert "decision" not in c.events
    r = clock(
        charter,
        "reply",
        "2026-03-02T12:00:00Z",
        {"received": RECEIVED, "decision": None, "acknowledged": []},
    )
    assert (r.state, r.stopped_at) == (State.ON_TRACK, None)
