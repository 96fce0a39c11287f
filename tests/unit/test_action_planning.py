"""Action planning: write-back flags, follow-ups to create and to complete (reference-org.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from crmsync.domain.action_planning import (
    OpenFollowUp,
    compute_flags,
    follow_up_key,
    next_check,
    notice_key,
    plan,
)
from crmsync.domain.charter import ClockKind
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import ClockResult, State, evaluate
from crmsync.mapping.charter_file import load_charter_text

CHARTER = """
charter: t
title: Test
calendar:
  timezone: UTC
  hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
          thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
clocks:
  - id: reply
    start: received
    stop: [acknowledged]
    target: 2 days
    warn_after: 1 days
  - id: decision
    start: received
    stop: [decision]
    target: 10 days
  - id: updates
    kind: recurring
    start: customer_update
    reset: customer_update
    stop: [decision]
    every: 7 days
notices:
  - id: mediation
    on: escalated_l4
    to: manager
    due: 1 business_days
"""


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def r(
    clock: str,
    state: State,
    *,
    started: int | None = 1,
    due: int | None = 100,
    warn: int | None = None,
    occurrence: int = 0,
    kind: ClockKind = ClockKind.DEADLINE,
) -> ClockResult:
    return ClockResult(clock, kind, state, started, due, warn, None, occurrence)


def test_status_is_the_worst_started_clock_and_met_late_counts_as_breached() -> None:
    """met < on_track < at_risk < breached; met_late is breached; pending clocks are ignored."""
    flags = compute_flags(
        [
            r("a", State.MET),
            r("b", State.MET_LATE),
            r("c", State.ON_TRACK, due=50),
            r("d", State.PENDING, started=None, due=None),
        ]
    )
    assert flags.status == "breached"
    assert flags.breaches == "b"
    assert flags.next_due == "1970-01-01T00:00:50Z"


def test_no_started_clock_means_on_track_and_empty_breaches() -> None:
    """A complaint whose clocks have not started is on_track with no breaches and no due."""
    flags = compute_flags([r("a", State.PENDING, started=None, due=None)])
    assert (flags.status, flags.breaches, flags.next_due) == ("on_track", "", None)


def test_breaches_are_sorted_and_semicolon_joined() -> None:
    """Ids of breached or met_late clocks, sorted, ';'-separated."""
    flags = compute_flags(
        [r("zeta", State.BREACHED), r("alpha", State.MET_LATE), r("mid", State.AT_RISK, due=70)]
    )
    assert flags.breaches == "alpha;zeta"
    assert flags.status == "breached"


def test_next_due_is_the_earliest_due_of_running_clocks_only() -> None:
    """A breached clock's due does not count for Charter_Next_Due__c."""
    flags = compute_flags(
        [
            r("a", State.BREACHED, due=10),
            r("b", State.AT_RISK, due=90),
            r("c", State.ON_TRACK, due=80),
        ]
    )
    assert flags.next_due == "1970-01-01T00:01:20Z"


def test_next_check_is_warning_or_one_second_after_due() -> None:
    """A running clock changes at its warning instant, and one second after its due."""
    assert next_check([r("a", State.ON_TRACK, due=100, warn=60)], now=10) == 60
    assert next_check([r("a", State.AT_RISK, due=100, warn=60)], now=70) == 101
    assert next_check([r("a", State.MET), r("b", State.BREACHED)], now=70) is None


def test_follow_up_keys_follow_the_reference_format() -> None:
    """crmsync:{case}:{clock}:{occurrence}:{state}; notices use a prefix of their own."""
    assert follow_up_key("500A", "reply", 0, "at_risk") == "crmsync:500A:reply:0:at_risk"
    assert notice_key("500A", "mediation") == "crmsync-notice:500A:mediation"
    assert not notice_key("500A", "x").startswith("crmsync:")


def _plan_at(  # type: ignore[no-untyped-def]
    events: dict[str, object],
    now: str,
    open_items: list[OpenFollowUp] | None = None,
    *,
    since: str | None = None,
    attributes: dict[str, object] | None = None,
    charter_text: str = CHARTER,
):
    charter = load_charter_text(charter_text)
    complaint = complaint_from_json(
        {"id": "C1", "events": events, "attributes": attributes or {}}, charter.calendar.zone, "t"
    )
    instant = ts(now)
    results = evaluate(charter, complaint, instant)
    horizon = None if since is None else ts(since)
    return plan(charter, complaint, results, instant, open_items or [], follow_up_since=horizon)


