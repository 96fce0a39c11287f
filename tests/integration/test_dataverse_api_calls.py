"""The Dataverse scenario of bench/api_calls.py, small: the calls a cycle makes are the
contract's minimum (reference-org-dynamics.md), and a cycle with nothing changed makes
one read per table and no write."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_calls", ROOT / "bench" / "api_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_changed_cycle_makes_the_minimum_and_the_quiet_one_reads_each_table_once() -> None:
    """12 changed complaints, 6 flag writes, 3 new follow-ups: one clock read; one page of
    incidents, the tasks, status changes and recycle bin read once since the last cycle
    and the changed complaints' tasks and status changes once in bulk; one $batch for
    the flags and the follow-ups together (9 operations). Its writes read back change
    nothing. Nothing changed: the clock and one read of each of the four tables."""
    cycles = bench().run_dataverse(12, 6, 3)
    changed, echo, nothing = cycles["changed"], cycles["echo"], cycles["nothing"]
    assert (changed["flags_written"], changed["tasks_created"]) == (6, 3)
    assert changed["by_kind"] == {"time": 1, "query": 1 + 3 + 2, "write": 1}
    assert (echo["flags_written"], echo["tasks_created"]) == (0, 0)  # our writes read back
    assert (nothing["flags_written"], nothing["tasks_created"]) == (0, 0)
    assert nothing["by_kind"] == {"time": 1, "query": 4}


@pytest.mark.parametrize(
    ("breached", "batches"),
    [
        (700, 3),  # 1,500 flag updates + 700 follow-ups: ceil(2,200 / 1,000)
        (500, 2),  # 1,500 + 500: ceil(2,000 / 1,000); as separate requests, 2 + 1
    ],
)
def test_a_page_of_flags_and_follow_ups_takes_a_batch_per_1000_operations(
    breached: int, batches: int
) -> None:
    """1,500 complaints in one page (pages hold 2,000), all flagged at their first cycle,
    ``breached`` of them (received Monday 09:00, undecided on Wednesday 10:00) with a new
    follow-up: the flags and the follow-ups share $batch requests of 1,000 operations."""
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # the rows' modifiedon
    with FakeDataverseServer(clock) as server:
        org = server.org
        base = {
            "casetypecode": 100000000,
            "caseorigincode": 1,  # phone: only level1-resolution, due Tuesday 17:00
            "createdon": "2026-03-02T09:00:00.000Z",
            "ownerid": "00000000-0000-0000-0000-0000000000a1",
            "new_complaintmanager": "00000000-0000-0000-0000-0000000000b2",
        }
        decided = base | {"new_decisionon": "2026-03-02T09:30:00.000Z"}
        org.seed("incident", [base] * breached + [decided] * (1500 - breached))
        clock.set("2026-03-04T10:00:00+00:00")
        state = MemoryStateStore()
        state.migrate()
        crm = dataverse_client(org)
        cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="d365")
        report = cycle.run()
    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 1500, breached)
    assert crm.calls.by_kind["write"] == batches
    assert sum(1 for m, path in org.log if m == "POST" and path.endswith("$batch")) == batches
