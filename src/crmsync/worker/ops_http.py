"""Health and metrics endpoints for the platform: ``/healthz``, ``/readyz``, ``/metrics``.

A small threaded HTTP server from the standard library on ``CRMSYNC_HTTP_PORT``;
metrics in the Prometheus text format from ``prometheus_client`` on a registry of our
own. Readiness: the state store answers, the CRM answered at the last attempt, and the
last successful cycle of every profile this process works is younger than three
intervals.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from crmsync.domain.flag_status import CLOCK_STATES, FLAG_VALUES
from crmsync.errors import ConfigError

if TYPE_CHECKING:
    from crmsync.service.cycle_report import CycleReport

log = structlog.get_logger("crmsync.http")


class Counts(Protocol):
    """The open complaints of a profile counted by status and by (clock id, state)."""

    @property
    def by_status(self) -> Mapping[str, int]: ...

    @property
    def by_clock(self) -> Mapping[tuple[str, str], int]: ...


class Metrics:
    """Every metric crmsync exports, by profile."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycle_duration = Histogram(
            "crmsync_cycle_duration_seconds",
            "Wall time of a sync cycle",
            ["profile"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.cycles = Counter(
            "crmsync_cycles_total", "Sync cycles by outcome", ["profile", "status"], registry=r
        )
        self.records_read = Counter(
            "crmsync_records_read_total", "CRM records read", ["profile"], registry=r
        )
        self.flags_written = Counter(
            "crmsync_flags_written_total",
            "Complaint records whose flags were written",
            ["profile"],
            registry=r,
        )
        self.tasks_created = Counter(
            "crmsync_tasks_created_total", "Follow-up tasks created", ["profile"], registry=r
        )
        self.tasks_completed = Counter(
            "crmsync_tasks_completed_total", "Follow-up tasks completed", ["profile"], registry=r
        )
        self.crm_calls = Counter(
            "crmsync_crm_api_calls_total", "CRM API calls", ["profile"], registry=r
        )
        self.api_remaining = Gauge(
            "crmsync_crm_api_daily_remaining",
            "Remaining daily CRM API calls (when known)",
            ["profile"],
            registry=r,
        )
        self.complaints = Gauge(
            "crmsync_complaints_by_status",
            "Open complaints by the charter status on their record (after the last cycle)",
            ["profile", "charter", "status"],
            registry=r,
        )
        self.clocks = Gauge(
            "crmsync_clocks",
            "Clocks of open complaints by charter, clock and state (after the last cycle)",
            ["profile", "charter", "clock", "state"],
            registry=r,
        )
        self.errors = Counter(
            "crmsync_errors_total",
            "Records or cycles that failed, by kind",
            ["profile", "kind"],
            registry=r,
        )
        self.archive_entries = Counter(
            "crmsync_archive_entries_total",
            "Entries appended to the archive",
            ["profile"],
            registry=r,
        )
        self.last_success = Gauge(
            "crmsync_last_success_timestamp_seconds",
            "When the last successful cycle ended",
            ["profile"],
            registry=r,
        )
        self.profile_owned = Gauge(
            "crmsync_profile_owned",
            "1 while this process works the profile",
            ["profile"],
            registry=r,
        )
        self.profile_unavailable = Gauge(
            "crmsync_profile_unavailable",
            "1 while the profile cannot be opened (its state store or CRM fails); retried",
            ["profile"],
            registry=r,
        )

        self.queue_reachable = Gauge(
            "crmsync_queue_reachable",
            "1 while this replica reaches the shared job queue (state on PostgreSQL)",
            ["replica"],
            registry=r,
        )
        self.profile_lag = Gauge(
            "crmsync_profile_lag_seconds",
            "Seconds since the profile's last successful cycle on any replica",
            ["profile"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "crmsync_queue_depth",
            "Jobs of the profile waiting in the queue",
            ["profile"],
            registry=r,
        )

        self._by_profile: tuple[Counter | Gauge | Histogram, ...] = (
            self.cycle_duration,
            self.cycles,
            self.records_read,
            self.flags_written,
            self.tasks_created,
            self.tasks_completed,
            self.crm_calls,
            self.api_remaining,
            self.complaints,
            self.clocks,
            self.errors,
            self.archive_entries,
            self.last_success,
            self.profile_owned,
            self.profile_unavailable,
            self.profile_lag,
            self.queue_depth,
        )
        """Every metric labelled by profile (``forget`` drops a profile's series)."""
        self.replica_info = Gauge(
            "crmsync_replica_info",
            "1, labelled with this process's replica name (CRMSYNC_REPLICA, or host and pid)",
            ["replica"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def record_replica(self, replica: str) -> None:
        """The name of the replica that exports these metrics."""
        self.replica_info.clear()
        self.replica_info.labels(replica).set(1)

    def forget(self, profile: str) -> None:
        """Drop every series of ``profile`` (its profile file was removed or changed)."""
        for metric in self._by_profile:
            metric.remove_by_labels({"profile": profile})

    # -- what the worker records

    def record_queue_reachable(self, replica: str, reachable: bool) -> None:
        """Whether this replica reaches the shared job queue."""
        self.queue_reachable.labels(replica).set(1 if reachable else 0)

    def record_queue(self, lag: dict[str, float], depth: dict[str, int]) -> None:
        """Per profile: seconds since its last successful cycle, jobs waiting."""
        for profile, seconds in lag.items():
            self.profile_lag.labels(profile).set(seconds)
        for profile, jobs in depth.items():
            self.queue_depth.labels(profile).set(jobs)

    def record_owned(self, profile: str, owned: bool) -> None:
        """Whether this process works ``profile`` now."""
        self.profile_owned.labels(profile).set(1 if owned else 0)

    def record_unavailable(self, profile: str, unavailable: bool) -> None:
        """Whether ``profile`` is waiting to be opened (its state store or CRM failed)."""
        self.profile_unavailable.labels(profile).set(1 if unavailable else 0)

    def record_failure(self, profile: str, kind: str) -> None:
        """A cycle that failed as a whole with an error of class ``kind``."""
        self.errors.labels(profile, kind).inc()
        self.cycles.labels(profile, "failed").inc()

    def record_cycle(
        self,
        profile: str,
        report: CycleReport,
        seconds: float,
        *,
        api_usage: tuple[int, int] | None,
        succeeded_at: float | None,
    ) -> None:
        """A cycle that ran (``succeeded_at`` when it ended well): its counts, its record
        errors, its wall time, and the CRM's remaining daily calls when it says them."""
        p = profile
        self.cycle_duration.labels(p).observe(seconds)
        self.cycles.labels(p, report.status).inc()
        self.records_read.labels(p).inc(report.records_read)
        self.flags_written.labels(p).inc(report.flags_written)
        self.tasks_created.labels(p).inc(report.tasks_created)
        self.tasks_completed.labels(p).inc(report.tasks_completed)
        self.crm_calls.labels(p).inc(report.crm_calls)
        for error in report.errors:
            self.errors.labels(p, error.kind).inc()
        if api_usage is not None and api_usage[1]:
            self.api_remaining.labels(p).set(api_usage[1] - api_usage[0])
        if succeeded_at is not None:
            self.last_success.labels(p).set(succeeded_at)

    def record_population(
        self, profile: str, charter: str, clock_ids: Sequence[str], counts: Counts
    ) -> None:
        """The status and clock gauges from the profile's open complaints."""
        for status in FLAG_VALUES:
            self.complaints.labels(profile, charter, status).set(counts.by_status.get(status, 0))
        for clock in clock_ids:
            for state in CLOCK_STATES:
                count = counts.by_clock.get((clock, state), 0)
                self.clocks.labels(profile, charter, clock, state).set(count)

    def record_archived(self, profile: str, entries: int) -> None:
        """Entries the nightly archive job appended."""
        self.archive_entries.labels(profile).inc(entries)


class NullMetrics:
    """``Metrics``' no-op twin: what a worker records into when nothing exports it."""

    def record_replica(self, replica: str) -> None:
        """Nothing."""

    def record_owned(self, profile: str, owned: bool) -> None:
        """Nothing."""

    def record_unavailable(self, profile: str, unavailable: bool) -> None:
        """Nothing."""

    def record_queue_reachable(self, replica: str, reachable: bool) -> None:
        """Nothing."""

    def record_queue(self, lag: dict[str, float], depth: dict[str, int]) -> None:
        """Nothing."""

    def record_failure(self, profile: str, kind: str) -> None:
        """Nothing."""

    def record_cycle(
        self,
        profile: str,
        report: CycleReport,
        seconds: float,
        *,
        api_usage: tuple[int, int] | None,
        succeeded_at: float | None,
    ) -> None:
        """Nothing."""

    def record_population(
        self, profile: str, charter: str, clock_ids: Sequence[str], counts: Counts
    ) -> None:
        """Nothing."""

    def record_archived(self, profile: str, entries: int) -> None:
        """Nothing."""


@dataclass
class Readiness:
    """What ``/readyz`` checks; updated by the worker, read by the server."""

    interval: int
    clock: Callable[[], float]
    state_ok: Callable[[], bool]
    crm_ok: dict[str, bool] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    owned: Callable[[], set[str]] = field(default=set)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Profiles that could not be opened yet (retried), with the error's class."""
    queue_ok: bool = True
    """False while the replica cannot reach the shared job queue."""

    def record_crm(self, profile: str, *, reachable: bool) -> None:
        """Whether the profile's CRM answered at the last attempt."""
        self.crm_ok[profile] = reachable

    def record_success(self, profile: str, at: float) -> None:
        """When the profile's last successful cycle ended."""
        self.last_success[profile] = at

    def forget(self, profile: str) -> None:
        """Drop what was recorded of ``profile`` (its profile file was removed or changed)."""
        self.crm_ok.pop(profile, None)
        self.last_success.pop(profile, None)
        self.unavailable.pop(profile, None)

    def check(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)``."""
        now = self.clock()
        details: dict[str, Any] = {}
        try:
            details["state_store"] = bool(self.state_ok())
        except Exception as exc:  # the probe must answer, whatever the store does
            details["state_store"] = False
            details["state_store_error"] = type(exc).__name__
        profiles: dict[str, Any] = {}
        ready = details["state_store"]
        if not self.queue_ok:
            details["queue"] = False
            ready = False
        for profile in sorted(self.owned()):
            last = self.last_success.get(profile)
            fresh = (
                now - last < 3 * self.interval
                if last is not None
                else now - self.started_at < 3 * self.interval
            )
            crm = self.crm_ok.get(profile, True)
            profiles[profile] = {
                "crm_reachable": crm,
                "last_success_age_s": (None if last is None else round(now - last, 1)),
                "fresh": fresh,
            }
            ready = ready and crm and fresh
        details["profiles"] = profiles
        unavailable = dict(self.unavailable)
        if unavailable:
            details["unavailable"] = unavailable
            ready = False
        details["ready"] = ready
        return ready, details


class NullReadiness:
    """``Readiness``' no-op twin: what a worker reports to when no ``/readyz`` asks."""

    def record_crm(self, profile: str, *, reachable: bool) -> None:
        """Nothing."""

    def record_success(self, profile: str, at: float) -> None:
        """Nothing."""


LISTEN_BACKLOG = 128
"""Connections the kernel queues before ``accept`` (the standard library's default is 5,
which a burst of probes or scrapers overflows)."""
CLIENT_TIMEOUT_S = 10.0
"""A client that sends nothing for this long is disconnected (its thread freed)."""
_CLIENT_GONE = (ConnectionError, TimeoutError)


class _Server(ThreadingHTTPServer):
    """The standard threaded server, with a larger backlog and one JSON log line instead of
    a traceback on standard error when a request fails."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away early (reset, broken pipe, timeout) is normal on a port
        anyone can reach: one line at debug level. Anything else: one line at warning,
        without a traceback (the error's type and text)."""
        error = sys.exc_info()[1]
        client = client_address[0] if isinstance(client_address, tuple) else None
        if isinstance(error, _CLIENT_GONE):
            log.debug("http_client_gone", client=client, error=type(error).__name__)
        else:
            log.warning(
                "http_request_failed",
                client=client,
                error=type(error).__name__,
                reason=str(error)[:200],
            )


ENDPOINTS = {
    "/healthz": "liveness: 200 while the process serves",
    "/readyz": "readiness: 200 once every profile has had a recent successful cycle, else "
    "503 with the reasons",
    "/metrics": "Prometheus metrics (text exposition format)",
}
"""What the ops port serves; ``/`` lists them."""
_INDEX = (json.dumps({"endpoints": ENDPOINTS}, indent=2) + "\n").encode()


class OpsServer:
    """The HTTP server on a daemon thread; ``stop()`` shuts it down."""

    def __init__(
        self, port: int, metrics: Metrics, readiness: Readiness, host: str = "0.0.0.0"
    ) -> None:
        """Bind the port now (``ConfigError`` naming CRMSYNC_HTTP_PORT when it cannot be:
        in use, not allowed, out of range); serve from ``start()``."""
        self.metrics = metrics
        self.readiness = readiness
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = CLIENT_TIMEOUT_S

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(200, _INDEX, "application/json")
                elif path == "/healthz":
                    self._send(200, b'{"alive": true}\n', "application/json")
                elif path == "/readyz":
                    ready, details = outer.readiness.check()
                    body = (json.dumps(details, sort_keys=True) + "\n").encode()
                    self._send(200 if ready else 503, body, "application/json")
                elif path == "/metrics":
                    self._send(200, outer.metrics.render(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b'{"error": "not found"}\n', "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every few seconds would flood the log

        try:
            self.server = _Server((host, port), Handler)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"CRMSYNC_HTTP_PORT={port}: cannot listen on {host}:{port} ({reason})"
            ) from exc
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="crmsync-http"
        )

    def start(self) -> None:
        self._thread.start()
        log.info("http_started", port=self.port)

    def stop(self) -> None:
        """Stop serving (if started) and release the port."""
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
