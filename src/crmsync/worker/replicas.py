"""``crmsync run`` as one replica of a shared Procrastinate queue (state on PostgreSQL).

Every replica is a worker of the queue; any live one may take any profile's job. The
jobs: ``sync`` (every interval, or sooner at the profile's next due instant), ``archive``
(daily 02:00 UTC), ``prune`` (03:00) and ``report`` (04:00, when the monthly report is on).

- One dispatcher at a time: each replica ticks every second, but only the one that gets
  the dispatch lock (an advisory lock) reads the ``schedule`` table, defers the due jobs
  and moves their next instant on. A lost tick is made up by the next one: the schedule
  only moves after the defer.
- ``queueing_lock`` ``KIND:PROFILE``: at most one waiting job per kind and profile;
  ``lock`` ``PROFILE``: at most one running job per profile (two jobs that write its CRM
  never run at once). Every job also takes the profile lock, so the one-off commands and
  the lost-lock guard work as with one process.
- A replica killed mid-job stops its heartbeat; after ``stalled_after`` seconds the
  dispatcher marks its job failed (never retried as such) and makes its work due again:
  the next dispatch defers it afresh, and a cycle's watermarks and idempotent writes
  finish what was half done.
- SIGTERM/SIGINT: no new job; the running one finishes; exit 0. A job taken but not begun
  is handed back: its ``(profile, kind)`` is due again at once, so the next dispatch
  defers it afresh for a live replica.
- A profile removed from this replica (its file went): its jobs still waiting in the queue
  are deleted and due again, so none waits forever for a replica that no longer serves it
  (another replica that still does defers them afresh).
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from crmsync.errors import CrmSyncError
from crmsync.ports import QueueTablesPort, RunCounts
from crmsync.worker.scheduling import STOPPING, ProfileChanges, Worker

log = structlog.get_logger("crmsync.worker")

TASK = "crmsync.profile_job"
NIGHTLY_HOUR = {"archive": 2, "prune": 3, "report": 4}
PRIORITY = {"sync": 10, "archive": 5, "prune": 0, "report": 0}
RETIRED_WAITS = 50
"""Tenths of a second a job waits for a retired worker's successor (a changed profile)."""


QUEUE_NAME_BYTES = 40
"""The longest queue name: Procrastinate notifies ``procrastinate_queue_v1#QUEUE`` when a
job is deferred, and PostgreSQL refuses a channel name of 64 bytes or more (the defer
would fail)."""


def queue_name(profile: str) -> str:
    """The profile's queue: a replica only listens to the queues of its own profiles, so
    it never takes a job it cannot run (replicas of other deployments, or in the middle
    of a configuration change, may share the schema). ``crmsync/PROFILE``; a name too
    long for that keeps its start and ends with a digest of the whole name."""
    name = f"crmsync/{profile}"
    if len(name.encode()) <= QUEUE_NAME_BYTES:
        return name
    digest = hashlib.sha256(profile.encode()).hexdigest()[:10]
    room = QUEUE_NAME_BYTES - len("crmsync/") - len(digest) - 1
    start = profile.encode()[:room].decode(errors="ignore")
    return f"crmsync/{start}~{digest}"


def next_nightly(kind: str, after: datetime) -> datetime:
    """The first ``NIGHTLY_HOUR[kind]``:00 UTC strictly after ``after``."""
    at = after.astimezone(UTC).replace(hour=NIGHTLY_HOUR[kind], minute=0, second=0, microsecond=0)
    return at if at > after else at + timedelta(days=1)


def next_sync(due: datetime, interval: int, now: datetime) -> datetime:
    """The next interval tick after ``due`` that is in the future of ``now``."""
    step = timedelta(seconds=interval)
    nxt = due + step
    if nxt <= now:
        nxt = now + step
    return nxt


