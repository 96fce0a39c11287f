"""Retention of the worker's own state: what the state store may forget, and when.

The state store is working memory, not a record: the CRM holds the complaints and the
archive keeps closed ones indefinitely. A closed complaint stays stored only so that a
later re-read of it (the echo of our own write, the overlap window, the archive's mark)
is recognised as unchanged; ``keep_closed`` after its closing it is forgotten, with its
ledger entries, unless a follow-up task of it is still to be written or completed
(``planned`` / ``done``): that keeps it, however old. Cycle history (``runs``) older than
``keep_runs`` is forgotten too; the newest run always stays.

A forgotten complaint that is read again later (changed on the CRM, reopened) is simply
a new one to the worker: evaluated, its flags written only if they differ from the
record's, its follow-up tasks upserted by key (so never twice on the CRM).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from crmsync.domain.instants import format_instant_or_none
from crmsync.ports import PruneCounts, StateStore
from crmsync.service.run_scope import RunEvents, run_scope

log = structlog.get_logger(__name__)

_PRUNE_EVENTS = RunEvents("state_prune_started", "state_pruned", "state_prune_failed")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long state is kept, in seconds; ``None`` keeps it forever."""

    keep_closed: int | None
    keep_runs: int | None


def prune_state(state: StateStore, profile: str, retention: Retention, now: int) -> PruneCounts:
    """Forget what ``retention`` lets go as of ``now`` (one transaction) and log it."""
    closed_before = None if retention.keep_closed is None else now - retention.keep_closed
    runs_before = None if retention.keep_runs is None else now - retention.keep_runs
    with run_scope(log, _PRUNE_EVENTS, profile=profile) as run:
        window = {
            "closed_before": format_instant_or_none(closed_before),
            "runs_before": format_instant_or_none(runs_before),
        }
        run.started(**window)
        counts = state.prune(profile, closed_before=closed_before, runs_before=runs_before)
        run.finish(
            complaints=counts.complaints,
            ledger_entries=counts.ledger_entries,
            runs=counts.runs,
            **window,
        )
        return counts
