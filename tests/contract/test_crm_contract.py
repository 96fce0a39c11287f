"""The CrmPort contract: every CRM adapter passes these (see ``conftest.py`` for the list).

Records are seeded through the harness's back door with explicit ``SystemModstamp``
values where a test needs them; everything else goes through the port.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from crmsync.errors import CrmError
from crmsync.ports import CrmPort, FieldFilter, WriteResult

if TYPE_CHECKING:
    from conftest import CrmHarness

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)  # where conftest sets every harness clock
FAR = datetime(2030, 1, 1, tzinfo=UTC)
KEY = "CrmSync_Key__c"


def at(text: str) -> datetime:
    """An aware UTC datetime from ``HH:MM:SS.mmm`` on 2026-03-02."""
    return datetime.fromisoformat(f"2026-03-02T{text}+00:00")


def ids(records: Any) -> list[str]:
    return [r.id for r in records]


def stamp_ms(millis: int) -> str:
    """Salesforce datetime text ``millis`` ms after 2026-03-02T09:00:00Z."""
    seconds, ms = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"2026-03-02T09:{minutes:02d}:{seconds:02d}.{ms:03d}+0000"


def read_one(crm: CrmPort, object: str, record_id: str, fields: list[str]) -> dict[str, Any]:
    [record] = crm.records_by_id(object, [record_id], fields)
    return dict(record.fields)


# --------------------------------------------------------------------------- time and windows


def test_server_time_is_the_crms_clock(harness: CrmHarness) -> None:
    """server_time reports the CRM's clock, and follows it when it moves."""
    assert harness.crm.server_time() == START
    harness.clock.advance(minutes=5)
    assert harness.crm.server_time() == datetime(2026, 3, 2, 9, 20, tzinfo=UTC)


def test_window_is_since_inclusive_until_exclusive(harness: CrmHarness) -> None:
    """changed_records keeps since <= SystemModstamp < until; since None has no lower bound."""
    a, b, c = harness.seed(
        "Case",
        [
            {"Subject": "a", "SystemModstamp": "2026-03-02T09:00:00.000+0000"},
            {"Subject": "b", "SystemModstamp": "2026-03-02T09:05:00.000+0000"},
            {"Subject": "c", "SystemModstamp": "2026-03-02T09:10:00.000+0000"},
        ],
    )
    crm = harness.crm
    window = crm.changed_records("Case", ["Subject"], since=at("09:05:00"), until=at("09:10:00"))
    assert ids(window) == [b]
    no_lower = crm.changed_records("Case", ["Subject"], since=None, until=at("09:10:00"))
    assert ids(no_lower) == [a, b]
    # one millisecond past c's stamp takes c in
    wider = crm.changed_records("Case", [], since=at("09:05:00"), until=at("09:10:00.001"))
    assert ids(wider) == [b, c]


def test_order_is_modstamp_then_id_with_ties(harness: CrmHarness) -> None:
    """Records come ordered by SystemModstamp, and by Id among equal stamps."""
    tie = "2026-03-02T09:05:00.000+0000"
    harness.seed(
        "Case",
        [
            {"Id": "500000000000003AAA", "SystemModstamp": tie},
            {"Id": "500000000000009AAA", "SystemModstamp": "2026-03-02T09:00:00.000+0000"},
            {"Id": "500000000000001AAA", "SystemModstamp": tie},
            {"Id": "500000000000000AAA", "SystemModstamp": "2026-03-02T09:06:00.000+0000"},
            {"Id": "500000000000002AAA", "SystemModstamp": tie},
        ],
    )
    got = harness.crm.changed_records("Case", ["Subject"], since=None, until=FAR)
    assert ids(got) == [
        "500000000000009AAA",  # 09:00
        "500000000000001AAA",  # 09:05, ties ordered by Id
        "500000000000002AAA",
        "500000000000003AAA",
        "500000000000000AAA",  # 09:06
    ]


