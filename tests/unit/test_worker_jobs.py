"""The worker runs the narrow callables the composition root hands it (``ProfileWork``) and
records what they did in the metrics and readiness it is given, or in their no-op twins.

Fakes only: each job is a small callable that says what it was asked; the scheduler is
never started, the jobs are called as the scheduler would call them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from crmsync.errors import CrmAuthError, StateStoreError
from crmsync.service.cycle_report import CycleReport, RecordFailure
from crmsync.worker.ops_http import Metrics, NullMetrics, NullReadiness, Readiness
from crmsync.worker.scheduling import ProfileWork, Worker

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeCounts:
    by_status: Mapping[str, int]
    by_clock: Mapping[tuple[str, str], int]


@dataclass
class FakeProfile:
    """One profile's jobs as plain callables, remembering every call."""

    report: CycleReport = field(
        default_factory=lambda: CycleReport(
            run_id="r1",
            profile="acme",
            now="2026-03-20T12:00:00Z",
            status="partial",
            records_read=7,
            flags_written=3,
            errors=[RecordFailure("flags", "500A", "locked")],
        )
    )
    failure: Exception | None = None
    owned: bool = True
    calls: list[str] = field(default_factory=list)

    def run_cycle(self) -> CycleReport:
        self.calls.append("cycle")
        if self.failure is not None:
            raise self.failure
        return self.report

    def archive(self) -> int:
        self.calls.append("archive")
        return 4

    def prune(self, now: int) -> None:
        self.calls.append(f"prune@{now}")

    def monthly_report(self, now: int) -> list[Path]:
        self.calls.append(f"report@{now}")
        return [Path("reports/acme-2026-02.json")]

    def take(self) -> bool:
        self.calls.append("take")
        return self.owned

    def release(self) -> None:
        self.calls.append("release")

    def work(self) -> ProfileWork:
        return ProfileWork(
            profile="acme",
            run_cycle=self.run_cycle,
            next_check=lambda: None,
            archive=self.archive,
            prune=self.prune,
            population=lambda: FakeCounts({"breached": 2}, {("reply", "breached"): 2}),
            charter="aston",
            clock_ids=("reply",),
            monthly_report=self.monthly_report,
            report_folder=Path("reports"),
            api_usage=lambda: (100, 1000),
            take_profile=self.take,
            release_profile=self.release,
        )


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"profile": "acme", **labels})


def readiness() -> Readiness:
    return Readiness(interval=300, clock=NOW.timestamp, state_ok=lambda: True)


def test_a_cycle_is_counted_gauged_and_marks_the_crm_reachable() -> None:
    """A cycle that ran: its counts, record errors, population and the CRM's remaining
    calls reach the metrics; readiness hears the CRM answered (no success: it was partial)."""
    fake, metrics, ready = FakeProfile(), Metrics(), readiness()
    Worker(fake.work(), interval=300, clock=lambda: NOW, metrics=metrics, readiness=ready).cycle()
    assert fake.calls == ["take", "cycle"]
    assert sample(metrics, "crmsync_cycles_total", status="partial") == 1
    assert sample(metrics, "crmsync_records_read_total") == 7
    assert sample(metrics, "crmsync_errors_total", kind="flags") == 1
    assert sample(metrics, "crmsync_crm_api_daily_remaining") == 900
    assert sample(metrics, "crmsync_profile_owned") == 1
    breached = {"charter": "aston", "clock": "reply", "state": "breached"}
    assert sample(metrics, "crmsync_clocks", **breached) == 2
    assert sample(metrics, "crmsync_complaints_by_status", charter="aston", status="met") == 0
    assert sample(metrics, "crmsync_last_success_timestamp_seconds") == NOW.timestamp()
    assert ready.crm_ok == {"acme": True}
    assert ready.last_success == {"acme": NOW.timestamp()}


def test_a_crm_failure_counts_a_failed_cycle_and_marks_the_crm_unreachable() -> None:
    """A cycle that raised a CRM error is logged and counted; readiness hears the CRM did
    not answer; the worker goes on."""
    fake, metrics, ready = (
        FakeProfile(failure=CrmAuthError("token expired")),
        Metrics(),
        readiness(),
    )
    worker = Worker(fake.work(), interval=300, clock=lambda: NOW, metrics=metrics, readiness=ready)
    with capture_logs() as logs:
        worker.cycle()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["cycle_error"]
    assert sample(metrics, "crmsync_cycles_total", status="failed") == 1
    assert sample(metrics, "crmsync_errors_total", kind="CrmAuthError") == 1
    assert ready.crm_ok == {"acme": False}
    assert ready.last_success == {}


