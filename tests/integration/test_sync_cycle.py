"""The sync cycle end to end in one process: local CRM + state store, fixed clocks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.errors import ProfileLostError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping, load_mapping_text
from crmsync.ports import StateStore, WriteResult
from crmsync.service.state_retention import Retention, prune_state
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.failing_crm import FailingCrm
from state_views import count_complaints

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")
SQUARE_MILE = load_charter(ROOT / "mappings" / "charters" / "the-square-mile.yaml")

# Aston: Mon-Thu 08:30-17:00, Fri 08:30-16:30, Europe/London (GMT in early March 2026).
MON = "2026-03-02T10:00:00.000+0000"


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    store: StateStore = (
        MemoryStateStore()
        if request.param == "memory"
        else SqliteStateStore(tmp_path / "state.sqlite3")
    )
    store.migrate()
    return store


def case(cid: str, **fields: Any) -> dict[str, Any]:
    row = {
        "Id": cid,
        "Type": "Complaint",
        "CreatedDate": MON,
        "Origin": "Email",
        "OwnerId": "005000000000OWNAAA",
        "Complaint_Manager__c": "005000000000MGRAAA",
    }
    row.update(fields)
    return row


def setup(
    tmp_path: Path,
    state: StateStore,
    clock: ManualClock,
    charter: Any = ASTON,
    crm_class: type[LocalCrm] = LocalCrm,
) -> tuple[LocalCrm, SyncCycle]:
    crm = crm_class(tmp_path / "crm.sqlite3", clock=clock)
    cycle = SyncCycle(
        crm=crm, state=state, charter=charter, mapping=MAPPING, overlap=timedelta(minutes=5)
    )
    return crm, cycle


def insert(crm: LocalCrm, clock: ManualClock, object: str, rows: list[dict[str, Any]]) -> None:
    """Insert records, then let a minute pass (a pull sees only records stamped before it)."""
    assert all(r.ok for r in crm.insert_records(object, rows))
    clock.advance(minutes=1)


def flags(crm: LocalCrm, cid: str) -> tuple[Any, Any, Any]:
    [record] = crm.records_by_id(
        "Case", [cid], ["Charter_Status__c", "Charter_Breaches__c", "Charter_Next_Due__c"]
    )
    f = record.fields
    return f.get("Charter_Status__c"), f.get("Charter_Breaches__c"), f.get("Charter_Next_Due__c")


def tasks(crm: LocalCrm) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for record in crm.export_records("Task"):
        key = record.fields.get("CrmSync_Key__c")
        if key:
            assert key not in found, f"duplicate follow-up {key}"
            found[key] = dict(record.fields)
    return found


def test_first_cycle_writes_flags_and_follow_ups(tmp_path: Path, state: StateStore) -> None:
    """Mon 10:00 e-mail, now Wed 12:00: level1 breached (due Tue 17:00), email-reply on track."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(
        crm,
        clock,
        "Case",
        [
            case("500000000000001AAA"),
            case("500000000000002AAA", Decision_At__c="2026-03-02T15:00:00.000+0000"),
        ],
    )
    report = cycle.run()
    # C1: level1-resolution (1 business day) due Tue 17:00 -> breached;
    # email-reply (2 business days) due Wed 17:00 -> on_track
    assert flags(crm, "500000000000001AAA") == (
        "breached",
        "level1-resolution",
        "2026-03-04T17:00:00.000+0000",
    )
    # C2: decided Mon 15:00: both clocks met, nothing running
    assert flags(crm, "500000000000002AAA") == ("met", None, None)
    created = tasks(crm)
    assert set(created) == {"crmsync:500000000000001AAA:level1-resolution:0:breached"}
    task = created["crmsync:500000000000001AAA:level1-resolution:0:breached"]
    assert task["OwnerId"] == "005000000000MGRAAA"  # breached -> the complaint manager
    assert task["WhatId"] == "500000000000001AAA"
    assert task["Status"] == "Not Started"
    assert (
        report.records_read,
        report.complaints_evaluated,
        report.flags_written,
        report.tasks_created,
        report.errors,
    ) == (2, 2, 2, 1, [])


