"""The Dataverse adapter at the HTTP level against the fake org (tests/fakes/dynamics365_fake).

The port's promises (CrmPort) in Dataverse's names: windows on ``modifiedon``, paging by
``@odata.nextLink`` on the org's host only, reads in bulk, writes in ``$batch`` change sets
with per-record results, follow-ups created only when absent through the alternate key,
429 ``Retry-After`` honoured, an expired token renewed once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from crmsync.adapters.crm.dynamics365 import DataverseCrm
from crmsync.adapters.crm.retry_policy import RetryPolicy
from crmsync.errors import CrmError, CrmLimitError, CrmTransientError
from crmsync.ports import ApiBudget, FieldFilter, PageWrites
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
FAR = datetime(2030, 1, 1, tzinfo=UTC)
KEY = "crmsync_key"


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{text}+00:00")


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


def ids(records: object) -> list[str]:
    return [r.id for r in records]  # type: ignore[attr-defined]


def writes(org: FakeDataverse) -> int:
    return sum(1 for method, path in org.log if method == "POST" and path.endswith("$batch"))


# --------------------------------------------------------------------------- reads


def test_server_time_is_the_orgs_clock(crm: DataverseCrm, clock: ManualClock) -> None:
    assert crm.server_time() == START
    clock.advance(minutes=5)
    assert crm.server_time() == at("09:20:00")


def test_window_order_and_ties_on_modifiedon(crm: DataverseCrm, org: FakeDataverse) -> None:
    """since <= modifiedon < until, ordered by modifiedon then id; id and stamp included,
    the stamp as the Web API answers it: whole seconds (09:05:00.250 is 09:05:00Z)."""
    tie = "2026-03-02T09:05:00.250Z"
    a, b, c, d = (
        "00000000-0000-0000-0000-00000000000a",
        "00000000-0000-0000-0000-00000000000b",
        "00000000-0000-0000-0000-00000000000c",
        "00000000-0000-0000-0000-00000000000d",
    )
    org.seed(
        "incident",
        [
            {"incidentid": c, "title": "c", "modifiedon": tie},
            {"incidentid": d, "title": "d", "modifiedon": "2026-03-02T09:00:00.000Z"},
            {"incidentid": a, "title": "a", "modifiedon": tie},
            {"incidentid": b, "title": "b", "modifiedon": "2026-03-02T09:10:00.000Z"},
        ],
    )
    assert ids(crm.changed_records("incident", ["title"], since=None, until=FAR)) == [d, a, c, b]
    window = list(
        crm.changed_records("incident", ["title"], since=at("09:05:00"), until=at("09:10:00"))
    )
    assert ids(window) == [a, c]
    assert dict(window[0].fields) == {
        "incidentid": a,
        "modifiedon": "2026-03-02T09:05:00Z",
        "title": "a",
    }


def test_pages_follow_next_link_one_query_each(org: FakeDataverse) -> None:
    """Five rows in pages of two: three queries, every row once, in order."""
    made = org.seed(
        "incident",
        [{"title": str(i), "modifiedon": f"2026-03-02T09:0{i}:00.000Z"} for i in range(5)],
    )
    crm = dataverse_client(org, page_size=2)
    got = ids(crm.changed_records("incident", [], since=None, until=FAR))
    assert got == made
    assert crm.calls.by_kind == {"query": 3}


def test_a_next_link_to_another_host_is_refused_before_any_request(org: FakeDataverse) -> None:
    """A nextLink outside the org's Web API is a CrmError naming the host; the token is
    never sent there (no request leaves for it)."""
    org.seed("incident", [{"title": str(i)} for i in range(3)])
    org.foreign_next_link = "https://attacker.example.net"
    crm = dataverse_client(org, page_size=2)
    with pytest.raises(CrmError, match=r"attacker\.example\.net outside the org"):
        list(crm.changed_records("incident", [], since=None, until=FAR))
    assert crm.calls.by_kind == {"query": 1}


def test_filters_equal_not_equal_keeps_null_and_in(crm: DataverseCrm, org: FakeDataverse) -> None:
    complaint, question, untyped = org.seed(
        "incident", [{"casetypecode": 100000000}, {"casetypecode": 2}, {"title": "no type"}]
    )

    def matching(*where: FieldFilter) -> set[str]:
        return set(
            ids(
                crm.changed_records(
                    "incident", ["casetypecode"], since=None, until=FAR, where=where
                )
            )
        )

    assert matching(FieldFilter("casetypecode", "=", 100000000)) == {complaint}
    assert matching(FieldFilter("casetypecode", "!=", 100000000)) == {question, untyped}
    assert matching(FieldFilter("casetypecode", "in", (100000000, 2))) == {complaint, question}


def test_text_values_with_quotes_are_quoted_not_injected(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    [mine] = org.seed("task", [{"category": "O'Brien's update"}])
    org.seed("task", [{"category": "other"}])
    got = crm.changed_records(
        "task", ["category"], since=None, until=FAR,
        where=[FieldFilter("category", "=", "O'Brien's update")],
    )  # fmt: skip
    assert ids(got) == [mine]
    with pytest.raises(CrmError, match="not a Dataverse column"):
        list(crm.changed_records("task", ["category) or (1 eq 1"], since=None, until=FAR))


def test_related_rows_of_many_parents_in_bulk(org: FakeDataverse) -> None:
    """250 parents at 100 ids a query: three queries, only the filtered children; at the
    default 400 ids a query, one."""
    crm = dataverse_client(org, ids_per_query=100)
    cases = org.seed("incident", [{"title": str(i)} for i in range(251)])
    asked, other = cases[:250], cases[250]
    org.seed("task", [{"regardingobjectid": c, "category": "Customer Update"} for c in asked])
    org.seed("task", [{"regardingobjectid": c, "category": "Call"} for c in asked[:10]])
    org.seed("task", [{"regardingobjectid": other, "category": "Customer Update"}])
    before = crm.calls.by_kind.get("query", 0)
    got = list(
        crm.related_records(
            "task", ["category"], parent_field="regardingobjectid", parent_ids=asked,
            where=[FieldFilter("category", "=", "Customer Update")],
        )
    )  # fmt: skip
    assert sorted(r.fields["regardingobjectid"] for r in got) == sorted(asked)
    assert crm.calls.by_kind["query"] - before == 3
    assert (
        list(crm.related_records("task", [], parent_field="regardingobjectid", parent_ids=[])) == []
    )
    default = dataverse_client(org)
    again = list(
        default.related_records(
            "task", ["category"], parent_field="regardingobjectid", parent_ids=asked,
            where=[FieldFilter("category", "=", "Customer Update")],
        )
    )  # fmt: skip
    assert sorted(r.id for r in again) == sorted(r.id for r in got)
    assert default.calls.by_kind == {"query": 1}


def test_records_by_id_leaves_out_missing_ids(crm: DataverseCrm, org: FakeDataverse) -> None:
    one, two = org.seed("incident", [{"title": "one"}, {"title": "two"}])
    missing = "00000000-0000-0000-0000-000000000404"
    got = crm.records_by_id("incident", [one, missing, two, "not-a-guid"], ["title"])
    assert {r.id: r.fields["title"] for r in got} == {one: "one", two: "two"}


def test_deleted_rows_come_from_the_recycle_bin_in_their_window(
    crm: DataverseCrm, org: FakeDataverse, clock: ManualClock
) -> None:
    a, b = org.seed("incident", [{"title": "a"}, {"title": "b"}])
    [task] = org.seed("task", [{"subject": "t"}])
    clock.set("2026-03-02T09:20:00+00:00")
    org.delete("incident", [a])
    org.delete("task", [task])
    assert list(crm.deleted_records("incident", since=at("09:10:00"), until=at("09:30:00"))) == [a]
    assert list(crm.deleted_records("incident", since=at("09:21:00"), until=at("09:30:00"))) == []
    assert ids(crm.records_by_id("incident", [a, b], [])) == [b]


# --------------------------------------------------------------------------- writes


def test_updates_in_one_batch_with_a_result_per_record(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """One $batch; a missing row (never created by the PATCH), an unknown column and a
    value JSON cannot carry fail alone; the good row is written; datetimes in UTC Z."""
    one, two, three = org.seed("incident", [{"title": "old"}] * 3)
    missing = "00000000-0000-0000-0000-000000000404"
    results = crm.update_records(
        "incident",
        [
            (one, {"title": "new", "crmsync_charternextdue": "2026-03-04T17:00:00.000+0000"}),
            (missing, {"title": "x"}),
            (two, {"crmsync_nosuchcolumn": "x"}),
            (three, {"title": {1, 2}}),
        ],
    )
    assert [(r.ref, r.ok, r.error_code) for r in results] == [
        (one, True, None),
        (missing, False, "NOT_FOUND"),
        (two, False, "INVALID_FIELD"),
        (three, False, "INVALID_FIELD"),
    ]
    assert results[2].fields == ("crmsync_nosuchcolumn",)
    assert writes(org) == 1
    # the org takes UTC Z text only, and keeps it to the millisecond
    assert org.get("incident", one)["crmsync_charternextdue"] == "2026-03-04T17:00:00.000Z"
    assert [org.get("incident", r)["title"] for r in (two, three)] == ["old", "old"]
    assert missing not in {r["incidentid"] for r in org.all("incident")}


def test_an_update_moves_modifiedon(
    crm: DataverseCrm, org: FakeDataverse, clock: ManualClock
) -> None:
    [case] = org.seed("incident", [{"modifiedon": "2026-03-02T09:00:00.000Z"}])
    now = clock.advance(minutes=5)
    assert crm.update_records("incident", [(case, {"crmsync_charterstatus": 100000002})])[0].ok
    assert ids(crm.changed_records("incident", [], since=None, until=now)) == []
    assert ids(crm.changed_records("incident", [], since=now, until=FAR)) == [case]


def test_1001_writes_take_two_batches(crm: DataverseCrm, org: FakeDataverse) -> None:
    made = org.seed("incident", [{"title": "s"}] * 1001)
    results = crm.update_records(
        "incident", [(r, {"crmsync_charterstatus": 100000003}) for r in made]
    )
    assert all(r.ok for r in results)
    assert crm.calls.by_kind["write"] == 2


def test_create_if_absent_never_touches_an_existing_key(
    crm: DataverseCrm, org: FakeDataverse, clock: ManualClock
) -> None:
    """A new key makes a row; a held key answers its row's id, created False, and leaves
    the row exactly as staff left it; a key twice in one call makes one row."""
    k1, k2 = "crmsync:case-1:ack:0:at_risk", "crmsync:case-1:ack:0:breached"
    [made] = crm.create_if_absent("task", KEY, [{KEY: k1, "subject": "one", "statecode": 0}])
    assert (made.ref, made.ok, made.created) == (k1, True, True)
    assert made.id is not None
    org.touch("task", made.id, subject="done by staff", statecode=1)
    worked = org.get("task", made.id)
    clock.advance(minutes=1)
    again = crm.create_if_absent(
        "task",
        KEY,
        [
            {KEY: k1, "subject": "overwrite?", "statecode": 0},
            {KEY: k2, "subject": "two"},
            {KEY: k2, "subject": "two again"},
        ],
    )
    assert [(r.ref, r.ok, r.created) for r in again] == [
        (k1, True, False),
        (k2, True, True),
        (k2, True, True),
    ]
    assert again[0].id == made.id
    assert again[1].id == again[2].id
    assert org.get("task", made.id) == worked
    assert sorted(r[KEY] for r in org.all("task")) == [k1, k2]


def test_create_if_absent_without_the_key_fails_that_record(crm: DataverseCrm) -> None:
    results = crm.create_if_absent(
        "task", KEY, [{"subject": "no key"}, {KEY: "k-ok", "subject": "fine"}]
    )
    assert [r.ok for r in results] == [False, True]
    assert results[0].error_code == "REQUIRED_FIELD_MISSING"


def test_upsert_inserts_then_updates_by_key(crm: DataverseCrm, org: FakeDataverse) -> None:
    first = crm.upsert_records("task", KEY, [{KEY: "k1", "subject": "one"}])
    second = crm.upsert_records("task", KEY, [{KEY: "k1", "subject": "one again"}])
    assert (first[0].created, second[0].created) == (True, False)
    assert first[0].id == second[0].id
    assert [r["subject"] for r in org.all("task")] == ["one again"]


def test_complete_tasks_by_state_is_idempotent(crm: DataverseCrm, org: FakeDataverse) -> None:
    """Completing writes only the open row; completing again writes nothing."""
    open_id, done_id = org.seed(
        "task", [{"statecode": 0, "statuscode": 2}, {"statecode": 1, "statuscode": 5}]
    )
    missing = "00000000-0000-0000-0000-000000000404"
    done_stamp = org.get("task", done_id)["modifiedon"]
    completed = {"statecode": 1, "statuscode": 5}
    results = crm.complete_tasks("task", [open_id, done_id, missing], completed)
    assert [(r.ref, r.ok, r.error_code) for r in results] == [
        (open_id, True, None), (done_id, True, None), (missing, False, "NOT_FOUND"),
    ]  # fmt: skip
    assert (org.get("task", open_id)["statecode"], org.get("task", done_id)["modifiedon"]) == (
        1,
        done_stamp,
    )
    before = writes(org)
    assert all(r.ok for r in crm.complete_tasks("task", [open_id, done_id], completed))
    assert writes(org) == before


def test_a_page_of_every_kind_of_write_fills_batches_of_1000_operations(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """300 follow-ups to create, 400 to complete and 500 cases to flag: 1,200 operations,
    so two $batch requests (1,000 and 200), after one read of the 400 tasks' state; every
    operation done, each part's results in order."""
    cases = org.seed("incident", [{"title": "s"}] * 500)
    tasks = org.seed("task", [{"statecode": 0, "statuscode": 2}] * 400)
    completed = {"statecode": 1, "statuscode": 5}
    results = crm.write_page(
        PageWrites(
            follow_up_object="task",
            key_field=KEY,
            record_object="incident",
            creates=[{KEY: f"k-{i}", "subject": f"follow-up {i}"} for i in range(300)],
            completes=tasks,
            completion=completed,
            updates=[(c, {"crmsync_charterstatus": 100000003}) for c in cases],
        )
    )
    assert [(r.ref, r.created) for r in results.creates] == [(f"k-{i}", True) for i in range(300)]
    assert [r.ref for r in results.completes] == tasks
    assert [r.ref for r in results.updates] == cases
    assert all(r.ok for r in [*results.creates, *results.completes, *results.updates])
    assert crm.calls.by_kind == {"query": 1, "write": 2}
    assert {org.get("task", t)["statecode"] for t in tasks} == {1}
    assert {org.get("incident", c)["crmsync_charterstatus"] for c in cases} == {100000003}