def test_a_profile_another_process_holds_runs_nothing() -> None:
    """When the profile cannot be taken no job runs, and the gauge says it is not owned."""
    fake, metrics = FakeProfile(owned=False), Metrics()
    worker = Worker(fake.work(), interval=300, clock=lambda: NOW, metrics=metrics)
    worker.cycle()
    worker.archive()
    worker.prune()
    assert fake.calls == ["take", "take", "take"]
    assert sample(metrics, "crmsync_profile_owned") == 0


def test_the_nightly_jobs_get_the_workers_clock_and_their_results_are_recorded() -> None:
    """archive counts its entries; prune and the monthly report get ``now`` in epoch
    seconds from the worker's clock; a written report is logged; ``stop`` gives the
    profile back."""
    fake, metrics = FakeProfile(), Metrics()
    worker = Worker(fake.work(), interval=300, clock=lambda: NOW, metrics=metrics)
    with capture_logs() as logs:
        worker.archive()
        worker.prune()
        worker.monthly_report()
    worker.scheduler.start(paused=True)  # stop() shuts a started scheduler down
    worker.stop()
    now = int(NOW.timestamp())
    assert fake.calls == [
        "take",
        "archive",
        "take",
        f"prune@{now}",
        "take",
        f"report@{now}",
        "release",
    ]
    assert sample(metrics, "crmsync_archive_entries_total") == 4
    [written] = [e for e in logs if e["event"] == "monthly_report_written"]
    assert written["files"] == ["reports/acme-2026-02.json"]


def test_without_metrics_or_readiness_the_worker_records_into_their_null_twins() -> None:
    """A worker given neither runs its cycle the same, into ``NullMetrics`` and
    ``NullReadiness``; a population the store cannot count is logged, not raised."""
    fake = FakeProfile()

    def broken() -> FakeCounts:
        raise StateStoreError("state store: database is locked")

    worker = Worker(replace(fake.work(), population=broken), interval=300, clock=lambda: NOW)
    with capture_logs() as logs:
        worker.cycle()
    assert isinstance(worker.metrics, NullMetrics)
    assert isinstance(worker.readiness, NullReadiness)
    assert fake.calls == ["take", "cycle"]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["population_unknown"]


def test_the_null_twins_take_every_recording_call_the_real_ones_take() -> None:
    """``NullMetrics`` and ``NullReadiness`` have each ``record_*`` method of ``Metrics`` and
    ``Readiness`` with the same parameters, so either can stand in."""
    for real, null in ((Metrics, NullMetrics), (Readiness, NullReadiness)):
        methods = sorted(n for n in vars(real) if n.startswith("record_"))
        assert methods == sorted(n for n in vars(null) if n.startswith("record_"))
        for name in methods:
            assert inspect.signature(getattr(real, name)) == inspect.signature(getattr(null, name))


def test_the_metrics_name_their_replica_and_forget_a_profile_whole() -> None:
    """``crmsync_replica_info`` carries the replica's name (one series, the last name
    given); ``forget`` drops every series of one profile and leaves the others'."""
    metrics = Metrics()
    metrics.record_replica("host-1")
    metrics.record_replica("worker-a")
    assert metrics.registry.get_sample_value("crmsync_replica_info", {"replica": "worker-a"}) == 1
    assert metrics.registry.get_sample_value("crmsync_replica_info", {"replica": "host-1"}) is None
    for profile in ("acme", "other"):
        fake = FakeProfile()
        work = replace(fake.work(), profile=profile)
        Worker(work, interval=300, clock=lambda: NOW, metrics=metrics).cycle()
    metrics.record_queue({"acme": 5.0, "other": 6.0}, {"acme": 1, "other": 2})
    metrics.forget("acme")
    text = metrics.render().decode()
    assert 'profile="acme"' not in text
    assert 'crmsync_cycles_total{profile="other",status="partial"} 1.0' in text
    assert 'crmsync_queue_depth{profile="other"} 2.0' in text
