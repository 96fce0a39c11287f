"""From clock states to actions: write-back flags, follow-ups to create and to complete.

Pure functions of (charter, complaint, clock results, now, what is already open); the
sync cycle turns the plan into CRM writes. Rules: ``reference-org.md`` (write-back
fields, Task follow-ups).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crmsync.domain.charter import Charter, ClockKind
from crmsync.domain.complaint import Complaint
from crmsync.domain.evaluation import ClockResult, State
from crmsync.domain.instants import format_instant

_RANK = {State.MET: 0, State.ON_TRACK: 1, State.AT_RISK: 2, State.BREACHED: 3}
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
    """A follow-up already created and not completed (from the ledger)."""

    key: str
    clock: str
    occurrence: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one evaluation asks for."""

    flags: Flags
    create: tuple[FollowUp, ...]
    complete: tuple[str, ...]  # keys of open follow-ups whose clock (cycle) has stopped
    next_check: int | None


def compute_flags(results: Iterable[ClockResult]) -> Flags:
    """``Charter_Status__c``, ``Charter_Breaches__c`` and ``Charter_Next_Due__c``.

    Status: the worst state among started clocks (met < on_track < at_risk < breached,
    met_late counts as breached; a started clock with an unknown deadline counts as
    on_track); ``on_track`` when none started. Breaches: ids of breached or met_late
    clocks, sorted, ``;``-joined. Next due: earliest ``due_at`` of on_track/at_risk clocks.
    """
    worst: State | None = None
    breaches: list[str] = []
    next_due: int | None = None
    for r in results:
        if r.started_at is None:
            continue
        state = r.state
        if state is State.MET_LATE:
            state = State.BREACHED
        if state is State.PENDING:
            state = State.ON_TRACK
        if state is State.BREACHED:
            breaches.append(r.clock)
        if worst is None or _RANK[state] > _RANK[worst]:
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
        next_due=None if next_due is None else format_instant(next_due),
    )


def next_check(results: Iterable[ClockResult], now: int) -> int | None:
    """The next instant after ``now`` at which a clock changes state with no new data.

    A running clock turns at_risk at ``warn_at`` and breached one second after ``due_at``
    (``now == due`` is not breached). None when no clock is running.
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
    return best


def follow_up_key(complaint_id: str, clock: str, occurrence: int, state: str) -> str:
    """``crmsync:{case id}:{clock id}:{occurrence}:{state}`` (reference-org.md)."""
    return f"crmsync:{complaint_id}:{clock}:{occurrence}:{state}"


def notice_key(complaint_id: str, notice_id: str) -> str:
    """Keys of event notices: a prefix of their own, so they never collide with clock keys."""
    return f"crmsync-notice:{complaint_id}:{notice_id}"


def plan(
    charter: Charter,
    complaint: Complaint,
    results: Sequence[ClockResult],
    now: int,
    open_follow_ups: Iterable[OpenFollowUp] = (),
) -> Plan:
    """The flags, follow-ups to create and follow-ups to complete for one evaluation.

    A follow-up is due for each clock at_risk (to the owner) or breached (to the
    complaint manager; the sync cycle falls back to the owner when there is none); a
    clock already met or met_late when first seen gets none. Open follow-ups are
    completed when their clock stops, or, for a recurring clock, when their cycle closes.
    Notices are raised once their event has happened.
    """
    create: list[FollowUp] = []
    by_clock = {r.clock: r for r in results}
    for r in results:
        if r.state not in (State.AT_RISK, State.BREACHED):
            continue
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
        if happened is None:
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
        if current.occurrence > item.occurrence or (
            current.occurrence == item.occurrence and current.state in _CLOSED
        ):
            complete.append(item.key)
    return Plan(
        flags=compute_flags(results),
        create=tuple(create),
        complete=tuple(complete),
        next_check=next_check(results, now),
    )
