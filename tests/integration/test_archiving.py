"""The archiving service end to end in one process: local CRM, SQLite state, local archive.

Aston charter (Europe/London, GMT until 29 March 2026), the bundled mapping, and
``archive_after`` = 30 days. The CRM's clock is moved by the tests; each run's ``now`` is
the CRM's time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmsync.adapters.archive.cipher import AesGcmCipher
from crmsync.adapters.archive.local import LocalArchiveStore, entry_path
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.errors import ArchiveError, ProfileLostError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.archive_reading import ArchiveReader, verify_archive
from crmsync.service.archiving import ArchivingService, pending_profile
from fakes.clock import ManualClock
from fakes.failing_crm import FailingCrm
from state_views import count_complaints

ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILE = ROOT / "mappings" / "salesforce.yaml"
CHARTER_FILE = ROOT / "mappings" / "charters" / "aston.yaml"
MAPPING = load_mapping(MAPPING_FILE)
ASTON = load_charter(CHARTER_FILE)
DAY = 86400
AFTER = 30 * DAY


@dataclass
class World:
    crm: FailingCrm
    state: SqliteStateStore
    archive: LocalArchiveStore
    clock: ManualClock
    cipher: AesGcmCipher | None = None

    def service(self, **kw: Any) -> ArchivingService:
        return ArchivingService(
            crm=self.crm,
            state=self.state,
            witness=self.state,
            archive=self.archive,
            charter=ASTON,
            mapping=MAPPING,
            archive_after=AFTER,
            cipher=self.cipher,
            **kw,
        )

    def case(self, **fields: Any) -> str:
        (result,) = self.crm.insert_records("Case", [{"Type": "Complaint", **fields}])
        assert result.ok, result
        return str(result.id)

    def update(self, case_id: str, **fields: Any) -> None:
        (result,) = self.crm.update_records("Case", [(case_id, fields)])
        assert result.ok, result

    def fields(self, case_id: str) -> dict[str, Any]:
        (record,) = [r for r in self.crm.export_records("Case") if r.id == case_id]
        return dict(record.fields)

    def run_at(self, when: str) -> Any:
        self.clock.set(when)
        return self.service().run()


@pytest.fixture
def world(tmp_path: Path) -> World:
    clock = ManualClock("2026-03-02T09:00:00+00:00")
    crm = FailingCrm(tmp_path / "crm.sqlite3", clock=clock)
    crm.fail_ids = set()
    state = SqliteStateStore(tmp_path / "state.sqlite3")
    state.migrate()
    return World(crm, state, LocalArchiveStore(tmp_path / "archive"), clock)


# A complaint by e-mail received Mon 2 March 10:00 GMT, decided Tue 3 March 10:00, closed
# Thu 5 March 10:00; one customer update on Wed 4 March and one follow-up task.
RECEIVED = "2026-03-02T10:00:00.000+0000"
DECIDED = "2026-03-03T10:00:00.000+0000"
CLOSED = "2026-03-05T10:00:00.000+0000"


def closed_case(world: World) -> str:
    case_id = world.case(
        CreatedDate=RECEIVED,
        Decision_At__c=DECIDED,
        ClosedDate=CLOSED,
        Origin="Email",
        SuppliedName="Ann Example",
        Description="Late invoice",
    )
    world.crm.insert_records(
        "Task",
        [
            {
                "WhatId": case_id,
                "Type": "Customer Update",
                "CompletedDateTime": "2026-03-04T09:00:00.000+0000",
                "Subject": "Called the customer",
            },
            {
                "WhatId": case_id,
                "CrmSync_Key__c": f"crmsync:{case_id}:email-reply:0:at_risk",
                "Subject": "Reply due",
                "Status": "Completed",
            },
            {"WhatId": case_id, "Type": "Other", "Subject": "not documentation of the charter"},
        ],
    )
    return case_id


def test_a_case_closed_30_days_ago_is_archived_once_and_then_marked(world: World) -> None:
    """Closed 5 March 10:00 + 30 days = 4 April 10:00: archived at 4 April 10:01, marked,
    and a later run appends nothing more."""
    case_id = closed_case(world)
    early = world.run_at("2026-04-04T09:59:00+00:00")
    assert early.archived == 0 and world.archive.head("default").seq == 0
    report = world.run_at("2026-04-04T10:01:00+00:00")
    assert (report.archived, report.marked, report.refs) == (1, 1, ["default/1"])
    fields = world.fields(case_id)
    assert fields["Archived_At__c"] == "2026-04-04T10:01:00.000+0000"
    assert fields["Archive_Ref__c"] == "default/1"
    again = world.run_at("2026-04-05T10:00:00+00:00")
    assert (again.archived, again.recovered, again.due) == (0, 0, 0)
    assert world.archive.head("default").seq == 1
    assert count_complaints(world.state, pending_profile("default")) == 0
    assert verify_archive(world.archive, "default", None).ok


def test_an_archive_run_is_one_run_started_then_finished(world: World) -> None:
    """An archive run logs ``archive_started`` and ``archive_finished`` (status, counts,
    CRM calls, duration) under one run id, the run skeleton's shape."""
    closed_case(world)
    with capture_logs() as logs:
        report = world.run_at("2026-04-04T10:01:00+00:00")
    started, finished = [e for e in logs if e["event"] in ("archive_started", "archive_finished")]
    assert (started["event"], started["now"]) == ("archive_started", "2026-04-04T10:01:00Z")
    assert (finished["status"], finished["archived"], finished["marked"]) == ("ok", 1, 1)
    assert finished["crm_calls"] == report.crm_calls > 0
    assert finished["duration_s"] >= 0


