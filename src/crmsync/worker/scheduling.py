"""``crmsync run``: the long-running worker on APScheduler 3.x.

One ``Worker`` per profile. Per profile, one cycle at a time: every ``sync_interval``,
and also at the next due or warning instant when that comes sooner. With a
``ProfileLock`` a worker only runs cycles while this process holds the profile, so
several replicas share the profiles and a dead holder's profile is taken over at the
next interval. SIGTERM/SIGINT let the running cycles finish, then the process exits 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from crmsync.adapters.profile_lock import ProfileLock
from crmsync.bootstrap import Runtime, archive_cipher, build_archive, build_archiving
from crmsync.errors import CrmError, CrmSyncError
from crmsync.service.cycle_report import CycleReport
from crmsync.service.report_monthly import (
    last_month,
    monthly_report_paths,
    write_monthly_report,
)
from crmsync.service.state_retention import Retention, prune_state
from crmsync.worker.ops_http import Metrics, Readiness

log = structlog.get_logger("crmsync.worker")

NEXT_DUE_JOB = "next-due"
INTERVAL_JOB = "interval"
ARCHIVE_JOB = "archive"  # nightly, 02:00 UTC
PRUNE_JOB = "prune"  # nightly, 03:00 UTC: the state store forgets what retention lets go
MONTHLY_REPORT_JOB = "monthly-report"  # daily, 04:00 UTC: last month's report if not written


class Worker:
    """Schedules cycles of one runtime until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval: int,
        clock: Callable[[], datetime],
        on_cycle: Callable[[bool], None] | None = None,
        profile_lock: ProfileLock | None = None,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self.runtime = runtime
        self.profile = runtime.settings.profile
        self.interval = interval
        self.clock = clock
        self.on_cycle = on_cycle
        self.profile_lock = profile_lock
        self.metrics = metrics
        self.readiness = readiness
        self.stop_requested = stop_requested or threading.Event()
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def owns_profile(self) -> bool:
        """True when this process may work the profile now (taking it if it is free)."""
        if self.profile_lock is None:
            return True
        owned = self.profile_lock.held(self.profile) or self.profile_lock.try_acquire(self.profile)
        if self.metrics is not None:
            self.metrics.profile_owned.labels(self.profile).set(1 if owned else 0)
        return owned

    def cycle(self) -> None:
        """Run one cycle (never two at once); failures are logged and the worker goes on."""
        if self.stop_requested.is_set() or not self._lock.acquire(blocking=False):
            return
        ok = False
        report: CycleReport | None = None
        started = self.clock()
        try:
            if not self.owns_profile():
                log.debug("profile_busy", profile=self.profile)
                return
            report = self.runtime.cycle.run()
            ok = True
        except CrmSyncError as exc:
            log.error("cycle_error", error=str(exc), kind=type(exc).__name__)
            self._count_error(type(exc).__name__, crm=isinstance(exc, CrmError))
        except Exception as exc:  # a bug must not kill the worker; it is logged with its trace
            log.exception("cycle_crashed", error=f"{type(exc).__name__}: {exc}")
            self._count_error(type(exc).__name__, crm=False)
        finally:
            self._lock.release()
        self._record(ok, report, (self.clock() - started).total_seconds())
        if self.on_cycle is not None:
            self.on_cycle(ok)
        self._schedule_next_due()

    def _count_error(self, kind: str, *, crm: bool) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(self.profile, kind).inc()
            self.metrics.cycles.labels(self.profile, "failed").inc()
        if self.readiness is not None and crm:
            self.readiness.crm_ok[self.profile] = False

    def _record(self, ok: bool, report: CycleReport | None, seconds: float) -> None:
        if report is None:
            return
        if self.readiness is not None:
            self.readiness.crm_ok[self.profile] = True
            if ok:
                self.readiness.last_success[self.profile] = self.clock().timestamp()
        m = self.metrics
        if m is None:
            return
        p = self.profile
        m.cycle_duration.labels(p).observe(seconds)
        m.cycles.labels(p, report.status).inc()
        m.records_read.labels(p).inc(report.records_read)
        m.flags_written.labels(p).inc(report.flags_written)
        m.tasks_created.labels(p).inc(report.tasks_created)
        m.tasks_completed.labels(p).inc(report.tasks_completed)
        m.crm_calls.labels(p).inc(report.crm_calls)
        for error in report.errors:
            m.errors.labels(p, error.kind).inc()
        self._record_population(m)
        usage = getattr(self.runtime.crm, "api_usage", None)
        if isinstance(usage, tuple) and len(usage) == 2 and usage[1]:
            m.api_remaining.labels(p).set(usage[1] - usage[0])
        if ok:
            m.last_success.labels(p).set(self.clock().timestamp())

    def _record_population(self, m: Metrics) -> None:
        """Set the status and clock gauges from the open complaints in the state store (a
        quiet cycle evaluates nothing, yet the breached clocks are still there)."""
        try:
            population = self.runtime.state.population(self.profile)
        except CrmSyncError as exc:
            log.warning("population_unknown", error=str(exc))
            return
        p, charter = self.profile, self.runtime.charter.name
        for status in ("on_track", "at_risk", "breached", "met"):
            m.complaints.labels(p, charter, status).set(population.by_status.get(status, 0))
        for clock in self.runtime.charter.clocks:
            for state in ("pending", "on_track", "at_risk", "breached", "met", "met_late"):
                count = population.by_clock.get((clock.id, state), 0)
                m.clocks.labels(p, charter, clock.id, state).set(count)

    def archive(self) -> None:
        """Run the archiving service once (see ``_nightly``)."""

        def work() -> None:
            store = build_archive(self.runtime.settings)
            try:
                report = build_archiving(self.runtime, store).run()
            finally:
                store.close()
            if self.metrics is not None:
                self.metrics.archive_entries.labels(self.profile).inc(report.archived)

        self._nightly("archive", work)

    def prune(self) -> None:
        """Apply the state retention once (see ``_nightly``)."""
        settings = self.runtime.settings

        def work() -> None:
            prune_state(
                self.runtime.state,
                settings.profile,
                Retention(settings.keep_closed, settings.keep_runs),
                int(self.clock().timestamp()),
            )

        self._nightly("prune", work)

    def report_folder(self) -> Path | None:
        """Where the monthly report goes (``CRMSYNC_MONTHLY_REPORT``), or None when off."""
        setting = self.runtime.settings.monthly_report.strip()
        if not setting or setting.lower() == "off":
            return None
        return self.runtime.settings.data_dir / setting  # an absolute setting wins

    def monthly_report(self) -> None:
        """Write last month's report into ``report_folder`` unless it is there (see
        ``_nightly``). Run daily, so a month ends in the charter's zone (a zone west of UTC
        is still in the old month at 04:00 UTC on the 1st) and a missed day is made up."""
        folder = self.report_folder()
        if folder is None:
            return
        settings = self.runtime.settings

        def work() -> None:
            now = int(self.clock().timestamp())
            first, _ = last_month(self.runtime.charter, now)
            if all(p.exists() for p in monthly_report_paths(folder, self.profile, first)):
                return
            store = build_archive(settings)
            try:
                written = write_monthly_report(
                    self.runtime.charter,
                    self.runtime.state,
                    store,
                    profile=self.profile,
                    now=now,
                    folder=folder,
                    cipher=archive_cipher(settings),
                )
            finally:
                store.close()
            log.info("monthly_report_written", files=[str(p) for p in written])

        self._nightly("monthly_report", work)

    def _nightly(self, job: str, work: Callable[[], None]) -> None:
        """Run a nightly job's ``work`` once: after a running cycle (never beside one), only
        while this process works the profile; failures are logged as ``<job>_error`` (or
        ``<job>_crashed`` with the trace) and the worker goes on."""
        if self.stop_requested.is_set():
            return
        with self._lock:
            if not self.owns_profile():
                return
            try:
                work()
            except CrmSyncError as exc:
                log.error(f"{job}_error", error=str(exc), kind=type(exc).__name__)
            except Exception as exc:  # a bug must not kill the worker; logged with its trace
                log.exception(f"{job}_crashed", error=f"{type(exc).__name__}: {exc}")

    def _schedule_next_due(self) -> None:
        if self.stop_requested.is_set():
            return
        try:
            nxt = self.runtime.state.next_check(self.runtime.settings.profile)
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
        self.scheduler.shutdown(wait=True)
        if self.profile_lock is not None:
            self.profile_lock.release(self.profile)
        log.info("worker_stopped", profile=self.profile)


def run_profiles(workers: list[Worker], stop_requested: threading.Event) -> None:
    """Run every profile's worker until SIGTERM/SIGINT; each finishes its cycle first.

    One failing profile never stops the others: each worker logs and survives its own
    cycle failures.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for worker in workers:
        worker.start()
    while not stop_requested.wait(1.0):
        pass
    for worker in workers:
        worker.stop()