def test_a_write_call_fits_one_batch_of_any_kinds(org: FakeDataverse) -> None:
    """One call carries 1,000 operations of any mix (500 + 500, or 300 + 400 + 300), not
    1,001; an adapter of smaller batches says so (10: 4 + 3 + 3, not 4 + 3 + 4)."""
    crm = dataverse_client(org)
    assert crm.write_call_fits(500, 0, 500)
    assert crm.write_call_fits(300, 400, 300)
    assert not crm.write_call_fits(500, 0, 501)
    assert not crm.write_call_fits(0, 0, 1001)
    small = dataverse_client(org, batch_size=10)
    assert small.write_call_fits(4, 3, 3)
    assert not small.write_call_fits(4, 3, 4)


def test_a_page_whose_operations_fail_alone_keeps_the_others(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """In one page: a create answered 503 once is sent again alone (a second $batch) and
    made; a flag refused by a business rule is that record's error; the completion and the
    other flag are done in the first $batch."""
    busy_key = "k-busy"
    refused, fine = org.seed("incident", [{"title": "x"}] * 2)
    [task] = org.seed("task", [{"statecode": 0, "statuscode": 2}])
    org.fail_op(busy_key, 503, "0x80040265", "Server busy")
    org.fail_op(refused, 400, "0x80040203", "Business rule refused the value")
    results = crm.write_page(
        PageWrites(
            follow_up_object="task",
            key_field=KEY,
            record_object="incident",
            creates=[{KEY: busy_key, "subject": "made on the second try"}],
            completes=[task],
            completion={"statecode": 1, "statuscode": 5},
            updates=[(r, {"crmsync_charterstatus": 100000002}) for r in (refused, fine)],
        )
    )
    assert [(r.ok, r.created) for r in results.creates] == [(True, True)]
    assert [r.ok for r in results.completes] == [True]
    assert [(r.ok, r.error_code, r.transient) for r in results.updates] == [
        (False, "0x80040203", False),
        (True, None, False),
    ]
    assert writes(org) == 2  # the busy create alone in the second round
    assert [t[KEY] for t in org.all("task") if t[KEY]] == [busy_key]
    assert org.get("task", task)["statecode"] == 1
    assert [org.get("incident", r)["crmsync_charterstatus"] for r in (refused, fine)] == [
        None,
        100000002,
    ]


# --------------------------------------------------------------------------- failures


def test_a_throttled_request_waits_what_retry_after_asks(org: FakeDataverse) -> None:
    waits: list[float] = []
    policy = RetryPolicy(initial_wait=0.5, max_wait=8, jitter=0, sleep=waits.append)
    crm = dataverse_client(org, policy=policy)
    org.seed("incident", [{"title": "a"}])
    org.throttle(times=1, retry_after=3)
    assert len(list(crm.changed_records("incident", [], since=None, until=FAR))) == 1
    assert waits == [3.0]


def test_a_throttle_longer_than_the_policy_waits_ends_the_cycle(org: FakeDataverse) -> None:
    crm = dataverse_client(org)
    org.throttle(times=1, retry_after=600)
    with pytest.raises(CrmLimitError, match="asks to wait 600 s"):
        crm.server_time()


class SlowSession(requests.Session):
    """A session whose first ``slow`` requests time out; it notes each request's timeout."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.slow = slow
        self.timeouts: list[object] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs.get("timeout"))
        if self.slow:
            self.slow -= 1
            raise requests.ReadTimeout("read timed out")
        return super().request(method, url, *args, **kwargs)


def test_every_request_carries_the_timeout_and_a_timed_out_one_is_sent_again(
    org: FakeDataverse,
) -> None:
    """The timeout setting bounds every request; a request that times out is transient."""
    session = SlowSession(slow=1)
    crm = dataverse_client(org, session=session, timeout=7.5)
    org.seed("incident", [{"title": "a"}])
    assert len(list(crm.changed_records("incident", [], since=None, until=FAR))) == 1
    assert session.timeouts == [7.5, 7.5]


def test_a_server_that_never_answers_in_time_ends_the_call_with_a_transient_error(
    org: FakeDataverse,
) -> None:
    """After the policy's attempts, a timed-out read is a ``CrmTransientError`` naming it."""
    crm = dataverse_client(org, session=SlowSession(slow=100), timeout=1)
    with pytest.raises(CrmTransientError, match="timed out"):
        crm.server_time()


def test_an_expired_token_is_renewed_once(crm: DataverseCrm, org: FakeDataverse) -> None:
    org.seed("incident", [{"title": "a"}])
    assert crm.server_time() == START
    org.expire_tokens()
    assert len(list(crm.changed_records("incident", [], since=None, until=FAR))) == 1


def test_a_transient_record_failure_is_sent_again_and_a_permanent_one_reported(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    busy, bad, fine = org.seed("incident", [{"title": "x"}] * 3)
    org.fail_op(busy, 503, "0x80040265", "Server busy")
    org.fail_op(bad, 400, "0x80040203", "Business rule refused the value")
    results = crm.update_records("incident", [(r, {"title": "y"}) for r in (busy, bad, fine)])
    assert [(r.ok, r.error_code) for r in results] == [
        (True, None),
        (False, "0x80040203"),
        (True, None),
    ]
    assert not results[1].transient
    assert writes(org) == 2  # the busy row alone in the second round
    assert [org.get("incident", r)["title"] for r in (busy, bad, fine)] == ["y", "x", "y"]


def test_a_record_error_quoting_the_bearer_token_is_reported_without_it(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """A business rule whose message echoes the request's Authorization header: the
    record's failure names the error with *** where the token was."""
    [row] = org.seed("incident", [{"title": "x"}])
    crm.server_time()  # signs in
    [token] = org.issued_tokens
    org.fail_op(row, 400, "0x80040203", f"refused; request had Authorization: Bearer {token}")
    [result] = crm.update_records("incident", [(row, {"title": "y"})])
    assert (result.ok, result.error_code) == (False, "0x80040203")
    assert token not in (result.message or "")
    assert "Authorization: Bearer ***" in (result.message or "")


# --------------------------------------------------------------------------- describe


def test_describe_names_types_and_the_alternate_key(crm: DataverseCrm) -> None:
    task = crm.describe("task")
    assert {
        n: task[n].type for n in ("subject", "scheduledend", "statecode", "regardingobjectid", KEY)
    } == {
        "subject": "string",
        "scheduledend": "datetime",
        "statecode": "picklist",
        "regardingobjectid": "reference",
        KEY: "string",
    }
    assert (task[KEY].external_id, task[KEY].unique, task["subject"].external_id) == (
        True,
        True,
        False,
    )
    assert not task["modifiedon"].updateable
    assert crm.calls.by_kind == {"describe": 1}
    with pytest.raises(CrmError, match="no table 'new_nosuchtable'"):
        crm.describe("new_nosuchtable")


def test_dataverse_offers_no_daily_api_budget(crm: DataverseCrm) -> None:
    """Dataverse meters requests per five minutes (429), not per day: no ApiBudget port."""
    assert not isinstance(crm, ApiBudget)


def test_lookups_are_bound_on_write_and_read_by_their_column_name(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """A follow-up's case and owner are written as @odata.bind references and read back
    under the lookup's own name."""
    [case] = org.seed("incident", [{"title": "c"}])
    owner = "00000000-0000-0000-0000-0000000000aa"
    [made] = crm.create_if_absent(
        "task", KEY, [{KEY: "k", "subject": "s", "regardingobjectid": case, "ownerid": owner}]
    )
    assert made.id is not None
    stored = org.get("task", made.id)
    assert (stored["regardingobjectid"], stored["ownerid"]) == (case, owner)
    [read] = crm.records_by_id("task", [made.id], ["regardingobjectid", "ownerid"])
    assert (read.fields["regardingobjectid"], read.fields["ownerid"]) == (case, owner)


def test_a_lookup_given_no_guid_fails_that_record_alone(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """A follow-up whose owner is not a Dataverse id is refused before it is sent, naming
    the column; the other follow-up is made."""
    [case] = org.seed("incident", [{"title": "c"}])
    results = crm.create_if_absent(
        "task",
        KEY,
        [
            {KEY: "k-bad", "regardingobjectid": case, "ownerid": "005000000000OWNAAA"},
            {KEY: "k-ok", "regardingobjectid": case},
        ],
    )
    assert [(r.ok, r.error_code, r.fields) for r in results] == [
        (False, "INVALID_FIELD", ("ownerid",)),
        (True, None, ()),
    ]
    assert "'005000000000OWNAAA' is not a Dataverse id" in str(results[0].message)
    assert [t[KEY] for t in org.all("task")] == ["k-ok"]


# --------------------------------------------------------------------------- the org's rules


def test_the_org_refuses_read_only_columns_and_wrong_types_per_record(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """The org stores by the local CRM's rules: a read-only column and a choice given as
    text fail that record alone with the org's code, never transient; the others are
    written, and empty text clears a column."""
    one, two, three = org.seed("incident", [{"title": "old", "description": "d"}] * 3)
    results = crm.update_records(
        "incident",
        [
            (one, {"createdon": "2026-03-01T00:00:00Z"}),
            (two, {"crmsync_charterstatus": "breached"}),
            (three, {"title": "new", "description": ""}),
        ],
    )
    assert [(r.ok, r.error_code, r.transient) for r in results] == [
        (False, "0x80048d19", False),
        (False, "0x80040203", False),
        (True, None, False),
    ]
    assert "createdon" in str(results[0].message)
    assert "crmsync_charterstatus" in str(results[1].message)
    assert org.get("incident", two)["crmsync_charterstatus"] is None
    assert (org.get("incident", three)["title"], org.get("incident", three)["description"]) == (
        "new",
        None,
    )


def test_an_alternate_key_held_by_another_row_fails_duplicate_value(
    crm: DataverseCrm, org: FakeDataverse
) -> None:
    """Giving a task the crmsync_key another task holds fails that write alone
    (DUPLICATE_VALUE) and leaves both keys as they were."""
    first, second = org.seed("task", [{KEY: "k-1"}, {KEY: "k-2"}])
    [result] = crm.update_records("task", [(second, {KEY: "k-1"})])
    assert (result.ok, result.error_code) == (False, "DUPLICATE_VALUE")
    assert (org.get("task", first)[KEY], org.get("task", second)[KEY]) == ("k-1", "k-2")


def test_seeding_refuses_what_the_org_would_not_store(org: FakeDataverse) -> None:
    """The back door stores by the same rules: date-time text with another offset than Z,
    a choice as text or a key held twice is refused."""
    with pytest.raises(ValueError, match="not a UTC date-time"):
        org.seed("incident", [{"new_closedon": "2026-03-02T09:00:00.000+0000"}])
    with pytest.raises(ValueError, match="not a whole number"):
        org.seed("incident", [{"caseorigincode": "1"}])
    org.seed("task", [{KEY: "k-1"}])
    with pytest.raises(ValueError, match="0x80060892"):
        org.seed("task", [{KEY: "k-1"}])