def test_an_entry_holds_the_record_its_tasks_its_clocks_and_the_hashes(world: World) -> None:
    """The body has the mapped fields as read, follow-ups and customer updates (not other
    tasks), each clock's final state, and the charter's and mapping's file hashes."""
    case_id = closed_case(world)
    world.run_at("2026-04-10T12:00:00+00:00")
    header, body = ArchiveReader(world.archive, profile="default", actor="t").read("default/1")
    assert (header.complaint_id, header.version, header.charter) == (
        case_id,
        "2026-03-05T10:00:00Z",
        "aston",
    )
    assert body["record"]["fields"]["SuppliedName"] == "Ann Example"
    assert body["record"]["fields"]["ClosedDate"] == CLOSED
    assert set(MAPPING.complaint_fields) <= set(body["record"]["fields"])
    assert [t["fields"]["Subject"] for t in body["follow_ups"]] == ["Reply due"]
    assert [t["fields"]["CompletedDateTime"] for t in body["related"]["customer_update"]] == [
        "2026-03-04T09:00:00.000+0000"
    ]
    assert body["canonical"]["events"]["customer_update"] == ["2026-03-04T09:00:00Z"]
    # Aston, GMT: email-reply counts 2 business days from Mon 10:00 -> Wed 4 March 17:00 and
    # stopped at the decision (Tue 10:00): met. level1-resolution: 1 business day -> Tue
    # 17:00, stopped Tue 10:00: met. The other clocks never started: pending.
    states = {c["clock"]: (c["state"], c["due_at"]) for c in body["clocks"]["at_close"]}
    assert states == {
        "email-reply": ("met", "2026-03-04T17:00:00Z"),
        "callback": ("pending", None),
        "level1-resolution": ("met", "2026-03-03T17:00:00Z"),
        "level2-contact": ("pending", None),
        "level2-resolution": ("pending", None),
        "level3-resolution": ("pending", None),
    }
    assert body["clocks"]["at_archive"] == body["clocks"]["at_close"]
    assert body["charter"]["content_hash"] == hashlib.sha256(CHARTER_FILE.read_bytes()).hexdigest()
    assert body["mapping"]["content_hash"] == hashlib.sha256(MAPPING_FILE.read_bytes()).hexdigest()
    assert (body["archived_at"], body["closed_at"]) == (
        "2026-04-10T12:00:00Z",
        "2026-03-05T10:00:00Z",
    )
    assert body["run_id"]


