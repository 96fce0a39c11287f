"""Archive volume benchmark: N entries appended to the local archive store, then the whole
chain verified by a fresh store object (as ``crmsync archive verify`` does).

    .venv/bin/python bench/archive.py [--count 100000] [--durable] [--key] [--data-dir DIR]

Each entry's body is the size of a real one (a record of ~30 mapped fields, two tasks, six
clocks: about 4 KB of canonical JSON). Without ``--durable`` the appends skip their fsyncs
(building the archive is not what is measured); ``--key`` seals the bodies with AES-256-GCM.
Prints one JSON object: the count, append and verify wall and CPU seconds, entries verified
per second, the archive's size on disk and the process's peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crmsync.adapters.archive.cipher import AesGcmCipher
from crmsync.adapters.archive.local import LocalArchiveStore
from crmsync.domain.archive_entry import FORMAT, ArchiveEntry, new_header
from crmsync.service.archive_reading import verify_archive

PROFILE = "bench"


def body(n: int) -> dict[str, Any]:
    """An archive body shaped like a real one (sizes, not meaning)."""
    closed = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z"
    fields = {f"Field_{i}__c": f"value {i} of complaint {n}" for i in range(30)}
    task = {"object": "Task", "id": f"00T{n:015d}", "fields": {"Subject": "x" * 80}}
    clock = {
        "clock": "level1-resolution",
        "kind": "deadline",
        "state": "met",
        "started_at": closed,
        "due_at": closed,
        "warn_at": None,
        "stopped_at": closed,
        "occurrence": 0,
    }
    return {
        "format": FORMAT,
        "profile": PROFILE,
        "complaint_id": f"500{n:015d}",
        "version": closed,
        "closed_at": closed,
        "archived_at": "2027-01-01T02:00:00Z",
        "run_id": "bench",
        "record": {"object": "Case", "id": f"500{n:015d}", "fields": fields},
        "canonical": {"id": f"500{n:015d}", "events": {"closed": closed}, "attributes": {}},
        "follow_ups": [task],
        "related": {"customer_update": [task]},
        "clocks": {"at_close": [clock] * 6, "at_archive": [clock] * 6},
        "charter": {"name": "aston", "title": "Aston", "content_hash": "0" * 64},
        "mapping": {"name": "salesforce-reference", "content_hash": "0" * 64},
    }


def build(root: Path, count: int, *, durable: bool, cipher: AesGcmCipher | None) -> None:
    """Append ``count`` entries through the store's own ``append``."""
    store = LocalArchiveStore(root, durable=durable)
    head = store.head(PROFILE)
    prev, seq = head.entry_hash, head.seq
    for n in range(seq + 1, count + 1):
        b = body(n)
        header = new_header(b, seq=n, prev_hash=prev)
        store.append(cipher.seal(header, b) if cipher else ArchiveEntry(header, b))
        prev = header.entry_hash


def size_on_disk(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--durable", action="store_true", help="fsync every append")
    parser.add_argument("--key", action="store_true", help="seal bodies (AES-256-GCM)")
    parser.add_argument("--data-dir", type=Path, default=None, help="kept after the run")
    args = parser.parse_args(argv)
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="crmsync-archive-bench-"))
    cipher = AesGcmCipher(os.urandom(32)) if args.key else None
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        build(root, args.count, durable=args.durable, cipher=cipher)
        append_wall, append_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        report = verify_archive(LocalArchiveStore(root), PROFILE, cipher)
        verify_wall, verify_cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = {
            "count": args.count,
            "durable": args.durable,
            "sealed": cipher is not None,
            "append_s": round(append_wall, 2),
            "append_cpu_s": round(append_cpu, 2),
            "verify_s": round(verify_wall, 2),
            "verify_cpu_s": round(verify_cpu, 2),
            "verified_per_s": round(report.entries / verify_wall) if verify_wall else None,
            "ok": report.ok,
            "entries": report.entries,
            "bytes_on_disk": size_on_disk(root),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(json.dumps(result, indent=2))
        return 0 if report.ok and report.entries == args.count else 1
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
