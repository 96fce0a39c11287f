"""Sync benchmark: a local CRM with 100,000 Aston complaints, then cycles through the real
composition root (``build_runtime``), in this process.

    .venv/bin/python bench/sync.py [--count 100000] [--changed 0.01] [--data-dir DIR]

Cycles, each evaluated as of the same instant (so only data changes, never time, make work):

1. ``first``: every complaint read, evaluated, flagged; follow-ups created;
2. ``echo``: the first cycle's flag writes read back (nothing new);
3. ``changed``: 1% of the complaints escalated to level 2 an hour ago (which starts their
   ``level2-contact`` clock and stops ``level1-resolution``), through ``update_records``;
4. ``echo-after-change``: the changed cycle's writes read back;
5. ``nothing``: nothing changed at all.

The CRM's clock moves on by the sync interval (CRMSYNC_SYNC_INTERVAL, default 5 minutes)
between cycles, as it does under ``crmsync run``. Prints one JSON object: the machine (CPUs,
load average), the seeding, and per cycle: wall time, this process's CPU time, the time it
waited for a CPU held by other processes (Linux schedstat; wall - CPU - waiting = blocked
on I/O), records read, complaints evaluated, flags written, tasks created and completed,
CRM calls, and the process's peak RSS so far (``ru_maxrss``).
Targets: first <= 60 s, changed <= 5 s, nothing writes 0 records.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmsync.adapters.local_crm import LocalCrm, format_sf_datetime
from crmsync.bootstrap import Runtime, build_runtime, local_crm_path
from crmsync.logging_setup import configure_logging
from crmsync.service.demo_seed import seed_local_crm
from crmsync.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SCHEDSTAT = Path("/proc/thread-self/schedstat")
TARGETS = {"first_s": 60.0, "changed_s": 5.0, "nothing_writes": 0}


class CrmClock:
    """The CRM's time: the wall clock plus however far the benchmark moved it on."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def waited_for_cpu() -> float | None:
    """Seconds this thread was runnable but waiting for a CPU (Linux schedstat), or None."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def run_cycle(runtime: Runtime, name: str, now: int) -> dict[str, Any]:
    started, cpu, waited = time.perf_counter(), time.process_time(), waited_for_cpu()
    report = runtime.cycle.run(now=now)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = waited_for_cpu()
    return {
        "cycle": name,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "waiting_for_cpu_seconds": (
            None if waited is None or after is None else round(after - waited, 2)
        ),
        "records_read": report.records_read,
        "evaluated": report.complaints_evaluated,
        "flags_written": report.flags_written,
        "tasks_created": report.tasks_created,
        "tasks_completed": report.tasks_completed,
        "crm_calls": report.crm_calls,
        "errors": len(report.errors),
        "peak_rss_mb": peak_rss_mb(),
    }


def escalate(crm: LocalCrm, share: float, at: datetime, seed: int) -> int:
    """Escalate ``share`` of the not yet escalated complaints to level 2 at ``at``."""
    candidates: list[str] = []
    total = 0
    for record in crm.export_records("Case"):
        total += 1
        if not record.fields.get("Escalated_L2_At__c"):
            candidates.append(record.id)
    chosen = random.Random(seed).sample(candidates, min(len(candidates), round(total * share)))
    stamp = format_sf_datetime(at)
    results = crm.update_records("Case", [(i, {"Escalated_L2_At__c": stamp}) for i in chosen])
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"escalating: {len(failed)} update(s) failed, first {failed[0]}")
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="complaints to seed")
    parser.add_argument("--changed", type=float, default=0.01, help="share changed in cycle 3")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the complaints")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the data here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.data_dir is not None and args.data_dir.exists() and any(args.data_dir.iterdir()):
        parser.error(f"--data-dir {args.data_dir} is not empty: name a new folder")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    configure_logging("json", "warning")
    settings = Settings(
        data_dir=data_dir,
        charter=REPO / "mappings" / "charters" / "aston.yaml",
        mapping=REPO / "mappings" / "salesforce.yaml",
        state_url=None,
        log_format="json",
        log_level="warning",
    )
    clock = CrmClock()
    data_dir.mkdir(parents=True, exist_ok=True)
    crm = LocalCrm(local_crm_path(settings), clock=clock)
    runtime = build_runtime(settings, crm=crm)
    try:
        now_dt = clock().replace(microsecond=0)
        now = int(now_dt.timestamp())
        started = time.perf_counter()
        seeded = seed_local_crm(
            crm,
            runtime.mapping,
            "aston",
            count=args.count,
            seed=args.seed,
            start=now_dt - timedelta(days=370),
            span_days=365,
            now=now_dt,
        )
        seeding = {
            "cases": seeded.cases,
            "customer_update_tasks": seeded.tasks,
            "seconds": round(time.perf_counter() - started, 1),
        }
        step = timedelta(seconds=settings.sync_interval)
        cycles = [run_cycle(runtime, "first", now)]
        clock.offset += step
        cycles.append(run_cycle(runtime, "echo", now))
        clock.offset += step
        changed = escalate(crm, args.changed, now_dt - timedelta(hours=1), args.seed)
        cycles.append(run_cycle(runtime, "changed", now) | {"complaints_changed": changed})
        for name in ("echo-after-change", "nothing"):
            clock.offset += step
            cycles.append(run_cycle(runtime, name, now))
    finally:
        runtime.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    by_name = {c["cycle"]: c for c in cycles}
    nothing_writes = sum(
        by_name["nothing"][k] for k in ("flags_written", "tasks_created", "tasks_completed")
    )
    result = {
        "benchmark": "sync",
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "charter": "aston",
        "now": now_dt.isoformat(),
        "write_batch": settings.write_batch,
        "seeding": seeding,
        "cycles": cycles,
        "targets": {
            "first_s<=60": by_name["first"]["seconds"] <= TARGETS["first_s"],
            "changed_s<=5": by_name["changed"]["seconds"] <= TARGETS["changed_s"],
            "nothing_writes==0": nothing_writes == TARGETS["nothing_writes"],
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
