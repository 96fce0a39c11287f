"""From clock states to actions: write-back flags, follow-ups to create and to complete.

Pure functions of (charter, complaint, clock results, now, what is already open); the
sync cycle turns the plan into CRM writes. Rules: ``reference-org.md`` (write-back
fields, Task follow-ups).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crmsync.domain.charter import Charter, ClockKind
from crmsync.domain.complaint import Complaint
from crmsync.domain.evaluation import ClockResult, State
from crmsync.domain.flag_status import RANK, flag_state
from crmsync.domain.instants import format_instant_or_none

_RUNNING = (State.ON_TRACK, State.AT_RISK)
_CLOSED = (State.MET, State.MET_LATE)


@dataclass(frozen=True, slots=True)
class Flags:
    """The write-back values of a complaint (canonical names, instants as ISO UTC text)."""

    status: str
    breaches: str
    next_due: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"status": self.status, "breaches": self.breaches, "next_due": self.next_due}


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A follow-up task to create exactly once, identified by ``key``.

    ``reason`` is at_risk, breached, missed_cycle (a recurring cycle breached),
    incomplete (a completeness clock breached) or notice; ``to`` is owner or manager.
    """

    key: str
    complaint_id: str
    clock: str
    occurrence: int
    state: str
    reason: str
    to: str
    due_at: int | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenFollowUp:
    """A follow-up already created and not completed (from the ledger).

    ``state`` is the state it was made for (at_risk, breached, notice); ``made_at`` the
    ``now`` of the cycle that made it (None: unknown).
    """

    key: str
    clock: str
    occurrence: int
    state: str = ""
    made_at: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one evaluation asks for."""

    flags: Flags
    create: tuple[FollowUp, ...]
    complete: tuple[str, ...]  # keys of open follow-ups to complete (see ``plan``)
    next_check: int | None


def compute_flags(results: Iterable[ClockResult]) -> Flags:
    """The status flag, the breaches and the next due instant (the fields the mapping's
    ``write_back`` names).

    Status: the worst state among started clocks by ``flag_status.RANK`` (each counted
    as ``flag_state`` says: met_late as breached, a started clock with an unknown
    deadline as on_track); ``on_track`` when none started. Breaches: ids of breached or met_late
    clocks, sorted, ``;``-joined. Next due: earliest ``due_at`` of on_track/at_risk clocks.
    """
    worst: State | None = None
    breaches: list[str] = []
    next_due: int | None = None
    for r in results:
        if r.started_at is None:
            continue
        state = flag_state(r.state)
        if state is State.BREACHED:
            breaches.append(r.clock)
        if worst is None or RANK[state] > RANK[worst]:
            worst = state
        if (
            r.state in _RUNNING
            and r.due_at is not None
            and (next_due is None or r.due_at < next_due)
        ):
            next_due = r.due_at
    return Flags(
        status=(worst or State.ON_TRACK).value,
        breaches=";".join(sorted(breaches)),
        next_due=format_instant_or_none(next_due),
    )


def next_check(
    results: Iterable[ClockResult], now: int, complaint: Complaint | None = None
) -> int | None:
    """The next instant after ``now`` at which an evaluation may answer differently with no
    change to the record.

    A running clock turns at_risk at ``warn_at`` and breached one second after ``due_at``
    (``now == due`` is not breached); a recurring clock's current cycle likewise. Every
    event instant of ``complaint`` later than ``now`` counts too: at that instant the event
    exists (a start, stop, reset or closing dated in the future, e.g. a callback booked for
    tomorrow, or any event during a replay of an earlier ``now``). None when nothing can
    change.
    """
    best: int | None = None
    for r in results:
        if r.state not in _RUNNING or r.due_at is None:
            continue
        candidates = [r.due_at + 1]
        if r.warn_at is not None and r.warn_at > now:
            candidates.append(r.warn_at)
        for c in candidates:
            if c > now and (best is None or c < best):
                best = c
    if complaint is not None:
        for instants in complaint.events.values():
            i = bisect_right(instants, now)
            if i < len(instants) and (best is None or instants[i] < best):
                best = instants[i]
    return best


def _making_instant(result: ClockResult) -> int | None:
    """The instant that made a follow-up's state: the warning for at_risk, the due instant
    for breached (reference-org.md)."""
    return result.warn_at if result.state is State.AT_RISK else result.due_at


def _still_holds(made_for: str, current: State) -> bool:
    """Whether a follow-up made for state ``made_for`` is still called for by ``current``
    (the same occurrence, clock running): breached needs breached, at_risk needs at_risk
    or worse. Anything else (a notice) always holds."""
    if made_for == State.BREACHED.value:
        return current is State.BREACHED
    if made_for == State.AT_RISK.value:
        return current in (State.AT_RISK, State.BREACHED)
    return True


def follow_up_key(complaint_id: str, clock: str, occurrence: int, state: str) -> str:
    """``crmsync:{case id}:{clock id}:{occurrence}:{state}`` (reference-org.md)."""
    return f"crmsync:{complaint_id}:{clock}:{occurrence}:{state}"


def notice_key(complaint_id: str, notice_id: str) -> str:
    """Keys of event notices: a prefix of their own, so they never collide with clock keys."""
    return f"crmsync-notice:{complaint_id}:{notice_id}"


def _finished(item: OpenFollowUp, current: ClockResult, now: int) -> bool:
    """Whether an open follow-up is to be completed (``plan`` states the rule)."""
    if current.occurrence > item.occurrence:
        return True  # its cycle closed
    if current.occurrence < item.occurrence:
        return False  # made by a later cycle at a later now: a replay leaves it alone
    if current.state in _CLOSED:
        return True
    return not _still_holds(item.state, current.state) and (
        item.made_at is None or now >= item.made_at
    )


def plan(
    charter: Charter,
    complaint: Complaint,
    results: Sequence[ClockResult],
    now: int,
    open_follow_ups: Iterable[OpenFollowUp] = (),
    *,
    follow_up_since: int | None = None,
) -> Plan:
    """The flags, follow-ups to create and follow-ups to complete for one evaluation.

    A follow-up is due for each clock at_risk (to the owner) or breached (to the
    complaint manager; the sync cycle falls back to the owner when there is none); a
    clock already met or met_late when first seen gets none. None either when the
    instant that made the state (``warn_at`` for at_risk, ``due_at`` for breached) is
    before ``follow_up_since`` (the profile's horizon), nor on a closed complaint (its
    first ``closed`` event at or before ``now``) for a clock whose ``started_at`` (a
    recurring clock's current cycle) is before the closing. Notices are raised once their
    event has happened, unless it happened before the horizon.

    An open follow-up is completed when its clock stops or its cycle closes, and when the
    state it was made for no longer holds for its occurrence (an extension moved the
    clock's instants, a changed record): breached by anything but breached, at_risk by
    on_track or pending. The latter never in a cycle at a ``now`` earlier than the one
    that made it (a replay): a replay never undoes what a later cycle did.
    """
    create: list[FollowUp] = []
    by_clock = {r.clock: r for r in results}
    closed_at = complaint.first("closed", now)
    for r in results:
        if r.state not in (State.AT_RISK, State.BREACHED):
            continue
        making = _making_instant(r)
        if follow_up_since is not None and (making is None or making < follow_up_since):
            continue  # history from before the worker was switched on: the flags say it
        if closed_at is not None and r.started_at is not None and r.started_at < closed_at:
            continue  # closed with this clock running: the flags say it
        if r.state is State.AT_RISK:
            reason, to = "at_risk", "owner"
        elif r.kind is ClockKind.RECURRING:
            reason, to = "missed_cycle", "manager"
        elif r.kind is ClockKind.COMPLETENESS:
            reason, to = "incomplete", "manager"
        else:
            reason, to = "breached", "manager"
        create.append(
            FollowUp(
                key=follow_up_key(complaint.id, r.clock, r.occurrence, r.state.value),
                complaint_id=complaint.id,
                clock=r.clock,
                occurrence=r.occurrence,
                state=r.state.value,
                reason=reason,
                to=to,
                due_at=r.due_at,
                missing=r.missing or (),
            )
        )
    for notice in charter.notices:
        if notice.when and not all(c.holds(complaint.attributes) for c in notice.when):
            continue
        happened = complaint.first(notice.on, now)
        if happened is None or (follow_up_since is not None and happened < follow_up_since):
            continue
        due = happened if notice.due is None else charter.calendar.deadline(happened, notice.due)
        create.append(
            FollowUp(
                key=notice_key(complaint.id, notice.id),
                complaint_id=complaint.id,
                clock=notice.id,
                occurrence=0,
                state="notice",
                reason="notice",
                to=notice.to,
                due_at=due,
            )
        )
    complete: list[str] = []
    for item in open_follow_ups:
        current = by_clock.get(item.clock)
        if current is None:
            continue  # a notice, or a clock whose 'when' no longer holds: leave it to staff
        if _finished(item, current, now):
            complete.append(item.key)
    return Plan(
        flags=compute_flags(results),
        create=tuple(create),
        complete=tuple(complete),
        next_check=next_check(results, now, complaint),
    )
