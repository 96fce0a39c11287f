"""Dataverse answers date-times in whole seconds while it keeps, filters and pages on finer
time (the fake does the same: tests/fakes/dynamics365_fake.py): the adapter and the sync
stay exact under it.

Reads: rows sharing one second come once each across pages, a row changed during a read
comes once, a window's bounds compare what the org keeps, a paging link that goes round is
an error. Writes: date-times are written in whole seconds and read back as written. Cycles:
a watermark taken in the middle of a second misses no row kept later in that second, nor a
row changed 300 ms after it was taken, nor one whose write failed; nothing is read again
forever, and flags held with a fraction of a second are no change.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.adapters.crm.dynamics365 import DataverseCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.errors import CrmError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.cycle_report import CycleReport
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
FAR = datetime(2030, 1, 1, tzinfo=UTC)
OWNER = "00000000-0000-0000-0000-0000000000a1"
MANAGER = "00000000-0000-0000-0000-0000000000b2"
MON_10 = "2026-03-02T10:00:00.000Z"
COMPLAINT, EMAIL = 100000000, 2
BREACHED, MET = 100000002, 100000003


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{text}+00:00")


def guid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def org(clock: ManualClock) -> Iterator[FakeDataverse]:
    with FakeDataverseServer(clock) as server:
        yield server.org


@pytest.fixture
def crm(org: FakeDataverse) -> Iterator[DataverseCrm]:
    client = dataverse_client(org)
    yield client
    client.close()


# --------------------------------------------------------------------------- reads


def test_twelve_thousand_rows_of_one_second_come_once_each_in_three_pages(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """12,000 rows modified within 09:00:00 (twelve on each millisecond: row i at i // 12
    ms, ids ascending with i; seeded shuffled), in pages of 5,000: three queries give every
    row once, in (kept modifiedon, id) order, each answered 09:00:00Z; rows 4,999/5,000
    and 9,999/10,000 tie across the page boundaries. The window's lower bound compares the
    kept time: from 09:00:00.500 it holds rows 6,000 on (two pages); up to 09:00:00, none."""
    ids = [guid(i) for i in range(12_000)]
    rows = [
        {"incidentid": ids[i], "modifiedon": f"2026-03-02T09:00:00.{i // 12:03d}Z"}
        for i in range(12_000)
    ]
    random.Random(7).shuffle(rows)
    org.seed("incident", rows)

    got = list(crm.changed_records("incident", [], since=at("09:00:00"), until=at("09:00:01")))
    assert [r.id for r in got] == ids
    assert {r.fields["modifiedon"] for r in got} == {"2026-03-02T09:00:00Z"}
    assert crm.calls.by_kind == {"query": 3}

    later = crm.changed_records("incident", [], since=at("09:00:00.500"), until=at("09:00:01"))
    assert [r.id for r in later] == ids[6000:]
    assert crm.calls.by_kind == {"query": 5}
    assert list(crm.changed_records("incident", [], since=None, until=at("09:00:00"))) == []


def test_rows_changed_during_a_read_come_once(org: FakeDataverse, clock: ManualClock) -> None:
    """Twelve rows of one second (row i at i * 50 ms), pages of five. After the first page,
    a person changes row 2 (read already) and row 8 (not yet): both move to 09:15:00 (row 8
    one ms after row 2). The org pages on, after row 4: rows 5-7 and 9-11, then row 2
    (dropped: read already) and row 8. Three queries, every row once."""
    ids = [guid(i) for i in range(12)]
    stamps = [f"2026-03-02T09:00:00.{i * 50:03d}Z" for i in range(12)]
    org.seed("incident", [{"incidentid": ids[i], "modifiedon": stamps[i]} for i in range(12)])
    crm = dataverse_client(org, page_size=5)
    read = crm.changed_records("incident", [], since=None, until=FAR)
    first = [next(read).id for _ in range(5)]
    org.touch("incident", ids[2], title="changed")
    org.touch("incident", ids[8], title="changed")
    rest = [r.id for r in read]
    assert first + rest == ids[:8] + ids[9:] + [ids[8]]
    assert crm.calls.by_kind == {"query": 3}


def test_a_next_link_leading_back_to_a_read_page_is_an_error_not_a_loop(
    org: FakeDataverse,
) -> None:
    """The org's next links name the page just read (a paging cookie gone wrong, ten times
    over): the read stops with a CrmError the second time the link comes, two queries in
    all, instead of reading the first page again and again."""
    org.seed("incident", [{"title": str(i)} for i in range(3)])
    org.stuck_next_links = 10
    crm = dataverse_client(org, page_size=2)
    with pytest.raises(CrmError, match="leads back to a page already read"):
        list(crm.changed_records("incident", [], since=None, until=FAR))
    assert crm.calls.by_kind == {"query": 2}


# --------------------------------------------------------------------------- writes


def test_date_times_are_written_in_whole_seconds_and_read_back_as_written(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """A flag's instants given with fractions of a second (and in another offset) are
    written in whole seconds, so the org keeps .000 and answers what was written; so does
    a follow-up's due instant."""
    [case] = org.seed("incident", [{"title": "flagged"}])
    [result] = crm.update_records(
        "incident",
        [
            (
                case,
                {
                    "crmsync_charternextdue": "2026-03-04T17:00:00.750Z",
                    "crmsync_charterchecked": "2026-03-04T11:00:00.999+01:00",
                },
            )
        ],
    )
    assert result.ok
    kept = org.get("incident", case)
    assert (kept["crmsync_charternextdue"], kept["crmsync_charterchecked"]) == (
        "2026-03-04T17:00:00.000Z",
        "2026-03-04T10:00:00.000Z",
    )
    [back] = crm.records_by_id(
        "incident", [case], ["crmsync_charternextdue", "crmsync_charterchecked"]
    )
    assert (back.fields["crmsync_charternextdue"], back.fields["crmsync_charterchecked"]) == (
        "2026-03-04T17:00:00Z",
        "2026-03-04T10:00:00Z",
    )
    [made] = crm.create_if_absent(
        "task", "crmsync_key", [{"crmsync_key": "k", "scheduledend": "2026-03-03T17:00:00.5Z"}]
    )
    assert org.get("task", str(made.id))["scheduledend"] == "2026-03-03T17:00:00.000Z"
    [task] = crm.records_by_id("task", [str(made.id)], ["scheduledend"])
    assert task.fields["scheduledend"] == "2026-03-03T17:00:00Z"


