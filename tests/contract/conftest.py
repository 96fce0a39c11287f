"""The adapters the CRM contract suite runs against, as a list of harness factories.

To add an adapter, write a factory ``(tmp_path, clock) -> context manager of CrmHarness``
whose harness carries the CRM's names and value formats (``CrmNames``) and append it to
``CRM_FACTORIES`` with an id; give it a marker there if it needs a server. Every test in
``test_crm_contract.py`` then runs against it too.
"""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.postgres import PostgresStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.ports import CrmPort, FieldFilter, StateDatabase
from crmsync.redaction import redact_url
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverseServer, dataverse_client
from fakes.salesforce_fake import fake_salesforce, session_client

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def _salesforce_stamp(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _dataverse_stamp(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _dataverse_answer(instant: datetime) -> str:
    """As the Web API answers a date-time column: whole seconds, the fraction cut off."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _salesforce_history(
    parent: str, field: str, old: str | None, new: str, when: str
) -> dict[str, Any] | None:
    return {"CaseId": parent, "Field": field, "OldValue": old, "NewValue": new, "CreatedDate": when}


def _dataverse_history(
    parent: str, field: str, old: str | None, new: str, when: str
) -> dict[str, Any] | None:
    if field != "Status":
        return None  # the org keeps a row per status change only: no other field's history
    return {"new_case": parent, "new_fromstatus": old, "new_tostatus": new, "createdon": when}


@dataclass(frozen=True)
class CrmNames:
    """A CRM's names and value formats for the reference org, as the contract tests use them.

    Objects: ``case`` (complaints), ``task`` (follow-ups and related activities), ``history``
    (status changes, one row per change, parent ``history_parent``, time ``history_created``).
    Case fields: ``id_field`` and ``modstamp`` (every record carries them), ``subject`` (text),
    ``unset`` (a field left empty), ``type_field`` with ``type_values`` (complaint, question),
    ``flag`` (the charter status) with ``flag_values`` by state, ``text_flag`` (the breaches
    text). Task fields: ``key`` (the unique external id), ``task_subject``, ``task_status``
    with ``task_open``/``task_done``, ``task_parent`` and ``task_kind`` with ``task_kinds``
    (customer update, call). ``history_row(parent, field, old, new, when)`` is a history row,
    None when the CRM keeps no history of that field; ``paused``/``resumed`` the filters of
    changes into and out of "Waiting on Customer". ``stamp`` is the CRM's datetime text of an
    instant as it keeps it, ``answer`` as its API answers it (Dataverse: whole seconds);
    ``hand_ids(object, n)`` n ids in ascending order as a person could give them;
    ``missing_id(object)`` a well-formed id of no record; ``made_id`` matches an id the CRM
    makes for a task. ``case_types``/``task_types``: what describe answers for the reference
    fields; ``write_back`` the case fields crmsync writes.
    """

    case: str
    task: str
    history: str
    id_field: str
    modstamp: str
    subject: str
    unset: str
    type_field: str
    type_values: tuple[Any, Any]
    flag: str
    flag_values: Mapping[str, Any]
    text_flag: str
    unknown_field: str
    unknown_object: str
    key: str
    task_subject: str
    task_status: str
    task_open: Any
    task_done: Any
    task_parent: str
    task_kind: str
    task_kinds: tuple[str, str]
    history_parent: str
    history_created: str
    history_row: Callable[[str, str, str | None, str, str], dict[str, Any] | None]
    paused: tuple[FieldFilter, ...]
    resumed: tuple[FieldFilter, ...]
    stamp: Callable[[datetime], str]
    answer: Callable[[datetime], str]
    hand_ids: Callable[[str, int], list[str]]
    missing_id: Callable[[str], str]
    made_id: re.Pattern[str]
    case_types: Mapping[str, str]
    task_types: Mapping[str, str]
    write_back: tuple[str, ...]


_SF_PREFIX = {"Case": "500", "Task": "00T"}

SALESFORCE_NAMES = CrmNames(
    case="Case",
    task="Task",
    history="CaseHistory",
    id_field="Id",
    modstamp="SystemModstamp",
    subject="Subject",
    unset="Origin",
    type_field="Type",
    type_values=("Complaint", "Question"),
    flag="Charter_Status__c",
    flag_values={s: s for s in ("on_track", "at_risk", "breached", "met")},
    text_flag="Charter_Breaches__c",
    unknown_field="No_Such_Field__c",
    unknown_object="No_Such_Object__c",
    key="CrmSync_Key__c",
    task_subject="Subject",
    task_status="Status",
    task_open="Not Started",
    task_done="Completed",
    task_parent="WhatId",
    task_kind="Type",
    task_kinds=("Customer Update", "Call"),
    history_parent="CaseId",
    history_created="CreatedDate",
    history_row=_salesforce_history,
    paused=(
        FieldFilter("Field", "=", "Status"),
        FieldFilter("NewValue", "=", "Waiting on Customer"),
    ),
    resumed=(
        FieldFilter("Field", "=", "Status"),
        FieldFilter("OldValue", "=", "Waiting on Customer"),
    ),
    stamp=_salesforce_stamp,
    answer=_salesforce_stamp,
    hand_ids=lambda object, n: [f"{_SF_PREFIX[object]}{i:012d}AAA" for i in range(n)],
    missing_id=lambda object: f"{_SF_PREFIX[object]}000000000404AAA",
    made_id=re.compile(r"00T[0-9A-Za-z]{15}"),
    case_types={
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
    },
    task_types={
        "Subject": "string",
        "Description": "textarea",
        "ActivityDate": "date",
        "OwnerId": "reference",
        "WhatId": "reference",
        "Status": "picklist",
        "Priority": "picklist",
        "CompletedDateTime": "datetime",
        "CrmSync_Key__c": "string",
    },
    write_back=(
        "Charter_Status__c",
        "Charter_Breaches__c",
        "Charter_Next_Due__c",
        "Charter_Checked_At__c",
        "Archived_At__c",
        "Archive_Ref__c",
    ),
)

_DV_TABLE_MARK = {"incident": "1", "task": "2"}

DATAVERSE_NAMES = CrmNames(
    case="incident",
    task="task",
    history="new_casestatuschange",
    id_field="incidentid",
    modstamp="modifiedon",
    subject="title",
    unset="caseorigincode",
    type_field="casetypecode",
    type_values=(100000000, 1),  # the org's added "Complaint" choice, the stock "Question"
    flag="crmsync_charterstatus",
    flag_values={"on_track": 100000000, "at_risk": 100000001, "breached": 100000002,
                 "met": 100000003},
    text_flag="crmsync_charterbreaches",
    unknown_field="new_nosuchcolumn",
    unknown_object="new_nosuchtable",
    key="crmsync_key",
    task_subject="subject",
    task_status="statecode",
    task_open=0,
    task_done=1,
    task_parent="regardingobjectid",
    task_kind="category",
    task_kinds=("Customer Update", "Call"),
    history_parent="new_case",
    history_created="createdon",
    history_row=_dataverse_history,
    paused=(FieldFilter("new_tostatus", "=", "Waiting on Customer"),),
    resumed=(FieldFilter("new_fromstatus", "=", "Waiting on Customer"),),
    stamp=_dataverse_stamp,
    answer=_dataverse_answer,
    # ids differing in the last group only: their text order is SQL Server's GUID order too
    hand_ids=lambda object, n: [
        f"0000000{_DV_TABLE_MARK[object]}-0000-0000-0000-{i:012d}" for i in range(n)
    ],
    missing_id=lambda object: f"0000000{_DV_TABLE_MARK[object]}-0000-0000-0000-000000000404",
    made_id=re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    case_types={
        "incidentid": "id",
        "createdon": "datetime",
        "new_closedon": "datetime",
        "modifiedon": "datetime",
        "new_acknowledgedon": "datetime",
        "new_escalatedl4on": "datetime",
        "caseorigincode": "picklist",
        "new_complaintlevel": "int",
        "new_complainanttype": "picklist",
        "new_suppliedname": "string",
        "description": "textarea",
        "new_expecteddecisiondate": "datetime",  # a date-only column is a DateTime attribute
        "ownerid": "reference",
        "new_complaintmanager": "reference",
        "new_rootcause": "textarea",
        "crmsync_charterstatus": "picklist",
        "crmsync_charterbreaches": "string",
        "crmsync_charternextdue": "datetime",
        "crmsync_charterchecked": "datetime",
        "crmsync_archivedon": "datetime",
        "crmsync_archiveref": "string",
    },
    task_types={
        "subject": "string",
        "description": "textarea",
        "scheduledend": "datetime",
        "ownerid": "reference",
        "regardingobjectid": "reference",
        "statecode": "picklist",
        "prioritycode": "picklist",
        "actualend": "datetime",
        "crmsync_key": "string",
    },
    write_back=(
        "crmsync_charterstatus",
        "crmsync_charterbreaches",
        "crmsync_charternextdue",
        "crmsync_charterchecked",
        "crmsync_archivedon",
        "crmsync_archiveref",
    ),
)  # fmt: skip


@dataclass
class CrmHarness:
    """The adapter under test plus test-only controls over the store behind it.

    ``names`` are the CRM's names and value formats (``CrmNames``): tests name objects,
    fields and values through them only. ``seed`` puts records straight into the store, as
    they are: system fields such as the watermark (``names.modstamp``) and the id are kept
    when given (a fake org's back door, not an API call); it returns the ids in order.
    ``delete`` deletes records as a person in the CRM would (stamped at the clock's time).
    ``second_client`` opens another client on the same store (for concurrency tests); the
    harness closes it. ``records_per_write_call``: how many record writes one write call
    carries; ``page_size``: how many records one query call returns;
    ``kinds_share_write_calls``: whether ``write_page`` sends its creates, completions and
    updates in the same write calls (else each kind in calls of its own).
    """

    crm: CrmPort
    clock: ManualClock
    names: CrmNames
    seed: Callable[[str, Sequence[Mapping[str, Any]]], list[str]]
    second_client: Callable[[], CrmPort]
    delete: Callable[[str, Sequence[str]], None]
    records_per_write_call: int = 200  # the Salesforce adapter packs 5 x 200 in one Composite
    page_size: int = 2000
    kinds_share_write_calls: bool = False


HarnessFactory = Callable[[Path, ManualClock], AbstractContextManager[CrmHarness]]


@contextmanager
def local_crm_harness(tmp_path: Path, clock: ManualClock) -> Iterator[CrmHarness]:
    """The embedded local CRM on a SQLite file in ``tmp_path``."""
    path = tmp_path / "contract-crm.sqlite3"
    with ExitStack() as stack:
        crm = stack.enter_context(LocalCrm(path, clock=clock))

        def seed(object: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
            results = crm.insert_records(object, rows)
            bad = [r for r in results if not r.ok]
            assert not bad, bad
            return [str(r.id) for r in results]

        def second_client() -> CrmPort:
            return stack.enter_context(LocalCrm(path, clock=clock))

        def delete(object: str, ids: Sequence[str]) -> None:
            results = crm.delete_records(object, ids)
            assert all(r.ok for r in results), results

        yield CrmHarness(
            crm=crm,
            clock=clock,
            names=SALESFORCE_NAMES,
            seed=seed,
            second_client=second_client,
            delete=delete,
        )


@contextmanager
def salesforce_harness(tmp_path: Path, clock: ManualClock) -> Iterator[CrmHarness]:
    """The Salesforce adapter over HTTP against the in-memory fake org (``responses``)."""
    with fake_salesforce(clock) as fake, ExitStack() as stack:

        def client() -> CrmPort:
            made = session_client(fake.org)
            stack.callback(made.close)
            return made

        yield CrmHarness(
            crm=client(),
            clock=clock,
            names=SALESFORCE_NAMES,
            seed=fake.org.seed,
            second_client=client,
            delete=fake.org.delete,
            records_per_write_call=1000,
            kinds_share_write_calls=True,  # creates and updates share one Composite call
        )


@contextmanager
def dataverse_harness(tmp_path: Path, clock: ManualClock) -> Iterator[CrmHarness]:
    """The Dataverse adapter over HTTP against the fake org (``responses``), in the names
    of ``mappings/dynamics365.yaml``. Its clients ask for pages of 2,000 rows (the org's
    largest is 5,000) so that the paging tests cross a page boundary at the same place."""
    with FakeDataverseServer(clock) as fake, ExitStack() as stack:

        def client() -> CrmPort:
            made = dataverse_client(fake.org, page_size=2000)
            stack.callback(made.close)
            return made

        yield CrmHarness(
            crm=client(),
            clock=clock,
            names=DATAVERSE_NAMES,
            seed=fake.org.seed,
            second_client=client,
            delete=fake.org.delete,
            records_per_write_call=1000,
            kinds_share_write_calls=True,  # one $batch carries any write
        )


# The hook: one entry per CrmPort adapter.
CRM_FACTORIES: list[Any] = [
    pytest.param(local_crm_harness, id="local"),
    pytest.param(salesforce_harness, id="salesforce-fake"),
    pytest.param(dataverse_harness, id="dataverse-fake"),
]


@pytest.fixture(params=CRM_FACTORIES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrmHarness]:
    """Each adapter in turn, on a fresh store, its clock standing at ``START``."""
    factory: HarnessFactory = request.param
    with factory(tmp_path, ManualClock(START)) as built:
        yield built


@pytest.fixture
def crm(harness: CrmHarness) -> CrmPort:
    """The adapter under test."""
    return harness.crm


@pytest.fixture
def names(harness: CrmHarness) -> CrmNames:
    """The CRM's names and value formats."""
    return harness.names


# ------------------------------------------------------------------ state stores
# The state store contract suite (test_state_store_contract.py) runs against every backend
# below. The PostgreSQL backend uses the server at CRMSYNC_TEST_POSTGRES_URL with a fresh
# schema per test (dropped after) and is skipped, saying why, when no server answers.

POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class StateBackend:
    """A state store under test (not yet migrated) plus test-only access to its storage.

    ``kind`` is memory, sqlite or postgres; ``location`` the SQLite file or the PostgreSQL
    URL (None for memory) and ``schema`` the PostgreSQL schema. ``open_another`` opens a
    second store on the same storage with its own connection (None for memory; the
    fixture closes it). ``set_schema_version`` writes a version straight to the storage.
    """

    kind: str
    store: StateDatabase
    location: str | None
    schema: str | None
    open_another: Callable[[], StateDatabase] | None
    set_schema_version: Callable[[int], None]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL URL; skips the test when no server answers there."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {reason}")
    return POSTGRES_URL


def _memory_backend() -> StateBackend:
    store = MemoryStateStore()

    def set_version(version: int) -> None:
        store.schema_version = version

    return StateBackend("memory", store, None, None, None, set_version)


@contextmanager
def _sqlite_backend(path: Path) -> Iterator[StateBackend]:
    with ExitStack() as stack:
        store = SqliteStateStore(path)
        stack.callback(store.close)

        def open_another() -> StateDatabase:
            other = SqliteStateStore(path)
            stack.callback(other.close)
            return other

        def set_version(version: int) -> None:
            conn = sqlite3.connect(path)
            try:
                with conn:
                    conn.execute(
                        "INSERT INTO schema_version (version, description, applied_at) "
                        "VALUES (?, 'written by a test', '2099-01-01')",
                        (version,),
                    )
            finally:
                conn.close()

        yield StateBackend("sqlite", store, str(path), None, open_another, set_version)


@contextmanager
def _postgres_backend(url: str) -> Iterator[StateBackend]:
    schema = f"crmsync_test_{uuid.uuid4().hex[:12]}"
    with ExitStack() as stack:

        def drop_schema() -> None:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

        stack.callback(drop_schema)  # runs last: after every store is closed

        def open_another() -> StateDatabase:
            other = PostgresStateStore(url, schema=schema, application_name=schema)
            stack.callback(other.close)
            return other

        store = open_another()

        def set_version(version: int) -> None:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL(
                        "INSERT INTO {}.schema_version (version, description) "
                        "VALUES (%s, 'written by a test')"
                    ).format(sql.Identifier(schema)),
                    (version,),
                )

        yield StateBackend("postgres", store, url, schema, open_another, set_version)


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    kind: str = request.param
    if kind == "memory":
        backend = _memory_backend()
        yield backend
        backend.store.close()
    elif kind == "sqlite":
        with _sqlite_backend(tmp_path / "state.sqlite3") as backend:
            yield backend
    else:
        url: str = request.getfixturevalue("postgres_url")
        with _postgres_backend(url) as backend:
            yield backend


STATE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
DURABLE_STATE_BACKENDS = STATE_BACKENDS[1:]


@pytest.fixture(params=STATE_BACKENDS)
def state_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    """Each state store backend in turn, on fresh storage, not migrated."""
    yield from _backend(request, tmp_path)


@pytest.fixture(params=DURABLE_STATE_BACKENDS)
def durable_state_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    """Each backend that keeps its data outside the process (SQLite, PostgreSQL)."""
    yield from _backend(request, tmp_path)


@pytest.fixture
def state_store(state_backend: StateBackend) -> StateDatabase:
    """Each state store backend in turn, migrated."""
    state_backend.store.migrate()
    return state_backend.store
