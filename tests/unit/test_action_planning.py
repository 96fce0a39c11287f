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


def _plan_at(events: dict[str, object], now: str, open_items: list[OpenFollowUp] | None = None):  # type: ignore[no-untyped-def]
    charter = load_charter_text(CHARTER)
    complaint = complaint_from_json(
        {"id": "C1", "events": events, "attributes": {}}, charter.calendar.zone, "t"
    )
    instant = ts(now)
    results = evaluate(charter, complaint, instant)
    return plan(charter, complaint, results, instant, open_items or [])


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
