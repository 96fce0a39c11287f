"""Benchmark ``crmsync evaluate`` end to end, and the compiled calendar against day walking.

Run: ``.venv/bin/python bench/evaluate.py [--count N] [--charter aston] [--shape real|easy|both]``

1. Generates N sample complaints (``crmsync.demo.sample_complaints``) into a temp file,
   in one or both shapes:

   * ``real`` (the default, the headline figure): shaped like real CRM exports. Each event
     instant is written with one of the offsets ``Z``, ``+00:00``, ``+01:00``, ``+02:00``,
     ``-05:00``, ``+05:30`` (15% each, the same instant re-expressed) or as a date alone
     (10%, the local date in the charter's zone, which the contract reads as local
     midnight); about 20% of events are lists (one or two instants); every complaint has
     3 to 6 events (``acknowledged`` / ``feedback`` / ``customer_update`` are added after
     ``received`` where the sample had fewer); 10% of instants are moved to an exact
     opening or closing time of the charter's calendar (the boundary cases);
   * ``easy``: the generator's own output (UTC ``Z`` or ``+00:00`` instants, single
     values, few events; half of it received after ``now``), kept as a second figure.

2. Runs the installed ``crmsync evaluate`` on it (file in, file out) as a subprocess and
   measures wall time, CPU seconds, complaints/s, clock evaluations/s (output lines) and
   peak memory:

   * ``max_process_mb`` - ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest peak RSS
     of any single process of the command (the main process or one worker), from the kernel;
   * ``max_process_polled_mb`` - the same from ``VmHWM`` in ``/proc``, polled;
   * ``sum_rss_mb`` - the largest sum of ``VmRSS`` over the process tree at one poll
     (pages shared between the main process and its forked workers count once per process);
   * ``sum_pss_mb`` - the same with ``Pss`` (shared pages split between their processes):
     what the tree really costs the machine.

3. On the same data (the received instants of the first starts), times 30-business-day
   deadlines with the charter's compiled calendar (cold, including compilation, and warm)
   against two day-walking calendars that must give the same answers:

   * ``lean_day_walk`` - a minimal walker written here: one local date at a time, each
     date checked against weekday hours and holidays, the deadline at the last closing;
   * ``reference_oracle`` - ``tests/reference_calendar.py``, the test suite's oracle, which
     also walks every minute of the last day for its closing time (slow on purpose; it is
     timed on ``--walk-starts`` starts only).

4. The JSON floor, measured in the same run on the same file: decode every input line
   and encode as many output rows as ``crmsync evaluate`` wrote (the rows themselves),
   nothing else, in one process, with the standard library's ``json`` and with each fast
   codec installed (``orjson``, ``msgspec``); CPU seconds and crmsync's ratio to each.

Prints one JSON object. Targets (2 cores, real shape): 1,000,000 Aston complaints in
<= 30 s wall and <= 3x the fast-codec floor in CPU seconds, peak RSS <= 300 MB (largest
process); the compiled calendar >= 10x faster than day walking.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from crmsync.demo.sample_complaints import generate_complaints  # noqa: E402
from crmsync.domain.business_calendar import BusinessCalendar  # noqa: E402
from crmsync.domain.durations import Duration, Unit  # noqa: E402
from crmsync.mapping.charter_file import load_charter  # noqa: E402
from reference_calendar import ReferenceCalendar  # noqa: E402 - needs the path above

START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 365
NOW = "2026-07-01T12:00:00Z"  # mid-span: every state occurs
BUSINESS_DAYS = 30
MB = 1024 * 1024


# ---------------------------------------------------------------------- generation
OFFSETS = ("Z", "+00:00", "+01:00", "+02:00", "-05:00", "+05:30")
"""Offsets of real exports, 15% each; the remaining 10% of values are dates alone."""
ADDED_EVENTS = ("acknowledged", "feedback", "customer_update")
"""Events added after ``received`` to complaints with fewer than three (real records carry more)."""


class RealShape:
    """Re-expresses generated complaints the way real CRM exports carry them (module doc).

    Deterministic for a seed. Instants keep their meaning except where the shape itself
    changes it: a date alone is local midnight, a boundary instant sits on an opening or
    closing time, an added event or a second list element is a new instant.
    """

    def __init__(self, charter_file: Path, seed: int) -> None:
        calendar = load_charter(charter_file).calendar
        self.zone = calendar.zone
        self.edges = {
            weekday: [e for i in intervals for e in (i.start, i.end)]
            for weekday, intervals in calendar.weekly_hours.items()
        }
        self.random = random.Random(seed)

    def _local(self, instant: int) -> datetime:
        return datetime.fromtimestamp(instant, self.zone)

    def _boundary(self, instant: int) -> int:
        local = self._local(instant)
        edges = self.edges.get(local.weekday())
        if not edges:
            return instant
        minute = self.random.choice(edges)
        moved = local.replace(hour=minute // 60, minute=minute % 60, second=0, tzinfo=None)
        return int(moved.replace(tzinfo=self.zone).timestamp())

    def text(self, instant: int) -> str:
        """One instant as a real export writes it: an offset drawn from ``OFFSETS``, or a date."""
        r = self.random
        if r.random() < 0.10:
            instant = self._boundary(instant)
        if r.random() < 0.10:
            return self._local(instant).date().isoformat()
        offset = r.choice(OFFSETS)
        if offset == "Z":
            return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sign = -1 if offset[0] == "-" else 1
        seconds = sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
        zone = timezone(timedelta(seconds=seconds))
        return datetime.fromtimestamp(instant, zone).isoformat()

    def reshape(self, complaint: dict[str, Any]) -> dict[str, Any]:
        """The same complaint with real-shaped events (3 to 6 of them, some lists)."""
        r = self.random
        instants = {
            name: int(datetime.fromisoformat(value).timestamp())
            for name, value in complaint["events"].items()
            if isinstance(value, str)
        }
        received = instants.get("received")
        if received is not None:
            for name in ADDED_EVENTS:
                if len(instants) >= r.randint(3, 6):
                    break
                instants.setdefault(name, received + r.randint(600, 9 * 86400))
        events: dict[str, Any] = {}
        for name, instant in instants.items():
            if name != "received" and r.random() < 0.20:
                extra = [instant + r.randint(3600, 20 * 86400)] if r.random() < 0.5 else []
                events[name] = [self.text(i) for i in [instant, *extra]]
            else:
                events[name] = self.text(instant)
        return {**complaint, "events": events}


def generate(
    charter: str, count: int, path: Path, seed: int, shape: RealShape | None
) -> dict[str, Any]:
    """Write ``count`` complaints as JSON Lines (real-shaped when ``shape`` is given);
    time the generator alone and with reshaping and encoding."""
    started = time.perf_counter()
    generated = 0.0
    with path.open("w", encoding="utf-8") as out:
        batch: list[str] = []
        complaints = generate_complaints(
            load_charter(ROOT / "mappings" / "charters" / f"{charter}.yaml"),
            count,
            seed=seed,
            start=START,
            span_days=SPAN_DAYS,
        )
        while True:
            t = time.perf_counter()
            chunk = [c for _, c in zip(range(10000), complaints, strict=False)]
            generated += time.perf_counter() - t
            if not chunk:
                break
            if shape is not None:
                chunk = [shape.reshape(dict(c)) for c in chunk]
            batch = [json.dumps(c, ensure_ascii=False) for c in chunk]
            out.write("\n".join(batch) + "\n")
    total = time.perf_counter() - started
    return {
        "seconds_generator": round(generated, 2),
        "complaints_per_s_generator": round(count / generated) if generated else None,
        "seconds_with_json_and_write": round(total, 2),
        "file_mb": round(path.stat().st_size / MB, 1),
    }


# ---------------------------------------------------------------------- memory polling
def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def _status_kb(pid: int, fields: Sequence[str]) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in fields:
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemory:
    """Polls the memory of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.hwm_kb: dict[int, int] = {}
        self.max_sum_rss_kb = 0
        self.max_sum_pss_kb = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            rss = pss = 0
            for pid in pids:
                status = _status_kb(pid, ("VmRSS", "VmHWM"))
                if not status:
                    continue
                rss += status.get("VmRSS", 0)
                pss += _pss_kb(pid)
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), status.get("VmHWM", 0))
            self.max_sum_rss_kb = max(self.max_sum_rss_kb, rss)
            self.max_sum_pss_kb = max(self.max_sum_pss_kb, pss)
            self.max_processes = max(self.max_processes, len(pids))
            self._stop.wait(self.interval)


