"""Benchmark ``crmsync report`` against ``crmsync evaluate`` on the same file.

Run: ``.venv/bin/python bench/report.py [--count N] [--charter aston] [--keep FILE]
[--return tsm|fca]``

1. Generates N sample complaints of one year (2026) into a temporary file, as
   ``bench/evaluate.py`` does (real-shaped by default; its generator and memory polling
   are reused, not copied).
2. Runs the installed ``crmsync evaluate`` on it (output to a file), then
   ``crmsync report --period month --by channel`` (JSON to a file), each as a subprocess:
   wall time, CPU time (user + system of the command and its workers) and peak memory
   (the largest single process, polled ``VmHWM``; and the largest sum over the process
   tree, ``VmRSS`` and ``Pss``).
   With ``--return`` (charter ``housing-ombudsman`` for tsm, ``fca-disp`` for fca, chosen
   when ``--charter`` is left at its default), also ``crmsync report --return`` over the
   same year: a return streams like a report and should cost about as much.
3. Prints one JSON object with both and their ratios. The machine may be shared: the CPU
   seconds and the CPU ratio say more than wall time when other work competes.

Targets (2 cores): report <= 2x evaluate; peak RSS of report <= 300 MB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "bench" / "evaluate.py")
assert _spec is not None and _spec.loader is not None
bench_evaluate = importlib.util.module_from_spec(_spec)
sys.modules["bench_evaluate"] = bench_evaluate
_spec.loader.exec_module(bench_evaluate)

NOW = "2027-01-15T09:00:00Z"  # after the year: every instance due in 2026 has an outcome
MB = 1024 * 1024


def measure(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its wall and CPU time and peak memory (the process tree's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    with bench_evaluate.TreeMemory(process.pid) as memory:
        _, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "command": " ".join(["crmsync", *command[1:]]),
        "exit_code": process.returncode,
        "stderr_tail": stderr[-300:] if stderr else "",
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "processes": memory.max_processes,
        "peak_memory": {
            "max_process_polled_mb": round(max(memory.hwm_kb.values(), default=0) / 1024, 1),
            "sum_rss_mb": round(memory.max_sum_rss_kb / 1024, 1),
            "sum_pss_mb": round(memory.max_sum_pss_kb / 1024, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="complaints in the year")
    parser.add_argument("--charter", default="aston", help="bundled charter name")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--easy", action="store_true", help="the generator's easy shape only")
    parser.add_argument("--keep", type=Path, help="reuse (or keep) the input file here")
    parser.add_argument("--return", dest="returns", choices=("tsm", "fca"), help="also a return")
    args = parser.parse_args(argv)
    if args.returns is not None and args.charter == "aston":
        args.charter = "housing-ombudsman" if args.returns == "tsm" else "fca-disp"
    charter_file = ROOT / "mappings" / "charters" / f"{args.charter}.yaml"
    crmsync = bench_evaluate.crmsync_command()
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-report-") as scratch:
        source = args.keep or Path(scratch) / "complaints.jsonl"
        generation: dict[str, Any] = {"reused": True}
        if not source.exists():
            shape = None if args.easy else bench_evaluate.RealShape(charter_file, args.seed)
            generation = bench_evaluate.generate(args.charter, args.count, source, args.seed, shape)
        evaluated = measure(
            [
                crmsync,
                "evaluate",
                "--charter",
                str(charter_file),
                "--input",
                str(source),
                "--now",
                NOW,
                "--output",
                str(Path(scratch) / "evaluate.jsonl"),
            ]
        )
        report_file = Path(scratch) / "report.json"
        # the year of 2026 as of NOW: the report and the return read the same
        year = [
            crmsync,
            "report",
            "--charter",
            str(charter_file),
            "--input",
            str(source),
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--now",
            NOW,
        ]
        reported = measure(
            [
                *year,
                "--period",
                "month",
                "--by",
                "channel",
                "--format",
                "json",
                "--output",
                str(report_file),
            ]
        )
        document = json.loads(report_file.read_text(encoding="utf-8"))
        returned: dict[str, Any] | None = None
        if args.returns is not None:
            return_file = Path(scratch) / "return.json"
            homes = ["--homes", str(args.count * 10)] if args.returns == "tsm" else []
            returned = measure(
                [
                    *year,
                    "--return",
                    args.returns,
                    *homes,
                    "--format",
                    "json",
                    "--output",
                    str(return_file),
                ]
            )
            returned["figures"] = json.loads(return_file.read_text(encoding="utf-8"))["figures"]
    result = {
        "charter": args.charter,
        "complaints": args.count,
        "generation": generation,
        "evaluate": evaluated,
        "report": reported,
        "report_rows": len(document["rows"]),
        "report_complaints": document["complaints"],
        "ratio_wall": round(reported["wall_s"] / evaluated["wall_s"], 2),
        "ratio_cpu": round(reported["cpu_s"] / evaluated["cpu_s"], 2),
        "targets": {"ratio_max": 2.0, "report_peak_rss_mb_max": 300},
    }
    if returned is not None:
        result["return"] = returned
        result["ratio_return_to_report_cpu"] = round(returned["cpu_s"] / reported["cpu_s"], 2)
    codes = [evaluated["exit_code"], reported["exit_code"]]
    codes += [] if returned is None else [returned["exit_code"]]
    print(json.dumps(result, indent=2))
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
