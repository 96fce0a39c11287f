"""Each domain word has one home: clock kinds answer their own questions, the flag statuses
are one ranked list, and the events a charter uses are derived from its clocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.adapters.crm import salesforce_metadata
from crmsync.domain.charter import clock_event_paths
from crmsync.domain.evaluation import State
from crmsync.domain.flag_status import FLAG_VALUES, RANK, WORST_FIRST, flag_state
from crmsync.domain.report import BREACHED_WORDS, clock_word
from crmsync.mapping.charter_file import load_charter, load_charter_text
from crmsync.mapping.charter_mapping_check import EVENT_KEYS

ROOT = Path(__file__).resolve().parents[2]

CHARTER = """\
charter: t
title: T
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
clocks:
  - id: reply
    start: received
    stop: [acknowledged, decision]
    target: 2 business_days
    extend: {on: extended, by: 10 business_days}
  - id: updates
    start: customer_update
    every: 14 days
    reset: customer_update
    stop: closed
  - id: promised
    start: received
    stop: decision
    target_field: expected_decision
  - id: registration
    start: received
    require: [description]
    target: 1 business_days
notices:
  - id: mediation
    on: escalated_l4
"""


def test_each_clock_kind_names_its_events_target_and_measure() -> None:
    """A clock answers which events it uses, its target text and the duration it counts
    with, whatever its kind."""
    charter = load_charter_text(CHARTER)
    reply, updates, promised, registration = charter.clocks
    assert reply.events() == ("received", "acknowledged", "decision", "extended")
    assert updates.events() == ("customer_update", "closed")
    assert promised.events() == ("received", "decision")
    assert registration.events() == ("received",)
    assert [c.target_text() for c in charter.clocks] == [
        "2 business_days",
        "every 14 days",
        "attribute 'expected_decision'",
        "1 business_days",
    ]
    assert str(reply.measure) == "2 business_days"
    assert str(updates.measure) == "14 days"
    assert promised.measure is None


def test_the_charter_events_are_derived_from_its_clocks_and_notices() -> None:
    """``event_names`` is every event a clock or notice uses, nothing listed twice by hand."""
    charter = load_charter_text(CHARTER)
    assert charter.event_names == {
        "received",
        "acknowledged",
        "decision",
        "extended",
        "customer_update",
        "closed",
        "escalated_l4",
    }


def test_the_mapping_check_reads_the_same_event_paths_as_the_model() -> None:
    """The charter check looks for event names exactly where the clock kinds keep them."""
    assert [path for section, path in EVENT_KEYS if section == "clocks"] == list(
        clock_event_paths()
    )
    assert ("notices", ("on",)) in EVENT_KEYS
    assert ("clocks", ("extend", "on")) in EVENT_KEYS


def test_flag_statuses_are_ranked_met_below_on_track_below_at_risk_below_breached() -> None:
    """The rank of reference-org.md: met < on_track < at_risk < breached."""
    assert RANK[State.MET] < RANK[State.ON_TRACK] < RANK[State.AT_RISK] < RANK[State.BREACHED]
    assert WORST_FIRST[0] == "breached"
    assert WORST_FIRST[-1] == "met"
    assert flag_state(State.MET_LATE) is State.BREACHED
    assert flag_state(State.PENDING) is State.ON_TRACK


def test_a_clock_is_said_late_or_overdue_never_breached() -> None:
    """``crmsync status`` names clock states in the report's words: met late is ``late``,
    past due and unanswered is ``overdue``; ``breached`` is the two together."""
    assert clock_word(State.MET_LATE) == "late"
    assert clock_word(State.BREACHED) == "overdue"
    assert clock_word(State.MET) == "met"
    assert [clock_word(s) for s in (State.ON_TRACK, State.AT_RISK, State.PAUSED)] == [
        "on_track",
        "at_risk",
        "paused",
    ]
    assert clock_word(State.PENDING) == "pending"
    assert "breached" not in {clock_word(s) for s in State}
    assert {"late", "overdue"} == BREACHED_WORDS


def test_the_picklist_of_the_metadata_kit_is_the_domain_list() -> None:
    """The Salesforce kit writes the picklist the domain defines, in its order."""
    assert salesforce_metadata.CHARTER_STATUSES == FLAG_VALUES
    assert FLAG_VALUES[:4] == ("on_track", "at_risk", "breached", "met")


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "mappings" / "charters").glob("*.yaml"))
)
def test_bundled_charters_event_names_cover_every_clock(name: str) -> None:
    """Every bundled charter's event list holds each of its clocks' start events."""
    charter = load_charter(ROOT / "mappings" / "charters" / name)
    for clock in charter.clocks:
        assert clock.start in charter.event_names
