"""The report engine (reports contract sections 1-4 and 6), on hand-worked examples.

Charter: Europe/London, Mon-Fri 09:00-17:00, no holidays. January 2026 is GMT (local time
is UTC); April 2026 is BST (UTC+1). Mon 5 Jan ... Fri 9 Jan; Mon 12 Jan; Mon 19 Jan.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.report import (
    Instance,
    Outcome,
    Period,
    Tally,
    achievement,
    clock_instances,
    due_date,
    flips,
    group_text,
    nearest_rank,
    period_name,
    replayed_follow_ups,
)
from crmsync.mapping.charter_file import load_charter_text

LONDON = ZoneInfo("Europe/London")
CHARTER_YAML = """\
charter: report-rules
title: Report rules
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
    stop: acknowledged
    target: 1 business_days
    warn_after: 4 business_hours
  - id: promised
    start: received
    stop: decision
    target_field: expected_decision
  - id: updates
    start: received
    every: 7 days
    reset: customer_update
    stop: decision
  - id: registration
    start: received
    require: [owner]
    target: 1 business_days
"""


@pytest.fixture(scope="module")
def charter() -> Charter:
    return load_charter_text(CHARTER_YAML, "report-rules.yaml")


def at(text: str) -> int:
    """Epoch seconds of an ISO date-time (standard library, not the code under test)."""
    return int(datetime.fromisoformat(text).timestamp())


def complaint(
    events: dict[str, Any], attributes: dict[str, Any] | None = None, cid: str = "C-1"
) -> Complaint:
    return complaint_from_json(
        {"id": cid, "events": events, "attributes": attributes or {}}, LONDON, "line 1"
    )


def by_clock(instances: list[Instance]) -> dict[tuple[str, int], Instance]:
    return {(i.clock, i.occurrence): i for i in instances}


def test_a_recurring_clock_is_one_instance_per_cycle(charter: Charter) -> None:
    """Cycles closed by resets end at the reset, the last at the stop, each with its own due."""
    c = complaint(
        {
            "received": "2026-01-05T09:00:00Z",
            # cycle 0 due Mon 12 Jan 09:00: the update on Sat 10 Jan is in time
            # cycle 1 from 10 Jan 10:00 due Sat 17 Jan 10:00: the update on 20 Jan is late
            # cycle 2 from 20 Jan 12:00 due 27 Jan 12:00: the decision on 23 Jan closes it
            "customer_update": ["2026-01-20T12:00:00Z", "2026-01-10T10:00:00Z"],
            "decision": "2026-01-23T15:00:00Z",
        },
        {"owner": "u1"},
    )
    instances, undated = clock_instances(charter, c, at("2026-02-01T00:00:00Z"))
    cycles = [i for i in instances if i.clock == "updates"]
    assert cycles == [
        Instance(
            "updates",
            0,
            at("2026-01-05T09:00:00Z"),
            at("2026-01-12T09:00:00Z"),
            at("2026-01-10T10:00:00Z"),
            Outcome.MET,
        ),
        Instance(
            "updates",
            1,
            at("2026-01-10T10:00:00Z"),
            at("2026-01-17T10:00:00Z"),
            at("2026-01-20T12:00:00Z"),
            Outcome.LATE,
        ),
        Instance(
            "updates",
            2,
            at("2026-01-20T12:00:00Z"),
            at("2026-01-27T12:00:00Z"),
            at("2026-01-23T15:00:00Z"),
            Outcome.MET,
        ),
    ]
    assert undated == ["promised"]  # started, no expected_decision: no instance


def test_outcomes_at_now(charter: Charter) -> None:
    """Open before D, overdue after D, completeness met when the attribute is present."""
    c = complaint({"received": "2026-01-05T10:00:00Z"}, {"expected_decision": "2026-01-09"})
    # reply due Tue 6 Jan 17:00 (1 business day after Mon); promised due end of Fri 9 Jan
    early = by_clock(clock_instances(charter, c, at("2026-01-06T17:00:00Z"))[0])
    assert early[("reply", 0)].outcome is Outcome.OPEN  # now == D is not overdue
    assert early[("registration", 0)].outcome is Outcome.OPEN
    late = by_clock(clock_instances(charter, c, at("2026-01-06T17:00:01Z"))[0])
    assert late[("reply", 0)].outcome is Outcome.OVERDUE
    assert late[("registration", 0)].outcome is Outcome.OVERDUE
    assert late[("promised", 0)].due == at("2026-01-10T00:00:00Z")
    filled = complaint({"received": "2026-01-05T10:00:00Z"}, {"owner": "u1"})
    done = by_clock(clock_instances(charter, filled, at("2026-03-01T00:00:00Z"))[0])
    assert done[("registration", 0)].outcome is Outcome.MET
    assert done[("registration", 0)].end is None  # a completeness clock has no E


def test_a_clock_not_started_is_nothing(charter: Charter) -> None:
    """No start event: no instance and not undated."""
    assert clock_instances(charter, complaint({}), at("2026-01-06T00:00:00Z")) == ([], [])


def test_due_date_at_local_midnight_belongs_to_the_day_that_ends() -> None:
    """A promised date 10 April (BST) is due at 23:00Z on the 10th: due date 10 April."""
    assert due_date(at("2026-04-10T23:00:00Z"), LONDON) == date(2026, 4, 10)
    assert due_date(at("2026-04-10T23:00:01Z"), LONDON) == date(2026, 4, 11)
    assert due_date(at("2026-04-10T22:59:59Z"), LONDON) == date(2026, 4, 10)
    assert due_date(at("2026-01-10T00:00:00Z"), LONDON) == date(2026, 1, 9)


@pytest.mark.parametrize(
    ("day", "period", "name"),
    [
        (date(2026, 4, 10), Period.MONTH, "2026-04"),
        (date(2026, 4, 10), Period.QUARTER, "2026-Q2"),
        (date(2026, 12, 31), Period.QUARTER, "2026-Q4"),
        (date(2026, 4, 10), Period.YEAR, "2026"),
        (date(2026, 4, 10), Period.WEEK, "2026-W15"),
        (date(2027, 1, 1), Period.WEEK, "2026-W53"),  # Friday of 2026's last ISO week
        (date(2026, 1, 1), Period.WEEK, "2026-W01"),
        (date(2026, 4, 10), Period.ALL, "all"),
    ],
)
def test_period_names(day: date, period: Period, name: str) -> None:
    """Months, quarters, years, ISO weeks (ISO year) and all, named from the due date."""
    assert period_name(day, period) == name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2, "2"),
        (2.0, "2"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        ("email", "email"),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_group_text(value: object, text: str | None) -> None:
    """Numbers in their shortest form, booleans as true/false, missing or empty as null."""
    assert group_text(value) == text


@pytest.mark.parametrize(
    ("met", "late", "overdue", "expected"),
    [
        (7, 2, 1, 70.0),
        (2, 1, 0, 66.7),
        (1, 15, 0, 6.3),  # 6.25 rounds half up (not to even)
        (1, 79, 0, 1.3),  # 1.25
        (1, 7, 0, 12.5),
        (0, 0, 0, None),
        (3, 0, 0, 100.0),
    ],
)
def test_achievement_rounds_half_up(met: int, late: int, overdue: int, expected: float) -> None:
    """100 x met / (met + late + overdue), half up to one decimal; null when nothing closed."""
    assert achievement(met, late, overdue) == expected


def test_nearest_rank_percentiles() -> None:
    """The value at rank ceil(p n / 100) of the sorted values; null when there are none."""
    values = list(range(10, 110, 10))  # 10..100
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 90) == 90
    assert nearest_rank([7], 90) == 7
    assert nearest_rank([1, 2, 3], 50) == 2  # ceil(1.5) = 2
    assert nearest_rank([1, 2, 3], 90) == 3  # ceil(2.7) = 3
    assert nearest_rank([], 50) is None


def test_opening_seconds_between_two_instants(charter: Charter) -> None:
    """Mon 10:00 to Tue 11:00 is 7 h of Monday and 2 h of Tuesday; a weekend counts nothing."""
    calendar = charter.calendar
    assert calendar.opening_seconds(at("2026-01-05T10:00:00Z"), at("2026-01-06T11:00:00Z")) == (
        9 * 3600
    )
    assert calendar.opening_seconds(at("2026-01-09T16:59:30Z"), at("2026-01-12T09:00:10Z")) == 40
    assert calendar.opening_seconds(at("2026-01-10T10:00:00Z"), at("2026-01-11T10:00:00Z")) == 0
    # a year apart: 2026 has 261 weekdays of 8 h, less Monday's hour before 10:00 ... counted
    # here from Mon 5 Jan 09:00 to Mon 4 Jan 2027 09:00: weekdays 5 Jan 2026 .. 1 Jan 2027
    assert calendar.opening_seconds(at("2026-01-05T09:00:00Z"), at("2027-01-04T09:00:00Z")) == (
        260 * 8 * 3600
    )


def test_tally_rows_totals_and_order(charter: Charter) -> None:
    """Rows per (clock, period, group) in charter order, totals over the range, undated counted."""
    tally = Tally(Period.MONTH, "channel", date(2026, 1, 1), date(2026, 1, 31))
    now = at("2026-02-15T00:00:00Z")
    cases = [
        # reply met (ack Mon 12:00 <= Tue 17:00): elapsed 2 h, opening 2 h
        ({"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-05T12:00:00Z"}, "web"),
        # reply late (ack Thu 9:00 > Tue 17:00): elapsed 71 h, opening 7+8+8 = 23 h
        ({"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-08T09:00:00Z"}, "email"),
        # reply due Mon 2 Feb 17:00 (received Fri 30 Jan): outside January
        ({"received": "2026-01-30T10:00:00Z"}, "email"),
        # no channel: group null; reply overdue
        ({"received": "2026-01-12T10:00:00Z"}, None),
    ]
    for i, (events, channel) in enumerate(cases):
        c = complaint(events, {"channel": channel, "owner": "u"}, cid=f"C-{i}")
        tally.add(charter, c, *clock_instances(charter, c, now))
    figures = tally.figures(charter)
    reply = [r for r in figures.rows if r["clock"] == "reply"]
    assert [
        (r["period"], r["group"], r["met"], r["late"], r["overdue"], r["breached"]) for r in reply
    ] == [
        ("2026-01", None, 0, 0, 1, 1),  # overdue: breached
        ("2026-01", "email", 0, 1, 0, 1),  # answered late: breached too
        ("2026-01", "web", 1, 0, 0, 0),
    ]
    email = reply[1]
    assert (email["elapsed_p50_s"], email["business_p50_s"], email["achievement"]) == (
        71 * 3600,
        23 * 3600,
        0.0,
    )
    assert reply[0]["elapsed_p50_s"] is None and reply[0]["achievement"] == 0.0
    assert [r["clock"] for r in figures.totals][:3] == ["reply", "reply", "reply"]
    assert all(r["period"] == "all" for r in figures.totals)
    assert figures.undated == {"promised": 4}
    assert figures.complaints == 3  # the 30 Jan complaint's registration is due 2 Feb too


def test_flips_name_the_absent_side() -> None:
    """An instance only in one report flips to or from 'absent'; equal outcomes are no flip."""
    a = [Instance("reply", 0, 0, 10, 5, Outcome.MET), Instance("x", 0, 0, 10, None, Outcome.OPEN)]
    b = [Instance("reply", 0, 0, 4, 5, Outcome.LATE), Instance("x", 0, 0, 10, None, Outcome.OPEN)]
    b.append(Instance("y", 1, 0, 10, None, Outcome.OVERDUE))
    assert [tuple(f) for f in flips("C-9", a, b)] == [
        ("C-9", "reply", 0, "met", "late"),
        ("C-9", "y", 1, "absent", "overdue"),
    ]


def test_replayed_follow_ups_are_those_a_worker_would_have_created(charter: Charter) -> None:
    """Replayed all along, a reply acknowledged late got an at_risk and a breached follow-up."""
    c = complaint(
        {"received": "2026-01-05T10:00:00Z", "acknowledged": "2026-01-08T09:00:00Z"},
        {"owner": "u"},
    )
    made = {(f.clock, f.state) for f in replayed_follow_ups(charter, c, at("2026-02-01T00:00:00Z"))}
    # reply: warning Mon 14:00, due Tue 17:00, acknowledged Thu: at_risk then breached;
    # updates: due Mon 12 Jan 10:00 with no update: breached (and every 7 days after)
    assert ("reply", "at_risk") in made and ("reply", "breached") in made
    assert ("updates", "breached") in made
    assert ("registration", "breached") not in made  # owner filled from the start


def test_an_extended_deadline_is_the_instance_due_instant() -> None:
    """With a notice before D the report uses the extended D (semantics 4.4), as evaluate does."""
    extended = load_charter_text(
        CHARTER_YAML.replace(
            "    target: 1 business_days\n    warn_after: 4 business_hours\n",
            "    target: 1 business_days\n    warn_after: 4 business_hours\n"
            "    extend: {on: extension_notified, by: 2 business_days}\n",
            1,
        ),
        "extended.yaml",
    )
    # received Mon 5 Jan 10:00: due Tue 6 Jan 17:00; the notice on Tue moves it two
    # working days on, to Thu 8 Jan 17:00; acknowledged Wed 7 Jan 12:00 is then in time
    c = complaint(
        {
            "received": "2026-01-05T10:00:00Z",
            "extension_notified": "2026-01-06T12:00:00Z",
            "acknowledged": "2026-01-07T12:00:00Z",
        }
    )
    reply = by_clock(clock_instances(extended, c, at("2026-02-01T00:00:00Z"))[0])[("reply", 0)]
    assert (reply.due, reply.outcome) == (at("2026-01-08T17:00:00Z"), Outcome.MET)
    plain = by_clock(
        clock_instances(load_charter_text(CHARTER_YAML, "x.yaml"), c, at("2026-02-01T00:00:00Z"))[0]
    )
    assert plain[("reply", 0)].outcome is Outcome.LATE
