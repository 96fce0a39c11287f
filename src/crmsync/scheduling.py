"""``crmsync run``: the long-running worker on APScheduler 3.x.

One cycle at a time: every ``sync_interval``, and also at the next due or warning
instant when that comes sooner. SIGTERM/SIGINT let the running cycle finish, then the
worker exits 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from crmsync.bootstrap import Runtime, build_archive, build_archiving
from crmsync.errors import CrmSyncError

log = structlog.get_logger("crmsync.worker")

NEXT_DUE_JOB = "next-due"
INTERVAL_JOB = "interval"
ARCHIVE_JOB = "archive"  # nightly, 02:00 UTC


class Worker:
    """Schedules cycles of one runtime until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval: int,
        clock: Callable[[], datetime],
        on_cycle: Callable[[bool], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.interval = interval
        self.clock = clock
        self.on_cycle = on_cycle
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def cycle(self) -> None:
        """Run one cycle (never two at once); failures are logged and the worker goes on."""
        if self.stop_requested.is_set() or not self._lock.acquire(blocking=False):
            return
        ok = False
        try:
            self.runtime.cycle.run()
            ok = True
        except CrmSyncError as exc:
            log.error("cycle_error", error=str(exc), kind=type(exc).__name__)
        except Exception as exc:  # a bug must not kill the worker; it is logged with its trace
            log.exception("cycle_crashed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._lock.release()
        if self.on_cycle is not None:
            self.on_cycle(ok)
        self._schedule_next_due()

    def archive(self) -> None:
        """Run the archiving service once (waits for a running cycle; never two at once);
        failures are logged and the worker goes on."""
        if self.stop_requested.is_set():
            return
        with self._lock:
            try:
                store = build_archive(self.runtime.settings)
                try:
                    build_archiving(self.runtime, store).run()
                finally:
                    store.close()
            except CrmSyncError as exc:
                log.error("archive_error", error=str(exc), kind=type(exc).__name__)
            except Exception as exc:  # a bug must not kill the worker; logged with its trace
                log.exception("archive_crashed", error=f"{type(exc).__name__}: {exc}")

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
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=self.interval,
            id=INTERVAL_JOB,
            next_run_time=self.clock(),
        )
        self.scheduler.add_job(self.archive, "cron", hour=2, minute=0, timezone=UTC, id=ARCHIVE_JOB)
        self.scheduler.start()
        log.info("worker_started", interval_seconds=self.interval)
        while not self.stop_requested.wait(1.0):
            pass
        self.scheduler.shutdown(wait=True)
        log.info("worker_stopped")
