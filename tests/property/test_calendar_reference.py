"""The compiled BusinessCalendar agrees to the second with the slow reference calendar;
so do extended deadline clocks (semantics 4.4) and pausing ones (4.5) with a reference
read off the contract.

Random zones, weekly hours, closed and open dates, holiday sources, start instants (biased
toward DST change days, openings and closings) and amounts. The reference
(``tests/reference_calendar.py``) walks minute by minute and day by day; amounts of
business minutes and hours are kept to about three working days so the walks stay short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.domain.business_calendar import BusinessCalendar, OpeningInterval
from crmsync.domain.charter import Charter, DeadlineClock, Extension, Pause
from crmsync.domain.complaint import Complaint
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.evaluation import evaluate
from reference_calendar import ReferenceCalendar

ZONES = [
    "Europe/London",
    "Europe/Amsterdam",
    "Europe/Dublin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Sao_Paulo",  # DST changes at midnight until 2019
    "Pacific/Chatham",  # UTC+12:45 / +13:45, changes at 02:45
    "UTC",
    "America/Goose_Bay",  # until 2010 fell back at 00:01 to 23:01 the day before
    "Pacific/Rarotonga",  # until 1991 fell back at 24:00 to 23:30
]
FIRST_YEAR, LAST_YEAR = 1979, 2035
# zones whose offset changes are odd, and years in which they are
ODD_CHANGES = {
    "America/Goose_Bay": (1987, 2010),  # 00:01 -> 23:01 the day before
    "Pacific/Rarotonga": (1979, 1990),  # 24:00 -> 23:30
    "America/Sao_Paulo": (2008, 2018),  # 00:00 -> 01:00 and 00:00 -> 23:00 the day before
    "Australia/Lord_Howe": (2008, 2030),  # 30-minute shift
    "Pacific/Chatham": (2008, 2030),  # 02:45 -> 03:45
    "Asia/Kathmandu": (1985, 1985),  # 1 Jan 1986 00:00 -> 00:15 (31 Dec 1985 18:30Z)
    "Europe/Dublin": (2008, 2030),  # negative DST in tzdata's eyes
    "America/New_York": (2005, 2008),  # the 2007 rule change
}
# wall-clock minutes where DST changes happen (00:00, 00:01, 01:00, 02:00, 02:45, 03:00 ...)
# and the day's ends, so that intervals often start, end or straddle a change
SPECIAL_MINUTES = [0, 1, 30, 60, 90, 120, 150, 165, 180, 225, 240, 1380, 1410, 1439, 1440]

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ---------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class FakeHolidays:
    """A holiday source serving a fixed set of dates."""

    dates: frozenset[date]

    def __call__(self, year: int) -> Mapping[date, str]:
        """The fake holidays of ``year``."""
        return {d: "Fake holiday" for d in self.dates if d.year == year}


@dataclass(frozen=True)
class Scenario:
    """One calendar (in both implementations' terms) and a start instant."""

    zone: str
    weekly: dict[int, list[tuple[int, int]]]
    holidays: FakeHolidays
    extra_closed: frozenset[date]
    extra_open: frozenset[date]
    start: int

    def compiled(self) -> BusinessCalendar:
        """The production calendar."""
        return BusinessCalendar(
            ZoneInfo(self.zone),
            {d: [OpeningInterval(a, b) for a, b in ivs] for d, ivs in self.weekly.items()},
            holidays=self.holidays,
            extra_closed=dict.fromkeys(self.extra_closed, "Extra closed"),
            extra_open=self.extra_open,
        )

    def reference(self) -> ReferenceCalendar:
        """The reference calendar."""
        return ReferenceCalendar(
            self.zone,
            self.weekly,
            holidays=self.holidays,
            extra_closed=self.extra_closed,
            extra_open=self.extra_open,
        )

    def open_minutes_per_working_day(self) -> int:
        """Average opening minutes of the weekdays that have hours."""
        days = [sum(b - a for a, b in ivs) for ivs in self.weekly.values() if ivs]
        return sum(days) // len(days)


@cache
def transitions(zone_name: str, year: int) -> tuple[int, ...]:
    """The instants at which ``zone_name`` changes its UTC offset during ``year``."""
    zone = ZoneInfo(zone_name)

    def offset(t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, zone).utcoffset()

    found = []
    t = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    while t < end:
        nxt = t + 6 * 3600
        if offset(nxt) != offset(t):
            lo, hi = t, nxt
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == offset(t):
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        t = nxt
    return tuple(found)


minute_points = st.one_of(
    st.sampled_from(SPECIAL_MINUTES),
    st.integers(0, 96).map(lambda q: q * 15),
    st.integers(0, 1440),
)


@st.composite
def day_hours(draw: st.DrawFn) -> list[tuple[int, int]]:
    """1-3 sorted, disjoint ``[start, end)`` minute intervals (they may touch)."""
    count = draw(st.integers(1, 3))
    points = sorted(draw(st.sets(minute_points, min_size=2 * count, max_size=2 * count)))
    return [(points[2 * i], points[2 * i + 1]) for i in range(count)]


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[int, list[tuple[int, int]]]:
    """Hours for a non-empty set of weekdays; the other weekdays are closed."""
    open_days = draw(st.sets(st.integers(0, 6), min_size=1, max_size=7))
    return {d: draw(day_hours()) for d in sorted(open_days)}


@st.composite
def covering_the_change(
    draw: st.DrawFn, weekly: dict[int, list[tuple[int, int]]], zone: ZoneInfo, change: int
) -> dict[int, list[tuple[int, int]]]:
    """``weekly`` with one interval around the wall times just before and at ``change``.

    A fall-back across midnight shows two dates around the change (Goose Bay: Sun 00:01
    becomes Sat 23:01), so each of those weekdays gets such an interval.
    """
    result = dict(weekly)
    for instant in (change - 60, change):
        wall = datetime.fromtimestamp(instant, zone)
        minute = wall.hour * 60 + wall.minute
        before = draw(st.sampled_from([0, 1, 30, 60, 120, 1440]))
        after = draw(st.sampled_from([1, 2, 30, 60, 120, 1440]))
        result[wall.weekday()] = [(max(0, minute - before), min(1440, minute + after))]
    return result


@st.composite
def scenarios(draw: st.DrawFn, *, at_a_change: bool = False) -> Scenario:
    """A random calendar and a start instant, often near a DST change or an opening edge.

    ``at_a_change``: always start within hours of an offset change, with opening hours
    around it, in a zone and years where the changes are odd (``ODD_CHANGES``).
    """
    if at_a_change:
        zone_name = draw(st.sampled_from(sorted(ODD_CHANGES)))
        year = draw(st.integers(*ODD_CHANGES[zone_name]))
    else:
        zone_name = draw(st.sampled_from(ZONES))
        year = draw(st.integers(FIRST_YEAR, LAST_YEAR))
    zone = ZoneInfo(zone_name)
    weekly = draw(weekly_hours())
    changes = transitions(zone_name, year)

    # the local date around which things happen: a DST change day or any day of the year
    change = draw(st.sampled_from(changes)) if changes else None
    if change is not None and (at_a_change or draw(st.booleans())):
        anchor = datetime.fromtimestamp(change, zone).date()
        anchor += timedelta(days=0 if at_a_change else draw(st.sampled_from([0, 0, -1, 1, 7])))
        if at_a_change or draw(st.booleans()):
            weekly = draw(covering_the_change(weekly, zone, change))
    else:
        anchor = date(year, 1, 1) + timedelta(days=draw(st.integers(0, 364)))

    kind = "change" if at_a_change else draw(st.sampled_from(["change", "edge", "edge", "any"]))
    if kind == "change" and change is not None:
        jitter = draw(
            st.one_of(
                st.sampled_from([0, -1, 1, -30, -60, 60, -1800, 1800, -3600, 3600, 5400]),
                st.integers(-3 * 3600, 3 * 3600),
                st.integers(-2 * 86400, 2 * 86400),
            )
        )
        start = change + jitter
    elif kind == "edge" and anchor.weekday() in weekly:
        a, b = draw(st.sampled_from(weekly[anchor.weekday()]))
        minute = draw(st.sampled_from([a, b]))
        day = anchor + timedelta(days=minute // 1440)
        wall = datetime(day.year, day.month, day.day, (minute % 1440) // 60, minute % 60)
        fold = draw(st.sampled_from([0, 1]))
        start = int(wall.replace(tzinfo=zone, fold=fold).timestamp())
        start += draw(st.sampled_from([0, 0, 0, -1, 1, -60, 60]))
    else:
        midnight = int(datetime(anchor.year, anchor.month, anchor.day, tzinfo=zone).timestamp())
        start = midnight + draw(st.integers(0, 86399))

    # closed and open dates where the deadlines will run
    near = st.integers(-3, 45).map(lambda k: anchor + timedelta(days=k))
    holidays = FakeHolidays(frozenset(draw(st.sets(near, max_size=6))))
    extra_closed = frozenset(draw(st.sets(near, max_size=4)))
    extra_open = frozenset(draw(st.sets(near, max_size=3)))
    return Scenario(zone_name, weekly, holidays, extra_closed, extra_open, start)


@st.composite
def amounts(draw: st.DrawFn, scenario: Scenario) -> dict[Unit, int]:
    """An amount for every unit; business minutes/hours bounded to ~3 working days.

    Business hours are left out when a working day has less than an hour of opening
    time (a single business hour would walk for months); business minutes cover that.
    """
    day_minutes = scenario.open_minutes_per_working_day()
    result = {
        Unit.MINUTES: draw(st.integers(1, 100_000)),
        Unit.HOURS: draw(st.integers(1, 5_000)),
        Unit.DAYS: draw(st.integers(1, 400)),
        Unit.WEEKS: draw(st.integers(1, 60)),
        Unit.BUSINESS_MINUTES: draw(st.integers(1, 3 * day_minutes)),
        Unit.BUSINESS_DAYS: draw(st.integers(1, 30)),
    }
    if day_minutes >= 60:
        result[Unit.BUSINESS_HOURS] = draw(st.integers(1, 3 * day_minutes // 60))
    return result


def show(scenario: Scenario, instant: int) -> str:
    """``instant`` in UTC and in the scenario's zone, for failure messages."""
    in_utc = datetime.fromtimestamp(instant, UTC)
    in_zone = datetime.fromtimestamp(instant, ZoneInfo(scenario.zone))
    return f"{in_utc:%Y-%m-%d %H:%M:%S}Z ({in_zone})"


# ---------------------------------------------------------------------------- properties
def assert_every_unit_equals_the_reference(scenario: Scenario, data: st.DataObject) -> None:
    """Every unit's compiled deadline from the scenario's start is the reference one."""
    calendar, reference = scenario.compiled(), scenario.reference()
    for unit, amount in data.draw(amounts(scenario)).items():
        got = calendar.deadline(scenario.start, Duration(amount, unit))
        want = reference.deadline(scenario.start, amount, unit.value)
        assert got == want, (
            f"{amount} {unit} from {show(scenario, scenario.start)}: "
            f"got {show(scenario, got)}, reference {show(scenario, want)}"
        )


@pytest.mark.slow  # every unit against the minute-walking reference, ~12 s
@SETTINGS
@given(data=st.data())
def test_compiled_calendar_equals_the_reference_for_every_unit(data: st.DataObject) -> None:
    """For every unit the compiled deadline is the reference deadline, to the second."""
    assert_every_unit_equals_the_reference(data.draw(scenarios()), data)


@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_deadlines_from_around_odd_offset_changes_equal_the_reference(
    data: st.DataObject,
) -> None:
    """Starting within hours of an odd offset change, every unit agrees with the reference."""
    assert_every_unit_equals_the_reference(data.draw(scenarios(at_a_change=True)), data)


@settings(SETTINGS, max_examples=50)
@given(
    scenario=scenarios(),
    offsets=st.lists(st.integers(-3 * 366 * 86400, 3 * 366 * 86400), min_size=2, max_size=3),
    n=st.integers(1, 5),
    data=st.data(),
)
def test_one_calendar_answers_starts_in_any_order(
    scenario: Scenario, offsets: list[int], n: int, data: st.DataObject
) -> None:
    """A calendar asked about earlier and later years in any order agrees with the reference."""
    calendar, reference = scenario.compiled(), scenario.reference()
    minutes = data.draw(st.integers(1, scenario.open_minutes_per_working_day()))
    for offset in offsets:
        start = scenario.start + offset
        assert calendar.deadline(start, Duration(n, Unit.BUSINESS_DAYS)) == (
            reference.deadline(start, n, "business_days")
        ), show(scenario, start)
        assert calendar.deadline(start, Duration(minutes, Unit.BUSINESS_MINUTES)) == (
            reference.deadline(start, minutes, "business_minutes")
        ), show(scenario, start)


@SETTINGS
@given(scenario=scenarios(), n=st.integers(1, 40))
def test_business_days_deadline_is_a_working_days_last_closing(scenario: Scenario, n: int) -> None:
    """A business_days deadline is the last closing instant of a working day, after the start."""
    calendar, reference = scenario.compiled(), scenario.reference()
    deadline = calendar.deadline(scenario.start, Duration(n, Unit.BUSINESS_DAYS))
    day = datetime.fromtimestamp(deadline - 1, ZoneInfo(scenario.zone)).date()
    assert reference.is_working_day(day)
    assert reference.is_open(deadline - 1)
    assert reference.last_closing(day) == deadline
    assert deadline > scenario.start


@settings(SETTINGS, max_examples=100)
@given(
    scenario=scenarios(),
    steps=st.lists(st.integers(0, 2 * 86400), min_size=1, max_size=12),
    unit=st.sampled_from([Unit.BUSINESS_DAYS, Unit.BUSINESS_HOURS, Unit.BUSINESS_MINUTES]),
    data=st.data(),
)
def test_business_deadlines_are_monotone_in_the_start(
    scenario: Scenario, steps: list[int], unit: Unit, data: st.DataObject
) -> None:
    """A later start never gives an earlier business deadline."""
    # up to 60 working days' worth of the unit, so no count runs into the 12-year limit
    day_minutes = scenario.open_minutes_per_working_day()
    per_day = {
        Unit.BUSINESS_DAYS: 1,
        Unit.BUSINESS_HOURS: day_minutes // 60,
        Unit.BUSINESS_MINUTES: day_minutes,
    }[unit]
    n = data.draw(st.integers(1, max(1, 60 * per_day)))
    calendar = scenario.compiled()
    start = scenario.start
    previous = calendar.deadline(start, Duration(n, unit))
    for step in sorted(steps):
        later = calendar.deadline(start + step, Duration(n, unit))
        assert later >= previous, show(scenario, start + step)
        previous = later


# ---------------------------------------------------------------------------- extensions (4.4)
def reference_extended_clock(
    reference: ReferenceCalendar,
    *,
    start: int,
    target: tuple[int, str],
    warn_after: tuple[int, str] | None,
    stops: list[int],
    notices: list[int],
    by: tuple[int, str],
    most: int,
    now: int,
) -> tuple[str, int | None, int | None, int | None, int]:
    """``(state, due, warn, stopped, extensions)`` of a deadline clock with ``extend``, read
    off semantics 4.1 and 4.4 and counted on the reference calendar."""
    if start > now:
        return "pending", None, None, None, 0
    due = reference.deadline(start, *target)
    warn = None if warn_after is None else reference.deadline(start, *warn_after)
    extensions = 0
    for notice in sorted({x for x in notices if start <= x <= now}):
        if extensions < most and notice <= due:
            due = reference.deadline(due, *by)
            warn = None if warn is None else reference.deadline(warn, *by)
            extensions += 1
    stopped = min((e for e in stops if start <= e <= now), default=None)
    if stopped is not None:
        state = "met" if stopped <= due else "met_late"
    elif now > due:
        state = "breached"
    elif warn is not None and now >= warn:
        state = "at_risk"
    else:
        state = "on_track"
    return state, due, warn, stopped, extensions


@st.composite
def short_durations(draw: st.DrawFn, scenario: Scenario) -> Duration:
    """A duration of any unit, short enough for the reference walks (~3 working days)."""
    day_minutes = scenario.open_minutes_per_working_day()
    units = [Unit.MINUTES, Unit.HOURS, Unit.DAYS, Unit.WEEKS, Unit.BUSINESS_MINUTES]
    units += [Unit.BUSINESS_DAYS] + ([Unit.BUSINESS_HOURS] if day_minutes >= 60 else [])
    unit = draw(st.sampled_from(units))
    most = {
        Unit.MINUTES: 20_000,
        Unit.HOURS: 400,
        Unit.DAYS: 40,
        Unit.WEEKS: 6,
        Unit.BUSINESS_MINUTES: 2 * day_minutes,
        Unit.BUSINESS_HOURS: max(1, 2 * day_minutes // 60),
        Unit.BUSINESS_DAYS: 8,
    }[unit]
    return Duration(draw(st.integers(1, most)), unit)


@settings(SETTINGS, max_examples=60)
@given(scenario=scenarios(), data=st.data())
def test_extended_deadline_clock_equals_the_reference(
    scenario: Scenario, data: st.DataObject
) -> None:
    """A deadline clock with `extend` gives the reference's state, D, W and extension count.

    Notices, stops and `now` are drawn around the start, the due instant and the
    once-extended due instant (one second either side), so "at D applies, D + 1 s does
    not" is exercised often.
    """
    calendar, reference = scenario.compiled(), scenario.reference()
    target = data.draw(short_durations(scenario))
    by = data.draw(short_durations(scenario))
    warn_after = data.draw(st.none() | short_durations(scenario))
    most = data.draw(st.integers(1, 3))
    start = scenario.start
    due0 = reference.deadline(start, target.amount, target.unit.value)
    due1 = reference.deadline(due0, by.amount, by.unit.value)
    near = st.builds(
        lambda anchor, delta: anchor + delta,
        st.sampled_from([start, due0, due1]),
        st.sampled_from([-86400, -3600, -1, 0, 0, 1, 3600]),
    )
    anywhere = st.integers(start - 86400, due1 + 3 * 86400)
    notices = data.draw(st.lists(near | anywhere, max_size=5))
    stops = data.draw(st.lists(near | anywhere, max_size=2))
    now = data.draw(near | anywhere)

    clock = DeadlineClock(
        "c",
        "received",
        ("decision",),
        target,
        warn_after=warn_after,
        extend=Extension("extended", by, most),
    )
    charter = Charter("p", "P", calendar, (clock,))
    events = {"received": (start,), "extended": tuple(sorted(notices))}
    if stops:
        events["decision"] = tuple(sorted(stops))
    (result,) = evaluate(charter, Complaint("P-1", events, {}), now)
    want = reference_extended_clock(
        reference,
        start=start,
        target=(target.amount, target.unit.value),
        warn_after=None if warn_after is None else (warn_after.amount, warn_after.unit.value),
        stops=stops,
        notices=notices,
        by=(by.amount, by.unit.value),
        most=most,
        now=now,
    )
    got = (result.state.value, result.due_at, result.warn_at, result.stopped_at, result.extensions)
    assert got == want, (
        f"{target} extend by {by} max {most}, warn {warn_after}; start "
        f"{show(scenario, start)}, notices {[show(scenario, n) for n in sorted(notices)]}, "
        f"now {show(scenario, now)}"
    )


# ---------------------------------------------------------------------------- pauses (4.5)
def reference_paused_clock(
    reference: ReferenceCalendar,
    *,
    start: int,
    target: tuple[int, str],
    warn_after: tuple[int, str] | None,
    stops: list[int],
    notices: list[int],
    by: tuple[int, str],
    ons: list[int],
    offs: list[int],
    now: int,
) -> tuple[str, int | None, int | None, int | None, int, int]:
    """``(state, due, warn, stopped, extensions, pauses)`` of a deadline clock with ``extend``
    (max 1) and ``pause``, read off semantics 4.1, 4.4 and 4.5 sentence by sentence and
    counted on the reference calendar. A pause still open moves the instants as if it ended
    at ``now`` (what later notices are tested against; docs/charter-language.md)."""
    if start > now:
        return "pending", None, None, None, 0, 0
    due = reference.deadline(start, *target)
    warn = None if warn_after is None else reference.deadline(start, *warn_after)
    stopped = min((e for e in stops if start <= e <= now), default=None)

    # "take the instants P of on with S <= P <= now in order; each opens a pause unless it
    # falls before the end of the pause opened last"
    pauses: list[tuple[int, int | None]] = []
    for p in sorted({x for x in ons if start <= x <= now}):
        if pauses and (pauses[-1][1] is None or p < pauses[-1][1]):
            continue
        # "ends at the first instant of off that is > P (and <= now), or at E when P < E
        # comes earlier; with neither it is still open"
        ends = [o for o in offs if p < o <= now]
        if stopped is not None and p < stopped:
            ends.append(stopped)
        pauses.append((p, min(ends) if ends else None))

    def moved(instant: int, unit: str, p: int, end: int) -> int:
        if unit.startswith("business_"):
            length = reference.opening_seconds(p, end)
            return instant if length == 0 else reference.business_seconds(instant, length)
        return instant + (end - p)

    # "in one pass in time order ... an extension notice and a pause start at the same
    # instant: the extension first"
    steps = sorted(
        [(x, 0, None) for x in {x for x in notices if start <= x <= now}]
        + [(p, 1, end) for p, end in pauses],
        key=lambda item: (item[0], item[1]),
    )
    extensions = counted = 0
    paused = False
    for instant, what, end in steps:
        if what == 0:
            if extensions < 1 and instant <= due:
                due = reference.deadline(due, *by)
                warn = None if warn is None else reference.deadline(warn, *by)
                extensions += 1
            continue
        if instant > due or (stopped is not None and instant >= stopped):
            continue
        counted += 1
        until = now if end is None else end
        due = moved(due, target[1], instant, until)
        if warn is not None and warn_after is not None:
            warn = moved(warn, warn_after[1], instant, until)
        paused = end is None
    if paused:
        return "paused", None, None, None, extensions, counted
    if stopped is not None:
        state = "met" if stopped <= due else "met_late"
    elif now > due:
        state = "breached"
    elif warn is not None and now >= warn:
        state = "at_risk"
    else:
        state = "on_track"
    return state, due, warn, stopped, extensions, counted


@settings(SETTINGS, max_examples=60)
@given(scenario=scenarios(), data=st.data())
def test_paused_deadline_clock_equals_the_reference(
    scenario: Scenario, data: st.DataObject
) -> None:
    """A deadline clock with `pause` (and `extend`) gives the reference's state, D, W, and
    extension and pause counts.

    Pause starts and ends, notices, stops and `now` are drawn around the start and the due
    instant (one second either side, so "at D counts, D + 1 s does not" is exercised), often
    at one instant together, and anywhere in the days after.
    """
    calendar, reference = scenario.compiled(), scenario.reference()
    target = data.draw(short_durations(scenario))
    by = data.draw(short_durations(scenario))
    warn_after = data.draw(st.none() | short_durations(scenario))
    start = scenario.start
    due0 = reference.deadline(start, target.amount, target.unit.value)
    near = st.builds(
        lambda anchor, delta: anchor + delta,
        st.sampled_from([start, due0]),
        st.sampled_from([-86400, -3600, -1, 0, 0, 1, 3600, 86400]),
    )
    before_due = st.integers(start, due0 + 3600)
    after_start = st.integers(start, due0 + 3 * 86400)
    ons = data.draw(st.lists(before_due | before_due | near, min_size=1, max_size=4))
    offs = data.draw(st.lists(after_start | near | st.sampled_from(ons), min_size=1, max_size=4))
    notices = data.draw(st.lists(near | st.sampled_from(ons), max_size=2))
    stops = data.draw(st.lists(near | after_start, max_size=2))
    now = data.draw(after_start | after_start | near)

    clock = DeadlineClock(
        "c",
        "received",
        ("decision",),
        target,
        warn_after=warn_after,
        extend=Extension("extended", by, 1),
        pause=Pause("paused", "resumed"),
    )
    charter = Charter("p", "P", calendar, (clock,))
    events = {"received": (start,)}
    for name, instants in (
        ("paused", ons),
        ("resumed", offs),
        ("extended", notices),
        ("decision", stops),
    ):
        if instants:
            events[name] = tuple(sorted(instants))
    (result,) = evaluate(charter, Complaint("P-1", events, {}), now)
    want = reference_paused_clock(
        reference,
        start=start,
        target=(target.amount, target.unit.value),
        warn_after=None if warn_after is None else (warn_after.amount, warn_after.unit.value),
        stops=stops,
        notices=notices,
        by=(by.amount, by.unit.value),
        ons=ons,
        offs=offs,
        now=now,
    )
    got = (
        result.state.value,
        result.due_at,
        result.warn_at,
        result.stopped_at,
        result.extensions,
        result.pauses,
    )
    assert got == want, (
        f"{target} extend by {by}, warn {warn_after}; start {show(scenario, start)}, "
        f"paused {[show(scenario, p) for p in sorted(ons)]}, "
        f"resumed {[show(scenario, p) for p in sorted(offs)]}, "
        f"notices {[show(scenario, n) for n in sorted(notices)]}, "
        f"stops {[show(scenario, n) for n in sorted(stops)]}, now {show(scenario, now)}"
    )
