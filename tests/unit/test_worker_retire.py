"""Retiring one profile's worker (its profile file changed or went): the job it runs
finishes first, no job starts after, the profile is given back, and the stop event the
other workers share is left alone."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

from crmsync.service.cycle_report import CycleReport
from crmsync.worker.replicas import ReplicaQueue
from crmsync.worker.scheduling import ProfileChanges, ProfileWork, Worker, apply_changes

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


class SlowProfile:
    """A profile whose cycle waits for ``go``; every call is remembered."""

    def __init__(self, name: str = "acme") -> None:
        self.name = name
        self.calls: list[str] = []
        self.running = threading.Event()
        self.go = threading.Event()

    def run_cycle(self) -> CycleReport:
        self.calls.append("cycle")
        self.running.set()
        assert self.go.wait(10)
        self.calls.append("cycle done")
        return CycleReport(run_id="r", profile=self.name, now="2026-03-20T12:00:00Z")

    def work(self) -> ProfileWork:
        def nothing(*_: object) -> int:
            self.calls.append("nightly")
            return 0

        return ProfileWork(
            profile=self.name,
            run_cycle=self.run_cycle,
            next_check=lambda: None,
            archive=nothing,
            prune=nothing,
            population=_NoCounts,
            charter="aston",
            clock_ids=(),
            release_profile=lambda: self.calls.append("release"),
        )


class _NoCounts:
    def __init__(self) -> None:
        self.by_status: dict[str, int] = {}
        self.by_clock: dict[tuple[str, str], int] = {}


def test_retiring_waits_for_the_running_cycle_and_runs_nothing_after() -> None:
    fake, shared_stop = SlowProfile(), threading.Event()
    worker = Worker(fake.work(), interval=300, clock=lambda: NOW, stop_requested=shared_stop)
    cycling = threading.Thread(target=worker.cycle)
    cycling.start()
    assert fake.running.wait(10)
    retiring = threading.Thread(target=worker.retire)
    retiring.start()
    retiring.join(0.3)
    assert retiring.is_alive()  # the cycle in flight is never interrupted
    fake.go.set()
    cycling.join(10)
    retiring.join(10)
    assert not retiring.is_alive()
    assert fake.calls == ["cycle", "cycle done", "release"]
    assert worker.retired
    assert worker.cycle() is None
    assert worker.archive() is False
    assert fake.calls == ["cycle", "cycle done", "release"]
    assert not shared_stop.is_set()  # the other profiles' workers go on


def test_a_turn_held_from_outside_is_waited_for_and_then_says_retired() -> None:
    """The shared queue runs a job inside ``turn()``: retiring waits for it; a turn after
    says the worker may not work."""
    fake = SlowProfile()
    worker = Worker(fake.work(), interval=300, clock=lambda: NOW)
    inside, leave = threading.Event(), threading.Event()

    def job() -> None:
        with worker.turn() as active:
            assert active
            inside.set()
            assert leave.wait(10)

    running = threading.Thread(target=job)
    running.start()
    assert inside.wait(10)
    retiring = threading.Thread(target=worker.retire)
    retiring.start()
    retiring.join(0.3)
    assert retiring.is_alive()
    leave.set()
    running.join(10)
    retiring.join(10)
    with worker.turn() as active:
        assert not active


def test_the_changes_drop_the_retired_workers_and_add_the_opened_ones() -> None:
    def worker(name: str) -> Worker:
        return Worker(SlowProfile(name).work(), interval=300, clock=lambda: NOW)

    a, b, c = worker("a"), worker("b"), worker("c")
    b2, d = worker("b"), worker("d")
    kept = apply_changes([a, b, c], ProfileChanges([b2, d], frozenset({"b", "c"})))
    assert kept == [a, b2, d]


class RecordedRuns:
    """The ``runs`` and ``schedule`` calls a job makes, remembered."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str | None]] = []
        self.due: list[tuple[str, str]] = []

    def due_again(self, keys: list[tuple[str, str]], _at: object) -> None:
        self.due += keys

    def started(self, *_: object) -> None:
        return None

    def finished(
        self, _job_id: int, _at: object, status: str, _counts: object, **kw: object
    ) -> None:
        self.ended.append((status, kw.get("error")))  # type: ignore[arg-type]


def replica(
    workers: dict[str, Worker], runs: RecordedRuns, stop: threading.Event | None = None
) -> ReplicaQueue:
    queue = ReplicaQueue(
        url="postgresql://unused",
        schema="q",
        replica="r1",
        tables=lambda: runs,  # type: ignore[arg-type,return-value]
        workers=workers,
        serves=frozenset(workers),
        stop_requested=stop or threading.Event(),
    )
    queue._tables = runs  # type: ignore[assignment]  # opened, as while it runs
    return queue


def test_a_job_for_a_changed_profile_runs_on_the_worker_that_replaced_the_retired_one() -> None:
    old, new = SlowProfile(), SlowProfile()
    retired = Worker(old.work(), interval=300, clock=lambda: NOW)
    retired.retire()
    successor = Worker(new.work(), interval=300, clock=lambda: NOW)
    runs = RecordedRuns()
    queue = replica({"acme": retired}, runs)
    threading.Timer(
        0.3, lambda: queue.apply(ProfileChanges([successor], frozenset({"acme"})))
    ).start()
    queue.run_job(1, "prune", "acme")
    assert runs.ended == [("succeeded", None)]
    assert "nightly" in new.calls and "nightly" not in old.calls


def test_a_job_for_a_removed_profile_runs_nothing() -> None:
    gone = SlowProfile()
    retired = Worker(gone.work(), interval=300, clock=lambda: NOW)
    retired.retire()
    runs = RecordedRuns()
    queue = replica({"acme": retired}, runs)
    threading.Timer(0.3, lambda: queue.apply(ProfileChanges([], frozenset({"acme"})))).start()
    queue.run_job(2, "sync", "acme")
    assert runs.ended == [("failed", "profile not configured on this replica")]
    assert gone.calls == ["release"]
    assert queue.serves == frozenset()


def test_a_job_taken_as_the_replica_stops_is_handed_back_due_again() -> None:
    """SIGTERM before the job began: nothing runs, the job ends ``handed_back`` and its
    work is due again at once (the next dispatch defers it for a live replica)."""
    stop = threading.Event()
    profile = SlowProfile()
    worker = Worker(profile.work(), interval=300, clock=lambda: NOW, stop_requested=stop)
    runs = RecordedRuns()
    queue = replica({"acme": worker}, runs, stop)
    stop.set()
    queue.run_job(3, "archive", "acme")
    assert runs.ended == [("handed_back", None)]
    assert runs.due == [("acme", "archive")]
    assert "nightly" not in profile.calls


def test_a_stop_between_taking_the_job_and_its_cycle_hands_it_back() -> None:
    """The stop comes while the job takes the profile's lock: the cycle never begins, and
    the job is handed back, not recorded as failed."""
    stop = threading.Event()
    profile = SlowProfile()

    def take_and_stop() -> bool:
        stop.set()  # SIGTERM arrives now
        return True

    work = replace(profile.work(), take_profile=take_and_stop)
    worker = Worker(work, interval=300, clock=lambda: NOW, stop_requested=stop)
    runs = RecordedRuns()
    replica({"acme": worker}, runs, stop).run_job(4, "sync", "acme")
    assert runs.ended == [("handed_back", None)]
    assert runs.due == [("acme", "sync")]
    assert "cycle" not in profile.calls
