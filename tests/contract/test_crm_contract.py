"""The CrmPort contract: every CRM adapter passes these (see ``conftest.py`` for the list).

Tests name objects, fields and values only through the harness's ``names`` (the CRM's
names and value formats for the reference org). Records are seeded through the harness's
back door with explicit watermark values where a test needs them; everything else goes
through the port.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from crmsync.errors import CrmError
from crmsync.ports import CrmPort, FieldFilter, PageWrites, WriteResult

if TYPE_CHECKING:
    from conftest import CrmHarness, CrmNames

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)  # where conftest sets every harness clock
FAR = datetime(2030, 1, 1, tzinfo=UTC)
NINE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """An aware UTC datetime from ``HH:MM:SS.mmm`` on 2026-03-02."""
    return datetime.fromisoformat(f"2026-03-02T{text}+00:00")


def ids(records: Any) -> list[str]:
    return [r.id for r in records]


def stamp_ms(names: CrmNames, millis: int) -> str:
    """The CRM's datetime text ``millis`` ms after 2026-03-02T09:00:00Z."""
    return names.stamp(NINE + timedelta(milliseconds=millis))


def stamp_at(names: CrmNames, text: str) -> str:
    """The CRM's datetime text of ``HH:MM:SS.mmm`` on 2026-03-02."""
    return names.stamp(at(text))


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
    """changed_records keeps since <= watermark < until; since None has no lower bound."""
    n = harness.names
    a, b, c = harness.seed(
        n.case,
        [
            {n.subject: "a", n.modstamp: stamp_at(n, "09:00:00")},
            {n.subject: "b", n.modstamp: stamp_at(n, "09:05:00")},
            {n.subject: "c", n.modstamp: stamp_at(n, "09:10:00")},
        ],
    )
    crm = harness.crm
    window = crm.changed_records(n.case, [n.subject], since=at("09:05:00"), until=at("09:10:00"))
    assert ids(window) == [b]
    no_lower = crm.changed_records(n.case, [n.subject], since=None, until=at("09:10:00"))
    assert ids(no_lower) == [a, b]
    # one millisecond past c's stamp takes c in
    wider = crm.changed_records(n.case, [], since=at("09:05:00"), until=at("09:10:00.001"))
    assert ids(wider) == [b, c]


def test_window_bounds_compare_the_kept_watermark_to_the_millisecond(
    harness: CrmHarness,
) -> None:
    """A record kept at 09:00:00.400 is in [09:00:00, 09:00:01) and [09:00:00.400,
    09:00:00.401), not in [09:00:00.401, ...) nor before 09:00:00.400, whatever precision
    the CRM answers in (Dataverse: whole seconds); its watermark as answered is not after
    the kept one, so a window starting there takes the record in."""
    n = harness.names
    [rid] = harness.seed(n.case, [{n.subject: "x", n.modstamp: stamp_at(n, "09:00:00.400")}])
    crm = harness.crm

    def window(since: datetime | None, until: datetime) -> list[str]:
        return ids(crm.changed_records(n.case, [], since=since, until=until))

    assert window(at("09:00:00"), at("09:00:01")) == [rid]
    assert window(at("09:00:00.400"), at("09:00:00.401")) == [rid]
    assert window(at("09:00:00.401"), FAR) == []
    assert window(None, at("09:00:00.400")) == []
    [record] = crm.changed_records(n.case, [], since=None, until=FAR)
    answered = record.fields[n.modstamp]
    assert answered == n.answer(at("09:00:00.400"))
    assert window(datetime.fromisoformat(answered), FAR) == [rid]


def test_order_is_modstamp_then_id_with_ties(harness: CrmHarness) -> None:
    """Records come ordered by the watermark, and by id among equal stamps."""
    n = harness.names
    tie = stamp_at(n, "09:05:00")
    given = n.hand_ids(n.case, 10)
    harness.seed(
        n.case,
        [
            {n.id_field: given[3], n.modstamp: tie},
            {n.id_field: given[9], n.modstamp: stamp_at(n, "09:00:00")},
            {n.id_field: given[1], n.modstamp: tie},
            {n.id_field: given[0], n.modstamp: stamp_at(n, "09:06:00")},
            {n.id_field: given[2], n.modstamp: tie},
        ],
    )
    got = harness.crm.changed_records(n.case, [n.subject], since=None, until=FAR)
    assert ids(got) == [
        given[9],  # 09:00
        given[1],  # 09:05, ties ordered by id
        given[2],
        given[3],
        given[0],  # 09:06
    ]


