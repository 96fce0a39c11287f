"""A sync cycle through the Dataverse adapter against the fake org, with the bundled
mappings/dynamics365.yaml: flags as choice numbers, follow-ups through the alternate key,
and a cycle with nothing changed reads each table once and writes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "dynamics365.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")

MON_10 = "2026-03-02T10:00:00.000Z"
MON_11 = "2026-03-02T11:00:00.000Z"
WED_10 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
OWNER = "00000000-0000-0000-0000-0000000000a1"
MANAGER = "00000000-0000-0000-0000-0000000000b2"
A = "00000000-0000-0000-0000-000000000001"  # e-mail complaint, nothing done
B = "00000000-0000-0000-0000-000000000002"  # acknowledged and decided Monday: all met
C = "00000000-0000-0000-0000-000000000003"  # not a complaint (another case type)
KEY_A = f"crmsync:{A}:level1-resolution:0:breached"
EMAIL = 2
COMPLAINT = 100000000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WED_10)


BASE = {"caseorigincode": EMAIL, "ownerid": OWNER, "new_complaintmanager": MANAGER}


def seed_cases(org: FakeDataverse) -> None:
    """A, B and C as their comments above say."""
    org.seed(
        "incident",
        [
            {"incidentid": A, "casetypecode": COMPLAINT, "createdon": MON_10,
             "modifiedon": MON_10} | BASE,
            {"incidentid": B, "casetypecode": COMPLAINT, "createdon": MON_10,
             "new_acknowledgedon": "2026-03-02T10:30:00.000Z", "new_decisionon": MON_11,
             "modifiedon": MON_11} | BASE,
            {"incidentid": C, "casetypecode": 2, "createdon": MON_10,
             "modifiedon": MON_10} | BASE,
        ],
    )  # fmt: skip


@pytest.fixture
def org(clock: ManualClock) -> Iterator[FakeDataverse]:
    with FakeDataverseServer(clock) as server:
        seed_cases(server.org)
        yield server.org


def cycle_for(org: FakeDataverse, state: MemoryStateStore | None = None) -> SyncCycle:
    store = state or MemoryStateStore()
    store.migrate()
    return SyncCycle(
        crm=dataverse_client(org), state=store, charter=ASTON, mapping=MAPPING, profile="d365"
    )


def reads(org: FakeDataverse, since: int = 0) -> Counter[str]:
    return Counter(path.rsplit("/", 1)[-1] for method, path in org.log[since:] if method == "GET")


def batches(org: FakeDataverse, since: int = 0) -> int:
    return sum(1 for m, path in org.log[since:] if m == "POST" and path.endswith("$batch"))


def test_a_cycle_writes_choice_numbers_and_one_follow_up(org: FakeDataverse) -> None:
    """A breached (status 100000002), B met (100000003), C left alone; A's follow-up is a
    task bound to the case and the manager, due at the deadline's instant, open (statecode
    0), high priority; the follow-up and the flags go in one $batch."""
    report = cycle_for(org).run()
    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 2, 1)
    a, b, c = (org.get("incident", r) for r in (A, B, C))
    assert (a["crmsync_charterstatus"], a["crmsync_charterbreaches"]) == (
        100000002,
        "level1-resolution",
    )
    assert a["crmsync_charternextdue"] == "2026-03-04T17:00:00.000Z"  # email-reply, Wed 17:00
    assert a["crmsync_charterchecked"] == "2026-03-04T10:00:00.000Z"
    assert b["crmsync_charterstatus"] == 100000003
    assert c["crmsync_charterstatus"] is None
    [task] = [t for t in org.all("task") if t["crmsync_key"]]
    assert task["crmsync_key"] == KEY_A
    assert (task["regardingobjectid"], task["ownerid"]) == (A, MANAGER)
    # scheduledend is a date-time column: the due instant itself (1 business day from Mon
    # 10:00 is Tuesday's closing time, 17:00 in London, UTC in March), not a date alone
    assert task["scheduledend"] == "2026-03-03T17:00:00.000Z"
    assert (task["statecode"], task["prioritycode"], task["category"]) == (
        0,
        2,
        "Charter Follow-up",
    )
    assert batches(org) == 1  # the follow-up and the two flags: three operations, one $batch


def test_a_cycle_with_nothing_changed_reads_each_table_once_and_writes_nothing(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """After a first cycle, ten minutes later with nothing touched: one read of each table
    (the incidents, the tasks, the status changes, which the paused and resumed events
    share, and the recycle bin), one clock read, and no $batch at all."""
    state = MemoryStateStore()
    cycle_for(org, state).run()
    clock.advance(minutes=10)
    mark = len(org.log)
    report = cycle_for(org, state).run()
    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 0, 0)
    assert batches(org, mark) == 0
    assert reads(org, mark) == Counter(
        {
            "WhoAmI": 1,
            "incidents": 1,
            "tasks": 1,
            "new_casestatuschanges": 1,
            "deleteditemreferences": 1,
        }
    )


def test_the_paused_and_resumed_events_share_one_read_of_the_status_changes(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """A's case waited on the customer from Monday 12:00 to Tuesday 09:00 (and moved from
    New to In Progress first): a cycle reads the status-change table once for the changed
    rows and once for the complaints' rows, and each row goes to the events it is."""
    org.seed(
        "new_casestatuschange",
        [
            {"new_case": A, "new_fromstatus": "New", "new_tostatus": "In Progress",
             "createdon": "2026-03-02T11:00:00.000Z", "modifiedon": "2026-03-02T11:00:00.000Z"},
            {"new_case": A, "new_fromstatus": "In Progress", "new_tostatus": "Waiting on Customer",
             "createdon": "2026-03-02T12:00:00.000Z", "modifiedon": "2026-03-02T12:00:00.000Z"},
            {"new_case": A, "new_fromstatus": "Waiting on Customer", "new_tostatus": "In Progress",
             "createdon": "2026-03-03T09:00:00.000Z", "modifiedon": "2026-03-03T09:00:00.000Z"},
        ],
    )  # fmt: skip
    state = MemoryStateStore()
    cycle_for(org, state).run()
    events = state.get_complaints("d365", [A])[A].canonical["events"]
    assert (events["paused"], events["resumed"]) == (
        ["2026-03-02T12:00:00Z"],
        ["2026-03-03T09:00:00Z"],
    )
    clock.advance(minutes=10)
    org.seed(
        "new_casestatuschange",
        [{"new_case": A, "new_fromstatus": "In Progress", "new_tostatus": "Waiting on Customer",
          "createdon": "2026-03-04T10:05:00.000Z", "modifiedon": "2026-03-04T10:05:00.000Z"}],
    )  # fmt: skip
    mark = len(org.log)
    assert cycle_for(org, state).run().status == "ok"
    assert reads(org, mark)["new_casestatuschanges"] == 2  # the window, then A's rows
    events = state.get_complaints("d365", [A])[A].canonical["events"]
    assert events["paused"] == ["2026-03-02T12:00:00Z", "2026-03-04T10:05:00Z"]


