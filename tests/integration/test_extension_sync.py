"""Sync and extensions (semantics 4.4, reference-org.md): the CRM follows an extended clock.

A stage 1 response with a warning, on the Housing Ombudsman's calendar (Europe/London,
Mon-Fri 09:00-17:00, England's bank holidays: Mon 25 May 2026). May 2026 is BST, so 17:00
local is 16:00Z. Acknowledged Tue 5 May 11:00 BST (day0 Tue 5): warning 5 working days
later, Tue 12 May 16:00Z; due 10 working days later, Tue 19 May 16:00Z. Extended by 10
working days: warning from Tue 12 May 17:00 (day0 Tue 12) -> Wed 13 ... Tue 26, Wed 27 May
(Mon 25 skipped) 16:00Z; due from Tue 19 May 17:00 -> Wed 3 Jun 16:00Z.

(The breached -> on_track case on the bundled charter is tested with the sync guarantees.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.mapping.charter_file import load_charter_text
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import StateStore
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
CHARTER = load_charter_text(
    (ROOT / "mappings" / "charters" / "housing-ombudsman.yaml")
    .read_text(encoding="utf-8")
    .replace(
        "    target: 10 business_days\n    extend:",
        "    target: 10 business_days\n    warn_after: 5 business_days\n    extend:",
    ),
    "housing-with-warning.yaml",
)
CASE_ID = "500000000000001AAA"
AT_RISK_KEY = f"crmsync:{CASE_ID}:stage1-response:0:at_risk"
BREACHED_KEY = f"crmsync:{CASE_ID}:stage1-response:0:breached"


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """A fresh state store of each kind."""
    store: StateStore = (
        MemoryStateStore()
        if request.param == "memory"
        else SqliteStateStore(tmp_path / "state.sqlite3")
    )
    store.migrate()
    return store


def flags(crm: LocalCrm) -> tuple[Any, Any, Any]:
    [record] = crm.records_by_id(
        "Case", [CASE_ID], ["Charter_Status__c", "Charter_Breaches__c", "Charter_Next_Due__c"]
    )
    f = record.fields
    return f.get("Charter_Status__c"), f.get("Charter_Breaches__c"), f.get("Charter_Next_Due__c")


def tasks(crm: LocalCrm) -> dict[str, dict[str, Any]]:
    return {
        str(r.fields["CrmSync_Key__c"]): dict(r.fields)
        for r in crm.export_records("Task")
        if r.fields.get("CrmSync_Key__c")
    }


def setup(tmp_path: Path, state: StateStore, start: str) -> tuple[ManualClock, LocalCrm, SyncCycle]:
    """A local CRM holding the acknowledged complaint, and its sync cycle."""
    clock = ManualClock(start)
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    cycle = SyncCycle(
        crm=crm, state=state, charter=CHARTER, mapping=MAPPING, overlap=timedelta(minutes=5)
    )
    row = {
        "Id": CASE_ID,
        "Type": "Complaint",
        "CreatedDate": "2026-05-04T09:00:00.000+0000",
        "Acknowledged_At__c": "2026-05-05T10:00:00.000+0000",
        "Origin": "Phone",
        "OwnerId": "005000000000OWNAAA",
        "Complaint_Manager__c": "005000000000MGRAAA",
    }
    assert all(r.ok for r in crm.insert_records("Case", [row]))
    clock.advance(minutes=1)
    return clock, crm, cycle


def notify(crm: LocalCrm, clock: ManualClock, instant: str) -> None:
    """Record the extension notice (entered after the fact), then let a minute pass."""
    clock.advance(hours=1)
    assert crm.update_records("Case", [(CASE_ID, {"Extension_Notified_At__c": instant})])[0].ok
    clock.advance(minutes=1)


def test_an_extension_completes_the_at_risk_follow_up_its_moved_warning_unmakes(
    tmp_path: Path, state: StateStore
) -> None:
    """At risk on Wed 13 May (warning Tue 12 May 16:00Z); a notice that morning moves the
    warning to Wed 27 May: on track again, next due Wed 3 Jun, the at_risk task completed."""
    clock, crm, cycle = setup(tmp_path, state, "2026-05-13T09:00:00+00:00")
    cycle.run()
    assert flags(crm) == ("at_risk", None, "2026-05-19T16:00:00.000+0000")
    assert tasks(crm)[AT_RISK_KEY]["Status"] == "Not Started"
    notify(crm, clock, "2026-05-13T08:00:00Z")
    report = cycle.run()
    assert flags(crm) == ("on_track", None, "2026-06-03T16:00:00.000+0000")
    assert report.tasks_completed == 1
    assert tasks(crm)[AT_RISK_KEY]["Status"] == "Completed"
    # one second before the moved warning it is still on track; at it, at risk again
    for now, status in (("2026-05-27T15:59:59", "on_track"), ("2026-05-27T16:00:00", "at_risk")):
        cycle.run(now=int(datetime.fromisoformat(now + "+00:00").timestamp()))
        assert flags(crm)[0] == status


def test_a_notice_one_second_after_the_deadline_leaves_the_breach_and_its_task(
    tmp_path: Path, state: StateStore
) -> None:
    """Breached at Tue 19 May 16:30Z; a notice dated 16:00:01Z comes too late: the flags stay
    breached and the breached follow-up stays open."""
    clock, crm, cycle = setup(tmp_path, state, "2026-05-19T16:30:00+00:00")
    cycle.run()
    assert flags(crm) == ("breached", "stage1-response", None)
    notify(crm, clock, "2026-05-19T16:00:01Z")
    report = cycle.run()
    assert report.complaints_evaluated == 1
    assert flags(crm) == ("breached", "stage1-response", None)
    assert report.tasks_completed == 0
    assert tasks(crm)[BREACHED_KEY]["Status"] == "Not Started"
