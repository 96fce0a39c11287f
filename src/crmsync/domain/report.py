"""The compliance report: clock instances, outcomes, periods, groups and figures.

Pure and streaming: a ``Tally`` takes complaints one at a time and keeps only counts and
the samples its percentiles need, one entry per (clock, period, group); tallies of
separate chunks merge. Every instant comes from ``crmsync.domain.evaluation`` (the clock
code ``evaluate`` runs), so the report can never disagree with the flags:

* a deadline or completeness clock is one instance (occurrence 0) with the started,
  due and stopped instants of its ``ClockResult`` (the extended due instant included);
* a paused clock (section 4.5, a counted pause still open) is an ``open`` instance due at
  the due instant as its pauses have moved it so far (the open one counted up to ``now``);
* a recurring clock is one instance per cycle: the closed cycles of ``closed_cycles``
  (``E`` the reset that closed each), then the current cycle of its ``ClockResult``
  (``E`` the stop instant, if any).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from crmsync.domain.action_planning import FollowUp, next_check, plan
from crmsync.domain.charter import Charter, ClockKind, RecurringClock
from crmsync.domain.complaint import Complaint
from crmsync.domain.evaluation import ClockResult, State, clock_steps, closed_cycles, evaluate


class Outcome(StrEnum):
    """An instance's outcome at ``now``."""

    MET = "met"
    LATE = "late"
    OVERDUE = "overdue"
    OPEN = "open"


OUTCOMES = tuple(Outcome)

_OUTCOME_OF_STATE = {
    State.MET: Outcome.MET,
    State.MET_LATE: Outcome.LATE,
    State.BREACHED: Outcome.OVERDUE,
    State.ON_TRACK: Outcome.OPEN,
    State.AT_RISK: Outcome.OPEN,
    State.PAUSED: Outcome.OPEN,
}


def clock_word(state: State) -> str:
    """A started clock's state in the report's words (reports.md section 2): ``met``,
    ``late`` (met late), ``overdue`` (past due, unanswered); an open clock keeps its finer
    state (``on_track``, ``at_risk``, ``paused``, ``pending``). ``breached`` is never a
    clock's word: it is late or overdue, as the status flag counts it."""
    outcome = _OUTCOME_OF_STATE.get(state)
    return state.value if outcome in (None, Outcome.OPEN) else outcome.value


BREACHED_WORDS = frozenset({Outcome.LATE.value, Outcome.OVERDUE.value})
"""The clock words a breached promise has (``breached = late + overdue``)."""


class Instance(NamedTuple):
    """One clock instance: start ``S``, due ``D``, closing ``E`` (or None) and outcome;
    ``paused`` when at least one pause counted (section 4.5)."""

    clock: str
    occurrence: int
    start: int
    due: int
    end: int | None
    outcome: Outcome
    paused: bool = False


def clock_instances(
    charter: Charter, complaint: Complaint, now: int, results: list[ClockResult] | None = None
) -> tuple[list[Instance], list[str]]:
    """The instances of ``complaint``'s applicable clocks at ``now``, and the ids of the
    started clocks whose due instant is unknown (``undated``).

    ``results`` is ``evaluate(charter, complaint, now)`` when the caller already has it.
    Raises ``BadComplaintError`` as ``evaluate`` does.
    """
    if results is None:
        results = evaluate(charter, complaint, now)
    instances: list[Instance] = []
    undated: list[str] = []
    for r in results:
        start = r.started_at
        if start is None:
            continue  # not started: nothing
        due = r.due_at
        if r.state is State.PAUSED:  # open: due as moved so far (the last step's due)
            due = clock_steps(charter.calendar, charter.clock(r.clock), complaint, now)[
                -1
            ].due_after
        if due is None:
            undated.append(r.clock)
            continue
        if r.kind is ClockKind.RECURRING:
            clock = charter.clock(r.clock)
            assert isinstance(clock, RecurringClock)
            first = complaint.first(clock.start, now)
            assert first is not None
            closed, _, _ = closed_cycles(charter.calendar, clock, complaint, first, now)
            for k, cycle in enumerate(closed):
                outcome = Outcome.MET if cycle.end <= cycle.due else Outcome.LATE
                instances.append(Instance(r.clock, k, cycle.start, cycle.due, cycle.end, outcome))
        instances.append(
            Instance(
                r.clock,
                r.occurrence,
                start,
                due,
                r.stopped_at,
                _OUTCOME_OF_STATE[r.state],
                bool(r.pauses),
            )
        )
    return instances, undated