# --------------------------------------------------------------------------- cycles

WED = "2026-03-04T"


def complaints(org: FakeDataverse, stamps: list[str], first: int = 0) -> list[str]:
    """E-mail complaints received Monday 10:00, nothing done (breached on Wednesday, a
    follow-up each), modified at ``stamps``; their ids."""
    rows = [
        {
            "incidentid": guid(first + i),
            "casetypecode": COMPLAINT,
            "caseorigincode": EMAIL,
            "createdon": MON_10,
            "modifiedon": stamp,
            "ownerid": OWNER,
            "new_complaintmanager": MANAGER,
        }
        for i, stamp in enumerate(stamps)
    ]
    return org.seed("incident", rows)


def status(org: FakeDataverse, case: str) -> int | None:
    value = org.get("incident", case)["crmsync_charterstatus"]
    return None if value is None else int(value)


def follow_ups(org: FakeDataverse) -> dict[str, int]:
    """Follow-up key -> statecode (0 open, 1 completed)."""
    return {t["crmsync_key"]: t["statecode"] for t in org.all("task") if t["crmsync_key"]}


def key(case: str) -> str:
    return f"crmsync:{case}:level1-resolution:0:breached"


def incident_reads(org: FakeDataverse, since: int) -> int:
    return sum(1 for m, path in org.log[since:] if m == "GET" and path.endswith("/incidents"))


def summary(report: CycleReport) -> tuple[str, int, int, int, str | None]:
    return (
        report.status,
        report.flags_written,
        report.tasks_created,
        report.tasks_completed,
        report.watermark,
    )


