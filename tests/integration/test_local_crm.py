"""What the local CRM promises beyond the CrmPort contract: Salesforce-shaped ids and stamps,
field validation by the schema data file, import/export tools, several processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.adapters.crm import local as local_crm
from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.salesforce_values import salesforce_id
from crmsync.errors import CrmError, CrmTransientError
from fakes.clock import ManualClock

NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
FAR = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def crm(tmp_path: Path, clock: ManualClock) -> Iterator[LocalCrm]:
    with LocalCrm(tmp_path / "crm.sqlite3", clock=clock) as opened:
        yield opened


def fields_of(crm: LocalCrm, object: str, record_id: str) -> dict[str, object]:
    [record] = [r for r in crm.export_records(object) if r.id == record_id]
    return dict(record.fields)


def test_salesforce_id_checksum() -> None:
    """The 18-character id adds one letter per 5 characters encoding their upper-case ones."""
    # "001A0" has an upper-case letter at position 3 -> 0b01000 = 8 -> 'I';
    # "00000" none -> 'A'; "6Vm9r" one at position 1 -> 0b00010 = 2 -> 'C'
    assert salesforce_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"


def test_made_ids_carry_the_key_prefix_and_checksum(crm: LocalCrm) -> None:
    """Made ids are 18 characters: the object's key prefix, then a valid checksum suffix."""
    made = {
        object: crm.insert_records(object, [{}])[0].id
        for object in ("Case", "Task", "User", "Complaint_Note__c")
    }
    assert {o: str(i)[:3] for o, i in made.items() if o != "Complaint_Note__c"} == {
        "Case": "500",
        "Task": "00T",
        "User": "005",
    }
    for made_id in made.values():
        assert made_id is not None
        assert len(made_id) == 18
        assert salesforce_id(made_id[:15]) == made_id
    custom_prefix = str(made["Complaint_Note__c"])[:3]
    assert custom_prefix not in {"500", "00T", "005"}
    # the prefix of an unlisted object is stable: the same in another database
    with LocalCrm(crm.path.with_name("other.sqlite3")) as other:
        again = other.insert_records("Complaint_Note__c", [{}])[0].id
    assert str(again)[:3] == custom_prefix


def test_system_fields_in_salesforce_format(crm: LocalCrm, clock: ManualClock) -> None:
    """An upsert sets CreatedDate, LastModifiedDate and SystemModstamp from the clock."""
    clock.now = datetime(2026, 3, 2, 9, 15, 30, 123456, tzinfo=UTC)
    [result] = crm.upsert_records("Task", "CrmSync_Key__c", [{"CrmSync_Key__c": "k"}])
    stored = fields_of(crm, "Task", str(result.id))
    assert stored == {
        "Id": result.id,
        "CreatedDate": "2026-03-02T09:15:30.123+0000",
        "LastModifiedDate": "2026-03-02T09:15:30.123+0000",
        "SystemModstamp": "2026-03-02T09:15:30.123+0000",
        "CrmSync_Key__c": "k",
    }


def test_modstamp_strictly_increases_when_the_clock_stands_still(
    crm: LocalCrm, clock: ManualClock
) -> None:
    """Each write gets a later stamp than the previous one, 1 ms later if the clock has not
    moved (or went back); records of one write share its stamp."""
    a, b = (str(r.id) for r in crm.insert_records("Case", [{}, {}]))
    assert fields_of(crm, "Case", a)["SystemModstamp"] == "2026-03-02T09:15:00.000+0000"
    assert fields_of(crm, "Case", b)["SystemModstamp"] == "2026-03-02T09:15:00.000+0000"
    crm.update_records("Case", [(a, {"Subject": "x"}), (b, {"Subject": "x"})])
    assert fields_of(crm, "Case", a)["SystemModstamp"] == "2026-03-02T09:15:00.001+0000"
    assert fields_of(crm, "Case", b)["SystemModstamp"] == "2026-03-02T09:15:00.001+0000"
    clock.now = NOW - timedelta(hours=1)
    crm.update_records("Case", [(a, {"Subject": "y"})])
    assert fields_of(crm, "Case", a)["SystemModstamp"] == "2026-03-02T09:15:00.002+0000"
    clock.now = NOW + timedelta(seconds=1)
    crm.update_records("Case", [(a, {"Subject": "z"})])
    assert fields_of(crm, "Case", a)["SystemModstamp"] == "2026-03-02T09:15:01.000+0000"