def test_a_case_falls_due_without_being_touched_again(world: World) -> None:
    """Closed 20 March, seen by a run on 21 March (not due), archived by a run on 20 April
    although the record did not change in between (the queue remembers it)."""
    case_id = world.case(CreatedDate=RECEIVED, ClosedDate="2026-03-20T10:00:00.000+0000")
    first = world.run_at("2026-03-21T02:00:00+00:00")
    assert (first.queued, first.archived) == (1, 0)
    # 20 March 10:00 + 30 days = 19 April 10:00
    later = world.run_at("2026-04-20T02:00:00+00:00")
    assert later.records_read >= 1
    assert (later.due, later.archived) == (1, 1)
    assert world.fields(case_id)["Archive_Ref__c"] == "default/1"


def test_a_run_reads_what_changed_and_what_fell_due_not_the_whole_table(world: World) -> None:
    """After 40 cases are archived (and the echo of their marks read once by the next run),
    a run reads the one newly closed case and nothing of the 40 others."""
    for _ in range(40):
        world.case(CreatedDate=RECEIVED, ClosedDate=CLOSED)
    world.run_at("2026-04-10T02:00:00+00:00")
    assert world.archive.head("default").seq == 40
    echo = world.run_at("2026-04-11T02:00:00+00:00")
    # the marks were written after the first run's watermark: read once more, queued never
    assert (echo.records_read, echo.queued) == (40, 0)
    world.clock.set("2026-04-11T12:00:00+00:00")
    world.case(CreatedDate=RECEIVED, ClosedDate="2026-04-11T11:00:00.000+0000")
    report = world.run_at("2026-04-12T02:00:00+00:00")
    assert (report.records_read, report.queued, report.due, report.archived) == (1, 1, 0, 0)


def test_a_case_reopened_and_closed_again_is_archived_again(world: World) -> None:
    """Archived on 10 April, reopened 12 April, closed again 15 April: a second entry on
    16 May (15 April + 30 days), both in one intact chain, the record pointing at it."""
    case_id = closed_case(world)
    world.run_at("2026-04-10T02:00:00+00:00")
    world.clock.set("2026-04-12T09:00:00+00:00")
    world.update(case_id, ClosedDate=None, Status="Reopened")
    world.run_at("2026-04-13T02:00:00+00:00")
    world.clock.set("2026-04-15T09:00:00+00:00")
    world.update(case_id, ClosedDate="2026-04-15T09:00:00.000+0000", Status="Closed")
    not_yet = world.run_at("2026-05-15T08:00:00+00:00")
    assert not_yet.archived == 0
    report = world.run_at("2026-05-16T02:00:00+00:00")
    assert (report.archived, report.refs) == (1, ["default/2"])
    versions = [h.version for h in world.archive.search("default", complaint_id=case_id)]
    assert versions == ["2026-03-05T10:00:00Z", "2026-04-15T09:00:00Z"]
    fields = world.fields(case_id)
    assert (fields["Archive_Ref__c"], fields["Archived_At__c"]) == (
        "default/2",
        "2026-05-16T02:00:00.000+0000",
    )
    assert verify_archive(world.archive, "default", None).ok