def test_a_cycle_with_nothing_new_writes_nothing(tmp_path: Path, state: StateStore) -> None:
    """Echoes of our own writes and overlap re-reads are de-duplicated: nothing evaluated,
    nothing written; once past the overlap window nothing is even read."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    cycle.run()
    clock.advance(minutes=1)
    echo = cycle.run()
    assert (echo.records_read, echo.complaints_evaluated) == (1, 0)
    assert (echo.flags_written, echo.tasks_created) == (0, 0)
    clock.advance(minutes=10)
    overlap = cycle.run()  # the echo is still inside the 5-minute overlap of the last mark
    assert (overlap.records_read, overlap.complaints_evaluated, overlap.flags_written) == (1, 0, 0)
    clock.advance(minutes=10)
    quiet = cycle.run()
    assert (quiet.records_read, quiet.flags_written, quiet.tasks_created) == (0, 0, 0)


def test_passing_deadlines_reevaluate_stored_complaints_without_reading_them(
    tmp_path: Path, state: StateStore
) -> None:
    """At Wed 17:00:01 email-reply breaches: flags and a task, from the stored complaint."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    cycle.run()
    for _ in range(2):  # the echo of our write, then past the overlap window
        clock.advance(minutes=10)
        cycle.run()
    report = cycle.run(now=ts("2026-03-04T17:00:01+00:00"))
    assert report.records_read == 0
    assert report.complaints_evaluated == 1
    assert flags(crm, "500000000000001AAA") == ("breached", "email-reply;level1-resolution", None)
    assert "crmsync:500000000000001AAA:email-reply:0:breached" in tasks(crm)


def test_a_follow_up_is_completed_when_its_clock_stops(tmp_path: Path, state: StateStore) -> None:
    """The breached level1 task is completed once a decision is recorded."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    cycle.run()
    clock.advance(minutes=30)
    crm.update_records(
        "Case", [("500000000000001AAA", {"Decision_At__c": "2026-03-04T12:15:00.000+0000"})]
    )
    clock.advance(minutes=1)
    report = cycle.run()
    assert report.tasks_completed == 1
    assert tasks(crm)["crmsync:500000000000001AAA:level1-resolution:0:breached"]["Status"] == (
        "Completed"
    )
    # met_late still counts as a breach on the record
    assert flags(crm, "500000000000001AAA") == ("breached", "level1-resolution", None)


def test_customer_update_tasks_drive_recurring_clocks(tmp_path: Path, state: StateStore) -> None:
    """A new Customer Update task re-evaluates its case: interim-update cycle 1 starts."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock, SQUARE_MILE)
    insert(crm, clock, "Case", [case("500000000000001AAA", Acknowledged_At__c=MON)])
    insert(
        crm,
        clock,
        "Task",
        [
            {
                "WhatId": "500000000000001AAA",
                "Type": "Customer Update",
                "CompletedDateTime": "2026-03-02T11:00:00.000+0000",
            }
        ],
    )
    cycle.run()
    clock.advance(days=6)
    insert(
        crm,
        clock,
        "Task",
        [
            {
                "WhatId": "500000000000001AAA",
                "Type": "Customer Update",
                "CompletedDateTime": "2026-03-09T09:00:00.000+0000",
            }
        ],
    )
    clock.advance(minutes=1)
    report = cycle.run(now=ts("2026-03-09T10:00:00+00:00"))
    assert report.complaints_evaluated == 1
    stored = state.get_complaints("default", ["500000000000001AAA"])["500000000000001AAA"]
    assert stored.canonical["events"]["customer_update"] == [
        "2026-03-02T11:00:00Z",
        "2026-03-09T09:00:00Z",
    ]


def test_an_unreadable_record_is_reported_and_the_others_go_on(
    tmp_path: Path, state: StateStore
) -> None:
    """A value the mapping cannot read names record and field; the good complaint is flagged."""
    text = (ROOT / "mappings" / "salesforce.yaml").read_text()
    # an admin maps a free-text field as a date: one record's text is not a date
    custom = load_mapping_text(
        text.replace(
            "    involved: Involved__c\n", "    involved: {field: Involved__c, type: date}\n"
        ),
        "custom.yaml",
    )
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=custom)
    insert(
        crm,
        clock,
        "Case",
        [case("500000000000001AAA"), case("500000000000002AAA", Involved__c="next week")],
    )
    report = cycle.run()
    assert [(e.kind, e.record_id, e.field) for e in report.errors] == [
        ("mapping", "500000000000002AAA", "Involved__c")
    ]
    assert flags(crm, "500000000000001AAA")[0] == "breached"
    assert flags(crm, "500000000000002AAA")[0] is None
    assert report.status == "partial"