def test_filters_equal_not_equal_and_in(harness: CrmHarness) -> None:
    """'=', '!=' and 'in' filter like SOQL: '!=' keeps records where the field is null."""
    complaint, question, untyped = harness.seed(
        "Case", [{"Type": "Complaint"}, {"Type": "Question"}, {"Subject": "no type"}]
    )
    crm = harness.crm

    def matching(*where: FieldFilter) -> set[str]:
        return set(ids(crm.changed_records("Case", ["Type"], since=None, until=FAR, where=where)))

    assert matching(FieldFilter("Type", "=", "Complaint")) == {complaint}
    assert matching(FieldFilter("Type", "!=", "Complaint")) == {question, untyped}
    assert matching(FieldFilter("Type", "in", ("Complaint", "Question"))) == {complaint, question}
    assert matching(FieldFilter("Type", "!=", "Complaint"), FieldFilter("Type", "!=", None)) == {
        question
    }


def test_fields_always_include_id_and_modstamp(harness: CrmHarness) -> None:
    """Each record carries Id and SystemModstamp besides the fields asked, unset ones as None."""
    [case_id] = harness.seed(
        "Case", [{"Subject": "s", "SystemModstamp": "2026-03-02T09:00:00.000+0000"}]
    )
    [record] = harness.crm.changed_records("Case", ["Subject", "Origin"], since=None, until=START)
    assert record.object == "Case"
    assert record.id == case_id
    assert dict(record.fields) == {
        "Id": case_id,
        "SystemModstamp": "2026-03-02T09:00:00.000+0000",
        "Subject": "s",
        "Origin": None,
    }