@dataclass
class ReplicaQueue:
    """One replica: the Procrastinate worker and the dispatcher, over ``workers`` (one per
    profile, their own schedulers unused)."""

    url: str
    schema: str
    replica: str
    tables: Callable[[], QueueTablesPort]
    """Opens the schedule and runs tables (``StateStoreError`` while the server is away)."""
    workers: dict[str, Worker]
    stop_requested: threading.Event
    serves: frozenset[str] = frozenset()
    """Every profile this replica is configured for (opened or still pending)."""
    stalled_after: int = 30
    heartbeat: float = 2.0
    tick: float = 1.0
    opening: Callable[[], ProfileChanges] | None = None
    retry_every: float = 300.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_health: Callable[[bool], None] = field(default=lambda _ok: None)
    on_gauges: Callable[[dict[str, float], dict[str, int]], None] = field(
        default=lambda _lag, _depth: None
    )
    gauges_every: float = 15.0
    connection: Mapping[str, Any] = field(default_factory=dict)
    """libpq parameters the queue's connections add to ``url`` (the composition root's
    probes); the schema's ``search_path`` is added to their ``options``."""
    _tables: QueueTablesPort | None = None
    _worker_tasks: list[asyncio.Task[None] | None] = field(default_factory=lambda: [None])
    _requeued: bool = False
    _started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _app: Any = None
    _dropping: set[str] = field(default_factory=set)
    """Profiles removed from this replica whose waiting jobs are still to be dropped."""

    # ------------------------------------------------------------------ the jobs

    def run_job(self, job_id: int, kind: str, profile: str) -> None:
        """Run one job of a profile; its row in ``runs`` says how it went. Never raises:
        a failed job is recorded, and the next dispatch defers the work again."""
        tables = self._require_tables()
        started = self.clock()
        bound = structlog.contextvars.bound_contextvars(profile=profile, job=kind, job_id=job_id)
        with bound:
            try:
                tables.started(job_id, profile, kind, self.replica, started)
            except CrmSyncError as exc:
                log.error("run_not_recorded", error=str(exc))
            status, counts, error, next_due = self._work(kind, profile)
            log.info(
                "job_finished", status=status, seconds=(self.clock() - started).total_seconds()
            )
            try:
                tables.finished(
                    job_id, self.clock(), status, counts, error=error, next_due=next_due
                )
                if status == "handed_back":  # the next dispatch defers it afresh
                    tables.due_again([(profile, kind)], self.clock())
            except CrmSyncError as exc:
                log.error("run_not_recorded", error=str(exc))

    def _work(self, kind: str, profile: str) -> tuple[str, RunCounts, str | None, datetime | None]:
        """Run the job on the profile's worker; a retired worker (its profile file changed)
        hands it to its successor once that is in place, or back when none comes."""
        for _ in range(RETIRED_WAITS):
            worker = self.workers.get(profile)
            if worker is None:
                return "failed", RunCounts(), "profile not configured on this replica", None
            with worker.turn() as active:  # retiring the worker waits for this job
                if active:
                    return self._run_on(worker, kind)
            if self.stop_requested.is_set():
                return "handed_back", RunCounts(), None, None
            time.sleep(0.1)
        return "handed_back", RunCounts(), "the profile was retired on this replica", None

    def _run_on(
        self, worker: Worker, kind: str
    ) -> tuple[str, RunCounts, str | None, datetime | None]:
        if not worker.owns_profile():
            return "busy", RunCounts(), "the profile lock is held elsewhere", None
        try:
            if kind == "sync":
                done = self._sync(worker)
            else:
                job = {
                    "archive": worker.archive,
                    "prune": worker.prune,
                    "report": worker.monthly_report,
                }
                ok = job[kind]()
                done = ("succeeded" if ok else "failed"), RunCounts(), worker.last_error, None
        finally:
            worker.work.release_profile()
        if done[0] == "failed" and worker.last_error == STOPPING:  # a stop came before it began
            return "handed_back", RunCounts(), None, None
        return done

    def _sync(self, worker: Worker) -> tuple[str, RunCounts, str | None, datetime | None]:
        report = worker.cycle()
        if report is None:
            return "failed", RunCounts(), worker.last_error, None
        counts = RunCounts(
            report.records_read, report.flags_written, report.tasks_created, report.tasks_completed
        )
        next_due: datetime | None = None
        try:
            nxt = worker.work.next_check()
            next_due = None if nxt is None else datetime.fromtimestamp(nxt, UTC)
        except CrmSyncError as exc:
            log.warning("next_check_unknown", error=str(exc))
        return "succeeded", counts, None, next_due

    # ------------------------------------------------------------------ dispatch

    def _first(self, now: datetime) -> dict[tuple[str, str], datetime]:
        first: dict[tuple[str, str], datetime] = {}
        for profile, worker in self.workers.items():
            first[(profile, "sync")] = now
            first[(profile, "archive")] = next_nightly("archive", now)
            first[(profile, "prune")] = next_nightly("prune", now)
            if worker.report_folder() is not None:
                first[(profile, "report")] = next_nightly("report", now)
        return first

    async def dispatch_once(self) -> int:
        """One dispatcher tick (a no-op unless this replica gets the dispatch lock): mark
        stalled jobs failed, defer the due jobs, move their schedule on. Returns the jobs
        deferred."""
        tables = self._require_tables()
        now = self.clock()
        due = await asyncio.to_thread(tables.take_due, self._first(now), now)
        if due is None:
            return 0
        try:
            return await self._dispatch(due, now)
        finally:
            await asyncio.to_thread(tables.end_dispatch)

    async def _dispatch(self, due: list[tuple[str, str, datetime]], now: datetime) -> int:
        """Under the dispatch lock: give up stalled jobs, defer ``due``, reschedule."""
        from procrastinate import exceptions  # noqa: PLC0415 - the engine
        from procrastinate.jobs import Status  # noqa: PLC0415 - the engine

        tables, app = self._require_tables(), self._app
        stalled = list(
            await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.stalled_after)
        )
        for job in stalled:
            await app.job_manager.finish_job_by_id_async(
                job.id, status=Status.FAILED, delete_job=False
            )
            log.warning("job_stalled", job_id=job.id, profile=job.task_kwargs.get("profile"))
        await asyncio.to_thread(tables.stalled, [j.id for j in stalled if j.id is not None], now)
        again = [
            (str(j.task_kwargs.get("profile")), str(j.task_kwargs.get("kind"))) for j in stalled
        ]
        await asyncio.to_thread(tables.due_again, again, now)  # a nightly job too: not tomorrow
        deferred = 0
        nexts: dict[tuple[str, str], datetime] = {}
        for profile, kind, at in due:
            worker = self.workers.get(profile)
            if worker is None:  # retired meanwhile: no longer this replica's to dispatch
                continue
            try:
                await app.configure_task(
                    TASK,
                    queue=queue_name(profile),
                    lock=profile,
                    queueing_lock=f"{kind}:{profile}",
                    priority=PRIORITY[kind],
                ).defer_async(kind=kind, profile=profile)
                deferred += 1
            except exceptions.AlreadyEnqueued:
                pass
            nexts[(profile, kind)] = (
                next_sync(at, worker.interval, now) if kind == "sync" else next_nightly(kind, now)
            )
        await asyncio.to_thread(tables.reschedule, nexts)
        return deferred

    async def drop_waiting(self) -> int:
        """Delete the jobs still waiting in the queues of the profiles removed from this
        replica and make their work due again (a replica that still serves a profile
        defers it afresh; one served by none waits in no queue). Returns the jobs
        dropped."""
        tables, app = self._require_tables(), self._app
        dropped = 0
        for profile in sorted(self._dropping):
            kinds: list[tuple[str, str]] = []
            for job in await app.job_manager.list_jobs_async(
                queue=queue_name(profile), task=TASK, status="todo"
            ):
                if job.task_kwargs.get("profile") != profile or job.id is None:
                    continue
                if await app.job_manager.cancel_job_by_id_async(job.id, delete_job=True):
                    kinds.append((profile, str(job.task_kwargs.get("kind"))))
            await asyncio.to_thread(tables.due_again, kinds, self.clock())
            if kinds:
                log.info("waiting_jobs_dropped", profile=profile, kinds=[k for _p, k in kinds])
            dropped += len(kinds)
            self._dropping.discard(profile)
        return dropped

    def _gauges(self) -> None:
        """Per profile: seconds since its last successful cycle (since the replica
        started when it never had one), and jobs waiting."""
        tables = self._require_tables()
        now = self.clock()
        last = tables.last_successes(sorted(self.workers))
        lag = {p: (now - last.get(p, self._started)).total_seconds() for p in self.workers}
        depth = tables.queue_depth()
        self.on_gauges(lag, {p: depth.get(p, 0) for p in self.workers})

    def _require_tables(self) -> QueueTablesPort:
        if self._tables is None:
            raise RuntimeError("the replica queue is not open")
        return self._tables

    # ------------------------------------------------------------------ running

    def build_app(self) -> Any:
        """The Procrastinate app on the queue schema, with the one profile-job task."""
        import procrastinate  # noqa: PLC0415 - the engine

        connector = procrastinate.PsycopgConnector(
            conninfo=self.url,
            kwargs={
                **self.connection,
                "options": " ".join(
                    part
                    for part in (self.connection.get("options"), f"-c search_path={self.schema}")
                    if part
                ),
                "application_name": f"crmsync-queue {self.replica}"[:63],
            },
            min_size=1,
            max_size=4,
        )
        app = procrastinate.App(connector=connector)

        @app.task(name=TASK, pass_context=True)
        def profile_job(context: Any, kind: str, profile: str) -> None:
            self.run_job(int(context.job.id), kind, profile)

        return app

    def run(self) -> None:
        """Work the queue until SIGTERM or SIGINT (then the running job finishes)."""
        self._started = self.clock()
        self._app = self.build_app()
        try:
            asyncio.run(self._main())
        finally:
            if self._tables is not None:
                self._tables.close()

    def open_now(self) -> Any:
        """Open the tables and build the app without working the queue (to drive
        ``dispatch_once`` by hand, as the benchmark does); the app, to open."""
        self._tables = self._open_tables()
        self._app = self.build_app()
        return self._app

    def _open_tables(self) -> QueueTablesPort:
        tables = self.tables()
        try:
            tables.migrate()
        except BaseException:
            tables.close()
            raise
        return tables

    def _requeue(self) -> None:
        """Restart the queue's worker (its running job finishes first) to listen to the
        queues of ``serves`` as it is now."""
        task = self._worker_tasks[0]
        if task is not None:
            self._requeued = True
            task.cancel()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        worker_tasks = self._worker_tasks

        def on_signal(signum: int) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self.stop_requested.set()
            task = worker_tasks[0]
            if task is not None:
                task.cancel()  # Procrastinate: no new job, the running one finishes

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        opener = asyncio.create_task(self._open_pending_forever())
        try:
            await self._work_queue(lambda task: worker_tasks.__setitem__(0, task))
        finally:
            opener.cancel()
            await asyncio.gather(opener, return_exceptions=True)
            for worker in list(self.workers.values()):
                await asyncio.to_thread(worker.stop)
            log.info("replica_stopped", replica=self.replica)

    async def _work_queue(self, started: Callable[[asyncio.Task[None]], None]) -> None:
        """Open the tables (waiting for the server), then dispatch and work the queue
        until a stop is requested, reconnecting when the server goes away."""
        while self._tables is None:  # the server may be down as the replica starts
            try:
                self._tables = await asyncio.to_thread(self._open_tables)
            except CrmSyncError as exc:
                self.on_health(False)
                log.error("queue_unavailable", error=str(exc))
                for _ in range(20):
                    if self.stop_requested.is_set():
                        return
                    await asyncio.sleep(0.1)
        dispatcher = asyncio.create_task(self._dispatch_forever())
        log.info("replica_started", replica=self.replica, profiles=sorted(self.workers))
        try:
            while not self.stop_requested.is_set():
                try:
                    async with self._app.open_async():
                        worker_task = asyncio.create_task(
                            self._app.run_worker_async(
                                queues=[queue_name(p) for p in sorted(self.serves)],
                                listen_notify=True,  # a deferred job wakes an idle replica at once
                                concurrency=1,
                                name=self.replica,
                                install_signal_handlers=False,
                                update_heartbeat_interval=self.heartbeat,
                                stalled_worker_timeout=self.stalled_after,
                                fetch_job_polling_interval=self.tick,
                                delete_jobs="successful",
                            )
                        )
                        started(worker_task)
                        if self.stop_requested.is_set():  # a signal just before it started
                            worker_task.cancel()
                        self.on_health(True)
                        await worker_task
                        self._requeued = False
                except asyncio.CancelledError:
                    if self.stop_requested.is_set():
                        break
                    if not self._requeued:
                        raise
                    self._requeued = False
                    log.info("queues_changed", profiles=len(self.serves))
                except Exception as exc:  # the server went away: reconnect after a pause
                    self.on_health(False)
                    log.error("queue_unavailable", error=f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(2.0)
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)

    async def _dispatch_forever(self) -> None:
        next_gauges = 0.0
        while not self.stop_requested.is_set():
            try:
                if self._dropping:
                    await self.drop_waiting()
                await self.dispatch_once()
                if asyncio.get_running_loop().time() >= next_gauges:
                    await asyncio.to_thread(self._gauges)
                    next_gauges = asyncio.get_running_loop().time() + self.gauges_every
                self.on_health(True)
            except Exception as exc:  # the server went away: the next tick tries again
                self.on_health(False)
                log.error("dispatch_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.tick)

    async def _open_pending_forever(self) -> None:
        """Every ``retry_every`` seconds, open the profiles that could not be opened yet
        and take in the profiles' files as they are now (whether or not the queue is
        reachable): a new profile's jobs are dispatched and served from then on, a
        removed one's no longer (its running job finished first)."""
        opening = self.opening
        if opening is None:
            return
        loop = asyncio.get_running_loop()
        next_open = loop.time() + self.retry_every
        while not self.stop_requested.is_set():
            if loop.time() >= next_open:
                self.apply(await asyncio.to_thread(opening))
                next_open = loop.time() + self.retry_every
            await asyncio.sleep(min(self.tick, self.retry_every))

    def apply(self, changes: ProfileChanges) -> None:
        """Drop the retired profiles' workers, add the opened ones, and listen to the
        queues of the profiles served as they are now."""
        workers = {p: w for p, w in self.workers.items() if p not in changes.retired}
        workers.update({w.profile: w for w in changes.opened})
        self.workers = workers
        gone = changes.retired - set(workers)
        self._dropping = (self._dropping | gone) - set(workers)
        serves = (self.serves - gone) | set(workers)
        if serves != self.serves:
            self.serves = serves
            self._requeue()