def test_a_failed_flag_write_holds_the_watermark_and_is_retried(
    tmp_path: Path, state: StateStore
) -> None:
    """The watermark stays at the failed record's stamp; the next cycle writes it."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock, crm_class=FailingCrm)
    assert isinstance(crm, FailingCrm)
    crm.fail_ids = {"500000000000002AAA"}
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    clock.advance(minutes=1)
    insert(crm, clock, "Case", [case("500000000000002AAA")])
    [failed] = crm.records_by_id("Case", ["500000000000002AAA"], ["SystemModstamp"])
    clock.advance(minutes=1)
    report = cycle.run()
    assert [(e.kind, e.record_id) for e in report.errors] == [("flags", "500000000000002AAA")]
    mark = state.get_watermark("default", "complaints")
    assert mark == datetime.fromisoformat(failed.fields["SystemModstamp"])
    crm.fail_ids = set()
    clock.advance(minutes=1)
    retry = cycle.run()
    assert retry.errors == []
    assert flags(crm, "500000000000002AAA")[0] == "breached"
    assert state.get_watermark("default", "complaints") == clock.now


def test_a_record_with_a_nul_character_is_its_own_error_and_the_rest_go_on(
    tmp_path: Path, state: StateStore
) -> None:
    """A NUL in A's description (which no state store can keep): A is the cycle's one
    error, its flags are written once and it is kept with U+FFFD in the NUL's place; B is
    flagged; the watermark passes both; the next cycles neither report A again nor
    rewrite its flags."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(
        crm,
        clock,
        "Case",
        [
            case("500000000000001AAA", Description="late\x00invoice"),
            case("500000000000002AAA"),
        ],
    )
    report = cycle.run()
    assert report.status == "partial"
    [error] = report.errors
    assert (error.kind, error.record_id, error.field) == (
        "complaint",
        "500000000000001AAA",
        "description",
    )
    assert "NUL" in error.message
    assert flags(crm, "500000000000001AAA")[0] == "breached"
    assert flags(crm, "500000000000002AAA")[0] == "breached"
    assert state.get_watermark("default", "complaints") == clock.now
    kept = state.get_complaints("default", ["500000000000001AAA"])["500000000000001AAA"]
    assert kept.canonical["attributes"]["description"] == "late\ufffdinvoice"
    assert kept.flags["status"] == "breached"
    assert list(tasks(crm)) == [
        "crmsync:500000000000001AAA:level1-resolution:0:breached",
        "crmsync:500000000000002AAA:level1-resolution:0:breached",
    ]
    for _ in range(2):
        clock.advance(minutes=10)
        again = cycle.run()
        assert (again.status, again.errors, again.flags_written) == ("ok", [], 0)
    assert state.get_watermark("default", "complaints") == clock.now


