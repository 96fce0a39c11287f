"""``crmsync status``: the open complaints of a profile from the state store, worst first.

No CRM call: each open complaint the state store holds is evaluated as of ``now`` with
the charter (the code the worker runs), and its status and next due instant are the
write-back flags' rules (``compute_flags``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from crmsync.domain.action_planning import compute_flags
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import complaint_from_json
from crmsync.domain.evaluation import State, evaluate
from crmsync.domain.flag_status import WORST_FIRST
from crmsync.domain.instants import parse_instant
from crmsync.domain.report import BREACHED_WORDS, clock_word
from crmsync.errors import BadComplaintError
from crmsync.ports import PopulationReader


@dataclass(frozen=True)
class StatusLine:
    """One open complaint: its status (the flag's), each started clock's state in the
    report's words (``clock_word``: ``late``, ``overdue``, ...), next due, owner."""

    complaint_id: str
    status: str
    clocks: dict[str, str]
    next_due: int | None
    owner: str | None

    def has(self, state: str, clock: str | None = None) -> bool:
        """A (that) clock is in ``state``: a clock word, or ``breached`` (late or overdue)."""
        wanted = BREACHED_WORDS if state == State.BREACHED.value else {state}
        return any(s in wanted for c, s in self.clocks.items() if clock is None or c == clock)


def open_status(
    state: PopulationReader,
    charter: Charter,
    profile: str,
    now: int,
    errors: list[BadComplaintError],
    *,
    page: int = 1000,
) -> Iterator[StatusLine]:
    """Each open stored complaint as of ``now``, in id order; unreadable ones go to
    ``errors``."""
    after = ""
    zone = charter.calendar.zone
    while stored := state.complaints_page(profile, after, page):
        after = stored[-1].id
        for item in stored:
            if item.closed:
                continue
            try:
                complaint = complaint_from_json(
                    dict(item.canonical), zone, f"state store {item.id}"
                )
                results = evaluate(charter, complaint, now)
            except BadComplaintError as exc:
                errors.append(exc)
                continue
            flags = compute_flags(results)
            owner = complaint.attributes.get("owner")
            yield StatusLine(
                complaint.id,
                flags.status,
                {r.clock: clock_word(r.state) for r in results if r.started_at is not None},
                None if flags.next_due is None else parse_instant(flags.next_due, zone),
                None if owner is None else str(owner),
            )


def worst_first(lines: list[StatusLine]) -> list[StatusLine]:
    """Worst status first (``flag_status.WORST_FIRST``); within each the earliest next
    due first."""
    return sorted(
        lines,
        key=lambda s: (
            WORST_FIRST.index(s.status) if s.status in WORST_FIRST else len(WORST_FIRST),
            s.next_due is None,
            s.next_due or 0,
            s.complaint_id,
        ),
    )
