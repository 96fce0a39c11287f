"""What a sync cycle asks of the local CRM when little or nothing changed, counted per call."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import QUERY_PAGE, LocalCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import StateStore
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")
MON = "2026-03-02T10:00:00.000+0000"


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    store: StateStore = (
        MemoryStateStore()
        if request.param == "memory"
        else SqliteStateStore(tmp_path / "state.sqlite3")
    )
    store.migrate()
    return store


def case(n: int) -> dict[str, Any]:
    return {
        "Type": "Complaint",
        "CreatedDate": MON,
        "Origin": "Email",
        "Subject": f"complaint {n}",
        "OwnerId": "005000000000OWNAAA",
    }


def test_a_quiet_cycle_sends_only_the_pull_queries(tmp_path: Path, state: StateStore) -> None:
    """Past the echo and the overlap window, a cycle costs one query per pull (complaints,
    deleted complaints and each related object: Tasks, and the Status history that the
    paused and resumed events share) and nothing else: no read by id, no related read, no
    write."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    cycle = SyncCycle(
        crm=crm, state=state, charter=ASTON, mapping=MAPPING, overlap=timedelta(minutes=5)
    )
    assert all(r.ok for r in crm.insert_records("Case", [case(n) for n in range(30)]))
    clock.now += timedelta(minutes=1)
    first = cycle.run()
    assert (first.complaints_evaluated, first.flags_written) == (30, 30)
    for _ in ("the echo of the flag writes", "the overlap window"):
        clock.now += timedelta(minutes=10)
        cycle.run()
    clock.now += timedelta(minutes=10)
    before = dict(crm.calls.by_kind)
    quiet = cycle.run()
    calls = {k: n - before.get(k, 0) for k, n in crm.calls.by_kind.items()}
    assert len(MAPPING.related_specs()) == 3
    pulls = 2 + 2  # complaints, deletions; Tasks, CaseHistory
    assert {k: n for k, n in calls.items() if n} == {"query": pulls}
    assert quiet.crm_calls == pulls
    assert (quiet.records_read, quiet.complaints_evaluated) == (0, 0)
    assert (quiet.flags_written, quiet.tasks_created, quiet.tasks_completed) == (0, 0, 0)


def test_a_window_with_a_lower_bound_pages_every_record_once_in_order(tmp_path: Path) -> None:
    """Records sharing modstamps across page boundaries, read from a ``since`` bound, come
    back each once in (SystemModstamp, Id) order, one query per page."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    made = crm.insert_records("Case", [case(n) for n in range(2 * QUERY_PAGE + 300)])
    ids = [r.id for r in made if r.id]
    clock.now += timedelta(minutes=1)
    since = clock.now
    # 200 records per write call, each call one modstamp: pages end inside a stamp
    results = crm.update_records("Case", [(i, {"Subject": "again"}) for i in ids[50:]])
    assert all(r.ok for r in results)
    clock.now += timedelta(minutes=1)
    before = crm.calls.by_kind.get("query", 0)
    got = list(crm.changed_records("Case", ["Subject"], since=since, until=clock.now))
    assert crm.calls.by_kind.get("query", 0) - before == 3
    keys = [(r.fields["SystemModstamp"], r.id) for r in got]
    assert len(keys) == len(ids) - 50
    assert keys == sorted(set(keys))
    assert {r.id for r in got} == set(ids[50:])
    assert {r.fields["Subject"] for r in got} == {"again"}