def test_more_than_one_page_streams_every_record_once_in_order(harness: CrmHarness) -> None:
    """2,500 records come out complete and ordered across the 2,000-record page boundary,
    one query call per started page of 2,000."""
    # stamp (i+1)//2 ms: pairs tie, and records 1999/2000 tie across the page boundary
    rows = [{"Subject": f"case {i}", "SystemModstamp": stamp_ms((i + 1) // 2)} for i in range(2500)]
    made = harness.seed("Case", rows)
    expected = [
        rid for _, rid in sorted(zip((r["SystemModstamp"] for r in rows), made, strict=True))
    ]
    crm = harness.crm

    before = crm.calls.by_kind.get("query", 0)
    got = ids(crm.changed_records("Case", ["Subject"], since=None, until=FAR))
    assert got == expected
    assert crm.calls.by_kind.get("query", 0) - before == 2

    # stamps < 1000 ms: i <= 1998, 1,999 records, one page
    before = crm.calls.by_kind.get("query", 0)
    first = ids(crm.changed_records("Case", [], since=None, until=at("09:00:01")))
    assert first == expected[:1999]
    assert crm.calls.by_kind.get("query", 0) - before == 1

    # stamps <= 1000 ms: i <= 2000, 2,001 records, two pages
    before = crm.calls.by_kind.get("query", 0)
    two = ids(crm.changed_records("Case", [], since=None, until=at("09:00:01.001")))
    assert two == expected[:2001]
    assert crm.calls.by_kind.get("query", 0) - before == 2


# --------------------------------------------------------------------------- reads by id


def test_related_records_over_many_parents(harness: CrmHarness) -> None:
    """related_records finds the children of 250 parents (more than one batch), filtered."""
    cases = harness.seed("Case", [{"Subject": f"case {i}"} for i in range(251)])
    asked, other = cases[:250], cases[250]
    tasks = [{"WhatId": c, "Type": "Customer Update"} for c in asked]
    tasks += [{"WhatId": c, "Type": "Call"} for c in asked]
    tasks += [{"WhatId": other, "Type": "Customer Update"}]
    harness.seed("Task", tasks)
    crm = harness.crm

    updates = list(
        crm.related_records(
            "Task",
            ["WhatId", "Type"],
            parent_field="WhatId",
            parent_ids=asked,
            where=[FieldFilter("Type", "=", "Customer Update")],
        )
    )
    assert sorted(r.fields["WhatId"] for r in updates) == sorted(asked)
    assert {r.fields["Type"] for r in updates} == {"Customer Update"}
    everything = list(
        crm.related_records("Task", ["WhatId"], parent_field="WhatId", parent_ids=asked)
    )
    assert len(everything) == 500
    assert len({r.id for r in everything}) == 500
    assert list(crm.related_records("Task", [], parent_field="WhatId", parent_ids=[])) == []


def test_status_history_is_read_and_filtered_on_its_values(harness: CrmHarness) -> None:
    """CaseHistory rows of a case, filtered on Field and NewValue/OldValue (which Salesforce
    cannot filter in a query: the adapter filters them itself), by parent and as changes."""
    [case] = harness.seed("Case", [{"Subject": "waiting"}])
    rows = [
        ("New", "Working", "2026-03-02T09:01:00.000+0000"),
        ("Working", "Waiting on Customer", "2026-03-02T09:02:00.000+0000"),
        ("Waiting on Customer", "Working", "2026-03-02T09:03:00.000+0000"),
    ]
    history = [
        {"CaseId": case, "Field": "Status", "OldValue": old, "NewValue": new, "CreatedDate": when}
        for old, new, when in rows
    ]
    history.append(
        {"CaseId": case, "Field": "Priority", "NewValue": "Waiting on Customer",
         "CreatedDate": "2026-03-02T09:04:00.000+0000"}
    )  # fmt: skip
    harness.seed("CaseHistory", history)
    crm = harness.crm
    status = FieldFilter("Field", "=", "Status")
    paused = [status, FieldFilter("NewValue", "=", "Waiting on Customer")]
    resumed = [status, FieldFilter("OldValue", "=", "Waiting on Customer")]
    by_parent = {
        name: sorted(
            str(r.fields["CreatedDate"])[:19]
            for r in crm.related_records(
                "CaseHistory", ["CreatedDate", "CaseId"], parent_field="CaseId",
                parent_ids=[case], where=where,
            )
        )
        for name, where in (("paused", paused), ("resumed", resumed))
    }  # fmt: skip
    assert by_parent == {"paused": ["2026-03-02T09:02:00"], "resumed": ["2026-03-02T09:03:00"]}
    changed = crm.changed_records("CaseHistory", ["CaseId"], since=None, until=FAR, where=paused)
    assert [r.fields["CaseId"] for r in changed] == [case]


def test_records_by_id_leaves_out_missing_ids(harness: CrmHarness) -> None:
    """records_by_id returns the records that exist and silently skips the others."""
    first, second = harness.seed("Case", [{"Subject": "one"}, {"Subject": "two"}])
    got = harness.crm.records_by_id("Case", [first, "500000000000404AAA", second], ["Subject"])
    assert {r.id: r.fields["Subject"] for r in got} == {first: "one", second: "two"}


# --------------------------------------------------------------------------- writes


def test_a_deleted_record_is_named_in_its_window_and_gone_from_reads_and_writes(
    harness: CrmHarness,
) -> None:
    """Deleted at 09:20: deleted_records names it in a window holding 09:20 only; it is
    gone from changed_records and records_by_id, and updating it fails NOT_FOUND."""
    a, b = harness.seed(
        "Case",
        [
            {"Subject": "a", "SystemModstamp": "2026-03-02T09:00:00.000+0000"},
            {"Subject": "b", "SystemModstamp": "2026-03-02T09:00:00.000+0000"},
        ],
    )
    crm = harness.crm
    harness.clock.set("2026-03-02T09:20:00+00:00")
    harness.delete("Case", [a])
    harness.clock.set("2026-03-02T09:30:00+00:00")
    assert list(crm.deleted_records("Case", since=at("09:10:00"), until=at("09:30:00"))) == [a]
    assert list(crm.deleted_records("Case", since=None, until=at("09:30:00"))) == [a]
    assert list(crm.deleted_records("Case", since=at("09:21:00"), until=at("09:30:00"))) == []
    assert list(crm.deleted_records("Case", since=at("09:00:00"), until=at("09:20:00"))) == []
    assert list(crm.deleted_records("Task", since=None, until=at("09:30:00"))) == []
    assert ids(crm.changed_records("Case", ["Subject"], since=None, until=at("09:30:00"))) == [b]
    assert ids(crm.records_by_id("Case", [a, b], ["Subject"])) == [b]
    [gone, kept] = crm.update_records("Case", [(a, {"Subject": "x"}), (b, {"Subject": "y"})])
    assert (gone.ok, gone.error_code, kept.ok) == (False, "NOT_FOUND", True)


def test_update_reports_per_record_and_keeps_the_good_ones(harness: CrmHarness) -> None:
    """One update per record: missing ids, unknown fields and non-JSON values fail alone."""
    one, two, three = harness.seed("Case", [{"Subject": "old"}] * 3)
    missing = "500000000000404AAA"
    crm = harness.crm
    results = crm.update_records(
        "Case",
        [
            (one, {"Subject": "new", "Charter_Status__c": "at_risk"}),
            (missing, {"Subject": "x"}),
            (two, {"Subject": "new", "Charter_Breaches__c": {1, 2}}),
            (three, {"No_Such_Field__c": "x"}),
        ],
    )
    assert [(r.ref, r.ok) for r in results] == [
        (one, True),
        (missing, False),
        (two, False),
        (three, False),
    ]
    assert results[0].id == one
    assert results[1].error_code == "NOT_FOUND"
    assert (results[2].error_code, results[2].fields) == ("INVALID_FIELD", ("Charter_Breaches__c",))
    assert (results[3].error_code, results[3].fields) == ("INVALID_FIELD", ("No_Such_Field__c",))
    assert not any(r.transient for r in results)
    subjects = {
        r.id: r.fields["Subject"] for r in crm.records_by_id("Case", [one, two, three], ["Subject"])
    }
    assert subjects == {one: "new", two: "old", three: "old"}


def test_update_moves_the_modstamp(harness: CrmHarness) -> None:
    """An update stamps the record with the CRM's time: it leaves old windows for new ones."""
    [case_id] = harness.seed("Case", [{"SystemModstamp": "2026-03-02T09:00:00.000+0000"}])
    crm = harness.crm
    now = harness.clock.advance(minutes=5)  # 09:20
    [result] = crm.update_records("Case", [(case_id, {"Charter_Status__c": "breached"})])
    assert result.ok
    assert ids(crm.changed_records("Case", [], since=None, until=now)) == []
    new = crm.changed_records("Case", [], since=now, until=now + timedelta(seconds=1))
    assert ids(new) == [case_id]


def test_upsert_inserts_then_updates_by_external_id(harness: CrmHarness) -> None:
    """Upsert creates a record for a new key and updates the same record for a known key."""
    crm = harness.crm
    k1, k2, k3 = (f"crmsync:500000000000001AAA:ack:0:{s}" for s in ("at_risk", "breached", "x"))
    first = crm.upsert_records(
        "Task",
        KEY,
        [
            {KEY: k1, "Subject": "one", "Status": "Not Started"},
            {KEY: k2, "Subject": "two", "Status": "Not Started"},
        ],
    )
    assert [(r.ref, r.ok, r.created) for r in first] == [(k1, True, True), (k2, True, True)]
    for r in first:
        assert r.id is not None
        assert len(r.id) == 18
        assert r.id.startswith("00T")
    assert first[0].id != first[1].id

    second = crm.upsert_records(
        "Task", KEY, [{KEY: k1, "Subject": "one again"}, {KEY: k3, "Subject": "three"}]
    )
    assert [(r.ref, r.ok, r.created) for r in second] == [(k1, True, False), (k3, True, True)]
    assert second[0].id == first[0].id

    tasks = crm.changed_records("Task", [KEY, "Subject", "Status"], since=None, until=FAR)
    by_key = {r.fields[KEY]: r.fields for r in tasks}
    assert sorted(by_key) == sorted([k1, k2, k3])  # no duplicate for k1
    assert (by_key[k1]["Subject"], by_key[k1]["Status"]) == ("one again", "Not Started")


def test_create_if_absent_never_touches_an_existing_key(harness: CrmHarness) -> None:
    """create_if_absent creates new keys and answers an existing key with its id, created
    False, leaving every field and its SystemModstamp exactly as staff left them; a key
    twice in one call makes one record."""
    crm = harness.crm
    k1, k2 = (f"crmsync:500000000000001AAA:ack:0:{s}" for s in ("at_risk", "breached"))
    [made] = crm.create_if_absent("Task", KEY, [{KEY: k1, "Subject": "one", "Status": "Open"}])
    assert (made.ref, made.ok, made.created) == (k1, True, True)
    assert made.id is not None and made.id.startswith("00T")
    assert crm.update_records("Task", [(made.id, {"Status": "Completed", "Subject": "done"})])[0].ok
    worked = read_one(crm, "Task", made.id, ["Status", "Subject"])

    harness.clock.advance(minutes=1)
    again = crm.create_if_absent(
        "Task",
        KEY,
        [
            {KEY: k1, "Subject": "overwrite?", "Status": "Not Started"},
            {KEY: k2, "Subject": "two", "Status": "Not Started"},
            {KEY: k2, "Subject": "two again", "Status": "Not Started"},
        ],
    )
    assert [(r.ref, r.ok) for r in again] == [(k1, True), (k2, True), (k2, True)]
    assert (again[0].id, again[0].created) == (made.id, False)
    assert again[1].id == again[2].id
    assert read_one(crm, "Task", made.id, ["Status", "Subject"]) == worked
    tasks = crm.changed_records("Task", [KEY], since=None, until=FAR)
    assert sorted(r.fields[KEY] for r in tasks) == sorted([k1, k2])


def test_create_if_absent_without_the_key_fails_that_record(harness: CrmHarness) -> None:
    """A record without its key fails alone (REQUIRED_FIELD_MISSING); the others are made."""
    results = harness.crm.create_if_absent(
        "Task", KEY, [{"Subject": "no key"}, {KEY: "k-ok", "Subject": "fine"}]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[0].error_code == "REQUIRED_FIELD_MISSING"


def test_complete_tasks_is_idempotent(harness: CrmHarness) -> None:
    """Completing sets the fields once; completing again succeeds without writing."""
    crm = harness.crm
    made = crm.upsert_records(
        "Task",
        KEY,
        [{KEY: "k-open", "Status": "Not Started"}, {KEY: "k-done", "Status": "Completed"}],
    )
    open_id, done_id = (str(r.id) for r in made)
    missing = "00T000000000404AAA"
    done_stamp = read_one(crm, "Task", done_id, [])["SystemModstamp"]

    harness.clock.advance(minutes=1)
    results = crm.complete_tasks("Task", [open_id, done_id, missing], {"Status": "Completed"})
    assert [(r.ref, r.ok) for r in results] == [(open_id, True), (done_id, True), (missing, False)]
    assert results[2].error_code == "NOT_FOUND"
    after_first = read_one(crm, "Task", open_id, ["Status"])
    assert after_first["Status"] == "Completed"
    assert read_one(crm, "Task", done_id, [])["SystemModstamp"] == done_stamp

    harness.clock.advance(minutes=1)
    writes = crm.calls.by_kind.get("write", 0)
    again = crm.complete_tasks("Task", [open_id, done_id], {"Status": "Completed"})
    assert [(r.ref, r.ok) for r in again] == [(open_id, True), (done_id, True)]
    assert crm.calls.by_kind.get("write", 0) == writes
    assert read_one(crm, "Task", open_id, [])["SystemModstamp"] == after_first["SystemModstamp"]


# --------------------------------------------------------------------------- describe


def test_describe_case_and_task(crm: CrmPort) -> None:
    """describe gives the reference org's fields with Salesforce's type names and flags."""
    case = crm.describe("Case")
    expected_case = {
        "Id": "id",
        "CreatedDate": "datetime",
        "ClosedDate": "datetime",
        "SystemModstamp": "datetime",
        "Acknowledged_At__c": "datetime",
        "Escalated_L4_At__c": "datetime",
        "Origin": "picklist",
        "Complaint_Level__c": "double",
        "Complainant_Type__c": "picklist",
        "SuppliedName": "string",
        "Description": "textarea",
        "Expected_Decision_Date__c": "date",
        "OwnerId": "reference",
        "Complaint_Manager__c": "reference",
        "Root_Cause__c": "textarea",
        "Charter_Status__c": "picklist",
        "Charter_Breaches__c": "string",
        "Charter_Next_Due__c": "datetime",
        "Charter_Checked_At__c": "datetime",
        "Archived_At__c": "datetime",
        "Archive_Ref__c": "string",
    }
    assert {name: case[name].type for name in expected_case} == expected_case
    write_back = ["Charter_Status__c", "Charter_Breaches__c", "Charter_Next_Due__c"]
    write_back += ["Charter_Checked_At__c", "Archived_At__c", "Archive_Ref__c"]
    assert all(case[name].updateable for name in write_back)
    assert not case["SystemModstamp"].updateable
    assert all(info.name == name for name, info in case.items())

    task = crm.describe("Task")
    expected_task = {
        "Subject": "string",
        "Description": "textarea",
        "ActivityDate": "date",
        "OwnerId": "reference",
        "WhatId": "reference",
        "Status": "picklist",
        "Priority": "picklist",
        "CompletedDateTime": "datetime",
        KEY: "string",
    }
    assert {name: task[name].type for name in expected_task} == expected_task
    assert task[KEY].external_id
    assert task[KEY].unique
    assert task["Status"].updateable
    assert not task["Subject"].external_id


def test_describe_unknown_object_fails(crm: CrmPort) -> None:
    """describe of an object the CRM does not have raises CrmError."""
    with pytest.raises(CrmError, match="No_Such_Object__c"):
        crm.describe("No_Such_Object__c")


# --------------------------------------------------------------------------- concurrency, calls


def test_reader_while_another_client_writes(harness: CrmHarness) -> None:
    """A reader paging through records while another client keeps updating some of them
    sees each untouched record exactly once, in order, and never fails."""
    made = harness.seed(
        "Case", [{"Subject": f"{i}", "SystemModstamp": stamp_ms(i)} for i in range(2400)]
    )
    touched = made[::6]
    untouched = sorted(set(made) - set(touched))
    writer_client = harness.second_client()
    wrote_once, enough_reads = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(200):  # bounded: normally stopped by the reader after 3 reads
                results = writer_client.update_records(
                    "Case", [(rid, {"Charter_Status__c": "on_track"}) for rid in touched]
                )
                assert all(r.ok for r in results)
                wrote_once.set()
                if enough_reads.is_set():
                    return
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            wrote_once.set()

    until = harness.crm.server_time()
    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert wrote_once.wait(timeout=60)
        for _ in range(3):  # the writer is still writing during these reads
            got = list(harness.crm.changed_records("Case", ["Subject"], since=None, until=until))
            keys = [(r.fields["SystemModstamp"], r.id) for r in got]
            assert keys == sorted(keys)
            got_ids = [r.id for r in got]
            assert len(got_ids) == len(set(got_ids))
            assert set(untouched) <= set(got_ids) <= set(made)
    finally:
        enough_reads.set()
        thread.join(timeout=60)
    assert not failures
    assert not thread.is_alive()
    # every touched record now sits at or after the clock's time, the others before it
    later = harness.crm.changed_records("Case", [], since=until, until=FAR)
    assert set(ids(later)) == set(touched)


def test_write_calls_are_counted_per_batch_of_200(harness: CrmHarness) -> None:
    """Writing 201 records costs one write call per started batch the adapter sends in one
    request (200 records: two calls; 1,000 packed in a Composite: one); a describe costs one
    describe call."""
    made = harness.seed("Case", [{"Subject": "s"}] * 201)
    crm = harness.crm
    before = dict(crm.calls.by_kind)
    results: list[WriteResult] = crm.update_records(
        "Case", [(rid, {"Charter_Status__c": "met"}) for rid in made]
    )
    assert all(r.ok for r in results)
    expected = -(-201 // harness.records_per_write_call)  # ceil
    assert crm.calls.by_kind.get("write", 0) - before.get("write", 0) == expected
    crm.describe("Case")
    assert crm.calls.by_kind.get("describe", 0) - before.get("describe", 0) == 1


# --------------------------------------------------------------------------- lifecycle


def test_close_lets_go_raises_nothing_and_keeps_the_records(harness: CrmHarness) -> None:
    """A client that read records closes, and closes again, without an error; what it saw
    stays in the CRM for the next client."""
    (case,) = harness.seed("Case", [{"Subject": "kept"}])
    other = harness.second_client()
    assert read_one(other, "Case", case, ["Subject"])["Subject"] == "kept"
    other.close()
    other.close()
    assert read_one(harness.crm, "Case", case, ["Subject"])["Subject"] == "kept"
