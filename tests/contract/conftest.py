"""The adapters the CRM contract suite runs against, as a list of harness factories.

To add an adapter (the Salesforce adapter through its HTTP fake, say), write a factory
``(tmp_path, clock) -> context manager of CrmHarness`` and append it to ``CRM_FACTORIES``
with an id; give it a marker there if it needs a server. Every test in
``test_crm_contract.py`` then runs against it too.
"""

from __future__ import annotations

import os
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
from crmsync.ports import CrmPort, StateDatabase
from crmsync.redaction import redact_url
from fakes.clock import ManualClock
from fakes.salesforce_fake import fake_salesforce, session_client

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


@dataclass
class CrmHarness:
    """The adapter under test plus test-only controls over the store behind it.

    ``seed`` puts records straight into the store, as they are: system fields such as
    ``SystemModstamp`` and ``Id`` are kept when given (a fake org's back door, not an API
    call); it returns the ids in order. ``delete`` deletes records as a person in the CRM
    would (stamped at the clock's time). ``second_client`` opens another client on the same
    store (for concurrency tests); the harness closes it.
    """

    crm: CrmPort
    clock: ManualClock
    seed: Callable[[str, Sequence[Mapping[str, Any]]], list[str]]
    second_client: Callable[[], CrmPort]
    delete: Callable[[str, Sequence[str]], None]
    records_per_write_call: int = 200  # the Salesforce adapter packs 5 x 200 in one Composite


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
            crm=crm, clock=clock, seed=seed, second_client=second_client, delete=delete
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
            seed=fake.org.seed,
            second_client=client,
            delete=fake.org.delete,
            records_per_write_call=1000,
        )


# The hook: one entry per CrmPort adapter.
CRM_FACTORIES: list[Any] = [
    pytest.param(local_crm_harness, id="local"),
    pytest.param(salesforce_harness, id="salesforce-fake"),
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
