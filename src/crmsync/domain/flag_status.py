"""The status flag's vocabulary (the status flag field the mapping names, reference-org.md):
one list.

Each value the worker writes, with its rank (higher is worse), in the order staff see them
in the CRM's picklist. Everything that names, orders or counts the statuses (the write-back
rule, ``crmsync status``, the metrics, each CRM's set-up, the demo) reads this
list; none writes the values out again.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from crmsync.domain.evaluation import State


class FlagStatus(NamedTuple):
    """One value of the status flag and its rank: the flag shows the worst (highest)."""

    state: State
    rank: int


FLAG_STATUSES: Final[tuple[FlagStatus, ...]] = (
    FlagStatus(State.ON_TRACK, 2),
    FlagStatus(State.AT_RISK, 3),
    FlagStatus(State.BREACHED, 4),
    FlagStatus(State.MET, 0),
    FlagStatus(State.PAUSED, 1),  # waiting on the customer (semantics 4.5)
)
"""The picklist, in the order staff see it (a value added later is appended)."""

FLAG_VALUES: Final[tuple[str, ...]] = tuple(s.state.value for s in FLAG_STATUSES)
RANK: Final[dict[State, int]] = {s.state: s.rank for s in FLAG_STATUSES}
WORST_FIRST: Final[tuple[str, ...]] = tuple(
    s.state.value for s in sorted(FLAG_STATUSES, key=lambda s: -s.rank)
)
CLOCK_STATES: Final[tuple[str, ...]] = tuple(s.value for s in State)
"""Every state a clock can be in (``evaluate``'s vocabulary; the flag folds some)."""


def flag_state(state: State) -> State:
    """The flag value a started clock's ``state`` counts as: ``met_late`` is ``breached``
    (the promise was broken), ``pending`` (a started clock with an unknown deadline) is
    ``on_track``; every other state is its own value."""
    if state is State.MET_LATE:
        return State.BREACHED
    if state is State.PENDING:
        return State.ON_TRACK
    return state
