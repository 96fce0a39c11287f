"""Replicas benchmark: does a second ``crmsync run`` replica add capacity? (issue 22)

    .venv/bin/python bench/replicas.py [--profiles 24] [--complaints 3000] \
        [--dispatch 10,100,1000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Needs the PostgreSQL server (state store and queue); run it on a machine nothing else uses.

1. Throughput. ``--profiles`` profiles, each its own local CRM seeded with
   ``--complaints`` complaints (Aston charter, bundled mapping): every profile's first sync
   cycle reads and evaluates all of them, a CPU-bound job. The same seeded CRMs (fresh
   copies) are worked once by 1 replica and once by 2 (real ``crmsync run`` processes, a
   fresh queue schema and fresh profile names each time). The syncs are held back until
   every replica's queue worker is up (the bench schedules them far ahead, waits for the
   replicas to register, then makes them all due at once), so one replica's start-up is
   never counted as the other's work. Jobs per minute = profiles / (last job's end - first
   job's start, from the queue's ``runs`` table). Target: 2 replicas >= 1.7x one.
2. The dispatcher's cost. For each size in ``--dispatch``: a queue with that many profiles
   (stand-ins, no CRM); the wall time of the first dispatcher tick (every profile's sync,
   archive and prune scheduled, the syncs deferred) and of a quiet tick (nothing due).

Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.job_queue import QueueTables
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.worker.replicas import ReplicaQueue

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the dispatcher's stand-in workers

from fakes.dispatch_stand_in import StandIn  # noqa: E402


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _seed(folder: Path, profiles: int, complaints: int) -> list[Path]:
    mapping = load_mapping(REPO / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    crms = []
    for i in range(profiles):
        path = folder / f"seed-{i:03d}.sqlite3"
        crm = LocalCrm(path)
        seed_local_crm(
            crm,
            mapping,
            "aston",
            count=complaints,
            seed=i,
            start=now - timedelta(days=40),
            span_days=38,
            now=now,
        )
        crm.close()
        crms.append(path)
    return crms


def _succeeded_syncs(conn: psycopg.Connection[Any], schema: str) -> list[tuple[datetime, datetime]]:
    rows = conn.execute(
        sql.SQL(
            "SELECT started_at, finished_at FROM {}.runs "
            "WHERE kind = 'sync' AND status = 'succeeded'"
        ).format(sql.Identifier(schema))
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _hold_back(url: str, schema: str, names: list[str]) -> None:
    """Create the queue and schedule every profile's jobs a day ahead: nothing is due until
    ``_release``."""
    tables = QueueTables(url, schema=schema)
    try:
        tables.migrate()
    finally:
        tables.close()
    later = datetime.now(UTC) + timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        for kind in ("sync", "archive", "prune"):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.schedule (profile, kind, next_at) "
                    "SELECT unnest(%s::text[]), %s, %s"
                ).format(sql.Identifier(schema)),
                (names, kind, later),
            )


def _release(conn: psycopg.Connection[Any], schema: str) -> None:
    """Every profile's sync due now: the next dispatcher tick defers them all."""
    conn.execute(
        sql.SQL("UPDATE {}.schedule SET next_at = now() WHERE kind = 'sync'").format(
            sql.Identifier(schema)
        )
    )


def _workers_up(conn: psycopg.Connection[Any], schema: str) -> int:
    """Queue workers that registered (one per replica once it works the queue)."""
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.procrastinate_workers").format(sql.Identifier(schema))
    ).fetchone()
    return 0 if row is None else int(row[0])