def test_at_risk_goes_to_owner_and_breached_to_manager() -> None:
    """reply is at risk after 1 day (owner); after 2 days breached (manager)."""
    at_risk = _plan_at({"received": "2026-03-02T10:00:00Z"}, "2026-03-03T10:00:00")
    assert [(f.clock, f.state, f.to) for f in at_risk.create] == [("reply", "at_risk", "owner")]
    breached = _plan_at({"received": "2026-03-02T10:00:00Z"}, "2026-03-04T10:00:01")
    assert [(f.key, f.to) for f in breached.create] == [("crmsync:C1:reply:0:breached", "manager")]


def test_a_clock_met_when_first_seen_gets_no_follow_up() -> None:
    """met_late when first seen: no task (it is already over)."""
    p = _plan_at(
        {"received": "2026-03-02T10:00:00Z", "acknowledged": "2026-03-05T10:00:00Z"},
        "2026-03-06T10:00:00",
    )
    assert p.create == ()
    assert p.flags.breaches == "reply"


def test_open_follow_ups_complete_when_their_clock_stops() -> None:
    """Once acknowledged, the open reply follow-up is completed; the decision one stays open."""
    open_items = [OpenFollowUp("k-reply", "reply", 0), OpenFollowUp("k-dec", "decision", 0)]
    p = _plan_at(
        {"received": "2026-03-02T10:00:00Z", "acknowledged": "2026-03-05T10:00:00Z"},
        "2026-03-06T10:00:00",
        open_items,
    )
    assert p.complete == ("k-reply",)


def test_a_missed_recurring_cycle_gets_its_own_follow_up_and_closes_with_the_cycle() -> None:
    """Cycle 0 (due 9 Mar 10:00) breached -> missed_cycle task; a reset closes cycle 0's task."""
    late = _plan_at(
        {"received": "2026-03-02T10:00:00Z", "customer_update": ["2026-03-02T10:00:00Z"]},
        "2026-03-09T10:00:01",
    )
    cycle_tasks = [f for f in late.create if f.clock == "updates"]
    assert [(f.reason, f.occurrence, f.to) for f in cycle_tasks] == [("missed_cycle", 0, "manager")]
    reset = _plan_at(
        {
            "received": "2026-03-02T10:00:00Z",
            "customer_update": ["2026-03-02T10:00:00Z", "2026-03-10T09:00:00Z"],
        },
        "2026-03-10T10:00:00",
        [OpenFollowUp("k0", "updates", 0)],
    )
    assert "k0" in reset.complete


def test_notice_raised_once_its_event_happened_with_due_on_the_business_calendar() -> None:
    """escalated_l4 on Fri 6 Mar 12:00 -> mediation notice to the manager, due Mon 9 Mar 17:00."""
    before = _plan_at({"received": "2026-03-02T10:00:00Z"}, "2026-03-06T11:00:00")
    assert not [f for f in before.create if f.reason == "notice"]
    after = _plan_at(
        {"received": "2026-03-02T10:00:00Z", "escalated_l4": "2026-03-06T12:00:00Z"},
        "2026-03-06T13:00:00",
    )
    notices = [f for f in after.create if f.reason == "notice"]
    assert [(f.key, f.to, f.due_at) for f in notices] == [
        ("crmsync-notice:C1:mediation", "manager", ts("2026-03-09T17:00:00"))
    ]


def test_next_check_includes_event_instants_after_now() -> None:
    """An event dated after now (a callback booked for tomorrow) is the next check when it
    comes before any warning or deadline; events at or before now do not count."""
    events = {
        "received": "2026-03-02T10:00:00Z",
        "acknowledged": "2026-03-02T12:00:00Z",  # after now: the reply clock stops then
        "decision": ["2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z"],
    }
    p = _plan_at(events, "2026-03-02T10:30:00")
    assert p.next_check == ts("2026-03-02T11:00:00")
    later = _plan_at({"received": "2026-03-02T10:00:00Z"}, "2026-03-02T10:30:00")
    assert later.next_check == ts("2026-03-03T10:00:00")  # the reply warning, 1 day on