def test_a_case_closed_again_at_an_earlier_instant_is_archived_again_once(world: World) -> None:
    """Archived on 10 April (closed 5 March 10:00), reopened 12 April, closed again with a
    corrected, earlier closing instant (4 March 12:00) and a changed solution: the 13 April
    run archives the new version (due 3 April 12:00) although the record's mark is dated
    after it, and the next run appends nothing more."""
    case_id = closed_case(world)
    first = world.run_at("2026-04-10T02:00:00+00:00")
    assert first.refs == ["default/1"]
    world.clock.set("2026-04-12T09:00:00+00:00")
    world.update(case_id, ClosedDate=None, Status="Reopened")
    world.clock.set("2026-04-12T10:00:00+00:00")
    world.update(
        case_id,
        ClosedDate="2026-03-04T12:00:00.000+0000",
        Status="Closed",
        Solution__c="Refund of the late fee",
    )
    report = world.run_at("2026-04-13T02:00:00+00:00")
    assert (report.queued, report.archived, report.refs) == (1, 1, ["default/2"])
    _header, body = ArchiveReader(world.archive, profile="default", actor="t").read("default/2")
    assert body["record"]["fields"]["Solution__c"] == "Refund of the late fee"
    versions = [h.version for h in world.archive.search("default", complaint_id=case_id)]
    assert versions == ["2026-03-05T10:00:00Z", "2026-03-04T12:00:00Z"]
    assert world.fields(case_id)["Archive_Ref__c"] == "default/2"
    again = world.run_at("2026-04-14T02:00:00+00:00")
    assert (again.queued, again.archived, again.recovered) == (0, 0, 0)
    assert world.archive.head("default").seq == 2
    assert verify_archive(world.archive, "default", None).ok


def test_a_run_that_lost_its_profile_stops_before_appending_or_marking(world: World) -> None:
    """The profile lock is lost after the queue is written: the run stops at its next
    write step (ProfileLostError), nothing is appended or marked; the next run does it."""
    case_id = closed_case(world)
    asked: list[str] = []

    def lost_after_queueing() -> None:
        asked.append("guard")
        if len(asked) > 1:
            raise ProfileLostError("default")

    world.clock.set("2026-04-10T02:00:00+00:00")
    with pytest.raises(ProfileLostError):
        world.service(guard=lost_after_queueing).run()
    assert world.archive.head("default").seq == 0
    assert "Archive_Ref__c" not in world.fields(case_id)
    report = world.run_at("2026-04-10T03:00:00+00:00")
    assert (report.archived, report.marked) == (1, 1)


def test_a_case_reopened_before_it_fell_due_is_not_archived(world: World) -> None:
    """Closed 5 March, reopened 6 March: nothing archived on 10 April, and the queue is empty."""
    case_id = closed_case(world)
    world.run_at("2026-03-05T12:00:00+00:00")
    world.clock.set("2026-03-06T09:00:00+00:00")
    world.update(case_id, ClosedDate=None)
    report = world.run_at("2026-04-10T02:00:00+00:00")
    assert (report.archived, report.dropped) == (0, 1)
    assert count_complaints(world.state, pending_profile("default")) == 0


def test_a_record_that_cannot_be_marked_keeps_its_single_entry(world: World) -> None:
    """A failed mark is reported and retried next run, which marks without a second entry."""
    case_id = closed_case(world)
    world.crm.fail_ids = {case_id}
    report = world.run_at("2026-04-10T02:00:00+00:00")
    assert (report.archived, report.marked, report.status) == (1, 0, "partial")
    assert report.errors[0].record_id == case_id
    assert "Archive_Ref__c" not in world.fields(case_id)
    world.crm.fail_ids = set()
    again = world.run_at("2026-04-11T02:00:00+00:00")
    assert (again.archived, again.recovered, again.marked) == (0, 1, 1)
    assert world.archive.head("default").seq == 1
    assert world.fields(case_id)["Archive_Ref__c"] == "default/1"


class StopHereError(Exception):
    """Raised by the test hook: the run dies there (the real SIGKILL test is in
    test_archive_crash.py)."""


@pytest.mark.parametrize("step", ["queued", "watermark", "appended", "verified", "marked"])
def test_a_run_that_dies_at_any_step_is_completed_by_the_next(world: World, step: str) -> None:
    """Dying after a step and running again gives one entry per case and every case marked."""
    cases = [closed_case(world) for _ in range(3)]
    world.clock.set("2026-04-10T02:00:00+00:00")

    def hook(name: str) -> None:
        if name == step:
            raise StopHereError(name)

    with pytest.raises(StopHereError):
        world.service(hook=hook).run()
    world.service().run()
    for case_id in cases:
        assert len(world.archive.search("default", complaint_id=case_id)) == 1
        assert world.fields(case_id)["Archive_Ref__c"].startswith("default/")
    assert world.archive.head("default").seq == 3