def throughput(url: str, seeds: list[Path], replicas: int, work: Path) -> dict[str, Any]:
    """Every profile's first cycle worked by ``replicas`` processes: jobs per minute."""
    tag = uuid.uuid4().hex[:6]
    schema = f"bench_{tag}"
    names = [f"bench-{tag}-{i:03d}" for i in range(len(seeds))]
    for name, seed in zip(names, seeds, strict=True):
        (work / name).mkdir()
        shutil.copy(seed, work / name / LOCAL_CRM_FILE)
    config = work / f"crmsync-{tag}.toml"
    config.write_text("".join(f'[profiles."{name}"]\n' for name in names))
    _hold_back(url, schema, names)
    procs = []
    conn = psycopg.connect(url, autocommit=True)
    try:
        for r in range(replicas):
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")},
                "CRMSYNC_CONFIG": str(config),
                "CRMSYNC_DATA_DIR": str(work),
                "CRMSYNC_STATE_URL": url,
                "CRMSYNC_QUEUE_SCHEMA": schema,
                "CRMSYNC_REPLICA": f"bench-{r}",
                "CRMSYNC_SYNC_INTERVAL": "3600",
                "CRMSYNC_HTTP_PORT": "0",
                "CRMSYNC_LOG_FORMAT": "json",
                "CRMSYNC_LOG_LEVEL": "warning",
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "crmsync", "run"],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 3600
        while _workers_up(conn, schema) < replicas:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{replicas} replica(s) did not start")
            time.sleep(0.5)
        time.sleep(2.0)  # the start-up's last imports and connections settle
        _release(conn, schema)
        while len(done := _succeeded_syncs(conn, schema)) < len(names):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{replicas} replica(s): only {len(done)} of {len(names)} jobs")
            time.sleep(1.0)
    finally:
        conn.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(120)
        _drop(url, schema)
    span = (max(f for _s, f in done) - min(s for s, _f in done)).total_seconds()
    return {
        "replicas": replicas,
        "jobs": len(done),
        "seconds": round(span, 2),
        "jobs_per_minute": round(len(done) * 60 / span, 1),
    }


def dispatch_cost(url: str, profiles: int) -> dict[str, Any]:
    """The wall time of a first and of a quiet dispatcher tick over ``profiles``."""
    schema = f"bench_{uuid.uuid4().hex[:6]}"
    tables = QueueTables(url, schema=schema)
    try:
        queue = ReplicaQueue(
            url=url,
            schema=schema,
            replica="bench",
            tables=lambda: tables,
            workers={f"p{i:04d}": StandIn(f"p{i:04d}") for i in range(profiles)},  # type: ignore[misc]
            stop_requested=threading.Event(),
        )
        app = queue.open_now()

        async def ticks() -> tuple[float, float, int]:
            async with app.open_async():
                started = time.perf_counter()
                deferred = await queue.dispatch_once()
                first = time.perf_counter() - started
                started = time.perf_counter()
                await queue.dispatch_once()
                return first, time.perf_counter() - started, deferred

        first, quiet, deferred = asyncio.run(ticks())
    finally:
        tables.close()
        _drop(url, schema)
    return {
        "profiles": profiles,
        "first_tick_s": round(first, 3),
        "jobs_deferred": deferred,
        "quiet_tick_s": round(quiet, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profiles",
        type=int,
        default=24,
        help="profiles, one CPU-bound job each: enough that a second of start-up or one "
        "job's length is small beside the whole run",
    )
    parser.add_argument("--complaints", type=int, default=3000)
    parser.add_argument("--dispatch", default="10,100,1000")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-replicas-") as tmp:
        folder = Path(tmp)
        seeds = _seed(folder, args.profiles, args.complaints)
        runs = []
        for replicas in (1, 2):
            work = folder / f"r{replicas}"
            work.mkdir()
            runs.append(throughput(args.postgres, seeds, replicas, work))
    sizes = [int(n) for n in args.dispatch.split(",") if n.strip()]
    result = {
        "profiles": args.profiles,
        "complaints_per_profile": args.complaints,
        "cores": os.cpu_count(),
        "throughput": runs,
        "ratio_2_to_1": round(runs[1]["jobs_per_minute"] / runs[0]["jobs_per_minute"], 2),
        "target_ratio": 1.7,
        "dispatcher": [dispatch_cost(args.postgres, n) for n in sizes],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
