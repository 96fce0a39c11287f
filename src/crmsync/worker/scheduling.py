"""``crmsync run``: the long-running worker on APScheduler 3.x.

One ``Worker`` per profile. Per profile, one cycle at a time: every ``sync_interval``,
and also at the next due or warning instant when that comes sooner. A worker only runs
its jobs while ``take_profile`` says this process holds the profile (the composition
root backs it with the profile lock), so several replicas share the profiles and a dead
holder's profile is taken over at the next interval. SIGTERM/SIGINT let the running
cycles finish, then the process exits 0.

The worker builds nothing: ``bootstrap.build_worker`` hands it a ``ProfileWork`` of
narrow callables, and metrics and readiness (or their no-op twins) to record into.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from crmsync.errors import CrmError, CrmSyncError
from crmsync.service.cycle_report import CycleReport
from crmsync.worker.ops_http import Counts, Metrics, NullMetrics, NullReadiness, Readiness

log = structlog.get_logger("crmsync.worker")

NEXT_DUE_JOB = "next-due"
INTERVAL_JOB = "interval"
ARCHIVE_JOB = "archive"  # nightly, 02:00 UTC
PRUNE_JOB = "prune"  # nightly, 03:00 UTC: the state store forgets what retention lets go
MONTHLY_REPORT_JOB = "monthly-report"  # daily, 04:00 UTC: last month's report if not written
STOPPING = "stopping"
"""``Worker.last_error`` of a job that did not start because the worker is stopping."""


def _always_owned() -> bool:
    return True


def _nothing_to_release() -> None:
    return None


def _usage_unknown() -> tuple[int, int] | None:
    return None


@dataclass(frozen=True)
class ProfileWork:
    """One profile's work as the composition root wires it (``bootstrap.build_worker``):
    narrow callables, so the worker schedules, guards and reports but builds nothing.

    ``run_cycle`` runs one sync cycle; ``next_check`` is the profile's earliest next check
    (epoch seconds) or None; ``archive`` runs the archiving once and returns the entries
    appended; ``prune(now)`` applies the state retention; ``monthly_report(now)`` writes
    last month's report into ``report_folder`` unless it is there and returns the files
    written (None, with ``report_folder`` None: the report is off); ``population`` counts
    the open complaints for the gauges of ``charter``'s ``clock_ids``; ``api_usage`` is
    the CRM's (used, limit) daily calls when it says them. ``take_profile`` holds the
    profile for this process (taking it if it is free) and says whether it does;
    ``release_profile`` gives it back. Each may raise ``CrmSyncError``.
    """

    profile: str
    run_cycle: Callable[[], CycleReport]
    next_check: Callable[[], int | None]
    archive: Callable[[], int]
    prune: Callable[[int], object]
    population: Callable[[], Counts]
    charter: str
    clock_ids: Sequence[str]
    monthly_report: Callable[[int], Sequence[Path]] | None = None
    report_folder: Path | None = None
    api_usage: Callable[[], tuple[int, int] | None] = _usage_unknown
    take_profile: Callable[[], bool] = _always_owned
    release_profile: Callable[[], None] = _nothing_to_release


class Worker:
    """Schedules one profile's cycles and nightly jobs until stopped."""

    def __init__(
        self,
        work: ProfileWork,
        *,
        interval: int,
        clock: Callable[[], datetime],
        on_cycle: Callable[[bool], None] | None = None,
        metrics: Metrics | NullMetrics | None = None,
        readiness: Readiness | NullReadiness | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self.work = work
        self.profile = work.profile
        self.interval = interval
        self.clock = clock
        self.on_cycle = on_cycle
        self.metrics = metrics or NullMetrics()
        self.readiness = readiness or NullReadiness()
        self.stop_requested = stop_requested or threading.Event()
        self._lock = threading.RLock()
        self._retired = False
        self.last_error: str | None = None
        """The last failed job's error in one line (``crmsync runs`` shows it)."""
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def _stopping(self) -> bool:
        return self._retired or self.stop_requested.is_set()

    @property
    def retired(self) -> bool:
        """True once ``retire()`` began: this worker starts no job again."""
        return self._retired

    @contextmanager
    def turn(self) -> Iterator[bool]:
        """Hold this worker for one job run from outside (the shared queue's): no cycle or
        nightly job of its own runs meanwhile and ``retire()`` waits for the block. Yields
        whether the worker may still work (not retired, no stop requested)."""
        with self._lock:
            yield not self._stopping()

    def retire(self) -> None:
        """Stop this profile's worker alone (its profile file changed or went): wait for
        the job it runs, start none again, give the profile back. The shared stop event is
        left alone, so the other profiles' workers go on."""
        with self._lock:  # a running cycle or nightly job finishes first
            self._retired = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.work.release_profile()
        log.info("worker_retired", profile=self.profile)

    def owns_profile(self) -> bool:
        """True when this process may work the profile now (taking it if it is free)."""
        owned = self.work.take_profile()
        self.metrics.record_owned(self.profile, owned)
        return owned

    def cycle(self) -> CycleReport | None:
        """Run one cycle (never two at once); failures are logged and the worker goes on.
        The cycle's report, or None when it did not run or failed (``last_error`` says
        why)."""
        if self._stopping() or not self._lock.acquire(blocking=False):
            self.last_error = STOPPING if self._stopping() else "a cycle of the profile runs"
            return None
        if self._retired:  # retired while this one waited for the lock
            self._lock.release()
            self.last_error = STOPPING
            return None
        ok = False
        self.last_error = None
        report: CycleReport | None = None
        started = self.clock()
        try:
            if not self.owns_profile():
                log.debug("profile_busy", profile=self.profile)
                self.last_error = "the profile lock is held elsewhere"
                return None
            report = self.work.run_cycle()
            ok = True
        except CrmSyncError as exc:
            log.error("cycle_error", error=str(exc), kind=type(exc).__name__)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._count_error(type(exc).__name__, crm=isinstance(exc, CrmError))
        except Exception as exc:  # a bug must not kill the worker; it is logged with its trace
            log.exception("cycle_crashed", error=f"{type(exc).__name__}: {exc}")
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._count_error(type(exc).__name__, crm=False)
        finally:
            self._lock.release()
        self._record(ok, report, (self.clock() - started).total_seconds())
        if self.on_cycle is not None:
            self.on_cycle(ok)
        self._schedule_next_due()
        return report if ok else None

    def _count_error(self, kind: str, *, crm: bool) -> None:
        self.metrics.record_failure(self.profile, kind)
        if crm:
            self.readiness.record_crm(self.profile, reachable=False)

    def _record(self, ok: bool, report: CycleReport | None, seconds: float) -> None:
        if report is None:
            return
        succeeded_at = self.clock().timestamp() if ok else None
        self.readiness.record_crm(self.profile, reachable=True)
        if succeeded_at is not None:
            self.readiness.record_success(self.profile, succeeded_at)
        self._record_population()
        self.metrics.record_cycle(
            self.profile,
            report,
            seconds,
            api_usage=self.work.api_usage(),
            succeeded_at=succeeded_at,
        )

    def _record_population(self) -> None:
        """Set the status and clock gauges from the open complaints in the state store (a
        quiet cycle evaluates nothing, yet the breached clocks are still there)."""
        try:
            counts = self.work.population()
        except CrmSyncError as exc:
            log.warning("population_unknown", error=str(exc))
            return
        self.metrics.record_population(self.profile, self.work.charter, self.work.clock_ids, counts)

    def archive(self) -> bool:
        """Run the archiving once (see ``_nightly``)."""

        def work() -> None:
            self.metrics.record_archived(self.profile, self.work.archive())

        return self._nightly("archive", work)

    def prune(self) -> bool:
        """Apply the state retention once (see ``_nightly``)."""
        return self._nightly("prune", lambda: self.work.prune(int(self.clock().timestamp())))

    def report_folder(self) -> Path | None:
        """Where the monthly report goes (``CRMSYNC_MONTHLY_REPORT``), or None when off."""
        return self.work.report_folder if self.work.monthly_report is not None else None

    def monthly_report(self) -> bool:
        """Write last month's report into ``report_folder`` unless it is there (see
        ``_nightly``). Run daily, so a month ends in the charter's zone (a zone west of UTC
        is still in the old month at 04:00 UTC on the 1st) and a missed day is made up."""
        write = self.work.monthly_report
        if write is None:
            return True

        def work() -> None:
            written = write(int(self.clock().timestamp()))
            if written:
                log.info("monthly_report_written", files=[str(p) for p in written])

        return self._nightly("monthly_report", work)

    def _nightly(self, job: str, work: Callable[[], object]) -> bool:
        """Run a nightly job's ``work`` once: after a running cycle (never beside one), only
        while this process works the profile; failures are logged as ``<job>_error`` (or
        ``<job>_crashed`` with the trace) and the worker goes on. True when it ran and
        succeeded (``last_error`` says why not)."""
        self.last_error = None
        if self._stopping():
            self.last_error = STOPPING
            return False
        with self._lock:
            if self._retired:
                self.last_error = STOPPING
                return False
            if not self.owns_profile():
                self.last_error = "the profile lock is held elsewhere"
                return False
            try:
                work()
                return True
            except CrmSyncError as exc:
                log.error(f"{job}_error", error=str(exc), kind=type(exc).__name__)
                self.last_error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not kill the worker; logged with its trace
                log.exception(f"{job}_crashed", error=f"{type(exc).__name__}: {exc}")
                self.last_error = f"{type(exc).__name__}: {exc}"
        return False

    def _schedule_next_due(self) -> None:
        if self._stopping():
            return
        try:
            nxt = self.work.next_check()
        except CrmSyncError as exc:
            log.warning("next_check_unknown", error=str(exc))
            return
        if nxt is None:
            return
        when = datetime.fromtimestamp(nxt, UTC)
        now = self.clock()
        if when - now >= timedelta(seconds=self.interval):
            return
        when = max(when, now + timedelta(seconds=1))
        self.scheduler.add_job(
            self.cycle, "date", run_date=when, id=NEXT_DUE_JOB, replace_existing=True
        )
        log.info("next_due_scheduled", at=when.isoformat())

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self.stop_requested.set()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; the cycle in progress finishes first."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.start()
        while not self.stop_requested.wait(1.0):
            pass
        self.stop()

    def start(self) -> None:
        """Schedule the interval cycle (first one now), the nightly archive and the nightly
        state retention, and (unless off) the monthly report; start."""
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=self.interval,
            id=INTERVAL_JOB,
            next_run_time=self.clock(),
        )
        self.scheduler.add_job(self.archive, "cron", hour=2, minute=0, timezone=UTC, id=ARCHIVE_JOB)
        self.scheduler.add_job(self.prune, "cron", hour=3, minute=0, timezone=UTC, id=PRUNE_JOB)
        if self.report_folder() is not None:
            self.scheduler.add_job(
                self.monthly_report,
                "cron",
                hour=4,
                minute=0,
                timezone=UTC,
                id=MONTHLY_REPORT_JOB,
            )
        self.scheduler.start()
        log.info("worker_started", profile=self.profile, interval_seconds=self.interval)

    def stop(self) -> None:
        """Let a running cycle finish, stop scheduling, give the profile back."""
        self.stop_requested.set()
        if self.scheduler.running:  # a replica of the shared queue never starts it
            self.scheduler.shutdown(wait=True)
        self.work.release_profile()
        log.info("worker_stopped", profile=self.profile)