def test_no_follow_up_for_a_state_made_before_the_horizon() -> None:
    """breached is made at due_at, at_risk at warn_at: before the horizon, no follow-up (the
    flags still say breached); at or after it, the follow-up is due."""
    events = {"received": "2026-03-02T10:00:00Z"}  # reply: warn 3 Mar 10:00, due 4 Mar 10:00
    old = _plan_at(events, "2026-03-10T10:00:00", since="2026-03-04T10:00:01")
    assert [f.key for f in old.create] == []
    assert old.flags.status == "breached"
    assert old.flags.breaches == "reply"
    edge = _plan_at(events, "2026-03-10T10:00:00", since="2026-03-04T10:00:00")
    assert [f.key for f in edge.create] == ["crmsync:C1:reply:0:breached"]
    at_risk = _plan_at(events, "2026-03-03T12:00:00", since="2026-03-03T10:00:01")
    assert at_risk.create == ()
    at_risk_edge = _plan_at(events, "2026-03-03T12:00:00", since="2026-03-03T10:00:00")
    assert [f.key for f in at_risk_edge.create] == ["crmsync:C1:reply:0:at_risk"]


def test_no_notice_for_an_event_before_the_horizon() -> None:
    """A notice whose event happened before the horizon is history: not raised."""
    events = {"received": "2026-03-02T10:00:00Z", "escalated_l4": "2026-03-06T12:00:00Z"}
    before = _plan_at(events, "2026-03-06T13:00:00", since="2026-03-06T12:00:01")
    assert not [f for f in before.create if f.reason == "notice"]
    at = _plan_at(events, "2026-03-06T13:00:00", since="2026-03-06T12:00:00")
    assert [f.key for f in at.create if f.reason == "notice"] == ["crmsync-notice:C1:mediation"]


CLOSING_CHARTER = CHARTER.replace(
    "notices:",
    """  - id: root-cause
    kind: completeness
    start: closed
    require: [root_cause]
    target: 1 days
notices:""",
)


def test_a_closed_complaint_gets_follow_ups_only_for_clocks_started_at_or_after_closing() -> None:
    """Closed on 3 Mar 10:00 with reply and decision running: no follow-up for them (the
    flags still say breached), but root-cause, started by the closing, gets its own."""
    events = {"received": "2026-03-02T10:00:00Z", "closed": "2026-03-03T10:00:00Z"}
    p = _plan_at(events, "2026-03-20T10:00:00", charter_text=CLOSING_CHARTER)
    assert [f.key for f in p.create] == ["crmsync:C1:root-cause:0:breached"]
    assert p.flags.breaches == "decision;reply;root-cause"
    before_closing = _plan_at(
        {"received": "2026-03-02T10:00:00Z", "closed": "2026-03-21T10:00:00Z"},
        "2026-03-20T10:00:00",
        charter_text=CLOSING_CHARTER,
    )
    assert sorted(f.clock for f in before_closing.create) == ["decision", "reply"]


DEADLINE_FIELD_CHARTER = """
charter: t
title: Test
calendar:
  timezone: UTC
  hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
          thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
clocks:
  - id: promise
    start: received
    stop: [decision]
    target_field: expected_decision
"""


def test_a_follow_up_whose_state_no_longer_holds_is_completed_but_never_in_a_replay() -> None:
    """A breached follow-up is completed when its clock is running again (the promised date
    moved later), an at_risk one only when on_track; a cycle at a now earlier than the one
    that made the follow-up leaves it alone."""
    events = {"received": "2026-03-02T10:00:00Z"}
    made = ts("2026-03-06T10:00:00")
    breached = OpenFollowUp("k-b", "promise", 0, "breached", made)
    moved = _plan_at(
        events,
        "2026-03-07T10:00:00",
        [breached],
        attributes={"expected_decision": "2026-03-10"},
        charter_text=DEADLINE_FIELD_CHARTER,
    )
    assert moved.complete == ("k-b",)
    replay = _plan_at(
        events,
        "2026-03-05T10:00:00",
        [breached],
        attributes={"expected_decision": "2026-03-05"},
        charter_text=DEADLINE_FIELD_CHARTER,
    )
    assert replay.complete == ()
    still = _plan_at(
        events,
        "2026-03-07T10:00:00",
        [breached],
        attributes={"expected_decision": "2026-03-05"},
        charter_text=DEADLINE_FIELD_CHARTER,
    )
    assert still.complete == ()
    at_risk = OpenFollowUp("k-r", "reply", 0, "at_risk", ts("2026-03-03T10:00:00"))
    worse = _plan_at(events, "2026-03-04T12:00:00", [at_risk])  # reply now breached
    assert worse.complete == ()