def test_sealed_entries_need_the_key_and_verify_with_it(world: World) -> None:
    """With a key nothing of the complaint is on disk in clear; reading without it fails."""
    world.cipher = AesGcmCipher(os.urandom(32))
    closed_case(world)
    world.run_at("2026-04-10T02:00:00+00:00")
    assert b"Ann Example" not in entry_path(world.archive.root, "default", 1).read_bytes()
    assert verify_archive(world.archive, "default", world.cipher).ok
    unkeyed = verify_archive(world.archive, "default", None)
    assert unkeyed.ok and unkeyed.unchecked_bodies == 1
    with pytest.raises(ArchiveError, match="CRMSYNC_ARCHIVE_KEY"):
        ArchiveReader(world.archive, profile="default", actor="t").read("default/1")
    _header, body = ArchiveReader(
        world.archive, profile="default", actor="t", cipher=world.cipher
    ).read("default/1")
    assert body["record"]["fields"]["SuppliedName"] == "Ann Example"


def test_every_read_is_logged_with_who_read_it(world: World) -> None:
    """show logs archive_read with the actor and the entry; an export logs one line with
    every entry it read; search logs its query."""
    case_id = closed_case(world)
    world.run_at("2026-04-10T02:00:00+00:00")
    reader = ArchiveReader(world.archive, profile="default", actor="mary.staff")
    with capture_logs() as logs:
        reader.read("default/1")
        list(reader.export())
        reader.search(complaint_id=case_id)
    reads = [e for e in logs if e["event"] == "archive_read"]
    assert [(e["actor"], e["ref"], e["purpose"]) for e in reads] == [
        ("mary.staff", "default/1", "show"),
    ]
    exports = [e for e in logs if e["event"] == "archive_exported"]
    assert [(e["actor"], e["refs"], e["entries"], e["complete"]) for e in exports] == [
        ("mary.staff", ["default/1"], 1, True)
    ]
    searches = [e for e in logs if e["event"] == "archive_search"]
    assert [(e["actor"], e["complaint_id"], e["results"]) for e in searches] == [
        ("mary.staff", case_id, 1)
    ]


def test_a_tampered_entry_is_refused_when_read(world: World) -> None:
    """A reader does not show an entry whose content no longer matches its hash."""
    closed_case(world)
    world.run_at("2026-04-10T02:00:00+00:00")
    path = entry_path(world.archive.root, "default", 1)
    path.write_text(path.read_text(encoding="utf-8").replace("Ann Example", "Bob Example"))
    with pytest.raises(ArchiveError, match="content altered"):
        ArchiveReader(world.archive, profile="default", actor="t").read("default/1")


# ----------------------------------------------------------------------------- witness


def cut_last_entry(world: World) -> int:
    """What someone able to rewrite the archive's files does: the last entry file and its
    index line go, so the head, read from the index, moves back with them."""
    head = world.archive.head("default")
    entry_path(world.archive.root, "default", head.seq).unlink()
    index = world.archive.root / "default" / "index.jsonl"
    lines = index.read_text(encoding="utf-8").splitlines(keepends=True)
    index.write_text("".join(lines[:-1]), encoding="utf-8")
    world.archive = LocalArchiveStore(world.archive.root)  # no cached index
    return head.seq


def two_archived(world: World) -> None:
    closed_case(world)
    world.case(CreatedDate=RECEIVED, ClosedDate="2026-03-06T10:00:00.000+0000", Origin="Web")
    report = world.run_at("2026-04-10T02:00:00+00:00")
    assert report.archived == 2


def test_each_run_leaves_the_head_it_reached_with_the_state_store(world: World) -> None:
    """The witness is the archive's head after the run, kept in the state store."""
    two_archived(world)
    assert world.state.get_witness("default") == world.archive.head("default")