@dataclass(frozen=True)
class ProfileChanges:
    """What one reading of the profiles changed, for the loop that runs the workers:
    ``retired`` names the profiles whose worker was retired (their file changed or went;
    drop it), ``opened`` the workers to run from now on (new profiles, changed ones
    reopened, pending ones that opened). A changed profile is in both."""

    opened: list[Worker] = field(default_factory=list)
    retired: frozenset[str] = frozenset()


def apply_changes(workers: list[Worker], changes: ProfileChanges) -> list[Worker]:
    """``workers`` without the retired profiles' workers, with the opened ones added."""
    return [w for w in workers if w.profile not in changes.retired] + list(changes.opened)


def run_profiles(
    workers: list[Worker],
    stop_requested: threading.Event,
    *,
    opening: Callable[[], ProfileChanges] | None = None,
    retry_every: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run every profile's worker until SIGTERM/SIGINT; each finishes its cycle first.

    One failing profile never stops the others: each worker logs and survives its own
    cycle failures. ``opening`` (when given) is called every ``retry_every`` seconds to
    open the profiles that could not be opened yet and to take in the profiles' files
    as they are now; the workers it opened are started and run like the others, and
    those of the profiles it retired are dropped.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for worker in workers:
        worker.start()
    next_try = clock() + retry_every
    while not stop_requested.wait(1.0):
        if opening is not None and clock() >= next_try:
            changes = opening()
            workers = apply_changes(workers, changes)
            for worker in changes.opened:
                worker.start()
            next_try = clock() + retry_every
    for worker in workers:
        worker.stop()
