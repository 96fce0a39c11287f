"""Evaluating a charter's clocks for one complaint as of ``now`` (semantics section 4)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from enum import StrEnum
from typing import Final, NamedTuple

from crmsync.domain.business_calendar import BusinessCalendar
from crmsync.domain.charter import (
    Charter,
    Clock,
    ClockKind,
    CompletenessClock,
    DeadlineClock,
    Extension,
    Pause,
    RecurringClock,
)
from crmsync.domain.complaint import Complaint, check_range
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.instants import parse_deadline_value
from crmsync.errors import BadComplaintError, InstantError


class State(StrEnum):
    PENDING = "pending"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    MET_LATE = "met_late"
    PAUSED = "paused"


class ClockResult(NamedTuple):
    """The state of one applicable clock of one complaint at ``now``.

    Immutable; a ``NamedTuple`` rather than a frozen dataclass because a million
    complaints make millions of them and a frozen dataclass is four times slower to
    build (one ``object.__setattr__`` call per field).
    """

    clock: str
    kind: ClockKind
    state: State
    started_at: int | None
    due_at: int | None
    warn_at: int | None
    stopped_at: int | None
    occurrence: int = 0
    breaches: int | None = None  # recurring clocks only
    missing: tuple[str, ...] | None = None  # completeness clocks only
    extensions: int | None = None  # clocks with ``extend`` only: how many applied
    pauses: int | None = None  # clocks with ``pause`` only: how many counted


_new_tuple: Final = tuple.__new__


def _deadline_result(
    clock: DeadlineClock,
    state: State,
    *,
    start: int | None,
    due: int | None,
    warn: int | None,
    stop: int | None,
    extensions: int | None = None,
    pauses: int | None = None,
) -> ClockResult:
    """``ClockResult(clock.id, clock.kind, state, start, due, warn, stop,
    extensions=extensions, pauses=pauses)``, built as the tuple it is: the
    ``NamedTuple``'s own ``__new__`` is Python code, slow for the millions of results of
    a large input."""
    return _new_tuple(
        ClockResult,
        (clock.id, clock.kind, state, start, due, warn, stop, 0, None, None, extensions, pauses),
    )


class Outcome(StrEnum):
    """What one extension notice did (section 4.4)."""

    APPLIED = "applied"
    TOO_LATE = "too_late"  # after the due instant as it then stood
    OVER_MAX = "over_max"  # ``max`` extensions had already applied


class ExtensionStep(NamedTuple):
    """One notice of a clock's ``extend`` event between its start and ``now``.

    ``due_before``/``warn_before`` are the instants when the notice came; when it applied,
    ``due_after``/``warn_after`` are the moved ones (otherwise equal to the before values).
    """

    notice: int
    outcome: Outcome
    due_before: int
    due_after: int
    warn_before: int | None
    warn_after: int | None


def extension_steps(
    calendar: BusinessCalendar,
    extension: Extension,
    complaint: Complaint,
    *,
    start: int,
    now: int,
    due: int,
    warn: int | None,
) -> list[ExtensionStep]:
    """Section 4.4, the one implementation: each notice ``X`` of ``extension.on`` with
    ``start <= X <= now``, in order, and what it did to the due instant ``due`` and the
    warning ``warn`` (both as counted from the start).

    While fewer than ``max`` have applied, an ``X`` at or before the current due instant
    applies one: due and warning move by ``extension.by``, each counted from its old
    instant as if it were a start (section 3). A later ``X`` is too late. Instants are
    distinct: a notice recorded twice at the same second is one notice (as the reset
    instants of a recurring clock are).
    """
    steps: list[ExtensionStep] = []
    instants = complaint.events.get(extension.on, ())
    applied = 0
    previous = None
    for notice in instants[bisect_left(instants, start) :]:
        if notice > now:
            break
        if notice == previous:  # one notice recorded twice (e.g. two related records)
            continue
        previous = notice
        step = _notice_step(calendar, extension, notice, applied=applied, due=due, warn=warn)
        steps.append(step)
        if step.outcome is Outcome.APPLIED:
            due, warn = step.due_after, step.warn_after
            applied += 1
    return steps


def _notice_step(
    calendar: BusinessCalendar,
    extension: Extension,
    notice: int,
    *,
    applied: int,
    due: int,
    warn: int | None,
) -> ExtensionStep:
    """Section 4.4 for one notice at ``notice``, ``applied`` extensions already in force:
    over the maximum, too late (after the due instant ``due``), or applied (``due`` and
    ``warn`` each moved by ``extension.by`` counted from itself)."""
    if applied >= extension.max:
        return ExtensionStep(notice, Outcome.OVER_MAX, due, due, warn, warn)
    if notice > due:
        return ExtensionStep(notice, Outcome.TOO_LATE, due, due, warn, warn)
    new_due = calendar.deadline(due, extension.by)
    new_warn = None if warn is None else calendar.deadline(warn, extension.by)
    return ExtensionStep(notice, Outcome.APPLIED, due, new_due, warn, new_warn)


def clock_extension_steps(
    calendar: BusinessCalendar, clock: Clock, complaint: Complaint, now: int
) -> list[ExtensionStep]:
    """The extension notices among ``clock_steps`` (empty when the clock has no ``extend``
    or has not started)."""
    return [
        step
        for step in clock_steps(calendar, clock, complaint, now)
        if isinstance(step, ExtensionStep)
    ]


class PauseStep(NamedTuple):
    """One pause of a clock's ``pause`` (section 4.5) between its start and ``now``.

    ``end`` is the first ``off`` instant after ``start``, or the clock's stop when that
    comes first; ``None`` while the pause is still open at ``now``. ``counted`` when it
    started at or before the due instant in force (and before the stop). The instants
    are those in force at ``start``; when counted, ``due_after``/``warn_after`` are the
    moved ones (for a pause still open: as if it ended at ``now``, the least it will have
    moved them), otherwise equal to the before values.
    """

    start: int
    end: int | None
    counted: bool
    due_before: int
    due_after: int
    warn_before: int | None
    warn_after: int | None


Step = ExtensionStep | PauseStep


def pause_spans(
    pause: Pause, complaint: Complaint, *, start: int, now: int, stop: int | None
) -> list[tuple[int, int | None]]:
    """Section 4.5: ``(P, end)`` of each pause, in order. Each instant ``P`` of
    ``pause.on`` with ``start <= P <= now`` opens one unless it falls before the end of
    the pause opened last (pauses do not nest); it ends at the first ``off`` instant
    ``> P`` (and ``<= now``), or at ``stop`` when ``P < stop`` comes earlier; ``None``:
    still open."""
    ons = complaint.events.get(pause.on, ())
    offs = complaint.events.get(pause.off, ())
    spans: list[tuple[int, int | None]] = []
    for on in ons[bisect_left(ons, start) :]:
        if on > now:
            break
        if spans:
            last_end = spans[-1][1]
            if last_end is None or on < last_end:
                continue  # inside the pause opened last
        i = bisect_right(offs, on)
        end = offs[i] if i < len(offs) and offs[i] <= now else None
        if stop is not None and on < stop and (end is None or stop < end):
            end = stop
        spans.append((on, end))
    return spans


def _moved(calendar: BusinessCalendar, instant: int, unit: Unit, begin: int, end: int) -> int:
    """``instant`` moved by the pause ``[begin, end)``, measured in ``unit``'s kind of time:
    its opening time for a business unit, its elapsed time for a calendar unit."""
    if unit.is_business:
        return calendar.after_opening_seconds(instant, calendar.opening_seconds(begin, end))
    return instant + (end - begin)


def adjustment_steps(
    calendar: BusinessCalendar,
    clock: DeadlineClock | CompletenessClock,
    complaint: Complaint,
    *,
    start: int,
    now: int,
    due: int,
    warn: int | None,
    stop: int | None,
) -> list[Step]:
    """Sections 4.4 and 4.5 in one pass, the one implementation: the extension notices
    and the pauses of ``clock`` in time order (a notice and a pause at one instant: the
    notice first), each tested against the due instant in force at its instant and
    moving ``due`` and ``warn`` (both as counted from the start) when it applies."""
    target, pause, extension = clock.target, clock.pause, clock.extend
    assert target is not None  # a target_field clock neither pauses nor extends
    pauses = [] if pause is None else pause_spans(pause, complaint, start=start, now=now, stop=stop)
    notices: tuple[int, ...] = ()
    if extension is not None:
        instants = complaint.events.get(extension.on, ())
        notices = tuple(
            dict.fromkeys(x for x in instants[bisect_left(instants, start) :] if x <= now)
        )
    order = sorted(
        [(x, 0, None) for x in notices] + [(p, 1, end) for p, end in pauses],
        key=lambda item: (item[0], item[1]),
    )
    warn_unit = None if clock.warn_after is None else clock.warn_after.unit
    steps: list[Step] = []
    applied = 0
    for instant, what, end in order:
        if what == 0:
            assert extension is not None
            notice = _notice_step(calendar, extension, instant, applied=applied, due=due, warn=warn)
            steps.append(notice)
            if notice.outcome is Outcome.APPLIED:
                due, warn = notice.due_after, notice.warn_after
                applied += 1
        elif instant > due or (stop is not None and instant >= stop):
            steps.append(PauseStep(instant, end, False, due, due, warn, warn))
        else:
            until = now if end is None else end
            new_due = _moved(calendar, due, target.unit, instant, until)
            new_warn = (
                None
                if warn is None or warn_unit is None
                else _moved(calendar, warn, warn_unit, instant, until)
            )
            steps.append(PauseStep(instant, end, True, due, new_due, warn, new_warn))
            due, warn = new_due, new_warn
    return steps


def clock_steps(
    calendar: BusinessCalendar, clock: Clock, complaint: Complaint, now: int
) -> list[Step]:
    """``adjustment_steps`` of one clock as ``evaluate`` applies them (empty when the
    clock has neither ``extend`` nor ``pause``, or has not started): for ``explain``."""
    if isinstance(clock, RecurringClock) or clock.target is None:
        return []
    if clock.extend is None and clock.pause is None:
        return []
    start = complaint.first(clock.start, now)
    if start is None:
        return []
    stop = (
        complaint.first_between(clock.stop, start, now)
        if isinstance(clock, DeadlineClock)
        else None
    )
    return adjustment_steps(
        calendar,
        clock,
        complaint,
        start=start,
        now=now,
        due=calendar.deadline(start, clock.target),
        warn=_warn(calendar, clock.warn_after, start),
        stop=stop,
    )


class Adjusted(NamedTuple):
    """The due and warning instants after extensions and pauses, and what applied."""

    due: int
    warn: int | None
    extensions: int | None  # None: the clock has no ``extend``
    pauses: int | None  # None: the clock has no ``pause``
    paused: bool  # a counted pause is open at ``now``


def _adjusted(
    calendar: BusinessCalendar,
    clock: DeadlineClock | CompletenessClock,
    complaint: Complaint,
    *,
    start: int,
    now: int,
    due: int,
    warn: int | None,
    stop: int | None,
) -> Adjusted:
    """``adjustment_steps`` folded into the instants the state is read from."""
    extensions = None if clock.extend is None else 0
    pauses = None if clock.pause is None else 0
    paused = False
    for step in adjustment_steps(
        calendar, clock, complaint, start=start, now=now, due=due, warn=warn, stop=stop
    ):
        if isinstance(step, PauseStep):
            if step.counted:
                assert pauses is not None
                pauses += 1
                paused = step.end is None
                due, warn = step.due_after, step.warn_after
        elif step.outcome is Outcome.APPLIED:
            assert extensions is not None
            extensions += 1
            due, warn = step.due_after, step.warn_after
    return Adjusted(due, warn, extensions, pauses, paused)


def _extended(
    calendar: BusinessCalendar,
    extension: Extension,
    complaint: Complaint,
    *,
    start: int,
    now: int,
    due: int,
    warn: int | None,
) -> tuple[int, int | None, int]:
    """``(due, warn, extensions applied)`` after ``extension_steps``."""
    applied = 0
    for step in extension_steps(
        calendar, extension, complaint, start=start, now=now, due=due, warn=warn
    ):
        if step.outcome is Outcome.APPLIED:
            due, warn = step.due_after, step.warn_after
            applied += 1
    return due, warn, applied


def evaluate(charter: Charter, complaint: Complaint, now: int) -> list[ClockResult]:
    """Every applicable clock of ``charter`` for ``complaint`` as of ``now``, in charter order.

    Raises ``BadComplaintError`` when the ``target_field`` of an applicable clock holds
    something that is not an instant or a date, whether or not the clock has started
    (a wrong flag is worse than none, and the answer must not depend on ``now``).
    """
    results: list[ClockResult] = []
    attributes, events = complaint.attributes, complaint.events
    calendar = charter.calendar
    for clock in charter.clocks:
        if clock.when and not all(c.holds(attributes) for c in clock.when):
            continue
        if isinstance(clock, DeadlineClock):  # the common kind, without the dispatch call
            if clock.target_field is None:  # nothing to validate before the start
                started = events.get(clock.start)
                if not started or started[0] > now:  # not started: ``_deadline``'s answer
                    results.append(_NOT_STARTED.get(clock.pending_key) or _not_started(clock))
                    continue
            results.append(_deadline(calendar, clock, complaint, now))
        else:
            results.append(evaluate_clock(calendar, clock, complaint, now))
    return results


def evaluate_clock(
    calendar: BusinessCalendar, clock: Clock, complaint: Complaint, now: int
) -> ClockResult:
    """One clock (its ``when`` already known to hold)."""
    if isinstance(clock, RecurringClock):
        return _recurring(calendar, clock, complaint, now)
    if isinstance(clock, CompletenessClock):
        return _completeness(calendar, clock, complaint, now)
    return _deadline(calendar, clock, complaint, now)


def _stopped_state(stop: int, due: int) -> State:
    return State.MET if stop <= due else State.MET_LATE


def _running_state(now: int, due: int, warn: int | None) -> State:
    if now > due:
        return State.BREACHED
    if warn is not None and now >= warn:
        return State.AT_RISK
    return State.ON_TRACK


def _fixed_due(
    calendar: BusinessCalendar, clock: DeadlineClock | CompletenessClock, complaint: Complaint
) -> int | None:
    """The deadline held by ``target_field`` (``None`` when empty or the clock has a target)."""
    if clock.target_field is None:
        return None
    value = complaint.attributes.get(clock.target_field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return check_range(parse_deadline_value(value, calendar.zone), value)
    except InstantError as exc:
        raise BadComplaintError(
            complaint.id, f"attribute '{clock.target_field}' (clock {clock.id}): {exc}"
        ) from exc


def _target(
    calendar: BusinessCalendar,
    clock: DeadlineClock | CompletenessClock,
    fixed_due: int | None,
    start: int,
) -> int | None:
    if clock.target is not None:
        return calendar.deadline(start, clock.target)
    return fixed_due


def _warn(calendar: BusinessCalendar, warn_after: Duration | None, start: int) -> int | None:
    return None if warn_after is None else calendar.deadline(start, warn_after)


_NOT_STARTED: dict[str, ClockResult] = {}
"""Deadline clocks' results before their start, by ``pending_key`` (the id, and whether
the clock has ``extend`` or ``pause``: they depend on nothing else)."""


def _not_started(clock: DeadlineClock) -> ClockResult:
    """The result of a deadline clock before its start event: the same for every complaint,
    so one (frozen) instance per ``pending_key`` is shared."""
    result = _NOT_STARTED.get(clock.pending_key)
    if result is None:
        extensions = None if clock.extend is None else 0
        pauses = None if clock.pause is None else 0
        result = ClockResult(
            clock.id, ClockKind.DEADLINE, State.PENDING, None, None, None, None,
            extensions=extensions, pauses=pauses,
        )  # fmt: skip
        _NOT_STARTED[clock.pending_key] = result
    return result


def _deadline(
    calendar: BusinessCalendar, clock: DeadlineClock, complaint: Complaint, now: int
) -> ClockResult:
    fixed_due = None if clock.target_field is None else _fixed_due(calendar, clock, complaint)
    start = complaint.first(clock.start, now)
    if start is None:
        return _not_started(clock)
    stop = complaint.first_between(clock.stop, start, now)
    # _target and _warn, inlined on the hot path
    due = fixed_due if clock.target is None else calendar.deadline(start, clock.target)
    warn = None if clock.warn_after is None else calendar.deadline(start, clock.warn_after)
    if due is None:  # an empty target_field (such a clock neither extends nor pauses)
        return _deadline_result(clock, State.PENDING, start=start, due=None, warn=warn, stop=stop)
    extensions = None
    if clock.pause is not None:
        adjusted = _adjusted(
            calendar, clock, complaint, start=start, now=now, due=due, warn=warn, stop=stop
        )
        if adjusted.paused:
            return _deadline_result(
                clock, State.PAUSED, start=start, due=None, warn=None, stop=None,
                extensions=adjusted.extensions, pauses=adjusted.pauses,
            )  # fmt: skip
        due, warn = adjusted.due, adjusted.warn
        state = _stopped_state(stop, due) if stop is not None else _running_state(now, due, warn)
        return _deadline_result(
            clock, state, start=start, due=due, warn=warn, stop=stop,
            extensions=adjusted.extensions, pauses=adjusted.pauses,
        )  # fmt: skip
    if clock.extend is not None:
        due, warn, extensions = _extended(
            calendar, clock.extend, complaint, start=start, now=now, due=due, warn=warn
        )
    if stop is not None:
        state = State.MET if stop <= due else State.MET_LATE
    else:
        state = _running_state(now, due, warn)
    return _deadline_result(
        clock, state, start=start, due=due, warn=warn, stop=stop, extensions=extensions
    )


class Cycle(NamedTuple):
    """A closed cycle of a recurring clock: opened at ``start``, due at ``due``, closed by
    the reset at ``end``."""

    start: int
    due: int
    end: int


def closed_cycles(
    calendar: BusinessCalendar, clock: RecurringClock, complaint: Complaint, first: int, now: int
) -> tuple[list[Cycle], int, int | None]:
    """The cycles of a recurring clock started at ``first`` that resets closed by ``now``.

    Returns ``(closed cycles in order, start of the current cycle, stop instant or None)``
    (semantics 4.2): cycle ``k + 1`` opens at the first reset after ``Rk``; a reset opens a
    new cycle only while the clock runs, so resets at or after the stop do not.
    """
    stop = complaint.first_between(clock.stop, first, now)
    horizon = now if stop is None else stop - 1
    closed: list[Cycle] = []
    cycle_start = first
    for reset in complaint.all_between(clock.reset, first, horizon):
        closed.append(Cycle(cycle_start, calendar.deadline(cycle_start, clock.every), reset))
        cycle_start = reset
    return closed, cycle_start, stop


def _recurring(
    calendar: BusinessCalendar, clock: RecurringClock, complaint: Complaint, now: int
) -> ClockResult:
    first = complaint.first(clock.start, now)
    if first is None:
        return ClockResult(clock.id, clock.kind, State.PENDING, None, None, None, None, 0, 0)
    closed, cycle_start, stop = closed_cycles(calendar, clock, complaint, first, now)
    breaches = 0
    for cycle in closed:
        if cycle.end > cycle.due:
            breaches += 1  # that cycle ended met_late
    occurrence = len(closed)
    due = calendar.deadline(cycle_start, clock.every)
    warn = _warn(calendar, clock.warn_after, cycle_start)
    if stop is not None:
        state = State.MET if stop <= due else State.MET_LATE
    else:
        state = _running_state(now, due, warn)
    if state in (State.BREACHED, State.MET_LATE):
        breaches += 1
    return ClockResult(
        clock.id, clock.kind, state, cycle_start, due, warn, stop, occurrence, breaches
    )


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return len(value) == 0
    return False


def _completeness(
    calendar: BusinessCalendar, clock: CompletenessClock, complaint: Complaint, now: int
) -> ClockResult:
    missing = tuple(n for n in clock.require if _is_empty(complaint.attributes.get(n)))
    fixed_due = _fixed_due(calendar, clock, complaint)
    start = complaint.first(clock.start, now)
    extensions = None if clock.extend is None else 0
    pauses = None if clock.pause is None else 0
    if start is None:
        return ClockResult(
            clock.id, clock.kind, State.PENDING, None, None, None, None,
            missing=missing, extensions=extensions, pauses=pauses,
        )  # fmt: skip
    due = _target(calendar, clock, fixed_due, start)
    warn = _warn(calendar, clock.warn_after, start)
    paused = False
    if clock.pause is not None and due is not None:
        adjusted = _adjusted(
            calendar, clock, complaint, start=start, now=now, due=due, warn=warn, stop=None
        )
        due, warn = adjusted.due, adjusted.warn
        extensions, pauses, paused = adjusted.extensions, adjusted.pauses, adjusted.paused
    elif clock.extend is not None and due is not None:
        due, warn, extensions = _extended(
            calendar, clock.extend, complaint, start=start, now=now, due=due, warn=warn
        )
    if not missing:
        state = State.MET
    elif paused:
        return ClockResult(
            clock.id, clock.kind, State.PAUSED, start, None, None, None,
            missing=missing, extensions=extensions, pauses=pauses,
        )  # fmt: skip
    elif due is None:
        state = State.PENDING
    else:
        state = _running_state(now, due, warn)
    return ClockResult(
        clock.id, clock.kind, state, start, due, warn, None,
        missing=missing, extensions=extensions, pauses=pauses,
    )  # fmt: skip
