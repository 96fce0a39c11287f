"""Volume: 10,000 entries in the local archive, appended through the store and verified by a
fresh store (as ``crmsync archive verify`` does); the verify time is printed.

The 100,000-entry run is ``bench/archive.py`` (about 35 s of CPU to verify on the 2-core
reference machine, more wall time on a busy one: too long for every CI run).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.archive.local import LocalArchiveStore
from crmsync.domain.archive_entry import FORMAT, ArchiveEntry, new_header
from crmsync.service.archive_reading import verify_archive

pytestmark = pytest.mark.slow

COUNT = 10_000
P = "volume"


def body(n: int) -> dict[str, Any]:
    closed = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z"
    return {
        "format": FORMAT,
        "profile": P,
        "complaint_id": f"C-{n}",
        "version": closed,
        "closed_at": closed,
        "archived_at": "2027-01-01T02:00:00Z",
        "charter": {"name": "aston"},
        "record": {"fields": {f"Field_{i}__c": f"value {i} of {n}" for i in range(30)}},
    }


def test_ten_thousand_entries_verify_and_search_in_reasonable_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """10,000 appended entries verify intact in under 60 s, and a search by complaint id
    finds its entry among them."""
    store = LocalArchiveStore(tmp_path, durable=False)  # building is not what is measured
    prev = store.head(P).entry_hash
    for n in range(1, COUNT + 1):
        header = new_header(body(n), seq=n, prev_hash=prev)
        store.append(ArchiveEntry(header, body(n)))
        prev = header.entry_hash
    started = time.perf_counter()
    report = verify_archive(LocalArchiveStore(tmp_path), P, None)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[archive volume] {COUNT:,} entries verified in {seconds:.1f} s")
    assert report.ok and report.entries == COUNT
    assert seconds < 60
    assert [h.seq for h in LocalArchiveStore(tmp_path).search(P, complaint_id="C-7777")] == [7777]