class SurrogateCrm(LocalCrm):
    """The local CRM answering as a Salesforce org can, in JSON: record A's description
    holds a lone surrogate (``"\\ud800"``), which no SQLite file could store."""

    def changed_records(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for record in super().changed_records(*args, **kwargs):
            if record.id != "500000000000001AAA":
                yield record
                continue
            fields = dict(record.fields) | {"Description": "late \ud800 invoice"}
            yield dataclasses.replace(record, fields=fields)


def test_a_record_with_a_lone_surrogate_is_its_own_error_and_the_rest_go_on(
    tmp_path: Path, state: StateStore
) -> None:
    """A lone surrogate in A's description from the CRM's answer (which no UTF-8 store
    can keep; it failed the whole cycle): A is the cycle's one error naming the field, it
    is flagged and kept with U+FFFD in the surrogate's place; B is flagged; the watermark
    passes both; the next cycle is clean."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock, crm_class=SurrogateCrm)
    insert(crm, clock, "Case", [case("500000000000001AAA"), case("500000000000002AAA")])
    with capture_logs() as logs:
        report = cycle.run()
    assert report.status == "partial"
    [error] = report.errors
    assert (error.kind, error.record_id, error.field) == (
        "complaint",
        "500000000000001AAA",
        "description",
    )
    assert "lone surrogate" in error.message
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["record_lone_surrogate"]
    assert flags(crm, "500000000000001AAA")[0] == "breached"
    assert flags(crm, "500000000000002AAA")[0] == "breached"
    assert state.get_watermark("default", "complaints") == clock.now
    kept = state.get_complaints("default", ["500000000000001AAA"])["500000000000001AAA"]
    assert kept.canonical["attributes"]["description"] == "late \ufffd invoice"
    clock.advance(minutes=10)
    again = cycle.run()
    assert (again.status, again.errors, again.flags_written) == ("ok", [], 0)


class ForgetfulCrm(LocalCrm):
    """The local CRM after its recycle bin was emptied: it no longer names deletions."""

    def deleted_records(
        self, object: str, *, since: datetime | None, until: datetime
    ) -> Iterator[str]:
        return iter(())


def test_a_complaint_deleted_in_the_crm_leaves_the_state_with_one_log_line(
    tmp_path: Path, state: StateStore
) -> None:
    """A (breached, with a follow-up) is deleted in the CRM: the next cycle pulls the
    deletion, forgets A (one ``complaint_deleted`` line), ends ok with no error, creates
    nothing for it, and A no longer counts; B is untouched; later cycles stay quiet."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    a, b = "500000000000001AAA", "500000000000002AAA"
    insert(crm, clock, "Case", [case(a), case(b, Decision_At__c="2026-03-02T15:00:00.000+0000")])
    first = cycle.run()
    assert (first.status, first.tasks_created) == ("ok", 1)
    assert state.population("default").by_status == {"breached": 1, "met": 1}
    (gone,) = crm.delete_records("Case", [a])
    assert gone.ok
    clock.advance(minutes=10)
    with capture_logs() as logs:
        report = cycle.run()
    assert (report.status, report.errors, report.complaints_deleted) == ("ok", [], 1)
    assert (report.tasks_created, report.flags_written) == (0, 0)
    assert [e["record_id"] for e in logs if e["event"] == "complaint_deleted"] == [a]
    assert list(state.get_complaints("default", [a, b])) == [b]
    assert state.population("default").by_status == {"met": 1}
    assert flags(crm, b)[0] == "met"
    clock.advance(days=2)  # A's next deadlines pass: nothing is due for it any more
    later = cycle.run()
    assert (later.status, later.errors, later.complaints_deleted, later.tasks_created) == (
        "ok",
        [],
        0,
        0,
    )
    assert list(tasks(crm)) == [f"crmsync:{a}:level1-resolution:0:breached"]
    # the state retention forgets what is left of A: its follow-up record
    pruned = state.prune("default", closed_before=ts("2026-03-06T12:00:00+00:00"), runs_before=None)
    assert (pruned.complaints, pruned.ledger_entries) == (0, 1)
    assert state.ledger_for_complaints("default", [a, b]) == []


def test_a_deleted_complaint_the_crm_no_longer_names_is_forgotten_at_its_write(
    tmp_path: Path, state: StateStore
) -> None:
    """A CRM that no longer names a deletion: A is evaluated again at its next check (Tue
    17:00 it breaches; no follow-up, the horizon is set after it), its flag write answers
    NOT_FOUND, and A is forgotten instead of failing every cycle: no error, no task, the
    watermark not held back."""
    clock = ManualClock("2026-03-02T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock, crm_class=ForgetfulCrm)
    cycle.follow_up_since = ts("2026-12-01T00:00:00+00:00")
    a = "500000000000001AAA"
    insert(crm, clock, "Case", [case(a)])
    assert cycle.run().status == "ok"
    assert flags(crm, a)[0] != "breached"
    assert crm.delete_records("Case", [a])[0].ok
    clock.set("2026-03-03T18:00:00+00:00")
    with capture_logs() as logs:
        report = cycle.run()
    assert (report.status, report.errors, report.complaints_deleted) == ("ok", [], 1)
    assert [(e["record_id"], e["seen_by"]) for e in logs if e["event"] == "complaint_deleted"] == [
        (a, "write")
    ]
    assert state.get_complaints("default", [a]) == {}
    assert state.get_watermark("default", "complaints") == clock.now
    clock.advance(minutes=10)
    again = cycle.run()
    assert (again.status, again.errors, again.complaints_evaluated) == ("ok", [], 0)


class LeaverCrm(LocalCrm):
    """The local CRM where some users left: creating a record they own fails for good."""

    inactive: frozenset[str] = frozenset({"005000000000MGRAAA"})

    def create_if_absent(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        active = [r for r in records if r.get("OwnerId") not in self.inactive]
        made = iter(super().create_if_absent(object, key_field, active))
        return [
            next(made)
            if r.get("OwnerId") not in self.inactive
            else WriteResult(
                str(r.get(key_field)),
                False,
                error_code="INACTIVE_OWNER_OR_USER",
                message=f"operation performed with inactive user [{r.get('OwnerId')}]",
            )
            for r in records
        ]


def test_a_refused_follow_up_is_named_by_status_until_it_is_no_longer_needed(
    tmp_path: Path, state: StateStore
) -> None:
    """A's breached follow-up goes to its manager, who left: each cycle reports it and the
    state store lists it among the failed follow-ups; once A is decided (level1 met late)
    the follow-up is no longer needed: it leaves the list, and the cycles are clean."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock, crm_class=LeaverCrm)
    a = "500000000000001AAA"
    key = f"crmsync:{a}:level1-resolution:0:breached"
    insert(crm, clock, "Case", [case(a)])
    first = cycle.run()
    assert [(e.kind, e.record_id) for e in first.errors] == [("task", key)]
    assert [(e.key, e.error) for e in state.failed_follow_ups("default")] == [
        (key, "INACTIVE_OWNER_OR_USER: operation performed with inactive user [005000000000MGRAAA]")
    ]
    clock.advance(minutes=10)
    assert [(e.kind, e.record_id) for e in cycle.run().errors] == [("task", key)]
    assert crm.update_records("Case", [(a, {"Decision_At__c": "2026-03-04T12:05:00.000+0000"})])[
        0
    ].ok
    clock.advance(minutes=10)
    decided = cycle.run()
    assert (decided.status, decided.errors, decided.tasks_created) == ("ok", [], 0)
    assert state.failed_follow_ups("default") == []
    assert ledger_of(state, a)[key].status == "completed"
    clock.advance(minutes=10)
    assert cycle.run().errors == []
    assert tasks(crm) == {}


def ledger_of(state: StateStore, complaint_id: str) -> dict[str, Any]:
    return {e.key: e for e in state.ledger_for_complaints("default", [complaint_id])}


def test_a_cycle_that_lost_its_profile_stops_before_its_next_write(
    tmp_path: Path, state: StateStore
) -> None:
    """The guard says the profile is lost when the page's first write call comes: the
    cycle raises ProfileLostError with no task, no flag and no watermark written; a later
    cycle that holds the profile does the whole work once."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    a = "500000000000001AAA"
    insert(crm, clock, "Case", [case(a)])
    asked: list[int] = []

    def lost_at_the_first_write() -> None:
        asked.append(1)
        if len(asked) > 1:
            raise ProfileLostError("default")

    cycle.guard = lost_at_the_first_write
    with pytest.raises(ProfileLostError, match="lost the lock of profile 'default'"):
        cycle.run()
    assert (tasks(crm), flags(crm, a)) == ({}, (None, None, None))
    assert state.get_watermark("default", "complaints") is None
    cycle.guard = lambda: None
    again = cycle.run()
    assert (again.tasks_created, again.flags_written, again.errors) == (1, 1, [])


def test_dry_run_plans_but_writes_nothing(tmp_path: Path, state: StateStore) -> None:
    """--dry-run lists the flag write and the task, and leaves CRM and state untouched."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    report = cycle.run(dry_run=True)
    assert sorted((p.kind, p.target) for p in report.planned) == [
        ("flags", "500000000000001AAA"),
        ("task", "crmsync:500000000000001AAA:level1-resolution:0:breached"),
    ]
    assert flags(crm, "500000000000001AAA") == (None, None, None)
    assert tasks(crm) == {}
    assert state.get_watermark("default", "complaints") is None
    assert count_complaints(state, "default") == 0


def test_a_lost_ledger_never_duplicates_a_task(tmp_path: Path, state: StateStore) -> None:
    """Even if the ledger entry was never written, the key upsert keeps one task per key."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    cycle.run()
    fresh = MemoryStateStore()
    fresh.migrate()
    again = SyncCycle(crm=crm, state=fresh, charter=ASTON, mapping=MAPPING)
    again.run()
    assert len(tasks(crm)) == 1


def test_now_is_the_evaluation_instant_and_the_pull_uses_the_crm_clock(
    tmp_path: Path, state: StateStore
) -> None:
    """--now replays an instant; the watermark is the CRM's own time."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(crm, clock, "Case", [case("500000000000001AAA")])
    report = cycle.run(now=ts("2026-03-02T12:00:00+00:00"))
    assert report.now == "2026-03-02T12:00:00Z"
    assert flags(crm, "500000000000001AAA")[0] == "on_track"
    assert state.get_watermark("default", "complaints") == clock.now


def test_a_pruned_closed_complaint_read_again_is_evaluated_afresh_without_duplicates(
    tmp_path: Path, state: StateStore
) -> None:
    """Retention forgets a closed complaint with its completed follow-up; when the record is
    read again (edited on the CRM long after), it is a new complaint to the worker: its flags
    are already right (no write), its completed task is neither recreated nor duplicated,
    and it is stored again with its closing instant."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    cid = "500000000000001AAA"
    key = f"crmsync:{cid}:level1-resolution:0:breached"
    insert(crm, clock, "Case", [case(cid)])
    cycle.run()
    assert list(tasks(crm)) == [key]
    closed_at = "2026-03-04T12:20:00.000+0000"
    crm.update_records(
        "Case",
        [(cid, {"Decision_At__c": "2026-03-04T12:15:00.000+0000", "ClosedDate": closed_at})],
    )
    clock.advance(minutes=30)
    assert cycle.run().tasks_completed == 1
    stored = state.get_complaints("default", [cid])[cid]
    assert (stored.closed, stored.closed_at) == (True, ts(closed_at))
    before = flags(crm, cid)

    keep = Retention(keep_closed=180 * 86400, keep_runs=None)
    assert prune_state(state, "default", keep, ts(closed_at) + 180 * 86400).complaints == 0
    counts = prune_state(state, "default", keep, ts(closed_at) + 180 * 86400 + 1)
    assert (counts.complaints, counts.ledger_entries) == (1, 1)
    assert state.get_complaints("default", [cid]) == {}
    assert state.ledger_for_complaints("default", [cid]) == []

    clock.advance(days=200)
    crm.update_records("Case", [(cid, {"Description": "a note added after closing"})])
    clock.advance(minutes=1)
    report = cycle.run()
    assert (report.records_read, report.complaints_evaluated) == (1, 1)
    assert (report.flags_written, report.tasks_created, report.tasks_completed) == (0, 0, 0)
    assert flags(crm, cid) == before
    assert list(tasks(crm)) == [key]
    assert tasks(crm)[key]["Status"] == "Completed"
    assert state.get_complaints("default", [cid])[cid].closed_at == ts(closed_at)


def test_each_stored_complaint_keeps_its_clock_states_for_the_population(
    tmp_path: Path, state: StateStore
) -> None:
    """After a cycle the store knows every open complaint's clock states and written
    status, so the population can be counted without evaluating anything again."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(
        crm,
        clock,
        "Case",
        [
            case("500000000000001AAA"),
            case("500000000000002AAA", Decision_At__c="2026-03-02T15:00:00.000+0000"),
        ],
    )
    cycle.run()
    stored = state.get_complaints("default", ["500000000000001AAA", "500000000000002AAA"])
    not_started = {
        "callback": "pending",
        "level2-contact": "pending",
        "level2-resolution": "pending",
        "level3-resolution": "pending",
    }
    assert stored["500000000000001AAA"].clock_states == {
        "email-reply": "on_track",
        "level1-resolution": "breached",
        **not_started,
    }
    assert stored["500000000000002AAA"].clock_states == {
        "email-reply": "met",
        "level1-resolution": "met",
        **not_started,
    }
    population = state.population("default")
    assert population.by_status == {"breached": 1, "met": 1}
    assert population.by_clock[("level1-resolution", "breached")] == 1


def test_an_unmapped_picklist_value_is_a_record_error_and_writes_no_flag(
    tmp_path: Path, state: StateStore
) -> None:
    """Origin 'E-mail' (not in the picklist map): that record is an error naming its field and
    gets no flag and no follow-up; the other complaint is flagged as usual."""
    clock = ManualClock("2026-03-04T12:00:00+00:00")
    crm, cycle = setup(tmp_path, state, clock)
    insert(
        crm,
        clock,
        "Case",
        [case("500000000000001AAA", Origin="E-mail"), case("500000000000002AAA")],
    )
    report = cycle.run()
    assert [(e.kind, e.record_id, e.field) for e in report.errors] == [
        ("mapping", "500000000000001AAA", "Origin")
    ]
    assert "picklist value 'E-mail' is not mapped" in report.errors[0].message
    assert flags(crm, "500000000000001AAA") == (None, None, None)
    assert flags(crm, "500000000000002AAA")[0] == "breached"
    assert all(":500000000000001AAA:" not in key for key in tasks(crm))
    assert (report.complaints_evaluated, report.flags_written) == (1, 1)