@pytest.mark.parametrize("overlap", [timedelta(0), timedelta(minutes=5)])
def test_a_watermark_taken_mid_second_misses_nothing_and_reads_nothing_forever(
    org: FakeDataverse, clock: ManualClock, overlap: timedelta
) -> None:
    """Twelve complaints modified within 09:59:59 (at i * 80 ms) and R at 10:00:00.400;
    the cycles read incidents in pages of five.

    Cycle 1 at 10:00:00.700: the org's Date says 10:00:00, so the window ends there: the
    twelve are read (three pages), flagged breached with a follow-up each; R, kept after
    10:00:00, is not in it. Watermark 10:00:00. At 10:00:01.000, 300 ms after that cycle
    took its watermark, a person decides X (one of the twelve) on Monday (all met).
    Cycle 2 at 10:00:01.500 (window to 10:00:01): R is flagged with its follow-up; X's
    change, kept at 10:00:01.000, is for the next window. Cycle 3 at 10:00:02.200: X is
    flagged met and its follow-up completed. Cycle 4 at 10:00:03: our writes read back,
    nothing written. A cycle at 10:06:03 reads what the overlap holds (from 09:55:03 with
    five minutes) and writes nothing; the next, a minute on, reads nothing at all."""
    twelve = complaints(org, [f"{WED}09:59:59.{i * 80:03d}Z" for i in range(12)])
    [r] = complaints(org, [f"{WED}10:00:00.400Z"], first=100)
    x = twelve[0]
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(
        crm=dataverse_client(org, page_size=5),
        state=state,
        charter=ASTON,
        mapping=MAPPING,
        profile="d365",
        overlap=overlap,
    )

    clock.set(f"{WED}10:00:00.700+00:00")
    mark = len(org.log)
    first = cycle.run()
    assert summary(first) == ("ok", 12, 12, 0, "2026-03-04T10:00:00+00:00")
    assert incident_reads(org, mark) == 3
    assert [status(org, c) for c in twelve] == [BREACHED] * 12
    assert status(org, r) is None

    clock.set(f"{WED}10:00:01.000+00:00")
    org.touch(
        "incident", x, new_acknowledgedon="2026-03-02T10:30:00.000Z",
        new_decisionon="2026-03-02T11:00:00.000Z",
    )  # fmt: skip

    clock.set(f"{WED}10:00:01.500+00:00")
    assert summary(cycle.run()) == ("ok", 1, 1, 0, "2026-03-04T10:00:01+00:00")
    assert (status(org, r), status(org, x)) == (BREACHED, BREACHED)

    clock.set(f"{WED}10:00:02.200+00:00")
    assert summary(cycle.run()) == ("ok", 1, 0, 1, "2026-03-04T10:00:02+00:00")
    assert status(org, x) == MET
    assert follow_ups(org) == {key(c): 0 for c in [*twelve[1:], r]} | {key(x): 1}

    clock.set(f"{WED}10:00:03.000+00:00")
    assert summary(cycle.run()) == ("ok", 0, 0, 0, "2026-03-04T10:00:03+00:00")

    clock.set(f"{WED}10:06:03.000+00:00")
    assert summary(cycle.run()) == ("ok", 0, 0, 0, "2026-03-04T10:06:03+00:00")
    clock.set(f"{WED}10:07:03.000+00:00")
    quiet = cycle.run()
    assert summary(quiet) == ("ok", 0, 0, 0, "2026-03-04T10:07:03+00:00")
    assert quiet.records_read == 0


def test_a_failed_write_holds_the_watermark_at_its_answered_second(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """With no overlap: of twelve complaints kept within 09:59:59 (at i * 80 ms), the org
    refuses the flags of the last (kept at 09:59:59.880, answered 09:59:59Z). Cycle 1 at
    10:00:00.700 is partial and its watermark stays at 09:59:59, not past the row; cycle 2
    reads it again (kept 09:59:59.880 >= 09:59:59) and flags it."""
    twelve = complaints(org, [f"{WED}09:59:59.{i * 80:03d}Z" for i in range(12)])
    last = twelve[-1]
    org.fail_op(last, 400, "0x80040265", "A plug-in refused the value")
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(
        crm=dataverse_client(org, page_size=5),
        state=state,
        charter=ASTON,
        mapping=MAPPING,
        profile="d365",
        overlap=timedelta(0),
    )
    clock.set(f"{WED}10:00:00.700+00:00")
    first = cycle.run()
    assert summary(first) == ("partial", 11, 12, 0, "2026-03-04T09:59:59+00:00")
    assert [(e.kind, e.record_id) for e in first.errors] == [("flags", last)]
    assert status(org, last) is None

    clock.set(f"{WED}10:00:01.500+00:00")
    assert summary(cycle.run()) == ("ok", 1, 0, 0, "2026-03-04T10:00:01+00:00")
    assert status(org, last) == BREACHED


def test_flags_held_with_a_fraction_of_a_second_are_no_change(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """A complaint already holding the flags a cycle plans (breached, next due Wednesday
    17:00), its next due kept at 17:00:00.400 by another writer (answered 17:00:00Z): the
    cycle writes no flag (only the follow-up it needs)."""
    [case] = complaints(org, [f"{WED}09:00:00.000Z"])
    org.touch(
        "incident", case, crmsync_charterstatus=BREACHED,
        crmsync_charterbreaches="level1-resolution",
        crmsync_charternextdue=f"{WED}17:00:00.400Z",
    )  # fmt: skip
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(
        crm=dataverse_client(org), state=state, charter=ASTON, mapping=MAPPING, profile="d365"
    )
    clock.set(f"{WED}10:00:00.000+00:00")
    assert summary(cycle.run()) == ("ok", 0, 1, 0, "2026-03-04T10:00:00+00:00")
    assert org.get("incident", case)["crmsync_charternextdue"] == f"{WED}17:00:00.400Z"