def test_an_end_cut_with_its_head_is_found_by_verify_and_stops_the_next_run(
    world: World,
) -> None:
    """The chain alone still looks intact after the cut; held against the witness it is
    broken, and the next run appends nothing onto it."""
    two_archived(world)
    removed = cut_last_entry(world)
    assert verify_archive(world.archive, "default", None).ok  # what the archive alone says
    witness = world.state.get_witness("default")
    reader = ArchiveReader(world.archive, profile="default", actor="t", witness=witness)
    report = reader.verify()
    assert not report.ok
    assert [str(f) for f in report.bad] == [
        f"chain: entry {removed} was witnessed outside the archive but the chain ends at "
        f"{removed - 1}: entries {removed}..{removed} were removed together with the head"
    ]
    world.case(CreatedDate=RECEIVED, ClosedDate="2026-03-07T10:00:00.000+0000", Origin="Web")
    with pytest.raises(ArchiveError, match="was cut or rewritten: it ends at entry 1"):
        world.run_at("2026-04-11T02:00:00+00:00")
    assert world.archive.head("default").seq == removed - 1


def test_an_end_rewritten_after_a_cut_stops_the_next_run(world: World) -> None:
    """Cut the last entry, then let an uncontrolled writer append another entry in its
    place: the chain links up and looks intact, but it is not the entry witnessed."""
    two_archived(world)
    removed = cut_last_entry(world)
    service = world.service()  # appends without the run's check, as any other writer could
    before = world.archive.head("default")
    world.clock.set("2026-04-12T02:00:00+00:00")
    body = {**world.archive.get(f"default/{removed - 1}").body, "complaint_id": "forged"}
    header, _appended = service._append(body)
    assert (header.seq, before.seq) == (removed, removed - 1)
    witness = world.state.get_witness("default")
    report = verify_archive(world.archive, "default", None, witness)
    assert [f.problem.split(" (")[0] for f in report.bad] == [
        f"differs from the entry {removed} witnessed outside the archive"
    ]
    with pytest.raises(ArchiveError, match=f"entry default/{removed} is not the one witnessed"):
        world.run_at("2026-04-13T02:00:00+00:00")


class StaleSearch(LocalArchiveStore):
    """The local archive, except that the first lookup of each complaint version misses
    (another writer appended it after this one looked): a fake, no mock."""

    seen: set[tuple[str | None, str | None]]

    def search(self, profile: str, **criteria: Any) -> list[Any]:
        key = (criteria.get("complaint_id"), criteria.get("version"))
        if criteria.get("version") is not None and key not in self.seen:
            self.seen.add(key)
            return []
        return super().search(profile, **criteria)


def test_a_writer_that_missed_an_entry_uses_it_instead_of_a_second_one(
    world: World, tmp_path: Path
) -> None:
    """A second writer (its own state, so it queues the case again) whose lookup misses the
    entry another wrote: the store refuses the duplicate and the service takes the entry
    already there; the archive keeps one entry and verifies."""
    case_id = closed_case(world)
    first = world.run_at("2026-04-10T02:00:00+00:00")
    assert (first.archived, first.marked) == (1, 1)
    world.update(case_id, Archived_At__c=None, Archive_Ref__c=None)  # as if never marked
    world.clock.set("2026-04-10T02:05:00+00:00")
    other_state = SqliteStateStore(tmp_path / "other-state.sqlite3")
    other_state.migrate()
    stale = StaleSearch(world.archive.root)
    stale.seen = set()
    second = ArchivingService(
        crm=world.crm,
        state=other_state,
        witness=other_state,
        archive=stale,
        charter=ASTON,
        mapping=MAPPING,
        archive_after=AFTER,
    ).run()
    assert (second.archived, second.recovered, second.marked) == (0, 1, 1)
    assert second.refs == ["default/1"]
    assert [h.seq for h in world.archive.search("default", complaint_id=case_id)] == [1]
    assert verify_archive(world.archive, "default", None).ok