def test_staff_completing_the_follow_up_is_never_undone(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """Staff complete A's follow-up and change its subject: later cycles leave the task as
    staff left it and create no second one."""
    state = MemoryStateStore()
    cycle_for(org, state).run()
    [task] = [t for t in org.all("task") if t["crmsync_key"]]
    org.touch("task", task["activityid"], statecode=1, subject="handled by phone")
    worked = org.get("task", task["activityid"])
    for _ in range(2):
        clock.advance(minutes=10)
        assert cycle_for(org, state).run().status == "ok"
    assert [t for t in org.all("task") if t["crmsync_key"]] == [worked]


# --------------------------------------------------------------------------- a crash


class StopHereError(Exception):
    """Raised by the test hook: the cycle dies there (the SIGKILL tests with real processes
    are in test_crash_safety.py, on the local CRM)."""


D = "00000000-0000-0000-0000-000000000004"  # seeded before the second cycle, nothing done
KEY_D = f"crmsync:{D}:level1-resolution:0:breached"
SYSTEM_COLUMNS = frozenset({"activityid", "createdon", "modifiedon"})


def second_cycle(stop_at: str | None) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """A first cycle (A breached: its follow-up made); then A is decided and D arrives, and
    the second cycle (completing A's follow-up, creating D's, flagging both) dies at
    ``stop_at`` (never when None); a minute later a cycle runs again, and a minute after
    that one more, every one of them evaluating at the second cycle's instant (as
    ``--now`` does). The org's tasks by key (system columns left out), the complaints'
    flags, the ledger, and the last cycle's writes."""
    clock = ManualClock(WED_10)
    with FakeDataverseServer(clock) as server:
        org = server.org
        seed_cases(org)
        state = MemoryStateStore()
        assert cycle_for(org, state).run().tasks_created == 1
        clock.advance(minutes=10)
        org.touch("incident", A, new_decisionon="2026-03-04T10:05:00.000Z")
        org.seed("incident", [{"incidentid": D, "casetypecode": COMPLAINT, "createdon": MON_10}
                              | BASE])  # fmt: skip
        now = int(clock.advance(minutes=1).timestamp())

        def hook(step: str) -> None:
            if step == stop_at:
                raise StopHereError(step)

        crm = dataverse_client(org)
        dying = SyncCycle(
            crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="d365", hook=hook
        )
        if stop_at is None:
            dying.run(now=now)
        else:
            with pytest.raises(StopHereError):
                dying.run(now=now)
        clock.advance(minutes=1)  # the writes of the second cycle are in the next window
        assert cycle_for(org, state).run(now=now).status == "ok"
        clock.advance(minutes=1)
        last = cycle_for(org, state).run(now=now)
        tasks: dict[str, Any] = {}
        for task in org.all("task"):
            assert task["crmsync_key"] not in tasks, f"{task['crmsync_key']} twice"
            tasks[task["crmsync_key"]] = {k: v for k, v in task.items() if k not in SYSTEM_COLUMNS}
        flags = {
            case: {k: v for k, v in org.get("incident", case).items() if k.startswith("crmsync_")}
            for case in (A, B, D)
        }
        ledger = [
            (e.key, e.status, e.error, e.updated_at)
            for e in state.ledger_for_complaints("d365", [A, B, D])
        ]
        writes = [last.flags_written, last.tasks_created, last.tasks_completed, last.errors]
        return tasks, flags, [ledger, writes]


def test_a_cycle_that_never_dies_completes_one_follow_up_and_makes_another() -> None:
    """The reference of the crash test below: A's follow-up is completed (state 1), D's
    made once (open), both complaints flagged; the cycle after it writes nothing."""
    tasks, _flags, [ledger, writes] = second_cycle(None)
    assert {key: task["statecode"] for key, task in tasks.items()} == {KEY_A: 1, KEY_D: 0}
    assert [(key, status) for key, status, _error, _at in ledger] == [
        (KEY_A, "completed"),
        (KEY_D, "done"),
    ]
    assert writes == [0, 0, 0, []]


@pytest.mark.parametrize("step", ["tasks_planned", "writes_sent", "writes_recorded"])
def test_a_cycle_that_dies_around_its_batch_is_completed_by_the_next(step: str) -> None:
    """Dying after the ledger planned D's follow-up, after the $batch carrying it, A's
    completion and the flags was sent but before anything of it was recorded, or after
    the ledger recorded it: the next cycle ends where a cycle that never died ends, with
    one follow-up per key and nothing left to write."""
    assert second_cycle(step) == second_cycle(None)


# --------------------------------------------------------------------------- bad input


def test_a_choice_value_the_mapping_does_not_know_fails_that_complaint_alone(
    org: FakeDataverse,
) -> None:
    """Channel 7 is no mapped choice: A is a mapping failure naming the column, nothing is
    written to it and no follow-up made for it; B is flagged as usual."""
    org.touch("incident", A, caseorigincode=7, modifiedon=MON_10)  # as seeded, on Monday
    report = cycle_for(org).run()
    assert report.status == "partial"
    [failure] = report.errors
    assert (failure.kind, failure.record_id, failure.field) == ("mapping", A, "caseorigincode")
    assert "picklist value '7' is not mapped" in failure.message
    assert org.get("incident", A)["crmsync_charterstatus"] is None
    assert org.get("incident", B)["crmsync_charterstatus"] == 100000003
    assert [t for t in org.all("task") if t["crmsync_key"]] == []


def test_a_throttled_batch_and_an_expired_token_cost_no_duplicate(org: FakeDataverse) -> None:
    """The token expires before the cycle and its first $batch answers 429 (Retry-After
    1): the token is renewed, the batch sent again, and exactly one follow-up exists."""
    crm = dataverse_client(org)
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="d365")
    crm.server_time()  # signs in
    org.expire_tokens()
    org.throttle(times=1, retry_after=1, path="$batch")
    report = cycle.run()
    assert org.throttles == []  # the throttle was met
    assert (report.status, report.tasks_created) == ("ok", 1)
    assert [t["crmsync_key"] for t in org.all("task") if t["crmsync_key"]] == [KEY_A]


def test_a_follow_up_refused_by_the_org_is_reported_then_made_once(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """The org refuses A's follow-up (a business rule): the cycle is partial and names it;
    the next cycle creates it, once."""
    org.fail_op(KEY_A, 400, "0x80040265", "A plug-in refused the task")
    state = MemoryStateStore()
    first = cycle_for(org, state).run()
    assert first.status == "partial"
    assert [(e.kind, e.record_id) for e in first.errors] == [("task", KEY_A)]
    assert "0x80040265" in first.errors[0].message
    clock.advance(minutes=10)
    second = cycle_for(org, state).run()
    assert (second.status, second.tasks_created) == ("ok", 1)
    clock.advance(minutes=10)
    assert cycle_for(org, state).run().tasks_created == 0
    assert [t["crmsync_key"] for t in org.all("task") if t["crmsync_key"]] == [KEY_A]
