"""The report's figures agree with a slow, obvious reference written from the contract.

The reference below knows nothing of ``crmsync.domain.evaluation`` or ``report``: it
reads the clock rules (semantics 4.1-4.3) and the report rules (reports 1-4) literally,
counts deadlines with the minute-walking ``ReferenceCalendar`` and opening time by
walking UTC minutes. Complaints are drawn around the change to BST (29 March 2026) so
that local dates, local midnights and ISO weeks are exercised across an offset change.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.domain.report import Period, Tally, clock_instances
from crmsync.mapping.charter_file import load_charter_text
from reference_calendar import ReferenceCalendar

LONDON = ZoneInfo("Europe/London")
CHARTER = load_charter_text(
    """\
charter: reference-report
title: Reference report
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
    tue: ["09:00-17:00"]
    wed: ["09:00-17:00"]
    thu: ["09:00-17:00"]
    fri: ["09:00-12:00", "13:00-16:30"]
clocks:
  - id: reply
    start: received
    stop: [acknowledged, decision]
    target: 6 business_hours
  - id: promised
    start: received
    stop: decision
    target_field: expected_decision
  - id: updates
    start: received
    every: 2 days
    reset: customer_update
    stop: decision
  - id: registration
    start: received
    require: [owner]
    target: 1 business_days
  - id: phone
    when: {channel: phone}
    start: received
    stop: callback
    target: 3 hours
  - id: waiting
    start: received
    stop: decision
    target: 2 business_days
    pause: {on: paused, off: resumed}
