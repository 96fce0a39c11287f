"""API-call benchmark of the CRM adapters: sync cycles through the HTTP fake orgs.

    .venv/bin/python bench/api_calls.py [--changed 5000] [--flags 3000] [--tasks 1000]

Scenario (Aston charter, bundled mapping; phone complaints received Mon 2026-03-02 09:00,
so only ``level1-resolution`` applies, due Tue 17:00):

1. a priming cycle on Monday 10:00 stores every complaint and writes its flags;
2. on Wednesday 10:00 every complaint has changed (N): ``N - W`` only in their text (their
   flags stay ``met``), ``W - T`` got a decision on Tuesday (``on_track`` -> ``met``: a flag
   write each) and ``T`` only in their text (now ``breached``: a flag write and a new
   follow-up task each). The measured cycle ("changed") then costs what it costs;
3. "echo": the next cycle reads the measured cycle's flag writes back;
4. "nothing": a cycle with nothing changed.

Each scenario runs twice: with a write batch of 200 (operations per ``write_page`` call: a
call of one kind is one sObject Collections request, creates and updates together two in
one Composite) and with the default write batch of 1,000 (the cycle fills each call while
its Collections requests, creates and updates together, fit one Composite: five).
Prints JSON: per cycle the HTTP requests by kind, the billed calls (what the org's
``Sforce-Limit-Info`` counts: the Versions call for the clock and logins are free), beside
the Collections minimum ``1 + ceil(N/2000) + ceil(W/200) + ceil(T/200)`` and the
Composite-packed minimum ``1 + ceil(N/2000) + ceil((ceil(W/200) + ceil(T/200))/5)``.
Target: the changed cycle at or below the Collections minimum.

The same scenario runs through the Dataverse adapter against its fake org (bundled
``mappings/dynamics365.yaml``, write batch 1,000), beside the contract's minimum
``1 + ceil(N/5000) + the related reads + ceil((W + T)/1000)`` (the clock read, the
complaint pages, the reads of related rows of changed complaints, one ``$batch`` per 1,000
writes, flag updates and new follow-ups together). Dataverse bills no daily calls, so its
figure is the HTTP requests.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from crmsync.adapters.state.memory import MemoryStateStore  # noqa: E402
from crmsync.logging_setup import configure_logging  # noqa: E402
from crmsync.mapping.charter_file import load_charter  # noqa: E402
from crmsync.mapping.field_mapping import load_mapping  # noqa: E402
from crmsync.service.sync_cycle import SyncCycle  # noqa: E402
from fakes.dynamics365_fake import FakeDataverseServer, dataverse_client  # noqa: E402
from fakes.salesforce_fake import FakeOrg, fake_salesforce, session_client  # noqa: E402

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WEDNESDAY = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
RECEIVED = "2026-03-02T09:00:00.000+0000"
DECIDED_EARLY = "2026-03-02T09:30:00.000+0000"
DECIDED_TUESDAY = "2026-03-03T12:00:00.000+0000"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def play(
    clock: Clock,
    cycle: SyncCycle,
    changes: Callable[[], None],
    measure_one: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """The scenario's timeline, one for every CRM: a priming cycle on Monday, ``changes``
    made in the CRM an hour before Wednesday's cycle, then the changed cycle, the echo of
    its writes and a cycle with nothing changed, each measured by ``measure_one``."""
    clock.now = MONDAY + timedelta(minutes=1)
    cycle.run()  # priming
    clock.now = WEDNESDAY - timedelta(hours=1)
    changes()
    out: dict[str, Any] = {}
    for name, at in (
        ("changed", WEDNESDAY),
        ("echo", WEDNESDAY + timedelta(minutes=10)),
        ("nothing", WEDNESDAY + timedelta(minutes=20)),
    ):
        clock.now = at
        out[name] = measure_one()
    return out


def run(changed: int, flags: int, tasks: int, write_batch: int) -> dict[str, Any]:
    """One scenario; returns per-cycle figures."""
    clock = Clock(MONDAY)
    mapping = load_mapping(REPO / "mappings" / "salesforce.yaml")
    charter = load_charter(REPO / "mappings" / "charters" / "aston.yaml")
    quiet, flag_only = changed - flags, flags - tasks
    with fake_salesforce(clock) as fake:
        org = fake.org
        base = {
            "Type": "Complaint",
            "Origin": "Phone",
            "CreatedDate": RECEIVED,
            "OwnerId": "005000000000OWNAAA",
            "Complaint_Manager__c": "005000000000MGRAAA",
        }
        quiet_ids = org.seed("Case", [base | {"Decision_At__c": DECIDED_EARLY}] * quiet)
        flag_ids = org.seed("Case", [base] * flag_only)
        task_ids = org.seed("Case", [base] * tasks)
        crm = session_client(org)
        state = MemoryStateStore()
        state.migrate()
        cycle = SyncCycle(
            crm=crm,
            state=state,
            charter=charter,
            mapping=mapping,
            profile="bench",
            write_batch=write_batch,
        )

        def changes() -> None:
            for rid in quiet_ids:
                org.touch("Case", rid, Description="more details")
            for rid in flag_ids:
                org.touch("Case", rid, Decision_At__c=DECIDED_TUESDAY)
            for rid in task_ids:
                org.touch("Case", rid, Description="still waiting")

        return play(clock, cycle, changes, lambda: measure(org, crm, cycle))


def run_dataverse(changed: int, flags: int, tasks: int) -> dict[str, Any]:
    """The scenario through the Dataverse adapter; per-cycle figures."""
    clock = Clock(MONDAY)
    mapping = load_mapping(REPO / "mappings" / "dynamics365.yaml")
    charter = load_charter(REPO / "mappings" / "charters" / "aston.yaml")
    quiet, flag_only = changed - flags, flags - tasks
    received, early, tuesday = (t.replace(".000+0000", "Z") for t in
                                (RECEIVED, DECIDED_EARLY, DECIDED_TUESDAY))  # fmt: skip
    with FakeDataverseServer(clock) as server:
        org = server.org
        base = {
            "casetypecode": 100000000,
            "caseorigincode": 1,  # phone
            "createdon": received,
            "ownerid": "00000000-0000-0000-0000-0000000000a1",
            "new_complaintmanager": "00000000-0000-0000-0000-0000000000b2",
        }
        quiet_ids = org.seed("incident", [base | {"new_decisionon": early}] * quiet)
        flag_ids = org.seed("incident", [base] * flag_only)
        task_ids = org.seed("incident", [base] * tasks)
        crm = dataverse_client(org)
        state = MemoryStateStore()
        state.migrate()
        cycle = SyncCycle(
            crm=crm, state=state, charter=charter, mapping=mapping, profile="bench",
            write_batch=1000,
        )  # fmt: skip

        def changes() -> None:
            for rid in quiet_ids:
                org.touch("incident", rid, description="more details")
            for rid in flag_ids:
                org.touch("incident", rid, new_decisionon=tuesday)
            for rid in task_ids:
                org.touch("incident", rid, description="still waiting")

        return play(clock, cycle, changes, lambda: measure_requests(crm, cycle))


def measure_requests(crm: Any, cycle: SyncCycle) -> dict[str, Any]:
    """Run one cycle and count its HTTP requests by kind."""
    before = dict(crm.calls.by_kind)
    report = cycle.run()
    kinds = {k: v - before.get(k, 0) for k, v in crm.calls.by_kind.items()}
    kinds = {k: v for k, v in kinds.items() if v}
    return {
        "status": report.status,
        "records_read": report.records_read,
        "evaluated": report.complaints_evaluated,
        "flags_written": report.flags_written,
        "tasks_created": report.tasks_created,
        "http_requests": sum(kinds.values()),
        "by_kind": kinds,
    }


def measure(org: FakeOrg, crm: Any, cycle: SyncCycle) -> dict[str, Any]:
    """``measure_requests`` plus the Salesforce org's billed calls."""
    before_billed = org.billed()
    return measure_requests(crm, cycle) | {"billed_calls": org.billed() - before_billed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changed", type=int, default=5000)
    parser.add_argument("--flags", type=int, default=3000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--skip-dataverse", action="store_true")
    parser.add_argument("--skip-salesforce", action="store_true")
    args = parser.parse_args()
    if not args.tasks <= args.flags <= args.changed:
        parser.error("need tasks <= flags <= changed")
    configure_logging("json", "warning")
    n, w, t = args.changed, args.flags, args.tasks
    collections_min = 1 + math.ceil(n / 2000) + math.ceil(w / 200) + math.ceil(t / 200)
    packed_min = 1 + math.ceil(n / 2000) + math.ceil((math.ceil(w / 200) + math.ceil(t / 200)) / 5)
    result: dict[str, Any] = {
        "N_changed": n,
        "W_flag_writes": w,
        "T_new_tasks": t,
        "collections_minimum": collections_min,
        "composite_packed_minimum": packed_min,
    }
    batches = () if args.skip_salesforce else (("write_batch_200", 200), ("write_batch_1000", 1000))
    for label, batch in batches:
        cycles = run(n, w, t, batch)
        measured = cycles["changed"]
        assert (measured["flags_written"], measured["tasks_created"]) == (w, t), measured
        result[label] = cycles
        result[label]["changed_billed_at_or_below_collections_minimum"] = (
            measured["billed_calls"] <= collections_min
        )
    if not args.skip_dataverse:
        cycles = run_dataverse(n, w, t)
        measured = cycles["changed"]
        assert (measured["flags_written"], measured["tasks_created"]) == (w, t), measured
        result["dataverse"] = cycles
        result["dataverse_minimum_without_related_reads"] = (
            1 + math.ceil(n / 5000) + math.ceil((w + t) / 1000)
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
