"""Sync benchmark: a local CRM with 1,000,000 Aston complaints, then cycles through the real
composition root (``build_runtime``), in this process.

    .venv/bin/python bench/sync.py [--count 1000000] [--changed 0.01] [--data-dir DIR]
    .venv/bin/python bench/sync.py --counts 100000,300000,1000000   # growth, one process each

Cycles, each evaluated as of the same instant (so only data changes, never time, make work):

1. ``first``: every complaint read, evaluated, flagged; follow-ups created;
2. ``echo``: the first cycle's flag writes read back (nothing new);
3. ``changed``: 1% of the complaints escalated to level 2 an hour ago (which starts their
   ``level2-contact`` clock and stops ``level1-resolution``), through ``update_records``;
4. ``echo-after-change``: the changed cycle's writes read back;
5. ``nothing``: nothing changed at all.

The CRM's clock moves on by the sync interval (CRMSYNC_SYNC_INTERVAL, default 5 minutes)
between cycles, as it does under ``crmsync run``. Prints one JSON object (and each cycle's
figures on standard error as it ends): the machine (CPUs, load average), the seeding, and
per cycle: wall time, this process's CPU time, the time it waited for a CPU held by other
processes (Linux schedstat; wall - CPU - waiting = blocked on I/O), records read,
complaints evaluated, flags written, tasks created and completed, CRM calls (total and by
kind), and the process's peak RSS so far (``ru_maxrss``). The machine's yardstick: CPUs,
load average before and after, and the speed of the sample generator (pure Python,
untouched by the sync code) timed in this process before seeding.

Targets (issue 15, at 1,000,000 complaints): first <= 300 s, changed <= 10 s; the nothing
cycle writes nothing and reads nothing but the pull queries (one ``query`` call per pull:
the complaints and each related-event source, no records read). ``checks`` says whether
each holds. With ``--counts``, each count runs in a process of its own (peak RSS is per
count) and ``growth`` gives, per cycle, the CPU microseconds per complaint at each count
and the ratio of the largest count's figure to the smallest's (above 1.15: grows faster
than N).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.salesforce_values import format_sf_datetime
from crmsync.bootstrap import Runtime, build_runtime, local_crm_path, settings_model
from crmsync.demo.bundled_charters import demo_charter
from crmsync.demo.sample_complaints import generate_complaints
from crmsync.demo.seeding import seed_local_crm
from crmsync.logging_setup import configure_logging

REPO = Path(__file__).resolve().parents[1]
SCHEDSTAT = Path("/proc/thread-self/schedstat")
TARGETS = {"first_s": 300.0, "changed_s": 10.0}
LINEAR = 1.15  # growth ratio of the per-complaint figure still counted as linear
YARDSTICK_COUNT = 20_000


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


def yardstick(seed: int) -> dict[str, Any]:
    """The sample generator's speed here: pure Python, the same work on every machine."""
    started, cpu = time.perf_counter(), time.process_time()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    complaints = generate_complaints(
        demo_charter("aston"), YARDSTICK_COUNT, seed=seed, start=start, span_days=365
    )
    made = sum(1 for _ in complaints)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "generator_complaints_per_s": round(made / seconds),
        "generator_complaints_per_cpu_s": round(made / cpu) if cpu else None,
    }


def run_cycle(runtime: Runtime, crm: LocalCrm, name: str, now: int) -> dict[str, Any]:
    started, cpu, waited = time.perf_counter(), time.process_time(), waited_for_cpu()
    calls_before = dict(crm.calls.by_kind)
    report = runtime.cycle.run(now=now)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = waited_for_cpu()
    calls = {k: n - calls_before.get(k, 0) for k, n in sorted(crm.calls.by_kind.items())}
    result = {
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
        "crm_calls_by_kind": {k: n for k, n in calls.items() if n},
        "errors": len(report.errors),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result), file=sys.stderr, flush=True)  # progress of a long run
    return result


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