""",
    "reference-report.yaml",
)
WEEKLY = {0: [(540, 1020)], 1: [(540, 1020)], 2: [(540, 1020)], 3: [(540, 1020)]}
WEEKLY[4] = [(540, 720), (780, 990)]
REF = ReferenceCalendar("Europe/London", WEEKLY)
BASE = int(datetime(2026, 3, 20, tzinfo=UTC).timestamp())
SPAN = 16 * 86400
CLOCKS = ["reply", "promised", "updates", "registration", "phone", "waiting"]


# ---------------------------------------------------------------------- the reference
@cache
def open_minute(minute: int) -> bool:
    return REF.is_open(minute)


def opening_between(start: int, end: int) -> int:
    """Seconds of opening time in [start, end), minute by minute."""
    total = 0
    minute = start - start % 60
    while minute < end:
        if open_minute(minute):
            total += min(minute + 60, end) - max(minute, start)
        minute += 60
    return total


def outcome(end: int | None, due: int, now: int) -> str:
    if end is not None:
        return "met" if end <= due else "late"
    return "overdue" if now > due else "open"


def reference_waiting(
    s: int, end: int | None, ons: list[int], offs: list[int], now: int
) -> tuple[int, str, bool]:
    """(D, outcome, counted a pause) of the waiting clock, read off semantics 4.5: 2 business
    days from S to the decision, paused from each 'paused' to the next 'resumed' (or the
    decision); a pause at or before D moves D by its opening time; one still open leaves the
    instance open, due as moved by the pause so far (up to now)."""
    due = REF.deadline(s, 2, "business_days")
    counted, still_open = 0, False
    pause_end: int | None = None
    opened = False
    for p in sorted({i for i in ons if s <= i <= now}):
        if opened and (pause_end is None or p < pause_end):
            continue  # inside the pause opened last
        ends = [o for o in offs if p < o <= now]
        if end is not None and p < end:
            ends.append(end)
        pause_end = min(ends) if ends else None
        opened = True
        if p > due or (end is not None and p >= end):
            continue
        counted += 1
        length = opening_between(p, now if pause_end is None else pause_end)
        if length:
            due = REF.business_seconds(due, length)
        still_open = pause_end is None
    return due, "open" if still_open else outcome(end, due, now), counted > 0


def reference_instances(
    data: dict[str, Any], now: int
) -> tuple[list[tuple[str, int, int, int, int | None, str, bool]], list[str]]:
    """(clock, occurrence, S, D, E, outcome, paused) of every instance, and the undated
    clocks."""

    def happened(name: str) -> list[int]:
        raw = data["events"].get(name)
        values = raw if isinstance(raw, list) else [] if raw is None else [raw]
        return sorted(int(datetime.fromisoformat(v).timestamp()) for v in values)

    attributes = data["attributes"]
    received = [i for i in happened("received") if i <= now]
    if not received:
        return [], []
    s = received[0]
    found: list[tuple[str, int, int, int, int | None, str, bool]] = []
    undated: list[str] = []

    def first_stop(names: list[str], low: int) -> int | None:
        stops = [i for n in names for i in happened(n) if low <= i <= now]
        return min(stops) if stops else None

    # reply: 6 business hours from S to the first acknowledgement or decision
    due = REF.deadline(s, 6, "business_hours")
    end = first_stop(["acknowledged", "decision"], s)
    found.append(("reply", 0, s, due, end, outcome(end, due, now), False))
    # promised: the deadline the attribute holds (a date: the next local midnight)
    promised = attributes.get("expected_decision")
    if not promised:
        undated.append("promised")
    else:
        if len(promised) == 10:
            day = date.fromisoformat(promised) + timedelta(days=1)
            due = int(datetime(day.year, day.month, day.day, tzinfo=LONDON).timestamp())
        else:
            due = int(datetime.fromisoformat(promised).timestamp())
        end = first_stop(["decision"], s)
        found.append(("promised", 0, s, due, end, outcome(end, due, now), False))
    # updates: cycles opened by S and each later update, while the clock runs
    stop = first_stop(["decision"], s)
    resets = sorted(
        {i for i in happened("customer_update") if s < i <= now and (stop is None or i < stop)}
    )
    starts = [s, *resets]
    for k, cycle_start in enumerate(starts):
        due = REF.deadline(cycle_start, 2, "days")
        end = starts[k + 1] if k + 1 < len(starts) else stop
        found.append(("updates", k, cycle_start, due, end, outcome(end, due, now), False))
    # registration: complete when the owner is filled; no closing instant
    due = REF.deadline(s, 1, "business_days")
    complete = bool(attributes.get("owner"))
    registration = "met" if complete else outcome(None, due, now)
    found.append(("registration", 0, s, due, None, registration, False))
    if attributes.get("channel") == "phone":
        due = s + 3 * 3600
        end = first_stop(["callback"], s)
        found.append(("phone", 0, s, due, end, outcome(end, due, now), False))
    end = first_stop(["decision"], s)
    due, waiting, paused = reference_waiting(s, end, happened("paused"), happened("resumed"), now)
    found.append(("waiting", 0, s, due, end, waiting, paused))
    return found, undated


def reference_figures(
    complaints: list[dict[str, Any]], now: int, first: date, last: date, period: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int], int]:
    cells: dict[tuple[int, str, str | None], list[tuple[Any, ...]]] = defaultdict(list)
    totals: dict[tuple[int, str | None], list[tuple[Any, ...]]] = defaultdict(list)
    undated_count: dict[str, int] = defaultdict(int)
    counted = 0
    for data in complaints:
        instances, undated = reference_instances(data, now)
        for clock in undated:
            undated_count[clock] += 1
        group = data["attributes"].get("channel") or None
        kept = 0
        for instance in instances:
            # the local date of the last second before D: D at midnight is the day before
            day = datetime.fromtimestamp(instance[3] - 1, LONDON).date()
            if not first <= day <= last:
                continue
            kept += 1
            name = {
                "month": day.strftime("%Y-%m"),
                "quarter": f"{day.year}-Q{(day.month + 2) // 3}",
                "year": str(day.year),
                "week": day.strftime("%G-W%V"),
                "all": "all",
            }[period]
            position = CLOCKS.index(instance[0])
            cells[(position, name, group)].append(instance)
            totals[(position, group)].append(instance)
        counted += kept > 0

    def row(
        clock: str, name: str, group: str | None, items: list[tuple[Any, ...]]
    ) -> dict[str, Any]:
        count = {o: sum(1 for i in items if i[5] == o) for o in ("met", "late", "overdue", "open")}
        closed = count["met"] + count["late"] + count["overdue"]
        achievement = (
            None
            if closed == 0
            else float(
                (Decimal(100 * count["met"]) / Decimal(closed)).quantize(
                    Decimal("0.1"), rounding=ROUND_HALF_UP
                )
            )
        )
        ended = [i for i in items if i[4] is not None]
        elapsed = sorted(i[4] - i[2] for i in ended)
        business = sorted(opening_between(i[2], i[4]) for i in ended)

        def pct(values: list[int], p: int) -> int | None:
            return values[math.ceil(p * len(values) / 100) - 1] if values else None

        return {
            "clock": clock,
            "period": name,
            "group": group,
            "due": len(items),
            **count,
            "breached": count["late"] + count["overdue"],
            "paused": sum(1 for i in items if i[6]),
            "achievement": achievement,
            "elapsed_p50_s": pct(elapsed, 50),
            "elapsed_p90_s": pct(elapsed, 90),
            "business_p50_s": pct(business, 50),
            "business_p90_s": pct(business, 90),
        }

    def order(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*key[:-1], key[-1] is not None, key[-1] or "")

    rows = [row(CLOCKS[k[0]], k[1], k[2], cells[k]) for k in sorted(cells, key=order)]
    total_rows = [row(CLOCKS[k[0]], "all", k[1], totals[k]) for k in sorted(totals, key=order)]
    undated_out = {c: undated_count[c] for c in CLOCKS if undated_count.get(c)}
    return rows, total_rows, undated_out, counted


# ---------------------------------------------------------------------- the strategies
def instant(offset: int) -> str:
    return datetime.fromtimestamp(BASE + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


offsets = st.integers(0, SPAN).map(lambda s: s - s % 60 if s % 7 else s)  # often whole minutes


@st.composite
def complaints(draw: st.DrawFn, index: int) -> dict[str, Any]:
    received = draw(offsets)
    events: dict[str, Any] = {"received": instant(received)}
    for name in ("acknowledged", "decision", "callback"):
        if draw(st.booleans()):
            events[name] = instant(draw(st.integers(received - 86400, received + 5 * 86400)))
    updates = draw(st.lists(st.integers(received - 3600, received + 8 * 86400), max_size=4))
    for name in ("paused", "resumed"):
        waits = draw(st.lists(st.integers(received - 3600, received + 6 * 86400), max_size=3))
        if waits:
            events[name] = [instant(w) for w in waits]
    if updates:
        events["customer_update"] = [instant(u) for u in updates]
    attributes: dict[str, Any] = {}
    channel = draw(st.sampled_from(["email", "phone", "", None]))
    if channel is not None:
        attributes["channel"] = channel
    owner = draw(st.sampled_from(["u1", "", None]))
    if owner is not None:
        attributes["owner"] = owner
    promised = draw(st.sampled_from(["none", "date", "date", "instant", "midnight"]))
    if promised == "date":
        day = date(2026, 3, 20) + timedelta(days=draw(st.integers(0, 14)))
        attributes["expected_decision"] = day.isoformat()
    elif promised == "instant":
        attributes["expected_decision"] = instant(draw(st.integers(0, SPAN + 5 * 86400)))
    elif promised == "midnight":  # a local midnight written as an instant (BST or GMT)
        day = date(2026, 3, 20) + timedelta(days=draw(st.integers(0, 14)))
        midnight = datetime(day.year, day.month, day.day, tzinfo=LONDON)
        attributes["expected_decision"] = midnight.isoformat()
    return {"id": f"C-{index}", "events": events, "attributes": attributes}


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, date, date, str]:
    count = draw(st.integers(1, 6))
    items = [draw(complaints(i)) for i in range(count)]
    now = BASE + draw(st.integers(0, SPAN + 10 * 86400))
    # short ranges whose ends often fall on the promised dates (due dates at midnight)
    first = date(2026, 3, 18) + timedelta(days=draw(st.integers(0, 18)))
    last = first + timedelta(days=draw(st.sampled_from([0, 1, 3, 6, 13, 25])))
    period = draw(st.sampled_from([p.value for p in Period] + ["week", "month"]))
    return items, now, first, last, period


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_figures_agree_with_the_reference(
    case: tuple[list[dict[str, Any]], int, date, date, str],
) -> None:
    """Rows, totals, undated and the complaint count equal the reference's, to the second."""
    items, now, first, last, period = case
    tally = Tally(Period(period), "channel", first, last)
    for data in items:
        complaint: Complaint = complaint_from_json(data, LONDON, "line 1")
        tally.add(CHARTER, complaint, *clock_instances(CHARTER, complaint, now))
    figures = tally.figures(CHARTER)
    rows, totals, undated, counted = reference_figures(items, now, first, last, period)
    assert figures.rows == rows
    assert figures.totals == totals
    assert figures.undated == undated
    assert figures.complaints == counted


@settings(max_examples=200, deadline=None)
@given(st.integers(0, SPAN), st.integers(0, 6 * 86400))
def test_opening_seconds_agree_with_minute_walking(start: int, length: int) -> None:
    """The compiled calendar's opening time between two instants is the walked one."""
    s = BASE + start
    assert CHARTER.calendar.opening_seconds(s, s + length) == opening_between(s, s + length)
