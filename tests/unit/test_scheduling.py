"""The worker's extra cycle at the next due instant (``Worker._schedule_next_due``).

The worker runs a cycle every ``interval`` seconds; when the state store says a clock
changes state sooner than that, one extra cycle is scheduled at that instant. The
scheduler is started paused, so jobs are really added to its job store but never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from crmsync.errors import StateStoreError
from crmsync.worker.scheduling import NEXT_DUE_JOB, ProfileWork, Worker

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
INTERVAL = 300  # seconds


@dataclass
class FakeState:
    """The one state-store method the scheduling asks: the profile's earliest next check."""

    value: int | None
    asked: list[str] = field(default_factory=list)
    broken: bool = False

    def next_check(self, profile: str) -> int | None:
        self.asked.append(profile)
        if self.broken:
            raise StateStoreError("state store /data/state.sqlite3: database is locked")
        return self.value


def scheduling_work(state: FakeState, profile: str = "acme") -> ProfileWork:
    """What the worker asks when it schedules: the profile's next check (from ``state``);
    its other jobs are never run here."""

    def not_here(*_: object) -> Any:
        raise AssertionError("only the schedule is tested here")

    return ProfileWork(
        profile=profile,
        run_cycle=not_here,
        next_check=lambda: state.next_check(profile),
        archive=not_here,
        prune=not_here,
        population=not_here,
        charter="aston",
        clock_ids=(),
    )


def at(seconds: int) -> int:
    """An epoch instant ``seconds`` after NOW."""
    return int(NOW.timestamp()) + seconds


@pytest.fixture
def state() -> FakeState:
    return FakeState(None)


@pytest.fixture
def worker(state: FakeState) -> Iterator[Worker]:
    made = Worker(scheduling_work(state), interval=INTERVAL, clock=lambda: NOW)
    made.scheduler.start(paused=True)
    yield made
    made.scheduler.shutdown(wait=False)


def next_due_run(worker: Worker) -> datetime | None:
    job = worker.scheduler.get_job(NEXT_DUE_JOB)
    return None if job is None else cast(datetime, job.next_run_time)


def test_a_check_sooner_than_the_interval_gets_a_one_off_cycle_at_that_instant(
    worker: Worker, state: FakeState
) -> None:
    """A clock turning 60 s from now (interval 300 s) schedules a cycle exactly then."""
    state.value = at(60)
    worker._schedule_next_due()
    assert next_due_run(worker) == NOW + timedelta(seconds=60)
    assert state.asked == ["acme"]


def test_a_check_later_than_the_interval_gets_no_extra_cycle(
    worker: Worker, state: FakeState
) -> None:
    """A clock turning 600 s from now is left to the interval cycle (300 s)."""
    state.value = at(600)
    worker._schedule_next_due()
    assert next_due_run(worker) is None


def test_a_check_exactly_one_interval_away_gets_no_extra_cycle(
    worker: Worker, state: FakeState
) -> None:
    """At exactly the interval the regular cycle comes first-or-together: no extra one."""
    state.value = at(INTERVAL)
    worker._schedule_next_due()
    assert next_due_run(worker) is None


def test_nothing_to_check_gets_no_extra_cycle(worker: Worker, state: FakeState) -> None:
    """No running clock (next check None) schedules nothing."""
    state.value = None
    worker._schedule_next_due()
    assert worker.scheduler.get_jobs() == []


def test_a_check_already_past_runs_at_once(worker: Worker, state: FakeState) -> None:
    """A next check already passed (the cycle overran it) is scheduled within a second."""
    state.value = at(-30)
    worker._schedule_next_due()
    run = next_due_run(worker)
    assert run is not None
    assert NOW <= run <= NOW + timedelta(seconds=1)


def test_a_sooner_check_replaces_the_one_scheduled(worker: Worker, state: FakeState) -> None:
    """After a cycle the next-due job is replaced, never duplicated."""
    state.value = at(120)
    worker._schedule_next_due()
    state.value = at(45)
    worker._schedule_next_due()
    assert next_due_run(worker) == NOW + timedelta(seconds=45)
    assert [j.id for j in worker.scheduler.get_jobs()] == [NEXT_DUE_JOB]


def test_no_extra_cycle_once_stop_was_requested(worker: Worker, state: FakeState) -> None:
    """After SIGTERM nothing new is scheduled (and the store is not even asked)."""
    state.value = at(60)
    worker.stop_requested.set()
    worker._schedule_next_due()
    assert next_due_run(worker) is None
    assert state.asked == []


def test_a_failing_state_store_leaves_the_interval_in_charge(
    worker: Worker, state: FakeState
) -> None:
    """A state store that cannot answer schedules nothing and raises nothing."""
    state.broken = True
    worker._schedule_next_due()
    assert next_due_run(worker) is None
