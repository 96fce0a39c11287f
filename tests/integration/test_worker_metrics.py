"""The worker's status and clock gauges describe the open complaints, not the last cycle."""

from __future__ import annotations

from datetime import UTC, datetime

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import Runtime, build_worker, local_crm_path
from crmsync.worker.ops_http import Metrics


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"profile": "default", **labels})


def test_a_quiet_cycle_keeps_the_breached_clocks_in_the_gauges(runtime: Runtime) -> None:
    """Two e-mail complaints received long ago and never answered: after the first cycle
    the gauges show both level-1 clocks breached; the next cycles (the echo of the writes,
    then nothing at all) evaluate nothing, and the gauges still show them."""
    with LocalCrm(local_crm_path(runtime.settings)) as crm:
        made = crm.insert_records(
            "Case",
            [
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": "2025-01-06T10:00:00.000+0000",
                },
                {
                    "Type": "Complaint",
                    "Origin": "Email",
                    "CreatedDate": "2025-01-07T10:00:00.000+0000",
                },
            ],
        )
        assert all(r.ok for r in made)
    metrics = Metrics()
    worker = build_worker(runtime, interval=300, clock=lambda: datetime.now(UTC), metrics=metrics)
    aston = {"charter": "aston"}
    for _ in range(3):
        worker.cycle()
        assert gauge(metrics, "crmsync_complaints_by_status", status="breached", **aston) == 2
        assert gauge(metrics, "crmsync_complaints_by_status", status="on_track", **aston) == 0
        level1 = {"clock": "level1-resolution", **aston}
        assert gauge(metrics, "crmsync_clocks", state="breached", **level1) == 2
        assert gauge(metrics, "crmsync_clocks", state="pending", **level1) == 0
    ok = gauge(metrics, "crmsync_cycles_total", status="ok")
    assert ok == 3