# ---------------------------------------------------------------------- periods and groups
class Period(StrEnum):
    """How instances are grouped in time, by their due date."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    WEEK = "week"
    ALL = "all"


def due_date(due: int, zone: ZoneInfo) -> date:
    """The local date of ``due`` in ``zone``; exactly local midnight belongs to the day
    that ends there (a promised date is due on that date, not the next)."""
    local = datetime.fromtimestamp(due, zone)
    day = local.date()
    if local.hour == 0 and local.minute == 0 and local.second == 0:
        return day - timedelta(days=1)
    return day


def period_name(day: date, period: Period) -> str:
    """``2026-04``, ``2026-Q2``, ``2026``, ISO week ``2026-W15`` or ``all``."""
    if period is Period.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if period is Period.QUARTER:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    if period is Period.YEAR:
        return f"{day.year:04d}"
    if period is Period.WEEK:
        iso = day.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    return "all"


def group_text(value: object) -> str | None:
    """An attribute's current value as text: a number in its shortest form, ``true`` or
    ``false``, a string as it is; ``None`` when missing or empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list | tuple | dict | set) and not value:
        return None
    return str(value)


# ---------------------------------------------------------------------- figures
def achievement(met: int, late: int, overdue: int) -> float | None:
    """``100 x met / (met + late + overdue)`` rounded half up to one decimal (exactly): the
    one place achievement is computed (pages and charts show this figure, never their own)."""
    divisor = met + late + overdue
    if divisor == 0:
        return None
    return ((2000 * met + divisor) // (2 * divisor)) / 10


def nearest_rank(sorted_values: list[int] | array[int], p: int) -> int | None:
    """The value at 1-based rank ``ceil(p x n / 100)`` of ascending values; None if empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = -(-p * n // 100)
    return sorted_values[max(rank, 1) - 1]


@dataclass
class Cell:
    """Counts by outcome and the elapsed and business seconds of the closed instances."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    elapsed: array[int] = field(default_factory=lambda: array("q"))
    business: array[int] = field(default_factory=lambda: array("q"))
    paused: int = 0  # instances with a counted pause

    def merge(self, other: Cell) -> None:
        for i in range(4):
            self.counts[i] += other.counts[i]
        self.paused += other.paused
        self.elapsed.extend(other.elapsed)
        self.business.extend(other.business)

    def row(self, clock: str, period: str, group: str | None) -> dict[str, object]:
        """The row of section 4: counts, achievement and percentiles."""
        met, late, overdue, open_ = self.counts
        elapsed = sorted(self.elapsed)
        business = sorted(self.business)
        return {
            "clock": clock,
            "period": period,
            "group": group,
            "due": met + late + overdue + open_,
            "met": met,
            "late": late,
            "overdue": overdue,
            "open": open_,
            "breached": late + overdue,
            "paused": self.paused,
            "achievement": achievement(met, late, overdue),
            "elapsed_p50_s": nearest_rank(elapsed, 50),
            "elapsed_p90_s": nearest_rank(elapsed, 90),
            "business_p50_s": nearest_rank(business, 50),
            "business_p90_s": nearest_rank(business, 90),
        }


ROW_FIELDS = (
    "clock",
    "period",
    "group",
    "due",
    "met",
    "late",
    "overdue",
    "open",
    "breached",
    "paused",
    "achievement",
    "elapsed_p50_s",
    "elapsed_p90_s",
    "business_p50_s",
    "business_p90_s",
)
_OUTCOME_INDEX = {o: i for i, o in enumerate(OUTCOMES)}


class Key(NamedTuple):
    """Where an instance is counted: the clock's position, the period and the group."""

    clock: int
    period: str
    group: str | None


@dataclass
class Tally:
    """The figures of one charter over a date range, built a complaint at a time."""

    period: Period
    by: str | None
    first: date
    last: date
    cells: dict[Key, Cell] = field(default_factory=dict)
    undated: dict[str, int] = field(default_factory=dict)
    complaints: int = 0
    positions: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        charter: Charter,
        complaint: Complaint,
        instances: Iterable[Instance],
        undated: list[str],
    ) -> list[Instance]:
        """Count ``complaint``'s instances that are due in the range; return those."""
        for clock_id in undated:
            self.undated[clock_id] = self.undated.get(clock_id, 0) + 1
        zone = charter.calendar.zone
        group = None if self.by is None else group_text(complaint.attributes.get(self.by))
        position = self.positions
        if not position:
            position.update((c.id, i) for i, c in enumerate(charter.clocks))
        kept: list[Instance] = []
        for instance in instances:
            day = due_date(instance.due, zone)
            if not self.first <= day <= self.last:
                continue
            kept.append(instance)
            key = Key(position[instance.clock], period_name(day, self.period), group)
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = Cell()
            cell.counts[_OUTCOME_INDEX[instance.outcome]] += 1
            if instance.paused:
                cell.paused += 1
            if instance.end is not None:
                cell.elapsed.append(instance.end - instance.start)
                cell.business.append(charter.calendar.opening_seconds(instance.start, instance.end))
        if kept:
            self.complaints += 1
        return kept

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts and samples (the same charter, range, period and group)."""
        for key, cell in other.cells.items():
            mine = self.cells.get(key)
            if mine is None:
                self.cells[key] = cell
            else:
                mine.merge(cell)
        for clock_id, n in other.undated.items():
            self.undated[clock_id] = self.undated.get(clock_id, 0) + n
        self.complaints += other.complaints

    def figures(self, charter: Charter) -> Figures:
        """Rows, totals and undated counts in the order of section 4."""
        ids = [c.id for c in charter.clocks]
        rows: list[dict[str, object]] = []
        parts: dict[tuple[int, str | None], list[Cell]] = {}
        for key in sorted(self.cells, key=_order):
            cell = self.cells[key]
            rows.append(cell.row(ids[key.clock], key.period, key.group))
            parts.setdefault((key.clock, key.group), []).append(cell)
        total_rows = []
        for clock, group in sorted(parts, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
            total = Cell()  # one total's samples at a time: memory stays near the rows'
            for cell in parts[(clock, group)]:
                total.merge(cell)
            total_rows.append(total.row(ids[clock], "all", group))
        undated = {i: self.undated[i] for i in ids if self.undated.get(i)}
        return Figures(rows, total_rows, undated, self.complaints)


def _order(key: Key) -> tuple[int, str, bool, str]:
    return (key.clock, key.period, key.group is not None, key.group or "")


@dataclass
class Figures:
    """The figures of section 4 for one charter."""

    rows: list[dict[str, object]]
    totals: list[dict[str, object]]
    undated: dict[str, int]
    complaints: int


# ---------------------------------------------------------------------- what-if
class Flip(NamedTuple):
    """An instance whose outcome differs between charters A and B (``absent`` if missing)."""

    complaint_id: str
    clock: str
    occurrence: int
    a: str
    b: str


def flips(complaint_id: str, a: Iterable[Instance], b: Iterable[Instance]) -> Iterator[Flip]:
    """The flips of one complaint, ordered by clock id then occurrence (section 6)."""
    under_a = {(i.clock, i.occurrence): i.outcome.value for i in a}
    under_b = {(i.clock, i.occurrence): i.outcome.value for i in b}
    for clock, occurrence in sorted(under_a.keys() | under_b.keys()):
        outcome_a = under_a.get((clock, occurrence), "absent")
        outcome_b = under_b.get((clock, occurrence), "absent")
        if outcome_a != outcome_b:
            yield Flip(complaint_id, clock, occurrence, outcome_a, outcome_b)


def replayed_follow_ups(charter: Charter, complaint: Complaint, now: int) -> list[FollowUp]:
    """The follow-ups a worker would have created for ``complaint`` by ``now`` had it run
    all along: ``plan`` at each of the complaint's events and at each ``next_check`` it
    asked for, up to ``now`` (each key once, as the ledger keeps it)."""
    events = sorted({i for instants in complaint.events.values() for i in instants if i <= now})
    created: dict[str, FollowUp] = {}
    if not events:
        return []
    position = 0
    check: int | None = events[0]
    while check is not None and check <= now:
        results = evaluate(charter, complaint, check)
        for follow_up in plan(charter, complaint, results, check).create:
            created.setdefault(follow_up.key, follow_up)
        while position < len(events) and events[position] <= check:
            position += 1
        candidates = [c for c in (next_check(results, check),) if c is not None]
        if position < len(events):
            candidates.append(events[position])
        check = min(candidates) if candidates else None
    if check is None or check > now:
        results = evaluate(charter, complaint, now)
        for follow_up in plan(charter, complaint, results, now).create:
            created.setdefault(follow_up.key, follow_up)
    return list(created.values())