def test_values_are_checked_and_normalised_by_type(crm: LocalCrm) -> None:
    """Datetimes become Salesforce text, empty text null; wrong types and read-only fields
    fail the record naming the field."""
    [case_id] = [str(r.id) for r in crm.insert_records("Case", [{"Subject": "s"}])]
    results = crm.update_records(
        "Case",
        [
            (case_id, {"Charter_Next_Due__c": "2026-03-05T10:00:00+01:00", "Subject": ""}),
            (case_id, {"Complaint_Level__c": "two"}),
            (case_id, {"Expected_Decision_Date__c": "2026-02-30"}),
            (case_id, {"Charter_Checked_At__c": "2026-03-05T10:00:00"}),
            (case_id, {"SystemModstamp": "2026-03-05T10:00:00Z"}),
            (case_id, {"Complaint_Level__c": float("nan")}),
        ],
    )
    assert [(r.ok, r.error_code, r.fields) for r in results] == [
        (True, None, ()),
        (False, "INVALID_TYPE_ON_FIELD_IN_RECORD", ("Complaint_Level__c",)),
        (False, "INVALID_TYPE_ON_FIELD_IN_RECORD", ("Expected_Decision_Date__c",)),
        (False, "INVALID_TYPE_ON_FIELD_IN_RECORD", ("Charter_Checked_At__c",)),  # no offset
        (False, "INVALID_FIELD_FOR_INSERT_UPDATE", ("SystemModstamp",)),
        (False, "INVALID_FIELD", ("Complaint_Level__c",)),
    ]
    stored = fields_of(crm, "Case", case_id)
    assert stored["Charter_Next_Due__c"] == "2026-03-05T09:00:00.000+0000"
    assert "Subject" not in stored  # set to null
    assert "Complaint_Level__c" not in stored


def test_objects_without_schema_take_any_json_field(crm: LocalCrm) -> None:
    """An object without a declared schema stores any JSON value and describes what it holds."""
    [user] = crm.insert_records("User", [{"Name": "Ann", "IsActive": True, "Tags": ["a"]}])
    assert user.ok
    [update] = crm.update_records("User", [(str(user.id), {"Nickname": "an"})])
    assert update.ok
    described = crm.describe("User")
    assert {n: described[n].type for n in ("Id", "Name", "IsActive", "Nickname")} == {
        "Id": "id",
        "Name": "string",
        "IsActive": "boolean",
        "Nickname": "string",
    }
    with pytest.raises(CrmError, match="Nothing__c"):
        crm.describe("Nothing__c")


def test_reading_an_undeclared_field_of_a_declared_object_fails(crm: LocalCrm) -> None:
    """Asking Case for a field it does not declare is a CrmError naming the field."""
    with pytest.raises(CrmError, match="Subjekt"):
        crm.changed_records("Case", ["Subjekt"], since=None, until=FAR)
    with pytest.raises(CrmError, match="Typ"):
        crm.records_by_id("Case", [], ["Typ"])


def test_upsert_edge_cases(crm: LocalCrm) -> None:
    """Upserts without a key, with a key given twice, or on a non-external-id field fail."""
    key = "CrmSync_Key__c"
    results = crm.upsert_records(
        "Task", key, [{"Subject": "no key"}, {key: "twice"}, {key: "twice"}, {key: "once"}]
    )
    assert [(r.ref, r.ok, r.error_code) for r in results] == [
        ("", False, "REQUIRED_FIELD_MISSING"),
        ("twice", False, "DUPLICATE_VALUE"),
        ("twice", False, "DUPLICATE_VALUE"),
        ("once", True, None),
    ]
    with pytest.raises(CrmError, match="Subject"):
        crm.upsert_records("Task", "Subject", [{"Subject": "x"}])


