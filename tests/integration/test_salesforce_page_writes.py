"""A page's writes through the Salesforce adapter against the HTTP fake org: creates
(POST), completions and flag updates (PATCH) packed together, five Collections
subrequests of 200 records to a Composite call, and each record's outcome in a mixed one.

The billed write calls of a ``write_page`` are ``ceil(collections / 5)``, where
``collections = ceil(creates / 200) + ceil((completions written + updates) / 200)``;
each expected figure below is that sum worked out for its page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crmsync.ports import PageWrites
from fakes.clock import ManualClock
from fakes.salesforce_fake import BASE, FakeOrg, FakeSalesforce, fake_salesforce, session_client

SOBJECTS = f"{BASE}/composite/sobjects"
POST, PATCH = ("POST", SOBJECTS), ("PATCH", SOBJECTS)
KEY = "CrmSync_Key__c"
FLAG = "Charter_Status__c"
OPEN, DONE = "Not Started", "Completed"
MISSING_CASE = "500000000000999AAA"
MISSING_TASK = "00T000000000999AAA"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with fake_salesforce(ManualClock(datetime(2026, 3, 4, 10, tzinfo=UTC))) as started:
        yield started


@pytest.fixture
def org(fake: FakeSalesforce) -> FakeOrg:
    return fake.org


def page(
    creates: int = 0, cases: list[str] | None = None, completes: list[str] | None = None
) -> PageWrites:
    """``creates`` new follow-ups (keys ``k-0``...), each of ``cases`` flagged ``met`` and
    each of ``completes`` completed."""
    return PageWrites(
        follow_up_object="Task",
        key_field=KEY,
        record_object="Case",
        creates=[{KEY: f"k-{i}", "Subject": "follow up", "Status": OPEN} for i in range(creates)],
        completes=completes or [],
        completion={"Status": DONE},
        updates=[(rid, {FLAG: "met"}) for rid in cases or []],
    )


@pytest.mark.parametrize(
    ("creates", "flags", "composites"),
    [
        # 1 + 1 collections: one Composite call of two subrequests
        (1, 1, [[POST, PATCH]]),
        # 2 + 3 = 5 collections: one Composite call
        (400, 600, [[POST, POST, PATCH, PATCH, PATCH]]),
        # 3 + 3 = 6 collections: two Composite calls (five, then one)
        (500, 500, [[POST, POST, POST, PATCH, PATCH], [PATCH]]),
        # 3 + 5 = 8 collections: two Composite calls (five, then three)
        (500, 1000, [[POST, POST, POST, PATCH, PATCH], [PATCH, PATCH, PATCH]]),
        # 0 + 5 collections: one Composite call
        (0, 1000, [[PATCH, PATCH, PATCH, PATCH, PATCH]]),
    ],
)
def test_creates_and_flag_updates_share_composite_calls(
    org: FakeOrg, creates: int, flags: int, composites: list[list[tuple[str, str]]]
) -> None:
    """A page of new follow-ups and flag updates costs one billed call per five Collections
    subrequests, the creates' and the updates' packed together; every record is written."""
    cases = org.seed("Case", [{"Subject": "s"}] * flags)
    crm = session_client(org)
    results = crm.write_page(page(creates, cases))
    assert [(r.ok, r.created) for r in results.creates] == [(True, True)] * creates
    assert [(r.ref, r.ok) for r in results.updates] == [(rid, True) for rid in cases]
    assert results.completes == []
    assert org.composite_log == composites
    assert org.billed() == len(composites)
    assert crm.calls.by_kind == {"write": len(composites)}
    assert len([t for t in org.all("Task") if t.get(KEY)]) == creates
    assert {c.get(FLAG) for c in org.all("Case")} <= {"met"}


@pytest.mark.parametrize(
    ("creates", "completes", "updates", "fits"),
    [
        (1000, 0, 0, True),  # 5 POST collections
        (1001, 0, 0, False),  # 6
        (500, 0, 400, True),  # 3 + 2
        (500, 0, 401, False),  # 3 + 3
        (200, 100, 300, True),  # 1 + 2: completions and updates share collections
        (0, 600, 400, True),  # 0 + 5
        (0, 600, 401, False),  # 0 + 6
        (1, 0, 0, True),
    ],
)
def test_a_write_call_fits_five_collections(
    org: FakeOrg, creates: int, completes: int, updates: int, fits: bool
) -> None:
    """One write call carries what one Composite call packs: ``ceil(creates / 200) +
    ceil((completes + updates) / 200)`` at most 5."""
    crm = session_client(org)
    assert crm.write_call_fits(creates, completes, updates) is fits


def test_one_kind_of_write_alone_is_one_collections_request(org: FakeOrg) -> None:
    """A page of one create (one collection) is one Collections request, not a Composite."""
    crm = session_client(org)
    [made] = crm.write_page(page(creates=1)).creates
    assert (made.ok, made.created) == (True, True)
    assert org.composite_log == []
    assert [(m, p) for m, p, _billed in org.log] == [POST]


def test_completions_and_flag_updates_share_patch_collections(org: FakeOrg) -> None:
    """150 open tasks to complete (50 more already complete) and 250 cases to flag: one
    query reads the 200 tasks, then the 150 completions and the 250 updates, 400 records,
    fill two PATCH collections (150 Task + 50 Case, then 200 Case) of one Composite call,
    where separate collections would take three. The complete tasks are not written."""
    open_ids = org.seed("Task", [{KEY: f"o-{i}", "Status": OPEN} for i in range(150)])
    done_ids = org.seed("Task", [{KEY: f"d-{i}", "Status": DONE} for i in range(50)])
    done_before = {rid: org.get("Task", rid)["SystemModstamp"] for rid in done_ids}
    cases = org.seed("Case", [{"Subject": "s"}] * 250)
    crm = session_client(org)

    results = crm.write_page(page(cases=cases, completes=open_ids + done_ids))

    assert [(r.ref, r.ok) for r in results.completes] == [(i, True) for i in open_ids + done_ids]
    assert [(r.ref, r.ok) for r in results.updates] == [(rid, True) for rid in cases]
    assert {org.get("Task", rid)["Status"] for rid in open_ids} == {DONE}
    assert {rid: org.get("Task", rid)["SystemModstamp"] for rid in done_ids} == done_before
    assert {org.get("Case", rid)[FLAG] for rid in cases} == {"met"}
    assert org.composite_log[-1] == [PATCH, PATCH]
    assert crm.calls.by_kind == {"query": 1, "write": 1}
    assert org.billed() == 2


def test_each_record_of_a_mixed_composite_keeps_its_own_outcome(org: FakeOrg) -> None:
    """In one Composite call: a create whose key a task already holds (DUPLICATE_VALUE) is
    answered with that task's id, created False, the task left as staff left it; a missing
    task's completion and a missing case's update are NOT_FOUND; a case whose row is locked
    once is sent again alone and written. Calls: the tasks' state read, the Composite, the
    locked case's Collections request, the held key's lookup."""
    one, locked = org.seed("Case", [{"Subject": "one"}, {"Subject": "locked"}])
    held, still_open = org.seed(
        "Task",
        [
            {KEY: "k-held", "Subject": "worked by staff", "Status": DONE},
            {KEY: "k-open", "Subject": "open", "Status": OPEN},
        ],
    )
    held_before = org.get("Task", held)
    org.lock(locked, times=1)
    crm = session_client(org)

    results = crm.write_page(
        PageWrites(
            follow_up_object="Task",
            key_field=KEY,
            record_object="Case",
            creates=[
                {KEY: "k-new", "Subject": "new", "Status": OPEN},
                {KEY: "k-held", "Subject": "overwrite?", "Status": OPEN},
            ],
            completes=[still_open, MISSING_TASK],
            completion={"Status": DONE},
            updates=[
                (one, {FLAG: "at_risk"}),
                (MISSING_CASE, {FLAG: "met"}),
                (locked, {FLAG: "met"}),
            ],
        )
    )

    new, taken = results.creates
    assert (new.ref, new.ok, new.created) == ("k-new", True, True)
    assert (taken.ref, taken.ok, taken.created, taken.id) == ("k-held", True, False, held)
    assert org.get("Task", held) == held_before
    assert org.get("Task", str(new.id))["Subject"] == "new"
    assert [(r.ref, r.ok, r.error_code) for r in results.completes] == [
        (still_open, True, None),
        (MISSING_TASK, False, "NOT_FOUND"),
    ]
    assert org.get("Task", still_open)["Status"] == DONE
    assert [(r.ref, r.ok, r.error_code, r.transient) for r in results.updates] == [
        (one, True, None, False),
        (MISSING_CASE, False, "NOT_FOUND", False),
        (locked, True, None, False),
    ]
    assert (org.get("Case", one)[FLAG], org.get("Case", locked)[FLAG]) == ("at_risk", "met")
    assert org.composite_log[-1] == [POST, PATCH]
    billed = [(m, p.removeprefix(BASE)) for m, p, paid in org.log if paid]
    assert [b for b in billed if b[1] != "/composite" or b[0] != "POST"] == [
        ("GET", "/queryAll"),  # the tasks to complete, as they are
        ("PATCH", "/composite/sobjects"),  # the locked case again, alone
        ("GET", "/queryAll"),  # the id of the task holding k-held
    ]
    assert crm.calls.by_kind == {"query": 2, "write": 2}


def test_an_unknown_field_fails_only_the_records_of_the_object_it_is_unknown_on(
    org: FakeOrg,
) -> None:
    """A PATCH collection carrying a Task completion and Case updates, where one case's
    update names ActivityDate (a Task field, no Case field): the org refuses the whole
    subrequest ("No such column 'ActivityDate' on sobject of type Case"). That case alone
    fails INVALID_FIELD; the completion carrying ActivityDate on its Task and the other
    case are sent again and written."""
    first, odd = org.seed("Case", [{"Subject": "a"}, {"Subject": "b"}])
    [task] = org.seed("Task", [{KEY: "k-open", "Status": OPEN}])
    crm = session_client(org)

    results = crm.write_page(
        PageWrites(
            follow_up_object="Task",
            key_field=KEY,
            record_object="Case",
            creates=[{KEY: "k-new", "Status": OPEN}],
            completes=[task],
            completion={"Status": DONE, "ActivityDate": "2026-03-05"},
            updates=[(first, {FLAG: "met"}), (odd, {FLAG: "met", "ActivityDate": "2026-03-05"})],
        )
    )

    assert [(r.ref, r.ok) for r in results.completes] == [(task, True)]
    assert (org.get("Task", task)["Status"], org.get("Task", task)["ActivityDate"]) == (
        DONE,
        "2026-03-05",
    )
    assert [(r.ref, r.ok, r.error_code, r.fields) for r in results.updates] == [
        (first, True, None, ()),
        (odd, False, "INVALID_FIELD", ("ActivityDate",)),
    ]
    assert org.get("Case", first)[FLAG] == "met"
    assert FLAG not in org.get("Case", odd)
    assert [(r.ok, r.created) for r in results.creates] == [(True, True)]


def test_a_subrequest_that_fails_alone_is_resent_without_the_rest(org: FakeOrg) -> None:
    """The creates' subrequest of a mixed Composite call answers 503 while the updates'
    succeeds: the creates alone are sent again (one Collections request) and each record is
    written once."""
    cases = org.seed("Case", [{"Subject": "s"}] * 2)
    org.fail_next("/composite/sobjects", status=503, method="POST", inside_composite=True)
    crm = session_client(org)
    results = crm.write_page(page(creates=2, cases=cases))
    assert [(r.ok, r.created) for r in results.creates] == [(True, True)] * 2
    assert [r.ok for r in results.updates] == [True, True]
    assert sorted(t[KEY] for t in org.all("Task")) == ["k-0", "k-1"]
    assert [(m, p) for m, p, _billed in org.log] == [("POST", f"{BASE}/composite"), POST]