# ---------------------------------------------------------------------- crmsync evaluate
def crmsync_command() -> str:
    """The installed console script next to this interpreter (the project's venv)."""
    script = Path(sys.executable).with_name("crmsync")
    if not script.exists():
        raise SystemExit(f"no crmsync command next to {sys.executable}: pip install -e . first")
    return str(script)


def run_evaluate(charter_file: Path, source: Path, output: Path, count: int) -> dict[str, Any]:
    """Run ``crmsync evaluate`` on ``source``; time it and watch its memory."""
    command = [
        crmsync_command(),
        "evaluate",
        "--charter",
        str(charter_file),
        "--input",
        str(source),
        "--now",
        NOW,
        "--output",
        str(output),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with TreeMemory(process.pid) as memory:
        _, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with output.open("rb") as handle:
        clocks = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
    return {
        "command": " ".join(["crmsync", *command[1:]]),
        "exit_code": process.returncode,
        "stderr_tail": stderr[-500:] if stderr else "",
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "complaints_per_s": round(count / wall),
        "clock_evaluations": clocks,
        "clock_evaluations_per_s": round(clocks / wall),
        "output_mb": round(output.stat().st_size / MB, 1),
        "processes": memory.max_processes,
        "peak_memory": {
            "max_process_mb": round(after.ru_maxrss / 1024, 1),  # Linux: kilobytes
            "max_process_polled_mb": round(max(memory.hwm_kb.values(), default=0) / 1024, 1),
            "sum_rss_mb": round(memory.max_sum_rss_kb / 1024, 1),
            "sum_pss_mb": round(memory.max_sum_pss_kb / 1024, 1),
        },
    }


# ---------------------------------------------------------------------- the JSON floor
SAMPLE_ROWS = 10_000
"""Distinct output rows encoded over and over (as many encodings as crmsync wrote rows)."""


def _attribute(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _codecs() -> dict[str, tuple[Callable[[bytes], Any], Callable[[Any], Any]]]:
    """Each installed codec's (decode one line, encode one row)."""
    codecs: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], Any]]] = {
        "json": (json.loads, json.dumps)
    }
    for name, decode, encode in (
        ("orjson", "loads", "dumps"),
        ("msgspec", "json.decode", "json.encode"),
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        codecs[name] = (_attribute(module, decode), _attribute(module, encode))
    return codecs


def json_floor(source: Path, output: Path, rows: int, scratch: Path) -> dict[str, Any]:
    """CPU seconds to decode every line of ``source`` and write ``rows`` output rows.

    Each row is built afresh (a new dict, as an evaluator builds one per clock) from one of
    the first ``SAMPLE_ROWS`` rows crmsync wrote, encoded and written as a line to a file in
    blocks, as ``crmsync evaluate --output`` does. Nothing else: no evaluation.
    """
    samples: list[dict[str, Any]] = []
    with output.open("rb") as handle:
        for line in handle:
            samples.append(json.loads(line))
            if len(samples) >= SAMPLE_ROWS:
                break
    count = len(samples)
    figures: dict[str, Any] = {}
    for name, (decode, encode) in _codecs().items():
        started = time.process_time()
        with source.open("rb") as handle:
            for line in handle:
                decode(line)
        decoded = time.process_time()
        with scratch.open("wb") as out:
            block: list[bytes] = []
            for i in range(rows):
                text = encode({**samples[i % count]})
                block.append(text if isinstance(text, bytes) else text.encode())
                if len(block) == 4096:
                    out.write(b"\n".join(block) + b"\n")
                    block = []
            out.write(b"\n".join(block) + b"\n")
        finished = time.process_time()
        scratch.unlink()
        figures[name] = {
            "decode_cpu_s": round(decoded - started, 2),
            "encode_and_write_cpu_s": round(finished - decoded, 2),
            "cpu_s": round(finished - started, 2),
        }
    return figures


def measure_shape(
    shape_name: str, args: argparse.Namespace, charter_file: Path, folder: Path
) -> dict[str, Any]:
    """Generate one shape, evaluate it with ``crmsync evaluate`` and measure its JSON floor."""
    source = folder / f"complaints-{shape_name}.jsonl"
    output = folder / f"clocks-{shape_name}.jsonl"
    shape = RealShape(charter_file, args.seed) if shape_name == "real" else None
    result: dict[str, Any] = {
        "generate": generate(args.charter, args.count, source, args.seed, shape)
    }
    evaluation = run_evaluate(charter_file, source, output, args.count)
    result["evaluate"] = evaluation
    floor = json_floor(source, output, evaluation["clock_evaluations"], folder / "floor.jsonl")
    result["json_floor"] = floor
    fastest = min((f["cpu_s"] for name, f in floor.items() if name != "json"), default=None)
    result["ratios"] = {
        "evaluate_cpu_per_stdlib_json_floor": round(
            evaluation["cpu_s"] / floor["json"]["cpu_s"], 2
        ),
        "evaluate_cpu_per_fast_codec_floor": round(evaluation["cpu_s"] / fastest, 2)
        if fastest
        else None,
    }
    result["starts"] = _received_starts(source, args.calendar_starts)
    source.unlink()
    output.unlink()
    return result


def _received_starts(source: Path, limit: int) -> list[int]:
    starts: list[int] = []
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            received = json.loads(line)["events"]["received"]
            if isinstance(received, list):
                received = received[0]
            if len(received) == 10:
                continue  # a date alone: the calendar comparison takes exact instants
            starts.append(int(datetime.fromisoformat(received).timestamp()))
            if len(starts) >= limit:
                break
    return starts


# ---------------------------------------------------------------------- calendars
class DayWalk:
    """A minimal day-walking business-days calendar (semantics section 3, literally):
    walk local dates one by one; a deadline is the last closing of the N-th working day."""

    def __init__(
        self,
        zone: ZoneInfo,
        weekly: Mapping[int, Sequence[tuple[int, int]]],
        closed: Callable[[date], bool],
    ) -> None:
        self.zone = zone
        self.weekly = weekly
        self.closed = closed

    def working(self, day: date) -> bool:
        return bool(self.weekly[day.weekday()]) and not self.closed(day)

    def closing(self, day: date) -> int:
        end = self.weekly[day.weekday()][-1][1]
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        local = midnight.replace(tzinfo=None) + timedelta(minutes=end)
        return int(local.replace(tzinfo=self.zone).timestamp())

    def business_days(self, start: int, n: int) -> int:
        day = datetime.fromtimestamp(start, self.zone).date()
        if not (self.working(day) and start <= self.closing(day)):
            day += timedelta(days=1)
            while not self.working(day):
                day += timedelta(days=1)
        for _ in range(n):
            day += timedelta(days=1)
            while not self.working(day):
                day += timedelta(days=1)
        return self.closing(day)


def _timed(function: Callable[[int], int], starts: Sequence[int]) -> tuple[float, list[int]]:
    started = time.perf_counter()
    results = [function(s) for s in starts]
    return time.perf_counter() - started, results


def compare_calendars(charter_file: Path, starts: list[int], walk_starts: int) -> dict[str, Any]:
    """30-business-day deadlines: compiled calendar vs day walking, same starts, same answers."""
    duration = Duration(BUSINESS_DAYS, Unit.BUSINESS_DAYS)
    cold: BusinessCalendar = load_charter(charter_file).calendar  # nothing compiled yet
    cold_s, compiled = _timed(lambda s: cold.deadline(s, duration), starts)
    warm_s, _ = _timed(lambda s: cold.deadline(s, duration), starts)

    weekly = {d: [(i.start, i.end) for i in cold.weekly_hours[d]] for d in range(7)}
    holidays = cold._holidays  # the same holiday source as the charter's
    walker_calendar = load_charter(charter_file).calendar  # its own holiday-year cache
    walker = DayWalk(cold.zone, weekly, lambda d: walker_calendar.closed_reason(d) is not None)
    walk_s, walked = _timed(lambda s: walker.business_days(s, BUSINESS_DAYS), starts)

    oracle = ReferenceCalendar(
        cold.zone.key,
        weekly,
        holidays=holidays,
        extra_closed=frozenset(cold._extra_closed),
        extra_open=cold._extra_open,
    )
    few = starts[:walk_starts]
    oracle_s, oracled = _timed(lambda s: oracle.business_days(s, BUSINESS_DAYS), few)
    mismatches = sum(a != b for a, b in zip(compiled, walked, strict=True)) + sum(
        a != b for a, b in zip(compiled, oracled, strict=False)
    )
    per = len(starts)
    return {
        "deadline": f"{BUSINESS_DAYS} business_days",
        "starts": per,
        "same_answers": mismatches == 0,
        "compiled_cold_s": round(cold_s, 3),
        "compiled_warm_s": round(warm_s, 3),
        "compiled_cold_per_s": round(per / cold_s),
        "lean_day_walk_s": round(walk_s, 3),
        "lean_day_walk_per_s": round(per / walk_s),
        "speedup_vs_lean_day_walk_cold": round(walk_s / cold_s, 1),
        "speedup_vs_lean_day_walk_warm": round(walk_s / warm_s, 1),
        "reference_oracle": {
            "starts": len(few),
            "seconds": round(oracle_s, 3),
            "per_s": round(len(few) / oracle_s, 1) if oracle_s else None,
            "speedup_per_deadline_cold": round((oracle_s / len(few)) / (cold_s / per), 1)
            if few
            else None,
        },
    }


# ---------------------------------------------------------------------- main
def _build() -> str:
    """Which crmsync the venv runs: ``make compile`` leaves mypyc extensions in ``src/``."""
    compiled = sorted(p.name.split(".")[0] for p in (ROOT / "src" / "crmsync").rglob("*.so"))
    return f"compiled by mypyc: {', '.join(compiled)}" if compiled else "pure Python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1_000_000, help="complaints to evaluate")
    parser.add_argument("--charter", default="aston", help="bundled charter name")
    parser.add_argument(
        "--shape", choices=("real", "easy", "both"), default="both", help="which data to run"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--calendar-starts", type=int, default=20_000)
    parser.add_argument(
        "--walk-starts", type=int, default=300, help="starts for the slow reference oracle"
    )
    args = parser.parse_args(argv)
    charter_file = ROOT / "mappings" / "charters" / f"{args.charter}.yaml"
    report: dict[str, Any] = {
        "charter": args.charter,
        "count": args.count,
        "now": NOW,
        "cpus": os.cpu_count(),
        "build": _build(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    shapes = ("real", "easy") if args.shape == "both" else (args.shape,)
    starts: list[int] = []
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as folder:
        for shape in shapes:
            report[shape] = measure_shape(shape, args, charter_file, Path(folder))
            starts = starts or report[shape].pop("starts")
            report[shape].pop("starts", None)
    report["calendar"] = compare_calendars(charter_file, starts, args.walk_starts)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    calendar = report["calendar"]
    headline = report[shapes[0]]
    evaluation, ratios = headline["evaluate"], headline["ratios"]
    fast_ratio = ratios["evaluate_cpu_per_fast_codec_floor"]
    report["targets"] = {
        "shape": shapes[0],
        "evaluate_wall_s<=30_for_1M": evaluation["wall_s"] * 1_000_000 / args.count <= 30,
        "evaluate_cpu<=3x_fast_codec_floor": fast_ratio is not None and fast_ratio <= 3,
        "peak_max_process_mb<=300": evaluation["peak_memory"]["max_process_mb"] <= 300,
        "calendar_speedup>=10": calendar["speedup_vs_lean_day_walk_cold"] >= 10,
    }
    print(json.dumps(report, indent=2))
    ok = all(report[s]["evaluate"]["exit_code"] == 0 for s in shapes)
    return 0 if ok and calendar["same_answers"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