def test_unique_external_id_is_enforced_on_every_write(crm: LocalCrm) -> None:
    """A unique field's value cannot be taken twice, by insert or by update."""
    key = "CrmSync_Key__c"
    first, second = crm.insert_records("Task", [{key: "a"}, {key: "a"}])
    assert first.ok
    assert (second.ok, second.error_code, second.fields) == (False, "DUPLICATE_VALUE", (key,))
    [other] = crm.insert_records("Task", [{key: "b"}])
    [clash] = crm.update_records("Task", [(str(other.id), {key: "a"})])
    assert (clash.ok, clash.error_code) == (False, "DUPLICATE_VALUE")


def test_insert_keeps_ids_and_checks_them(crm: LocalCrm) -> None:
    """Given ids are kept (15 characters become 18), malformed or taken ones fail the row."""
    results = crm.insert_records(
        "Case",
        [
            {"Id": "500000000000001", "Subject": "a"},
            {"Id": "500-bad", "Subject": "b"},
            {"Id": "500000000000001AAA", "Subject": "c"},
            {"Subject": "d"},
        ],
    )
    assert [(r.ref, r.ok, r.error_code) for r in results] == [
        ("500000000000001", True, None),
        ("500-bad", False, "MALFORMED_ID"),
        ("500000000000001AAA", False, "DUPLICATE_VALUE"),
        ("row 4", True, None),
    ]
    assert results[0].id == "500000000000001AAA"
    assert [r.fields["Subject"] for r in crm.export_records("Case")] == ["a", "d"]


def test_create_follows_the_api_rules(crm: LocalCrm, clock: ManualClock) -> None:
    """Create makes ids and stamps, refuses read-only fields and taken unique values per
    record, normalises values, and counts one write call per 200 records."""
    key = "CrmSync_Key__c"
    crm.insert_records("Task", [{key: "taken"}])
    clock.now = NOW + timedelta(seconds=1)
    results = crm.create_records(
        "Task",
        [
            {key: "new", "Subject": "", "ReminderDateTime": "2026-03-05T10:00:00+01:00"},
            {key: "taken"},
            {"IsClosed": True},
            {"Subject": 3},
        ],
    )
    assert [(r.ref, r.ok, r.created, r.error_code, r.fields) for r in results] == [
        ("row 1", True, True, None, ()),
        ("row 2", False, False, "DUPLICATE_VALUE", (key,)),
        ("row 3", False, False, "INVALID_FIELD_FOR_INSERT_UPDATE", ("IsClosed",)),
        ("row 4", False, False, "INVALID_TYPE_ON_FIELD_IN_RECORD", ("Subject",)),
    ]
    made = fields_of(crm, "Task", str(results[0].id))
    assert str(results[0].id).startswith("00T")
    assert made["ReminderDateTime"] == "2026-03-05T09:00:00.000+0000"
    assert "Subject" not in made  # empty text is null
    assert made["CreatedDate"] == made["SystemModstamp"] == "2026-03-02T09:15:01.000+0000"
    assert crm.calls.by_kind == {"write": 1}
    crm.create_records("Task", [{"Subject": "s"}] * 201)
    assert crm.calls.by_kind == {"write": 3}


def test_export_by_ids_reads_those_records_only(crm: LocalCrm) -> None:
    """Export with ids gives the existing records among them (15 or 18 characters), in the
    order they were made, each once, counting no call."""
    a, b, c = (str(r.id) for r in crm.insert_records("Case", [{"Subject": s} for s in "abc"]))
    asked = [c, a[:15], "500000000000404AAA", "not an id", c]
    assert [r.id for r in crm.export_records("Case", asked)] == [a, c]
    assert [r.fields["Subject"] for r in crm.export_records("Case", [b])] == ["b"]
    assert list(crm.export_records("Task", [a])) == []
    assert crm.calls.by_kind == {}