def test_filters_equal_not_equal_and_in(harness: CrmHarness) -> None:
    """'=', '!=' and 'in' filter like SOQL: '!=' keeps records where the field is null."""
    n = harness.names
    kind = n.type_field
    is_complaint, is_question = n.type_values
    complaint, question, untyped = harness.seed(
        n.case, [{kind: is_complaint}, {kind: is_question}, {n.subject: "no type"}]
    )
    crm = harness.crm

    def matching(*where: FieldFilter) -> set[str]:
        return set(ids(crm.changed_records(n.case, [kind], since=None, until=FAR, where=where)))

    assert matching(FieldFilter(kind, "=", is_complaint)) == {complaint}
    assert matching(FieldFilter(kind, "!=", is_complaint)) == {question, untyped}
    assert matching(FieldFilter(kind, "in", (is_complaint, is_question))) == {complaint, question}
    assert matching(FieldFilter(kind, "!=", is_complaint), FieldFilter(kind, "!=", None)) == {
        question
    }


def test_fields_always_include_id_and_modstamp(harness: CrmHarness) -> None:
    """Each record carries its id and watermark besides the fields asked, unset ones as None;
    the watermark as the CRM answers it (Dataverse: whole seconds)."""
    n = harness.names
    stamp = stamp_at(n, "09:00:00.250")
    [case_id] = harness.seed(n.case, [{n.subject: "s", n.modstamp: stamp}])
    [record] = harness.crm.changed_records(n.case, [n.subject, n.unset], since=None, until=START)
    assert record.object == n.case
    assert record.id == case_id
    assert dict(record.fields) == {
        n.id_field: case_id,
        n.modstamp: n.answer(at("09:00:00.250")),
        n.subject: "s",
        n.unset: None,
    }


