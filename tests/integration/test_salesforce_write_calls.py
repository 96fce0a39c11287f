"""A sync cycle's page writes through the Salesforce adapter against the HTTP fake org, cut
into write calls as full as one Composite call carries: ``ceil(creates / 200) +
ceil((completions + updates) / 200) <= 5`` Collections requests a call.

Aston, bundled mapping; phone complaints received Mon 2026-03-02 09:00, so only
``level1-resolution`` (due Tue 17:00) applies. At the cycle, Wed 2026-03-04 10:00, an
undecided one is breached (a flag write and a new follow-up), one decided Monday 09:30 is
met (a flag write). Every complaint is in one page (pages hold 2,000).

Billed calls, worked out by hand: the first pages of every pull in one Composite call; the
related reads of the page's complaints (their Tasks, their Status history), IN-lists of
18-character ids cut at 20,000 characters of SOQL (``'id', `` is 22 characters, so up to
about 900 ids a query): each table's queries one Composite call, and two tables of one
query each share one; then the write calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.crm.salesforce import SalesforceCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.cycle_report import CycleReport
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.salesforce_fake import BASE, FakeOrg, FakeSalesforce, fake_salesforce, session_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")

SOBJECTS = f"{BASE}/composite/sobjects"
POST, PATCH = ("POST", SOBJECTS), ("PATCH", SOBJECTS)
RECEIVED = "2026-03-02T09:00:00.000+0000"
UNDECIDED: Mapping[str, Any] = {
    "Type": "Complaint",
    "Origin": "Phone",
    "CreatedDate": RECEIVED,
    "SystemModstamp": RECEIVED,
    "OwnerId": "005000000000OWNAAA",
    "Complaint_Manager__c": "005000000000MGRAAA",
}
DECIDED = {**UNDECIDED, "Decision_At__c": "2026-03-02T09:30:00.000+0000"}
FLAGGED_BREACHED = {"Charter_Status__c": "breached", "Charter_Breaches__c": "level1-resolution"}


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with fake_salesforce(ManualClock(datetime(2026, 3, 4, 10, tzinfo=UTC))) as started:
        yield started


def run_cycle(org: FakeOrg, **options: Any) -> tuple[CycleReport, SalesforceCrm]:
    crm = session_client(org)
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="sf", **options)
    return cycle.run(), crm


def write_calls(org: FakeOrg) -> list[list[tuple[str, str]]]:
    """The Composite calls of Collections requests, each as its subrequests."""
    return [call for call in org.composite_log if call[0][1] == SOBJECTS]


def test_500_follow_ups_and_1000_flags_take_two_write_calls(fake: FakeSalesforce) -> None:
    """500 breached and 500 met: 500 creates and 1,000 flag updates. The first call carries
    the 500 creates (3 POST collections) and 400 flags (2 PATCH), the second the other 600
    flags (3 PATCH): 2 write calls, where cuts of 1,000 writes (500 + 500: 6 collections,
    then 500: 3) took 3. Billed: 1 for the first pages, 2 for the related reads (1,000 ids:
    two queries per table), 2 for the writes = 5."""
    org = fake.org
    org.seed("Case", [UNDECIDED] * 500 + [DECIDED] * 500)

    report, crm = run_cycle(org)

    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 1000, 500)
    assert write_calls(org) == [[POST, POST, POST, PATCH, PATCH], [PATCH, PATCH, PATCH]]
    assert crm.calls.by_kind == {"time": 1, "query": 3, "write": 2}
    assert org.billed() == 1 + 2 + 2
    assert len([t for t in org.all("Task") if t.get("CrmSync_Key__c")]) == 500
    statuses = [c.get("Charter_Status__c") for c in org.all("Case")]
    assert sorted(statuses) == ["breached"] * 500 + ["met"] * 500


def test_1000_flags_alone_take_one_write_call(fake: FakeSalesforce) -> None:
    """1,000 met complaints: 1,000 flag updates fill 5 PATCH collections, one write call.
    Billed: 1 + 2 (related reads of 1,000 ids) + 1 = 4."""
    org = fake.org
    org.seed("Case", [DECIDED] * 1000)

    report, crm = run_cycle(org)

    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 1000, 0)
    assert write_calls(org) == [[PATCH] * 5]
    assert crm.calls.by_kind["write"] == 1
    assert org.billed() == 1 + 2 + 1


def test_200_follow_ups_and_one_flag_take_one_write_call(fake: FakeSalesforce) -> None:
    """200 breached complaints already flagged as the cycle flags them (only their follow-ups
    to make) and one met: 200 creates and 1 flag update, 2 collections in one write call.
    Billed: 1 + 1 (201 ids: one query per table, both in one call) + 1 = 3."""
    org = fake.org
    org.seed("Case", [{**UNDECIDED, **FLAGGED_BREACHED}] * 200 + [DECIDED])

    report, crm = run_cycle(org)

    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 1, 200)
    assert write_calls(org) == [[POST, PATCH]]
    assert crm.calls.by_kind["write"] == 1
    assert org.billed() == 1 + 1 + 1


def test_the_write_batch_still_caps_a_call(fake: FakeSalesforce) -> None:
    """With ``write_batch`` 300, 500 creates and 1,000 flags go as 300 creates (2 POST),
    200 creates + 100 flags (1 POST, 1 PATCH), then 300 flags three times (2 PATCH each):
    5 write calls, though 3 + 5 collections would fill two."""
    org = fake.org
    org.seed("Case", [UNDECIDED] * 500 + [DECIDED] * 500)

    report, crm = run_cycle(org, write_batch=300)

    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 1000, 500)
    assert write_calls(org) == [[POST, POST], [POST, PATCH]] + [[PATCH, PATCH]] * 3
    assert crm.calls.by_kind["write"] == 5
