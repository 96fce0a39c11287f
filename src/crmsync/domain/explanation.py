"""How a deadline was counted, in words a complaints manager can check by hand.

The one home of ``crmsync explain``'s sentences: the CLI prints ``explain_clock``'s lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from crmsync.domain.business_calendar import BusinessCalendar
from crmsync.domain.charter import (
    Clock,
    CompletenessClock,
    DeadlineClock,
    Extension,
    RecurringClock,
)
from crmsync.domain.complaint import Complaint
from crmsync.domain.durations import Duration, Unit
from crmsync.domain.evaluation import (
    ClockResult,
    ExtensionStep,
    Outcome,
    PauseStep,
    Step,
    clock_steps,
)

_ORDINAL = {1: "st", 2: "nd", 3: "rd"}


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else _ORDINAL.get(n % 10, "th")
    return f"{n}{suffix}"


def local_text(calendar: BusinessCalendar, instant: int) -> str:
    """``Thu 2 Apr 16:00`` in the calendar's zone (year added when it is not obvious)."""
    local = datetime.fromtimestamp(instant, calendar.zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"


def day_text(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def explain_count(
    calendar: BusinessCalendar, start: int, duration: Duration, event: str = "start"
) -> str:
    """One sentence saying how ``calendar.deadline(start, duration)`` was reached."""
    due = calendar.deadline(start, duration)
    head = f"{event} {local_text(calendar, start)}"
    unit = duration.unit
    if unit in (Unit.MINUTES, Unit.HOURS):
        return f"{head}; + {duration} elapsed -> {local_text(calendar, due)}"
    if unit in (Unit.DAYS, Unit.WEEKS):
        return f"{head}; same local time {duration} later -> {local_text(calendar, due)}"
    if unit is Unit.BUSINESS_DAYS:
        return head + "; " + _business_days(calendar, start, duration.amount)
    return head + "; " + _business_time(calendar, start, due, duration)


def _closures(calendar: BusinessCalendar, first: date, last: date) -> list[str]:
    notes = []
    day = first
    while day <= last:
        reason = calendar.closed_reason(day)
        if reason is not None and calendar.weekly_hours[day.weekday()]:
            notes.append(f"{day_text(day)} {reason}")
        day += timedelta(days=1)
    return notes


def _business_days(calendar: BusinessCalendar, start: int, n: int) -> str:
    i = calendar.first_working_day_index(start)
    day0, _ = calendar.working_day(i, start)
    start_day = datetime.fromtimestamp(start, calendar.zone).date()
    parts = []
    if day0 == start_day:
        parts.append("day 0")
    else:
        why = "after closing" if calendar.is_working_day(start_day) else "not a working day"
        parts.append(f"{why}, so day 0 is {day_text(day0)}")
    last_day, last_close = calendar.working_day(i + n, start)
    closed = _closures(calendar, start_day + timedelta(days=1), last_day)
    if closed:
        parts.append(_join(closed) + " closed")
    close_local = datetime.fromtimestamp(last_close, calendar.zone)
    parts.append(
        f"{ordinal(n)} working day {day_text(last_day)} {last_day.year}, closes {close_local:%H:%M}"
    )
    return "; ".join(parts)


def _business_time(calendar: BusinessCalendar, start: int, due: int, duration: Duration) -> str:
    start_day = datetime.fromtimestamp(start, calendar.zone).date()
    due_day = datetime.fromtimestamp(due, calendar.zone).date()
    parts = [f"{duration} of opening time"]
    closed = _closures(calendar, start_day, due_day)
    if closed:
        parts.append(_join(closed) + " closed")
    parts.append(f"-> {local_text(calendar, due)}")
    return "; ".join(parts)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def explain_extensions(
    calendar: BusinessCalendar, extension: Extension, steps: Sequence[ExtensionStep]
) -> list[str]:
    """One sentence per extension notice (section 4.4): which notice extended the deadline
    and to when, or why it did not (too late, or ``max`` already reached)."""
    if not steps:
        return [f"no '{extension.on}' notice: deadline not extended (up to {extension.max} x)"]
    lines = []
    applied = 0
    for step in steps:
        notice = f"'{extension.on}' notified {local_text(calendar, step.notice)}"
        if step.outcome is Outcome.APPLIED:
            applied += 1
            line = (
                f"extension {applied}: {notice}, at or before the due "
                f"{local_text(calendar, step.due_before)}; deadline extended to "
                f"{local_text(calendar, step.due_after)} ("
                + explain_count(calendar, step.due_before, extension.by, "from the old due")
                + ")"
            )
            if step.warn_before is not None and step.warn_after is not None:
                line += f"; warning moved to {local_text(calendar, step.warn_after)}"
            lines.append(line)
        elif step.outcome is Outcome.TOO_LATE:
            lines.append(
                f"{notice}: after the due {local_text(calendar, step.due_before)}, "
                "too late to extend"
            )
        else:
            lines.append(f"{notice}: {extension.max} extension(s) already applied, no more")
    return lines


def explain_clock(
    calendar: BusinessCalendar, clock: Clock, result: ClockResult, complaint: Complaint, now: int
) -> list[str]:
    """The lines saying how ``result`` (``clock`` of ``complaint`` at ``now``) was reached:
    the start it waits for, or how its deadline and warning were counted, its extensions,
    the missing attributes of a completeness clock and the missed cycles of a recurring one.
    """
    if result.started_at is None:
        return [f"waiting for '{clock.start}'"]
    event = clock.start if result.occurrence == 0 else f"cycle {result.occurrence} from reset"
    lines = []
    if clock.measure is not None:
        lines.append(explain_count(calendar, result.started_at, clock.measure, event))
    else:
        lines.append(f"deadline from {clock.target_text()}" + ("" if result.due_at else " (empty)"))
    if clock.warn_after is not None:
        lines.append(
            "warning: " + explain_count(calendar, result.started_at, clock.warn_after, event)
        )
    if not isinstance(clock, RecurringClock):
        steps = clock_steps(calendar, clock, complaint, now)
        if clock.extend is not None:
            extensions = [s for s in steps if isinstance(s, ExtensionStep)]
            lines.extend(explain_extensions(calendar, clock.extend, extensions))
        if clock.pause is not None:
            lines.extend(explain_pauses(calendar, clock, steps))
    if result.missing:
        lines.append("missing: " + ", ".join(result.missing))
    if result.breaches:
        lines.append(f"{result.breaches} cycle(s) missed")
    return lines


def explain_pauses(
    calendar: BusinessCalendar, clock: DeadlineClock | CompletenessClock, steps: Sequence[Step]
) -> list[str]:
    """One sentence per pause (section 4.5): when it started and ended (or that it is still
    open), whether it counted, and by how much it moved the due and warning instants (its
    length in the kind of time of each duration)."""
    pause = clock.pause
    assert pause is not None and clock.target is not None
    pauses = [s for s in steps if isinstance(s, PauseStep)]
    if not pauses:
        return [f"no '{pause.on}': the clock never paused"]
    lines = []
    counted = 0
    for step in pauses:
        begin = local_text(calendar, step.start)
        span = (
            f"paused {begin}, still open"
            if step.end is None
            else f"paused {begin} to {local_text(calendar, step.end)}"
        )
        if not step.counted:
            lines.append(
                f"{span}: not counted (after the due {local_text(calendar, step.due_before)}"
                " or the stop)"
            )
            continue
        counted += 1
        head = f"pause {counted}: {span}, at or before the due " + local_text(
            calendar, step.due_before
        )
        if step.end is None:
            lines.append(
                f"{head}: the clock is paused, no due instant until '{pause.off}' (so far "
                f"the due is at least {local_text(calendar, step.due_after)})"
            )
            continue
        line = f"{head}: {_length(calendar, clock.target.unit, step.start, step.end)}, due " + (
            f"moved to {local_text(calendar, step.due_after)}"
            if step.due_after != step.due_before
            else "unchanged"
        )
        if (
            clock.warn_after is not None
            and step.warn_before is not None
            and step.warn_after is not None
        ):
            length = _length(calendar, clock.warn_after.unit, step.start, step.end)
            line += f"; warning ({length}) " + (
                f"moved to {local_text(calendar, step.warn_after)}"
                if step.warn_after != step.warn_before
                else "unchanged"
            )
        lines.append(line)
    return lines


def _length(calendar: BusinessCalendar, unit: Unit, begin: int, end: int) -> str:
    """A pause's length as it moves a duration of ``unit``: opening time or elapsed time."""
    if unit.is_business:
        return f"{_span(calendar.opening_seconds(begin, end))} of opening time"
    return f"{_span(end - begin)} elapsed"


def _span(seconds: int) -> str:
    """``1 d 2 h 30 min`` (``0 s`` for nothing)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{secs} s"] if secs else []
    return " ".join(parts) or "0 s"