def test_more_than_one_page_streams_every_record_once_in_order(harness: CrmHarness) -> None:
    """2,500 records come out complete and ordered across the 2,000-record page boundary,
    one query call per started page of 2,000."""
    n = harness.names
    assert harness.page_size == 2000
    # stamp (i+1)//2 ms: pairs tie, and records 1999/2000 tie across the page boundary
    millis = [(i + 1) // 2 for i in range(2500)]
    rows = [{n.subject: f"case {i}", n.modstamp: stamp_ms(n, ms)} for i, ms in enumerate(millis)]
    made = harness.seed(n.case, rows)
    expected = [rid for _, rid in sorted(zip(millis, made, strict=True))]
    crm = harness.crm

    before = crm.calls.by_kind.get("query", 0)
    got = ids(crm.changed_records(n.case, [n.subject], since=None, until=FAR))
    assert got == expected
    assert crm.calls.by_kind.get("query", 0) - before == 2

    # stamps < 1000 ms: i <= 1998, 1,999 records, one page
    before = crm.calls.by_kind.get("query", 0)
    first = ids(crm.changed_records(n.case, [], since=None, until=at("09:00:01")))
    assert first == expected[:1999]
    assert crm.calls.by_kind.get("query", 0) - before == 1

    # stamps <= 1000 ms: i <= 2000, 2,001 records, two pages
    before = crm.calls.by_kind.get("query", 0)
    two = ids(crm.changed_records(n.case, [], since=None, until=at("09:00:01.001")))
    assert two == expected[:2001]
    assert crm.calls.by_kind.get("query", 0) - before == 2


# --------------------------------------------------------------------------- reads by id


def test_related_records_over_many_parents(harness: CrmHarness) -> None:
    """related_records finds the children of 250 parents (more than one batch), filtered."""
    n = harness.names
    update, call = n.task_kinds
    cases = harness.seed(n.case, [{n.subject: f"case {i}"} for i in range(251)])
    asked, other = cases[:250], cases[250]
    tasks = [{n.task_parent: c, n.task_kind: update} for c in asked]
    tasks += [{n.task_parent: c, n.task_kind: call} for c in asked]
    tasks += [{n.task_parent: other, n.task_kind: update}]
    harness.seed(n.task, tasks)
    crm = harness.crm

    updates = list(
        crm.related_records(
            n.task,
            [n.task_parent, n.task_kind],
            parent_field=n.task_parent,
            parent_ids=asked,
            where=[FieldFilter(n.task_kind, "=", update)],
        )
    )
    assert sorted(r.fields[n.task_parent] for r in updates) == sorted(asked)
    assert {r.fields[n.task_kind] for r in updates} == {update}
    everything = list(
        crm.related_records(n.task, [n.task_parent], parent_field=n.task_parent, parent_ids=asked)
    )
    assert len(everything) == 500
    assert len({r.id for r in everything}) == 500
    assert list(crm.related_records(n.task, [], parent_field=n.task_parent, parent_ids=[])) == []


def test_status_history_is_read_and_filtered_on_its_values(harness: CrmHarness) -> None:
    """Status-change rows of a case, filtered on their values (which Salesforce cannot
    filter in a query: the adapter filters them itself), by parent and as changes."""
    n = harness.names
    [case] = harness.seed(n.case, [{n.subject: "waiting"}])
    rows = [
        ("Status", "New", "Working", "09:01:00"),
        ("Status", "Working", "Waiting on Customer", "09:02:00"),
        ("Status", "Waiting on Customer", "Working", "09:03:00"),
        ("Priority", None, "Waiting on Customer", "09:04:00"),  # another field's change
    ]
    history = [n.history_row(case, f, old, new, stamp_at(n, when)) for f, old, new, when in rows]
    harness.seed(n.history, [row for row in history if row is not None])
    crm = harness.crm
    by_parent = {
        name: sorted(
            str(r.fields[n.history_created])[:19]
            for r in crm.related_records(
                n.history, [n.history_created, n.history_parent],
                parent_field=n.history_parent, parent_ids=[case], where=where,
            )
        )
        for name, where in (("paused", n.paused), ("resumed", n.resumed))
    }  # fmt: skip
    assert by_parent == {"paused": ["2026-03-02T09:02:00"], "resumed": ["2026-03-02T09:03:00"]}
    changed = crm.changed_records(
        n.history, [n.history_parent], since=None, until=FAR, where=n.paused
    )
    assert [r.fields[n.history_parent] for r in changed] == [case]


def test_records_by_id_leaves_out_missing_ids(harness: CrmHarness) -> None:
    """records_by_id returns the records that exist and silently skips the others."""
    n = harness.names
    first, second = harness.seed(n.case, [{n.subject: "one"}, {n.subject: "two"}])
    asked = [first, n.missing_id(n.case), second]
    got = harness.crm.records_by_id(n.case, asked, [n.subject])
    assert {r.id: r.fields[n.subject] for r in got} == {first: "one", second: "two"}


# --------------------------------------------------------------------------- writes


def test_a_deleted_record_is_named_in_its_window_and_gone_from_reads_and_writes(
    harness: CrmHarness,
) -> None:
    """Deleted at 09:20: deleted_records names it in a window holding 09:20 only; it is
    gone from changed_records and records_by_id, and updating it fails NOT_FOUND."""
    n = harness.names
    a, b = harness.seed(
        n.case,
        [
            {n.subject: "a", n.modstamp: stamp_at(n, "09:00:00")},
            {n.subject: "b", n.modstamp: stamp_at(n, "09:00:00")},
        ],
    )
    crm = harness.crm
    harness.clock.set("2026-03-02T09:20:00+00:00")
    harness.delete(n.case, [a])
    harness.clock.set("2026-03-02T09:30:00+00:00")
    assert list(crm.deleted_records(n.case, since=at("09:10:00"), until=at("09:30:00"))) == [a]
    assert list(crm.deleted_records(n.case, since=None, until=at("09:30:00"))) == [a]
    assert list(crm.deleted_records(n.case, since=at("09:21:00"), until=at("09:30:00"))) == []
    assert list(crm.deleted_records(n.case, since=at("09:00:00"), until=at("09:20:00"))) == []
    assert list(crm.deleted_records(n.task, since=None, until=at("09:30:00"))) == []
    assert ids(crm.changed_records(n.case, [n.subject], since=None, until=at("09:30:00"))) == [b]
    assert ids(crm.records_by_id(n.case, [a, b], [n.subject])) == [b]
    [gone, kept] = crm.update_records(n.case, [(a, {n.subject: "x"}), (b, {n.subject: "y"})])
    assert (gone.ok, gone.error_code, kept.ok) == (False, "NOT_FOUND", True)


def test_update_reports_per_record_and_keeps_the_good_ones(harness: CrmHarness) -> None:
    """One update per record: missing ids, unknown fields and non-JSON values fail alone."""
    n = harness.names
    one, two, three = harness.seed(n.case, [{n.subject: "old"}] * 3)
    missing = n.missing_id(n.case)
    crm = harness.crm
    results = crm.update_records(
        n.case,
        [
            (one, {n.subject: "new", n.flag: n.flag_values["at_risk"]}),
            (missing, {n.subject: "x"}),
            (two, {n.subject: "new", n.text_flag: {1, 2}}),
            (three, {n.unknown_field: "x"}),
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
    assert (results[2].error_code, results[2].fields) == ("INVALID_FIELD", (n.text_flag,))
    assert (results[3].error_code, results[3].fields) == ("INVALID_FIELD", (n.unknown_field,))
    assert not any(r.transient for r in results)
    subjects = {
        r.id: r.fields[n.subject] for r in crm.records_by_id(n.case, [one, two, three], [n.subject])
    }
    assert subjects == {one: "new", two: "old", three: "old"}


def test_update_moves_the_modstamp(harness: CrmHarness) -> None:
    """An update stamps the record with the CRM's time: it leaves old windows for new ones."""
    n = harness.names
    [case_id] = harness.seed(n.case, [{n.modstamp: stamp_at(n, "09:00:00")}])
    crm = harness.crm
    now = harness.clock.advance(minutes=5)  # 09:20
    [result] = crm.update_records(n.case, [(case_id, {n.flag: n.flag_values["breached"]})])
    assert result.ok
    assert ids(crm.changed_records(n.case, [], since=None, until=now)) == []
    new = crm.changed_records(n.case, [], since=now, until=now + timedelta(seconds=1))
    assert ids(new) == [case_id]


def test_upsert_inserts_then_updates_by_external_id(harness: CrmHarness) -> None:
    """Upsert creates a record for a new key and updates the same record for a known key."""
    n = harness.names
    key, subject, status = n.key, n.task_subject, n.task_status
    crm = harness.crm
    k1, k2, k3 = (f"crmsync:500000000000001AAA:ack:0:{s}" for s in ("at_risk", "breached", "x"))
    first = crm.upsert_records(
        n.task,
        key,
        [
            {key: k1, subject: "one", status: n.task_open},
            {key: k2, subject: "two", status: n.task_open},
        ],
    )
    assert [(r.ref, r.ok, r.created) for r in first] == [(k1, True, True), (k2, True, True)]
    for r in first:
        assert r.id is not None
        assert n.made_id.fullmatch(r.id), r.id
    assert first[0].id != first[1].id

    second = crm.upsert_records(
        n.task, key, [{key: k1, subject: "one again"}, {key: k3, subject: "three"}]
    )
    assert [(r.ref, r.ok, r.created) for r in second] == [(k1, True, False), (k3, True, True)]
    assert second[0].id == first[0].id

    tasks = crm.changed_records(n.task, [key, subject, status], since=None, until=FAR)
    by_key = {r.fields[key]: r.fields for r in tasks}
    assert sorted(by_key) == sorted([k1, k2, k3])  # no duplicate for k1
    assert (by_key[k1][subject], by_key[k1][status]) == ("one again", n.task_open)


def test_create_if_absent_never_touches_an_existing_key(harness: CrmHarness) -> None:
    """create_if_absent creates new keys and answers an existing key with its id, created
    False, leaving every field and its watermark exactly as staff left them; a key twice
    in one call makes one record."""
    n = harness.names
    key, subject, status = n.key, n.task_subject, n.task_status
    crm = harness.crm
    k1, k2 = (f"crmsync:500000000000001AAA:ack:0:{s}" for s in ("at_risk", "breached"))
    [made] = crm.create_if_absent(n.task, key, [{key: k1, subject: "one", status: n.task_open}])
    assert (made.ref, made.ok, made.created) == (k1, True, True)
    assert made.id is not None and n.made_id.fullmatch(made.id)
    assert crm.update_records(n.task, [(made.id, {status: n.task_done, subject: "done"})])[0].ok
    worked = read_one(crm, n.task, made.id, [status, subject])

    harness.clock.advance(minutes=1)
    again = crm.create_if_absent(
        n.task,
        key,
        [
            {key: k1, subject: "overwrite?", status: n.task_open},
            {key: k2, subject: "two", status: n.task_open},
            {key: k2, subject: "two again", status: n.task_open},
        ],
    )
    assert [(r.ref, r.ok) for r in again] == [(k1, True), (k2, True), (k2, True)]
    assert (again[0].id, again[0].created) == (made.id, False)
    assert again[1].id == again[2].id
    assert read_one(crm, n.task, made.id, [status, subject]) == worked
    tasks = crm.changed_records(n.task, [key], since=None, until=FAR)
    assert sorted(r.fields[key] for r in tasks) == sorted([k1, k2])


def test_create_if_absent_without_the_key_fails_that_record(harness: CrmHarness) -> None:
    """A record without its key fails alone (REQUIRED_FIELD_MISSING); the others are made."""
    n = harness.names
    results = harness.crm.create_if_absent(
        n.task, n.key, [{n.task_subject: "no key"}, {n.key: "k-ok", n.task_subject: "fine"}]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[0].error_code == "REQUIRED_FIELD_MISSING"


def test_complete_tasks_is_idempotent(harness: CrmHarness) -> None:
    """Completing sets the fields once; completing again succeeds without writing."""
    n = harness.names
    key, status = n.key, n.task_status
    crm = harness.crm
    made = crm.upsert_records(
        n.task,
        key,
        [{key: "k-open", status: n.task_open}, {key: "k-done", status: n.task_done}],
    )
    open_id, done_id = (str(r.id) for r in made)
    missing = n.missing_id(n.task)
    done_stamp = read_one(crm, n.task, done_id, [])[n.modstamp]

    harness.clock.advance(minutes=1)
    completed = {status: n.task_done}
    results = crm.complete_tasks(n.task, [open_id, done_id, missing], completed)
    assert [(r.ref, r.ok) for r in results] == [(open_id, True), (done_id, True), (missing, False)]
    assert results[2].error_code == "NOT_FOUND"
    after_first = read_one(crm, n.task, open_id, [status])
    assert after_first[status] == n.task_done
    assert read_one(crm, n.task, done_id, [])[n.modstamp] == done_stamp

    harness.clock.advance(minutes=1)
    writes = crm.calls.by_kind.get("write", 0)
    again = crm.complete_tasks(n.task, [open_id, done_id], completed)
    assert [(r.ref, r.ok) for r in again] == [(open_id, True), (done_id, True)]
    assert crm.calls.by_kind.get("write", 0) == writes
    assert read_one(crm, n.task, open_id, [])[n.modstamp] == after_first[n.modstamp]


# --------------------------------------------------------------------------- a page's writes


def test_write_page_answers_each_part_in_order_with_mixed_outcomes(harness: CrmHarness) -> None:
    """One write_page: the creates make a new key, fail a record without its key and leave a
    held key's task exactly as staff left it (its id, created False); the completions close
    the open task, answer the completed one without touching it and fail a missing one
    NOT_FOUND; the updates set one case's flag, fail a missing case NOT_FOUND and a
    record's unknown field alone. Each part's results come in its order."""
    n = harness.names
    key, subject, status = n.key, n.task_subject, n.task_status
    crm = harness.crm
    one, two = harness.seed(n.case, [{n.subject: "one"}, {n.subject: "two"}])
    held, still_open, closed = crm.upsert_records(
        n.task,
        key,
        [
            {key: "k-held", subject: "worked by staff", status: n.task_done},
            {key: "k-open", subject: "open", status: n.task_open},
            {key: "k-closed", subject: "closed", status: n.task_done},
        ],
    )
    held_before = read_one(crm, n.task, str(held.id), [subject, status])
    closed_stamp = read_one(crm, n.task, str(closed.id), [])[n.modstamp]
    missing_task, missing_case = n.missing_id(n.task), n.missing_id(n.case)

    harness.clock.advance(minutes=1)
    results = crm.write_page(
        PageWrites(
            follow_up_object=n.task,
            key_field=key,
            record_object=n.case,
            creates=[
                {key: "k-new", subject: "new", status: n.task_open},
                {subject: "no key", status: n.task_open},
                {key: "k-held", subject: "overwrite?", status: n.task_open},
            ],
            completes=[str(still_open.id), str(closed.id), missing_task],
            completion={status: n.task_done},
            updates=[
                (one, {n.flag: n.flag_values["at_risk"]}),
                (missing_case, {n.flag: n.flag_values["breached"]}),
                (two, {n.unknown_field: "x"}),
            ],
        )
    )

    assert [(r.ref, r.ok, r.created) for r in results.creates] == [
        ("k-new", True, True),
        ("", False, False),
        ("k-held", True, False),
    ]
    assert results.creates[1].error_code == "REQUIRED_FIELD_MISSING"
    assert results.creates[2].id == held.id
    assert read_one(crm, n.task, str(held.id), [subject, status]) == held_before
    made = read_one(crm, n.task, str(results.creates[0].id), [key, subject])
    assert (made[key], made[subject]) == ("k-new", "new")

    assert [(r.ref, r.ok) for r in results.completes] == [
        (still_open.id, True),
        (closed.id, True),
        (missing_task, False),
    ]
    assert results.completes[2].error_code == "NOT_FOUND"
    assert read_one(crm, n.task, str(still_open.id), [status])[status] == n.task_done
    assert read_one(crm, n.task, str(closed.id), [])[n.modstamp] == closed_stamp

    assert [(r.ref, r.ok) for r in results.updates] == [
        (one, True),
        (missing_case, False),
        (two, False),
    ]
    assert results.updates[1].error_code == "NOT_FOUND"
    assert (results.updates[2].error_code, results.updates[2].fields) == (
        "INVALID_FIELD",
        (n.unknown_field,),
    )
    flags = {r.id: r.fields[n.flag] for r in crm.records_by_id(n.case, [one, two], [n.flag])}
    assert flags == {one: n.flag_values["at_risk"], two: None}


def test_write_page_of_completed_tasks_and_held_keys_writes_nothing(harness: CrmHarness) -> None:
    """A write_page whose completions are all complete already and whose creates' keys are
    all held succeeds for each without a write call; an empty one answers three empty
    lists and makes no call at all."""
    n = harness.names
    key, status = n.key, n.task_status
    crm = harness.crm
    [closed] = crm.upsert_records(n.task, key, [{key: "k-closed", status: n.task_done}])
    stamp = read_one(crm, n.task, str(closed.id), [])[n.modstamp]
    harness.clock.advance(minutes=1)
    writes = crm.calls.by_kind.get("write", 0)
    results = crm.write_page(
        PageWrites(
            follow_up_object=n.task,
            key_field=key,
            record_object=n.case,
            completes=[str(closed.id)],
            completion={status: n.task_done},
        )
    )
    assert [(r.ref, r.ok) for r in results.completes] == [(closed.id, True)]
    assert (results.creates, results.updates) == ([], [])
    assert crm.calls.by_kind.get("write", 0) == writes
    assert read_one(crm, n.task, str(closed.id), [])[n.modstamp] == stamp

    before = crm.calls.total
    empty = crm.write_page(PageWrites(follow_up_object=n.task, key_field=key, record_object=n.case))
    assert (empty.creates, empty.completes, empty.updates) == ([], [], [])
    assert crm.calls.total == before


def test_write_page_costs_the_write_calls_its_operations_fill(harness: CrmHarness) -> None:
    """150 follow-ups created and 150 cases flagged in one write_page: an adapter that sends
    every kind in the same requests makes one write call (300 operations); one that sends
    each kind in calls of its own makes two (150 of each, one call each)."""
    n = harness.names
    cases = harness.seed(n.case, [{n.subject: "s"}] * 150)
    crm = harness.crm
    writes = crm.calls.by_kind.get("write", 0)
    results = crm.write_page(
        PageWrites(
            follow_up_object=n.task,
            key_field=n.key,
            record_object=n.case,
            creates=[{n.key: f"k-{i}", n.task_status: n.task_open} for i in range(150)],
            updates=[(c, {n.flag: n.flag_values["met"]}) for c in cases],
        )
    )
    assert all(r.ok and r.created for r in results.creates)
    assert all(r.ok for r in results.updates)
    expected = 1 if harness.kinds_share_write_calls else 2
    assert crm.calls.by_kind.get("write", 0) - writes == expected


def test_a_write_call_fits_one_operation_and_fewer_than_any_that_fits(
    harness: CrmHarness,
) -> None:
    """write_call_fits: one operation of any kind alone fits, and of counts that fit (up to
    1,200 of each), fewer of any kind fit too."""
    fits = harness.crm.write_call_fits
    assert fits(1, 0, 0) and fits(0, 1, 0) and fits(0, 0, 1)
    steps = (0, 1, 199, 200, 201, 400, 999, 1000, 1001, 1200)
    for counts in itertools.product(steps, repeat=3):
        if fits(*counts):
            for kind in range(3):
                fewer = [*counts]
                fewer[kind] = max(0, fewer[kind] - 1)
                assert fits(*fewer), (counts, kind)


# --------------------------------------------------------------------------- describe


def test_describe_case_and_task(harness: CrmHarness) -> None:
    """describe gives the reference org's fields with the port's type names and flags."""
    n, crm = harness.names, harness.crm
    case = crm.describe(n.case)
    assert {name: case[name].type for name in n.case_types} == dict(n.case_types)
    assert all(case[name].updateable for name in n.write_back)
    assert not case[n.modstamp].updateable
    assert all(info.name == name for name, info in case.items())

    task = crm.describe(n.task)
    assert {name: task[name].type for name in n.task_types} == dict(n.task_types)
    assert task[n.key].external_id
    assert task[n.key].unique
    assert task[n.task_status].updateable
    assert not task[n.task_subject].external_id


def test_describe_unknown_object_fails(harness: CrmHarness) -> None:
    """describe of an object the CRM does not have raises CrmError."""
    with pytest.raises(CrmError, match=harness.names.unknown_object):
        harness.crm.describe(harness.names.unknown_object)


# --------------------------------------------------------------------------- concurrency, calls


def test_reader_while_another_client_writes(harness: CrmHarness) -> None:
    """A reader paging through records while another client keeps updating some of them
    sees each untouched record exactly once, in order, and never fails."""
    n = harness.names
    made = harness.seed(
        n.case, [{n.subject: f"{i}", n.modstamp: stamp_ms(n, i)} for i in range(2400)]
    )
    touched = made[::6]
    untouched = sorted(set(made) - set(touched))
    writer_client = harness.second_client()
    wrote_once, enough_reads = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    on_track = n.flag_values["on_track"]

    def write() -> None:
        try:
            for _ in range(200):  # bounded: normally stopped by the reader after 3 reads
                results = writer_client.update_records(
                    n.case, [(rid, {n.flag: on_track}) for rid in touched]
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
            got = list(harness.crm.changed_records(n.case, [n.subject], since=None, until=until))
            keys = [(r.fields[n.modstamp], r.id) for r in got]
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
    later = harness.crm.changed_records(n.case, [], since=until, until=FAR)
    assert set(ids(later)) == set(touched)


def test_write_calls_are_counted_per_batch_of_200(harness: CrmHarness) -> None:
    """Writing 201 records costs one write call per started batch the adapter sends in one
    request (200 records: two calls; 1,000 packed in a Composite or a $batch: one); a
    describe costs one describe call."""
    n = harness.names
    made = harness.seed(n.case, [{n.subject: "s"}] * 201)
    crm = harness.crm
    before = dict(crm.calls.by_kind)
    results: list[WriteResult] = crm.update_records(
        n.case, [(rid, {n.flag: n.flag_values["met"]}) for rid in made]
    )
    assert all(r.ok for r in results)
    expected = -(-201 // harness.records_per_write_call)  # ceil
    assert crm.calls.by_kind.get("write", 0) - before.get("write", 0) == expected
    crm.describe(n.case)
    assert crm.calls.by_kind.get("describe", 0) - before.get("describe", 0) == 1


# --------------------------------------------------------------------------- lifecycle


def test_close_lets_go_raises_nothing_and_keeps_the_records(harness: CrmHarness) -> None:
    """A client that read records closes, and closes again, without an error; what it saw
    stays in the CRM for the next client."""
    n = harness.names
    (case,) = harness.seed(n.case, [{n.subject: "kept"}])
    other = harness.second_client()
    assert read_one(other, n.case, case, [n.subject])[n.subject] == "kept"
    other.close()
    other.close()
    assert read_one(harness.crm, n.case, case, [n.subject])[n.subject] == "kept"