def test_lock_held_past_the_timeout_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write blocked by another writer's lock for too long raises CrmTransientError."""
    monkeypatch.setattr(local_crm, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "locked.sqlite3"
    with LocalCrm(path) as crm:
        [case] = crm.insert_records("Case", [{}])
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(CrmTransientError, match="locked"):
                crm.update_records("Case", [(str(case.id), {"Subject": "x"})])
            # readers are not blocked by a writer (WAL)
            assert len(list(crm.export_records("Case"))) == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert crm.update_records("Case", [(str(case.id), {"Subject": "x"})])[0].ok


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from crmsync.adapters.crm.local import LocalCrm

    tag = sys.argv[2]
    with LocalCrm(Path(sys.argv[1])) as crm:
        ids = []
        for batch in range(10):
            results = crm.insert_records("Case", [{"Subject": tag} for _ in range(100)])
            assert all(r.ok for r in results), results
            ids += [r.id for r in results]
            updates = crm.update_records("Case", [(i, {"Origin": tag}) for i in ids[-100:]])
            assert all(r.ok for r in updates), updates
    """
)


def test_several_processes_write_while_one_reads(tmp_path: Path) -> None:
    """Two writer processes and a reader share one file: nothing fails, no id repeats, and a
    read sees each record once even while the writers move records to later stamps."""
    path = tmp_path / "shared.sqlite3"
    writers: list[subprocess.Popen[bytes]] = []
    with LocalCrm(path) as crm:
        try:
            for tag in ("one", "two"):
                command = [sys.executable, "-c", _WRITER, str(path), tag]
                writers.append(subprocess.Popen(command, stderr=subprocess.PIPE))
            reads = 0
            while any(w.poll() is None for w in writers) or reads == 0:
                seen = [r.id for r in crm.changed_records("Case", [], since=None, until=FAR)]
                assert len(seen) == len(set(seen))
                reads += 1
            for writer in writers:
                _, stderr = writer.communicate(timeout=120)
                assert writer.returncode == 0, stderr.decode()
        finally:
            for writer in writers:
                if writer.poll() is None:
                    writer.kill()
                writer.communicate()
        records = list(crm.changed_records("Case", ["Subject", "Origin"], since=None, until=FAR))
    assert len(records) == 2000
    assert len({r.id for r in records}) == 2000
    assert all(r.fields["Origin"] == r.fields["Subject"] for r in records)


def test_writing_while_iterating_changed_records(crm: LocalCrm, clock: ManualClock) -> None:
    """Updating records between the pages of a read (as a sync does) neither fails nor makes
    the read return a record twice: the read keeps its snapshot."""
    made = [str(r.id) for r in crm.insert_records("Case", [{}] * 2500)]
    clock.now = NOW + timedelta(minutes=1)
    seen = []
    for record in crm.changed_records("Case", [], since=None, until=FAR):
        seen.append(record.id)
        if len(seen) > len(made):
            break  # records come back again: without a snapshot this would never end
        if len(seen) % 500 == 0:  # moves these 500 past every record still to come
            [result] = crm.update_records("Case", [(record.id, {"Subject": "x"})])
            assert result.ok
            crm.update_records("Case", [(rid, {"Subject": "y"}) for rid in seen[-500:]])
    assert sorted(seen) == sorted(made)


def test_wal_mode_and_persistence(tmp_path: Path) -> None:
    """The file is in WAL mode and records survive reopening."""
    path = tmp_path / "crm.sqlite3"
    with LocalCrm(path) as crm:
        [made] = crm.insert_records("Case", [{"Subject": "kept"}])
    with LocalCrm(path) as again:
        assert [
            r.fields["Subject"] for r in again.records_by_id("Case", [str(made.id)], ["Subject"])
        ] == ["kept"]
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        check.close()


def test_naive_datetimes_are_refused(crm: LocalCrm) -> None:
    """Window bounds must be aware datetimes."""
    with pytest.raises(ValueError, match="time zone"):
        crm.changed_records("Case", [], since=None, until=datetime(2026, 3, 2))