def growth(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per cycle: CPU and wall microseconds per complaint at each count, and the ratio of the
    largest count's CPU figure to the smallest's (1.0: linear; below: better)."""
    runs = sorted(runs, key=lambda r: r["seeding"]["cases"])
    out: dict[str, Any] = {}
    for name in ("first", "echo"):
        per = []
        for run in runs:
            n = run["seeding"]["cases"]
            cycle = next(c for c in run["cycles"] if c["cycle"] == name)
            per.append(
                {
                    "count": n,
                    "cpu_us_each": round(cycle["cpu_seconds"] / n * 1e6, 1),
                    "wall_us_each": round(cycle["seconds"] / n * 1e6, 1),
                }
            )
        ratio = per[-1]["cpu_us_each"] / per[0]["cpu_us_each"] if per[0]["cpu_us_each"] else None
        out[name] = {
            "per_complaint": per,
            "cpu_ratio": None if ratio is None else round(ratio, 2),
            "linear_or_better": ratio is not None and ratio <= LINEAR,
        }
    for name in ("changed", "nothing"):
        out[name] = [
            {
                "count": run["seeding"]["cases"],
                **{
                    k: next(c for c in run["cycles"] if c["cycle"] == name)[k]
                    for k in ("seconds", "cpu_seconds", "records_read", "crm_calls")
                },
            }
            for run in runs
        ]
    return out


def run_counts(counts: list[int], rest: list[str]) -> int:
    """Each count in a process of its own, then the growth from the smallest to the largest."""
    runs = []
    for count in counts:
        done = subprocess.run(
            [sys.executable, __file__, "--count", str(count), *rest],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        runs.append(json.loads(done.stdout))
        print(done.stdout, file=sys.stderr, flush=True)  # each count's figures as they come
    print(json.dumps({"benchmark": "sync", "runs": runs, "growth": growth(runs)}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="complaints to seed")
    parser.add_argument(
        "--counts", default=None, help="comma-separated counts, each run in its own process"
    )
    parser.add_argument("--changed", type=float, default=0.01, help="share changed in cycle 3")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the complaints")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the data here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.counts:
        if args.data_dir is not None:
            parser.error("--data-dir keeps one count's data: not with --counts")
        counts = [int(c) for c in args.counts.split(",") if c.strip()]
        return run_counts(counts, ["--changed", str(args.changed), "--seed", str(args.seed)])
    if args.data_dir is not None and args.data_dir.exists() and any(args.data_dir.iterdir()):
        parser.error(f"--data-dir {args.data_dir} is not empty: name a new folder")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    configure_logging("json", "warning")
    load_before = round(os.getloadavg()[0], 2)
    machine_speed = yardstick(args.seed)
    settings = settings_model()(
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
        cycles = [run_cycle(runtime, crm, "first", now)]
        clock.offset += step
        cycles.append(run_cycle(runtime, crm, "echo", now))
        clock.offset += step
        changed = escalate(crm, args.changed, now_dt - timedelta(hours=1), args.seed)
        cycles.append(run_cycle(runtime, crm, "changed", now) | {"complaints_changed": changed})
        for name in ("echo-after-change", "nothing"):
            clock.offset += step
            cycles.append(run_cycle(runtime, crm, name, now))
        pulls = 1 + len(runtime.mapping.related_specs())
    finally:
        runtime.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    by_name = {c["cycle"]: c for c in cycles}
    nothing = by_name["nothing"]
    nothing_writes = sum(nothing[k] for k in ("flags_written", "tasks_created", "tasks_completed"))
    result = {
        "benchmark": "sync",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": load_before,
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            **machine_speed,
        },
        "charter": "aston",
        "now": now_dt.isoformat(),
        "write_batch": settings.write_batch,
        "seeding": seeding,
        "cycles": cycles,
        "checks": {
            "first_s<=300": by_name["first"]["seconds"] <= TARGETS["first_s"],
            "changed_s<=10": by_name["changed"]["seconds"] <= TARGETS["changed_s"],
            "nothing_writes_nothing": nothing_writes == 0
            and "write" not in nothing["crm_calls_by_kind"],
            "nothing_reads_only_the_pull_queries": nothing["records_read"] == 0
            and nothing["crm_calls_by_kind"] == {"query": pulls},
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
