"""The state ports' contract (``StateStore``, then ``PopulationReader`` and ``ArchiveWitness``):
every backend (memory, SQLite, PostgreSQL) behaves the same, method by method.

The fixtures (``state_backend``, ``state_store``, ``durable_state_backend``) live in
``conftest.py``; the PostgreSQL variant needs the server at ``CRMSYNC_TEST_POSTGRES_URL``
and is skipped, saying so, when it is not there. At the end: what only the SQL backends
have (migrations, WAL, reconnect, redaction) and the URL factory.
"""

from __future__ import annotations

import math
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from structlog.testing import capture_logs

from crmsync.adapters.state.migrations import (
    LATEST_VERSION,
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
    Migration,
    check_order,
    migrate_postgres,
    migrate_sqlite,
)
from crmsync.adapters.state.postgres import PostgresStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.bootstrap import open_state_store
from crmsync.domain.archive_entry import ChainHead
from crmsync.errors import ConfigError, StateStoreError
from crmsync.ports import (
    ArchiveWitness,
    LedgerEntry,
    Population,
    PopulationReader,
    ProfileState,
    PruneCounts,
    RunRecord,
    StateDatabase,
    StateStore,
    StoredComplaint,
)
from state_views import count_complaints, ledger, recorded_runs

if TYPE_CHECKING:
    from conftest import StateBackend

P = "aston"
Q = "other-org"


def complaint(
    id: str,
    next_check: int | None = 1_000,
    *,
    profile: str = P,
    canonical: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
    source_hash: str = "h1",
    closed: bool = False,
    closed_at: int | None = None,
    clock_states: dict[str, str] | None = None,
) -> StoredComplaint:
    """A stored complaint with small defaults (``closed_at`` implies ``closed``)."""
    return StoredComplaint(
        profile=profile,
        id=id,
        canonical=canonical if canonical is not None else {"id": id, "events": {}},
        flags=flags if flags is not None else {"Breached__c": False},
        next_check=next_check,
        source_hash=source_hash,
        closed=closed or closed_at is not None,
        closed_at=closed_at,
        clock_states=clock_states or {},
    )


def entry(
    key: str,
    complaint_id: str = "C-1",
    *,
    profile: str = P,
    clock: str = "decision",
    occurrence: int = 1,
    status: Any = "planned",
    crm_id: str | None = None,
    error: str | None = None,
    updated_at: int = 100,
) -> LedgerEntry:
    """A ledger entry with small defaults."""
    return LedgerEntry(
        profile=profile,
        key=key,
        complaint_id=complaint_id,
        clock=clock,
        occurrence=occurrence,
        state="at_risk",
        status=status,
        crm_id=crm_id,
        error=error,
        updated_at=updated_at,
    )


def run(run_id: str, started_at: int, *, profile: str = P) -> RunRecord:
    """A running cycle's history row."""
    return RunRecord(profile, run_id, started_at, None, "running", {})


# --------------------------------------------------------------------- schema


def test_migrate_returns_the_version_and_is_idempotent(state_backend: StateBackend) -> None:
    """migrate() creates the latest schema version, and running it again changes nothing."""
    store = state_backend.store
    assert store.migrate() == LATEST_VERSION == 5
    store.set_watermark(P, "Case", datetime(2026, 3, 2, tzinfo=UTC))
    assert store.migrate() == LATEST_VERSION
    assert store.get_watermark(P, "Case") == datetime(2026, 3, 2, tzinfo=UTC)


def test_using_the_store_before_migrate_fails_clearly(state_backend: StateBackend) -> None:
    """Before migrate() there are no tables: a call raises StateStoreError saying so."""
    with pytest.raises(StateStoreError, match="migrate"):
        count_complaints(state_backend.store, P)


def test_a_database_newer_than_the_code_is_refused(state_backend: StateBackend) -> None:
    """A schema version above the last known one makes migrate() refuse, data untouched."""
    store = state_backend.store
    store.migrate()
    store.put_complaints([complaint("C-1")])
    state_backend.set_schema_version(LATEST_VERSION + 1)
    with pytest.raises(StateStoreError) as caught:
        store.migrate()
    message = str(caught.value)
    assert f"version {LATEST_VERSION + 1}" in message
    assert "newer" in message
    assert count_complaints(store, P) == 1


# ----------------------------------------------------------------- watermarks


def test_watermarks_are_kept_per_profile_and_name(state_store: StateDatabase) -> None:
    """A watermark is read back by (profile, name); other profiles and names are apart."""
    t1 = datetime(2026, 3, 2, 9, 15, 30, 123456, tzinfo=UTC)
    t2 = datetime(2026, 3, 3, tzinfo=UTC)
    assert state_store.get_watermark(P, "Case") is None
    state_store.set_watermark(P, "Case", t1)
    state_store.set_watermark(P, "Task", t2)
    state_store.set_watermark(Q, "Case", t2)
    assert state_store.get_watermark(P, "Case") == t1
    assert state_store.get_watermark(P, "Task") == t2
    assert state_store.get_watermark(Q, "Case") == t2
    assert state_store.get_watermark(Q, "Task") is None


def test_a_watermark_moves_and_comes_back_in_utc(state_store: StateDatabase) -> None:
    """Setting again replaces; an offset instant comes back as the same instant in UTC."""
    state_store.set_watermark(P, "Case", datetime(2026, 1, 1, tzinfo=UTC))
    paris = timezone(timedelta(hours=2))
    state_store.set_watermark(P, "Case", datetime(2026, 6, 1, 14, 0, 0, 5, tzinfo=paris))
    got = state_store.get_watermark(P, "Case")
    # 14:00 at +02:00 is 12:00 UTC; the microsecond survives.
    assert got == datetime(2026, 6, 1, 12, 0, 0, 5, tzinfo=UTC)
    assert got is not None
    assert got.utcoffset() == timedelta(0)


def test_a_naive_watermark_is_refused(state_store: StateDatabase) -> None:
    """A datetime without a zone is ambiguous: StateStoreError, nothing written."""
    with pytest.raises(StateStoreError, match="timezone-aware"):
        state_store.set_watermark(P, "Case", datetime(2026, 1, 1))
    assert state_store.get_watermark(P, "Case") is None


# ----------------------------------------------------------------- complaints


def test_complaints_are_put_got_replaced_and_deleted(state_store: StateDatabase) -> None:
    """put inserts or replaces by id, get returns only known ids, delete removes."""
    state_store.put_complaints([complaint("C-1", 10), complaint("C-2", 20)])
    assert count_complaints(state_store, P) == 2
    got = state_store.get_complaints(P, ["C-1", "C-2", "C-404"])
    assert got == {"C-1": complaint("C-1", 10), "C-2": complaint("C-2", 20)}

    replacement = complaint("C-1", None, flags={"Breached__c": True}, source_hash="h2", closed=True)
    state_store.put_complaints([replacement])
    assert state_store.get_complaints(P, ["C-1"]) == {"C-1": replacement}
    assert count_complaints(state_store, P) == 2

    state_store.delete_complaints(P, ["C-2", "C-404"])
    assert state_store.get_complaints(P, ["C-1", "C-2"]) == {"C-1": replacement}
    assert count_complaints(state_store, P) == 1


def test_empty_key_lists_are_no_ops(state_store: StateDatabase) -> None:
    """Empty puts, gets and deletes neither fail nor change anything."""
    state_store.put_complaints([complaint("C-1")])
    state_store.put_complaints([])
    state_store.delete_complaints(P, [])
    state_store.ledger_put([])
    assert state_store.get_complaints(P, []) == {}
    assert ledger(state_store, P, []) == {}
    assert state_store.ledger_for_complaints(P, []) == []
    assert count_complaints(state_store, P) == 1


def test_a_repeated_id_in_one_put_keeps_the_last(state_store: StateDatabase) -> None:
    """Within one batch the last item of an id wins."""
    state_store.put_complaints([complaint("C-1", 1), complaint("C-1", 2)])
    assert state_store.get_complaints(P, ["C-1"])["C-1"].next_check == 2
    assert count_complaints(state_store, P) == 1


def test_json_columns_round_trip_unicode_and_nesting(state_store: StateDatabase) -> None:
    """Canonical and flags come back equal: unicode, nesting, numbers, booleans, null."""
    canonical = {
        "id": "C-ü",
        "customer": "Zoë Ñúñez — 日本語 🚀",
        "events": {"received": "2026-03-02T09:15:00Z", "acknowledged": None},
        "history": [{"n": 1, "ratio": 0.1, "big": 2**53 + 1}, [True, False, None, 'x\ny\t"q"']],
        "empty": {},
        "backslash": "a\\u0000b",  # a backslash and the text u0000, not a NUL
        "neg": -42,
        "float": 1.5e-7,
    }
    flags = {"Breached__c": True, "Stage__c": "Décision", "Days__c": 3.0}
    state_store.put_complaints([complaint("C-ü", canonical=canonical, flags=flags)])
    got = state_store.get_complaints(P, ["C-ü"])["C-ü"]
    assert got.canonical == canonical
    assert got.flags == flags
    assert got.id == "C-ü"


def test_tuples_come_back_as_lists(state_store: StateDatabase) -> None:
    """JSON has no tuples: a tuple is stored as an array and read back as a list."""
    state_store.put_complaints([complaint("C-1", canonical={"ids": ("a", "b")})])
    assert state_store.get_complaints(P, ["C-1"])["C-1"].canonical == {"ids": ["a", "b"]}


@pytest.mark.parametrize(
    ("bad_canonical", "said"),
    [
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "not JSON"),
        ({"x": {1, 2}}, "not JSON"),
        ({"x": math.nan}, "not JSON"),
        ({"x": "a\x00b"}, "NUL"),
    ],
    ids=["datetime", "set", "nan", "nul"],
)
def test_a_put_with_one_bad_item_writes_nothing(
    state_store: StateDatabase, bad_canonical: dict[str, Any], said: str
) -> None:
    """One item that cannot be stored fails the whole put, naming it; nothing half-written."""
    state_store.put_complaints([complaint("C-1", 5)])
    batch = [complaint("C-1", 6), complaint("C-2", 7), complaint("C-bad", canonical=bad_canonical)]
    with pytest.raises(StateStoreError, match=said) as caught:
        state_store.put_complaints(batch)
    assert "C-bad" in str(caught.value)
    assert state_store.get_complaints(P, ["C-1", "C-2", "C-bad"]) == {"C-1": complaint("C-1", 5)}
    assert count_complaints(state_store, P) == 1


def test_due_complaints_include_the_boundary_and_never_none(state_store: StateDatabase) -> None:
    """next_check == until is due, later is not, None is never due; order by next_check, id."""
    state_store.put_complaints(
        [
            complaint("C-late", 101),
            complaint("C-edge", 100),
            complaint("C-never", None),
            complaint("C-b", 50),
            complaint("C-a", 50),
        ]
    )
    assert [c.id for c in state_store.due_complaints(P, 100)] == ["C-a", "C-b", "C-edge"]
    assert [c.id for c in state_store.due_complaints(P, 99)] == ["C-a", "C-b"]
    assert [c.id for c in state_store.due_complaints(P, 49)] == []
    assert [c.id for c in state_store.due_complaints(P, 2**62)] == [
        "C-a",
        "C-b",
        "C-edge",
        "C-late",
    ]
    assert state_store.due_complaints(P, 100)[2] == complaint("C-edge", 100)


def test_next_check_is_the_minimum_ignoring_none(state_store: StateDatabase) -> None:
    """next_check() is the earliest non-None next_check of the profile, else None."""
    assert state_store.next_check(P) is None
    state_store.put_complaints([complaint("C-1", None)])
    assert state_store.next_check(P) is None
    state_store.put_complaints([complaint("C-2", 300), complaint("C-3", -5), complaint("C-4", 7)])
    assert state_store.next_check(P) == -5
    state_store.delete_complaints(P, ["C-3"])
    assert state_store.next_check(P) == 7


def test_profiles_never_see_each_others_complaints(state_store: StateDatabase) -> None:
    """Same id in two profiles: get, due, next_check, count and delete stay in their profile."""
    state_store.put_complaints(
        [complaint("C-1", 10, profile=P), complaint("C-1", 5, profile=Q, source_hash="q")]
    )
    assert state_store.get_complaints(P, ["C-1"])["C-1"].source_hash == "h1"
    assert state_store.get_complaints(Q, ["C-1"])["C-1"].source_hash == "q"
    assert [c.profile for c in state_store.due_complaints(P, 100)] == [P]
    assert state_store.next_check(P) == 10
    assert state_store.next_check(Q) == 5
    state_store.delete_complaints(Q, ["C-1"])
    assert count_complaints(state_store, Q) == 0
    assert count_complaints(state_store, P) == 1
    assert state_store.get_complaints("nobody", ["C-1"]) == {}


def test_integers_outside_64_bits_are_refused(state_store: StateDatabase) -> None:
    """next_check must fit a signed 64-bit column: 2**63 is refused, 2**63 - 1 is kept."""
    with pytest.raises(StateStoreError, match="64 bits"):
        state_store.put_complaints([complaint("C-1", 2**63)])
    state_store.put_complaints([complaint("C-1", 2**63 - 1)])
    assert state_store.next_check(P) == 2**63 - 1


# --------------------------------------------------------------------- ledger


def test_ledger_entries_are_put_got_and_replaced(state_store: StateDatabase) -> None:
    """An entry goes planned -> done -> completed under one key; a complaint without
    entries has none."""
    state_store.ledger_put([entry("k1"), entry("k2", occurrence=2)])
    assert ledger(state_store, P, ["C-1", "C-404"]) == {
        "k1": entry("k1"),
        "k2": entry("k2", occurrence=2),
    }
    done = entry("k1", status="done", crm_id="00T000000000001", updated_at=200)
    state_store.ledger_put([done])
    assert ledger(state_store, P) == {"k1": done, "k2": entry("k2", occurrence=2)}
    completed = entry("k1", status="completed", crm_id="00T000000000001", updated_at=300)
    failed = entry("k2", status="failed", error="FIELD_CUSTOM_VALIDATION_EXCEPTION: no")
    state_store.ledger_put([completed, failed])
    assert ledger(state_store, P) == {"k1": completed, "k2": failed}


def test_ledger_for_complaints_returns_every_entry_of_those_complaints(
    state_store: StateDatabase,
) -> None:
    """All entries of the listed complaints, by (complaint, clock, occurrence, key)."""
    state_store.ledger_put(
        [
            entry("k-b2", "C-B", clock="decision", occurrence=2),
            entry("k-a", "C-A", clock="response"),
            entry("k-b1", "C-B", clock="decision", occurrence=1),
            entry("k-b0", "C-B", clock="ack", occurrence=9),
            entry("k-c", "C-C"),
            entry("k-q", "C-A", profile=Q),
        ]
    )
    got = state_store.ledger_for_complaints(P, ["C-B", "C-A", "C-404"])
    assert [e.key for e in got] == ["k-a", "k-b0", "k-b1", "k-b2"]
    assert got[0] == entry("k-a", "C-A", clock="response")
    assert [e.key for e in state_store.ledger_for_complaints(Q, ["C-A", "C-B"])] == ["k-q"]


def test_failed_follow_ups_are_those_of_complaints_the_store_holds(
    state_store: StateDatabase,
) -> None:
    """Failed entries only, of complaints the store holds, of this profile, by (complaint,
    key); a complaint deleted from the store takes its failed entries out of the list."""
    state_store.put_complaints([complaint("C-A"), complaint("C-B"), complaint("C-A", profile=Q)])
    state_store.ledger_put(
        [
            entry("k-b", "C-B", status="failed", error="INACTIVE_OWNER_OR_USER: left"),
            entry("k-a2", "C-A", status="failed", error="E2"),
            entry("k-a1", "C-A", status="failed", error="E1"),
            entry("k-a0", "C-A", status="done", crm_id="00T000000000001AAA"),
            entry("k-gone", "C-GONE", status="failed", error="E"),
            entry("k-q", "C-A", profile=Q, status="failed", error="E"),
        ]
    )
    got = state_store.failed_follow_ups(P)
    assert [(e.complaint_id, e.key) for e in got] == [
        ("C-A", "k-a1"),
        ("C-A", "k-a2"),
        ("C-B", "k-b"),
    ]
    assert got[2] == entry("k-b", "C-B", status="failed", error="INACTIVE_OWNER_OR_USER: left")
    state_store.delete_complaints(P, ["C-A"])
    assert [e.key for e in state_store.failed_follow_ups(P)] == ["k-b"]
    assert [e.key for e in state_store.failed_follow_ups(Q)] == ["k-q"]
    assert state_store.failed_follow_ups("nobody") == []


def test_ledger_is_kept_per_profile(state_store: StateDatabase) -> None:
    """The same key in two profiles is two entries."""
    state_store.ledger_put([entry("k1", profile=P), entry("k1", profile=Q, status="done")])
    assert ledger(state_store, P)["k1"].status == "planned"
    assert ledger(state_store, Q)["k1"].status == "done"
    assert ledger(state_store, "nobody") == {}


def test_a_ledger_put_with_an_unknown_status_writes_nothing(state_store: StateDatabase) -> None:
    """A status outside planned/done/failed/completed fails the whole put."""
    with pytest.raises(StateStoreError, match="sent"):
        state_store.ledger_put([entry("k1"), entry("k2", status="sent")])
    assert ledger(state_store, P) == {}


def test_thousands_of_keys_are_read_in_one_call(state_store: StateDatabase) -> None:
    """Key lists longer than the 999 variables the SQLite store binds per statement."""
    keys = [f"key-{i:05d}" for i in range(3_000)]
    state_store.ledger_put([entry(k, f"C-{i % 1_500}") for i, k in enumerate(keys)])
    state_store.put_complaints([complaint(f"C-{i}") for i in range(2_500)])
    ids = [f"C-{i}" for i in range(2_600)]  # 2,500 stored + 100 unknown
    assert len(state_store.get_complaints(P, ids)) == 2_500
    # 3,000 entries spread over 1,500 complaints; 1,600 asked (100 without entries).
    asked = state_store.ledger_for_complaints(P, [f"C-{i}" for i in range(1_600)])
    assert sorted(e.key for e in asked) == keys
    assert len(state_store.ledger_for_complaints(P, [f"C-{i}" for i in range(700)])) == 1_400
    state_store.delete_complaints(P, ids)
    assert count_complaints(state_store, P) == 0


# ----------------------------------------------------------------------- runs


def test_runs_start_finish_and_list_newest_first(state_store: StateDatabase) -> None:
    """Runs are kept by started_at descending, ties by start order (read back as stored)."""
    state_store.start_run(run("r1", 100))
    state_store.start_run(run("r3", 300))
    state_store.start_run(run("r2a", 200))
    state_store.start_run(run("r2b", 200))
    state_store.start_run(run("q1", 999, profile=Q))
    state_store.finish_run(P, "r1", 150, "ok", {"written": 3, "notes": ["é"]})
    runs = recorded_runs(state_store, P)
    assert [r.run_id for r in runs] == ["r3", "r2b", "r2a", "r1"]
    assert runs[-1] == RunRecord(P, "r1", 100, 150, "ok", {"written": 3, "notes": ["é"]})
    assert runs[0] == RunRecord(P, "r3", 300, None, "running", {})
    assert [r.run_id for r in recorded_runs(state_store, P, limit=2)] == ["r3", "r2b"]
    assert recorded_runs(state_store, P, limit=0) == []
    assert [r.run_id for r in recorded_runs(state_store, Q)] == ["q1"]


def test_finishing_an_unknown_run_fails(state_store: StateDatabase) -> None:
    """finish_run of a run never started raises StateStoreError naming it."""
    state_store.start_run(run("r1", 100, profile=Q))
    with pytest.raises(StateStoreError, match="r1"):
        state_store.finish_run(P, "r1", 150, "ok", {})


def test_starting_a_run_again_replaces_it(state_store: StateDatabase) -> None:
    """A repeated start_run (a retried call) leaves one row with the latest values."""
    state_store.start_run(run("r1", 100))
    state_store.start_run(RunRecord(P, "r1", 110, None, "running", {"retry": True}))
    assert recorded_runs(state_store, P) == [
        RunRecord(P, "r1", 110, None, "running", {"retry": True})
    ]


# ---------------------------------------------------------------- lifecycle


def test_a_closed_store_refuses_calls(state_store: StateDatabase) -> None:
    """After close() every call raises StateStoreError; closing again is harmless."""
    state_store.close()
    state_store.close()
    with pytest.raises(StateStoreError, match="closed"):
        count_complaints(state_store, P)
    with pytest.raises(StateStoreError, match="closed"):
        state_store.put_complaints([complaint("C-1")])


# ------------------------------------------- several connections and processes


def test_two_connections_see_each_others_committed_writes(
    durable_state_backend: StateBackend,
) -> None:
    """What one store object commits, another on the same storage reads, both ways."""
    assert durable_state_backend.open_another is not None
    first = durable_state_backend.store
    first.migrate()
    second = durable_state_backend.open_another()
    assert second.migrate() == LATEST_VERSION
    first.put_complaints([complaint("C-1", 10)])
    first.set_watermark(P, "Case", datetime(2026, 3, 2, tzinfo=UTC))
    assert second.get_complaints(P, ["C-1"]) == {"C-1": complaint("C-1", 10)}
    assert second.get_watermark(P, "Case") == datetime(2026, 3, 2, tzinfo=UTC)
    second.ledger_put([entry("k1")])
    second.delete_complaints(P, ["C-1"])
    assert ledger(first, P) == {"k1": entry("k1")}
    assert count_complaints(first, P) == 0


_CHILD = """
import sys
from pathlib import Path
from crmsync.adapters.state.postgres import PostgresStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.ports import StoredComplaint

kind, location, schema, prefix, count = sys.argv[1:6]
if kind == "sqlite":
    store = SqliteStateStore(Path(location))
else:
    store = PostgresStateStore(location, schema=schema, application_name=schema)
store.migrate()
print(sorted(store.get_complaints("aston", ["C-1", "C-2", "C-3"])))
for i in range(int(count)):
    store.put_complaints(
        [StoredComplaint("aston", f"{prefix}-{i}-{j}", {}, {}, i, "h") for j in range(5)]
    )
store.close()
"""


@pytest.mark.slow  # real processes
def test_processes_share_committed_writes_and_write_at_once(
    durable_state_backend: StateBackend,
) -> None:
    """Two child processes read what this one committed, then each commits 30 puts of 5
    complaints at the same time: this process then counts all of them."""
    store = durable_state_backend.store
    store.migrate()
    store.put_complaints([complaint("C-1"), complaint("C-2")])
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                durable_state_backend.kind,
                str(durable_state_backend.location),
                str(durable_state_backend.schema),
                name,
                "30",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "['C-1', 'C-2']"
    # 2 of ours + 2 children x 30 puts x 5 complaints.
    assert count_complaints(store, P) == 2 + 2 * 30 * 5
    assert store.get_complaints(P, ["b-29-4"])["b-29-4"].next_check == 29


def test_concurrent_first_migrations_do_not_race(durable_state_backend: StateBackend) -> None:
    """Four stores migrating a fresh database at the same moment all end at the latest
    version."""
    assert durable_state_backend.open_another is not None
    stores = [durable_state_backend.store] + [
        durable_state_backend.open_another() for _ in range(3)
    ]
    barrier = threading.Barrier(len(stores))
    results: list[int | BaseException] = []

    def go(store: StateDatabase) -> None:
        barrier.wait()
        try:
            results.append(store.migrate())
        except BaseException as exc:  # collected, asserted below
            results.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [LATEST_VERSION] * 4
    stores[0].put_complaints([complaint("C-1")])
    assert count_complaints(stores[3], P) == 1


# ----------------------------------------------------------------------- bulk


@pytest.mark.slow
def test_bulk_one_hundred_thousand_complaints_round_trip(state_store: StateDatabase) -> None:
    """100,000 complaints go in, come back whole, are due by next_check, and are deleted."""
    n = 100_000
    items = [
        complaint(f"C-{i:06d}", i if i % 2 == 0 else None, canonical={"id": i, "t": "é"})
        for i in range(n)
    ]
    ids = [c.id for c in items]
    state_store.put_complaints(items)
    assert count_complaints(state_store, P) == n
    got = state_store.get_complaints(P, ids)
    assert len(got) == n
    assert got["C-054321"] == items[54_321]
    # Even i in 0..49,999 have next_check i <= 49,999: 25,000 of them.
    assert len(state_store.due_complaints(P, 49_999)) == 25_000
    assert state_store.next_check(P) == 0
    state_store.delete_complaints(P, ids)
    assert count_complaints(state_store, P) == 0


# -------------------------------------------------------------- clock states


def test_clock_states_round_trip_and_must_be_text(state_store: StateDatabase) -> None:
    """Clock states come back as stored; a state that is not text is refused, naming the
    complaint and the field, and nothing of the batch is written."""
    states = {"email-reply": "on_track", "level1-resolution": "breached"}
    state_store.put_complaints([complaint("C-1", clock_states=states)])
    assert state_store.get_complaints(P, ["C-1"])["C-1"].clock_states == states
    wrong = StoredComplaint(P, "C-2", {}, {}, None, "h", clock_states={"x": 1})  # type: ignore[dict-item]
    with pytest.raises(StateStoreError, match=r"'aston'/'C-2'.*clock_states"):
        state_store.put_complaints([complaint("C-3"), wrong])
    assert state_store.get_complaints(P, ["C-2", "C-3"]) == {}


# ------------------------------------- evaluation instants and profile states


def evaluated(
    id: str, at: int | None, *, profile: str = P, closed: bool = False
) -> StoredComplaint:
    """A stored complaint last evaluated at ``at`` (None: unknown)."""
    return replace(complaint(id, 5_000, profile=profile, closed=closed), evaluated_at=at)


def test_stale_complaints_are_those_evaluated_later_or_never(state_store: StateDatabase) -> None:
    """stale_complaints(now): evaluated_at after now or None, by id, in the profile only;
    evaluated_at round-trips."""
    state_store.put_complaints(
        [
            evaluated("C-later", 200),
            evaluated("C-equal", 100),
            evaluated("C-earlier", 50),
            evaluated("C-unknown", None),
            evaluated("C-other", 500, profile=Q),
        ]
    )
    assert state_store.get_complaints(P, ["C-later"])["C-later"].evaluated_at == 200
    assert [c.id for c in state_store.stale_complaints(P, 100)] == ["C-later", "C-unknown"]
    assert [c.id for c in state_store.stale_complaints(P, 49)] == [
        "C-earlier",
        "C-equal",
        "C-later",
        "C-unknown",
    ]
    assert [c.id for c in state_store.stale_complaints(P, 200)] == ["C-unknown"]
    assert [c.id for c in state_store.stale_complaints(Q, 100)] == ["C-other"]
    assert state_store.stale_complaints(P, 100)[0] == evaluated("C-later", 200)


def test_profile_state_is_put_replaced_and_kept_per_profile(state_store: StateDatabase) -> None:
    """get_profile is None before put_profile; a put replaces every field; profiles apart."""
    assert state_store.get_profile(P) is None
    first = ProfileState(P, 1_000, 1_000, "c1", "m1", 1_600)
    state_store.put_profile(first)
    assert state_store.get_profile(P) == first
    assert state_store.get_profile(Q) is None
    second = ProfileState(P, 1_000, 900, "c2", "m2", 1_700)
    state_store.put_profile(second)
    assert state_store.get_profile(P) == second
    with pytest.raises(StateStoreError, match="horizon"):
        state_store.put_profile(ProfileState(P, 1, "x", "c", "m", 1))  # type: ignore[arg-type]
    assert state_store.get_profile(P) == second


def test_put_profile_can_mark_open_complaints_for_evaluation(state_store: StateDatabase) -> None:
    """With reevaluate_open, every open complaint of that profile loses its evaluation
    instant (stale at any now); closed ones and other profiles keep theirs."""
    state_store.put_complaints(
        [
            evaluated("C-open", 100),
            evaluated("C-closed", 100, closed=True),
            evaluated("C-q", 100, profile=Q),
        ]
    )
    state_store.put_profile(ProfileState(P, 0, 0, "c", "m", 100))
    assert state_store.stale_complaints(P, 100) == []
    state_store.put_profile(ProfileState(P, 0, 0, "c2", "m", 200), reevaluate_open=True)
    assert [c.id for c in state_store.stale_complaints(P, 10**12)] == ["C-open"]
    kept = state_store.get_complaints(P, ["C-open", "C-closed"])
    assert (kept["C-open"].evaluated_at, kept["C-closed"].evaluated_at) == (None, 100)
    assert kept["C-open"].next_check == 5_000  # nothing else changes
    assert state_store.stale_complaints(Q, 100) == []


# ------------------------------------------------------------------ retention


def test_closed_at_round_trips_and_needs_a_closed_complaint(state_store: StateDatabase) -> None:
    """The closing instant comes back as stored; set on an open complaint it is refused,
    naming the complaint and the field, and nothing is written."""
    state_store.put_complaints([complaint("C-1", None, closed_at=1_772_445_600)])
    assert state_store.get_complaints(P, ["C-1"])["C-1"].closed_at == 1_772_445_600
    wrong = StoredComplaint(P, "C-2", {"id": "C-2"}, {}, None, "h", closed=False, closed_at=5)
    with pytest.raises(StateStoreError, match=r"'aston'/'C-2'.*closed_at"):
        state_store.put_complaints([complaint("C-3"), wrong])
    assert state_store.get_complaints(P, ["C-2", "C-3"]) == {}


def _prune_population(store: StateDatabase) -> None:
    """Closed at 1,000 (old) unless said otherwise; the cut-off in the tests is 2,000."""
    store.put_complaints(
        [
            complaint("old", None, closed_at=1_000),
            complaint("edge", None, closed_at=2_000),  # not *before* the cut-off
            complaint("recent", None, closed_at=5_000),
            complaint("open", 1_500),
            complaint("busy", None, closed_at=1_000),  # its task still to complete
            complaint("planned", None, closed_at=1_000),  # its task still to write
            complaint("unknown", None, closed=True),  # closed, closing instant not known
            complaint("old", None, profile=Q, closed_at=1_000),
        ]
    )
    store.ledger_put(
        [
            entry("k-old-1", "old", status="completed", crm_id="00T1"),
            entry("k-old-2", "old", clock="reply", status="failed", error="INVALID_FIELD"),
            entry("k-busy", "busy", status="done", crm_id="00T2"),
            entry("k-busy-2", "busy", clock="reply", status="completed", crm_id="00T3"),
            entry("k-planned", "planned", status="planned"),
            entry("k-q", "old", profile=Q, status="completed"),
        ]
    )


def test_prune_forgets_old_closed_complaints_with_their_finished_follow_ups(
    state_store: StateDatabase,
) -> None:
    """Only closed complaints whose closing instant is before the cut-off go, with every
    ledger entry of theirs; a planned or done follow-up keeps its complaint (and all its
    entries); open ones, unknown closing instants and other profiles stay."""
    _prune_population(state_store)
    counts = state_store.prune(P, closed_before=2_000, runs_before=None)
    assert counts == PruneCounts(complaints=1, ledger_entries=2, runs=0)
    names = ["old", "edge", "recent", "open", "busy", "planned", "unknown"]
    assert sorted(state_store.get_complaints(P, names)) == sorted(names[1:])
    assert state_store.ledger_for_complaints(P, ["old"]) == []
    assert [e.key for e in state_store.ledger_for_complaints(P, ["busy", "planned"])] == [
        "k-busy",
        "k-busy-2",
        "k-planned",
    ]
    assert list(state_store.get_complaints(Q, ["old"])) == ["old"]
    assert list(ledger(state_store, Q, ["old"])) == ["k-q"]
    # once its follow-up is completed, the busy complaint goes too
    state_store.ledger_put([entry("k-busy", "busy", status="completed", crm_id="00T2")])
    again = state_store.prune(P, closed_before=2_000, runs_before=None)
    assert again == PruneCounts(complaints=1, ledger_entries=2, runs=0)
    assert "busy" not in state_store.get_complaints(P, ["busy"])


def test_prune_forgets_the_follow_ups_of_complaints_the_store_no_longer_holds(
    state_store: StateDatabase,
) -> None:
    """A complaint deleted in the CRM (forgotten by the cycle) leaves its ledger entries
    behind: prune forgets them, all but a planned one, and only in this profile."""
    state_store.put_complaints([complaint("kept")])
    state_store.ledger_put(
        [
            entry("k-kept", "kept", status="done", crm_id="00T1"),
            entry("k-gone-done", "gone", status="done", crm_id="00T2"),
            entry("k-gone-failed", "gone", status="failed", error="E"),
            entry("k-gone-completed", "gone", status="completed", crm_id="00T3"),
            entry("k-gone-planned", "gone", status="planned"),
            entry("k-q", "gone", profile=Q, status="done", crm_id="00T4"),
        ]
    )
    counts = state_store.prune(P, closed_before=2_000, runs_before=None)
    assert counts == PruneCounts(complaints=0, ledger_entries=3, runs=0)
    assert [e.key for e in state_store.ledger_for_complaints(P, ["kept", "gone"])] == [
        "k-gone-planned",
        "k-kept",
    ]
    assert list(ledger(state_store, Q, ["gone"])) == ["k-q"]


def test_prune_with_no_cut_off_forgets_nothing(state_store: StateDatabase) -> None:
    """``None`` cut-offs leave every complaint, entry and run where it was."""
    _prune_population(state_store)
    state_store.start_run(run("r1", 100))
    assert state_store.prune(P, closed_before=None, runs_before=None) == PruneCounts()
    assert count_complaints(state_store, P) == 7
    assert len(recorded_runs(state_store, P)) == 1


def test_prune_forgets_old_runs_but_never_the_newest(state_store: StateDatabase) -> None:
    """Runs that started before the cut-off go, finished or not (a run that old and still
    'running' died with its process); the profile's newest run always stays."""
    state_store.start_run(run("r1", 100))
    state_store.finish_run(P, "r1", 110, "ok", {})
    state_store.start_run(run("r2", 200))  # never finished: killed
    state_store.start_run(run("r3", 300))
    state_store.finish_run(P, "r3", 310, "ok", {})
    state_store.start_run(run("q1", 100, profile=Q))
    assert state_store.prune(P, closed_before=None, runs_before=250).runs == 2
    assert [r.run_id for r in recorded_runs(state_store, P)] == ["r3"]
    assert state_store.prune(P, closed_before=None, runs_before=10_000).runs == 0
    assert [r.run_id for r in recorded_runs(state_store, P)] == ["r3"]
    assert [r.run_id for r in recorded_runs(state_store, Q)] == ["q1"]


# ======================================================= PopulationReader


def test_population_counts_open_complaints_by_status_and_clock_state(
    state_store: StateDatabase,
) -> None:
    """Only open complaints of the profile count; a status that is not text is left out."""
    breached = {"level1-resolution": "breached", "email-reply": "on_track"}
    state_store.put_complaints(
        [
            complaint("A", flags={"status": "breached"}, clock_states=breached),
            complaint("B", flags={"status": "breached"}, clock_states=breached),
            complaint("C", flags={"status": "on_track"}, clock_states={"email-reply": "on_track"}),
            complaint("D", flags={}, clock_states={"level1-resolution": "pending"}),
            complaint("E", flags={"status": 3}),
            complaint("F", None, flags={"status": "met"}, clock_states=breached, closed_at=9),
            complaint("G", profile=Q, flags={"status": "breached"}, clock_states=breached),
        ]
    )
    assert state_store.population(P) == Population(
        by_status={"breached": 2, "on_track": 1},
        by_clock={
            ("level1-resolution", "breached"): 2,
            ("level1-resolution", "pending"): 1,
            ("email-reply", "on_track"): 3,
        },
    )
    assert state_store.population("nobody") == Population({}, {})


def test_complaints_page_walks_every_complaint_of_the_profile_in_id_order(
    state_store: StateDatabase,
) -> None:
    """Pages of ids after the last one seen, open and closed alike, never another profile's."""
    state_store.put_complaints(
        [complaint(cid, None) for cid in ("C-3", "C-1", "C-b", "C-B")]
        + [complaint("C-2", None, closed_at=5), complaint("C-0", None, profile=Q)]
    )
    first = state_store.complaints_page(P, "", 2)
    assert [c.id for c in first] == ["C-1", "C-2"]
    assert [c.id for c in state_store.complaints_page(P, "C-2", 2)] == ["C-3", "C-B"]
    assert [c.id for c in state_store.complaints_page(P, "C-B", 2)] == ["C-b"]
    assert state_store.complaints_page(P, "C-b", 2) == []
    assert first == [complaint("C-1", None), complaint("C-2", None, closed_at=5)]


def test_known_profiles_are_those_with_a_state_or_a_run(state_store: StateDatabase) -> None:
    """known_profiles: every profile with a profile state or a run, once each, sorted;
    stored complaints or watermarks alone do not make a profile known."""
    assert state_store.known_profiles() == []
    state_store.put_complaints([complaint("C-1", profile="complaints-only")])
    state_store.set_watermark("marks-only", "complaints", datetime(2026, 3, 2, tzinfo=UTC))
    state_store.start_run(run("r1", 10, profile="zeta"))
    state_store.start_run(run("r2", 20, profile="zeta"))
    state_store.put_profile(ProfileState("alpha", 0, 0, "c", "m", 0))
    state_store.put_profile(ProfileState("zeta", 0, 0, "c", "m", 0))
    assert state_store.known_profiles() == ["alpha", "zeta"]


# ========================================================= ArchiveWitness


def test_the_archive_witness_only_moves_forward(state_store: StateDatabase) -> None:
    """None at first; a later head replaces it, an earlier one is ignored; the same entry
    with another hash is refused (the archive was rewritten) and changes nothing; each
    profile has its own."""
    h2, h3 = "2" * 64, "3" * 64
    assert state_store.get_witness(P) is None
    state_store.put_witness(ChainHead(P, 2, h2), 100)
    state_store.put_witness(ChainHead(P, 3, h3), 200)
    state_store.put_witness(ChainHead(P, 1, "1" * 64), 300)
    assert state_store.get_witness(P) == ChainHead(P, 3, h3)
    with pytest.raises(StateStoreError, match=r"entry 3 was recorded with hash 3333.*rewritten"):
        state_store.put_witness(ChainHead(P, 3, "f" * 64), 400)
    state_store.put_witness(ChainHead(P, 3, h3), 500)  # the same again: no change, no error
    assert state_store.get_witness(P) == ChainHead(P, 3, h3)
    assert state_store.get_witness(Q) is None
    state_store.put_witness(ChainHead(Q, 1, "1" * 64), 100)
    assert state_store.get_witness(Q) == ChainHead(Q, 1, "1" * 64)
    assert state_store.get_witness(P) == ChainHead(P, 3, h3)


# ======================================================== all three ports

PORTS = (StateStore, PopulationReader, ArchiveWitness)
# What a backend may offer beside the ports: where it keeps its data, the fake's controls.
EXTRAS = {"path", "schema", "schema_version", "recorded_runs"}

# One call of every port method but ``migrate`` and ``close``, with small valid arguments.
CALLS: dict[str, Callable[[StateDatabase], object]] = {
    "get_watermark": lambda s: s.get_watermark(P, "Case"),
    "set_watermark": lambda s: s.set_watermark(P, "Case", datetime(2026, 3, 2, tzinfo=UTC)),
    "put_complaints": lambda s: s.put_complaints([complaint("C-1")]),
    "get_complaints": lambda s: s.get_complaints(P, ["C-1"]),
    "due_complaints": lambda s: s.due_complaints(P, 10),
    "stale_complaints": lambda s: s.stale_complaints(P, 10),
    "delete_complaints": lambda s: s.delete_complaints(P, ["C-1"]),
    "next_check": lambda s: s.next_check(P),
    "get_profile": lambda s: s.get_profile(P),
    "put_profile": lambda s: s.put_profile(
        ProfileState(P, 1, 1, "c", "m", 1), reevaluate_open=True
    ),
    "ledger_for_complaints": lambda s: s.ledger_for_complaints(P, ["C-1"]),
    "ledger_put": lambda s: s.ledger_put([entry("k1")]),
    "start_run": lambda s: s.start_run(run("r1", 100)),
    "finish_run": lambda s: s.finish_run(P, "r1", 110, "ok", {}),
    "prune": lambda s: s.prune(P, closed_before=1, runs_before=1),
    "population": lambda s: s.population(P),
    "complaints_page": lambda s: s.complaints_page(P, "", 10),
    "known_profiles": lambda s: s.known_profiles(),
    "failed_follow_ups": lambda s: s.failed_follow_ups(P),
    "get_witness": lambda s: s.get_witness(P),
    "put_witness": lambda s: s.put_witness(ChainHead(P, 1, "a" * 64), 100),
}


def _methods(port: type) -> set[str]:
    return {name for name, value in vars(port).items() if callable(value) and name[0] != "_"}


def test_the_ports_split_the_methods_and_every_one_is_called_here() -> None:
    """No method sits in two ports, StateDatabase is exactly the three together, and
    ``CALLS`` (with migrate and close) holds every method, so the error tests below cover
    each one."""
    each = [_methods(port) for port in PORTS]
    assert sum(map(len, each)) == len(set().union(*each))
    assert _methods(StateDatabase) == set()
    assert {name for port in StateDatabase.__mro__ for name in _methods(port)} == set().union(*each)
    assert set(CALLS) | {"migrate", "close"} == set().union(*each)


def test_each_backend_offers_the_three_ports_and_nothing_more(
    state_backend: StateBackend,
) -> None:
    """Every port method is there; what else is public is where the data lives or a
    control of the fake, never a method the ports do not have."""
    public = {name for name in dir(state_backend.store) if name[0] != "_"}
    methods = set().union(*(_methods(port) for port in PORTS))
    assert methods <= public
    assert public - methods <= EXTRAS


def _refusals(
    store: StateDatabase, calls: dict[str, Callable[[StateDatabase], object]]
) -> dict[str, str]:
    """Each call's outcome: the ``StateStoreError`` message it raised, or what else happened."""
    said: dict[str, str] = {}
    for name, call in calls.items():
        try:
            call(store)
        except StateStoreError as exc:
            said[name] = str(exc)
        except Exception as exc:  # reported below by name
            said[name] = f"raised {type(exc).__name__}, not StateStoreError"
        else:
            said[name] = "no error"
    return said


def test_every_method_refuses_a_store_not_migrated(state_backend: StateBackend) -> None:
    """Before migrate() each method of the three ports raises StateStoreError saying
    migrate() was not run."""
    said = _refusals(state_backend.store, CALLS)
    assert {name: "migrate" in text for name, text in said.items()} == dict.fromkeys(CALLS, True), (
        said
    )


def test_every_method_refuses_a_closed_store(state_store: StateDatabase) -> None:
    """After close() each method of the three ports, migrate included, raises
    StateStoreError saying the store is closed."""
    state_store.close()
    calls = {**CALLS, "migrate": lambda s: s.migrate()}
    said = _refusals(state_store, calls)
    assert {name: "closed" in text for name, text in said.items()} == dict.fromkeys(calls, True), (
        said
    )


# ------------------------------------------------------- SQL backends only

_EXTRA = Migration(2, "a test table", ("CREATE TABLE {schema}.extra (profile text NOT NULL)",))
_BROKEN = Migration(2, "a broken step", ("CREATE TABLE {schema}.half (x int)", "NOT SQL AT ALL"))


def _sqlite_versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        conn.close()


def test_sqlite_migrations_apply_missing_steps_in_order(tmp_path: Path) -> None:
    """A version-1 SQLite database gets step 2 only; a failing step leaves version 1 whole."""
    path = tmp_path / "m.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    first = SQLITE_MIGRATIONS[:1]
    try:
        assert migrate_sqlite(conn, "test", first) == 1
        broken = (
            *first,
            Migration(2, "broken", ("CREATE TABLE half (x INTEGER)", "NOT SQL AT ALL")),
        )
        with pytest.raises(sqlite3.Error):
            migrate_sqlite(conn, "test", broken)
        assert _sqlite_versions(path) == [1]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "half" not in tables
        extra = (*first, Migration(2, "extra", ("CREATE TABLE extra (p TEXT)",)))
        assert migrate_sqlite(conn, "test", extra) == 2
        assert migrate_sqlite(conn, "test", extra) == 2
    finally:
        conn.close()
    assert _sqlite_versions(path) == [1, 2]


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A schema name of its own on the test server, dropped (with everything in it) after."""
    schema = f"crmsync_test_{time.time_ns()}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.postgres
def test_postgres_migrations_apply_missing_steps_in_order(
    postgres_url: str, pg_schema: str
) -> None:
    """A version-1 schema gets step 2 only; a failing step leaves version 1 whole."""
    schema, ident = pg_schema, sql.Identifier(pg_schema)
    with psycopg.connect(postgres_url) as conn:
        first = POSTGRES_MIGRATIONS[:1]
        assert migrate_postgres(conn, schema, "test", first) == 1
        with pytest.raises(psycopg.Error):
            migrate_postgres(conn, schema, "test", (*first, _BROKEN))
        half = conn.execute("SELECT to_regclass(%s)", (f"{schema}.half",)).fetchone()
        assert half == (None,)
        assert migrate_postgres(conn, schema, "test", (*first, _EXTRA)) == 2
        versions = conn.execute(
            sql.SQL("SELECT version FROM {}.schema_version ORDER BY 1").format(ident)
        ).fetchall()
        assert versions == [(1,), (2,)]


_V1_ROWS = [  # (id, canonical, closed) as a version-1 store wrote them
    ("z-utc", '{"id":"z-utc","events":{"closed":"2026-03-02T10:00:00Z"}}', True),
    ("z-offset", '{"id":"z-offset","events":{"closed":"2026-03-02T10:00:00+01:00"}}', True),
    ("z-list", '{"id":"z-list","events":{"closed":["2026-03-02T10:00:00Z"]}}', True),
    ("z-junk", '{"id":"z-junk","events":{"closed":"not a date"}}', True),
    ("z-open", '{"id":"z-open","events":{"received":"2026-03-02T10:00:00Z"}}', False),
]
_V2_CLOSED_AT = {
    "z-utc": 1_772_445_600,  # 2026-03-02T10:00:00Z
    "z-offset": 1_772_442_000,  # an hour earlier
    "z-list": None,  # not one instant: left unknown, so never pruned
    "z-junk": None,
    "z-open": None,
}


def test_sqlite_version_1_upgrades_with_closing_instants_filled_in(tmp_path: Path) -> None:
    """Complaints stored closed by version 1 get their closing instant from the canonical
    'closed' event when it is one instant; the upgraded store prunes them by it."""
    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate_sqlite(conn, "test", SQLITE_MIGRATIONS[:1]) == 1
        conn.executemany(
            "INSERT INTO complaints (profile, id, canonical, flags, next_check, source_hash, "
            "closed) VALUES (?, ?, ?, '{}', NULL, 'h', ?)",
            [(P, cid, canonical, int(closed)) for cid, canonical, closed in _V1_ROWS],
        )
    finally:
        conn.close()
    store = SqliteStateStore(path)
    try:
        assert store.migrate() == LATEST_VERSION
        got = store.get_complaints(P, list(_V2_CLOSED_AT))
        assert {cid: c.closed_at for cid, c in got.items()} == _V2_CLOSED_AT
        assert {c.clock_states == {} for c in got.values()} == {True}  # until evaluated again
        # never evaluated under schema 5: evaluated again at the next cycle, whatever its now
        assert {c.id for c in store.stale_complaints(P, 0)} == set(_V2_CLOSED_AT)
        assert store.get_profile(P) is None
        assert store.prune(P, closed_before=1_772_445_600, runs_before=None).complaints == 1
        assert "z-offset" not in store.get_complaints(P, ["z-offset"])
    finally:
        store.close()
    assert _sqlite_versions(path) == [1, 2, 3, 4, 5]


@pytest.mark.postgres
def test_postgres_version_1_upgrades_with_closing_instants_filled_in(
    postgres_url: str, pg_schema: str
) -> None:
    """As on SQLite: version-1 rows get their closing instant; junk never fails the step."""
    schema = pg_schema
    with psycopg.connect(postgres_url) as conn:
        assert migrate_postgres(conn, schema, "test", POSTGRES_MIGRATIONS[:1]) == 1
        conn.cursor().executemany(
            sql.SQL(
                "INSERT INTO {}.complaints (profile, id, canonical, flags, next_check, "
                "source_hash, closed) VALUES (%s, %s, %s::jsonb, '{{}}', NULL, 'h', %s)"
            ).format(sql.Identifier(schema)),
            [(P, cid, canonical, closed) for cid, canonical, closed in _V1_ROWS],
        )
        conn.commit()
    store = PostgresStateStore(postgres_url, schema=schema, application_name=schema)
    try:
        assert store.migrate() == LATEST_VERSION
        got = store.get_complaints(P, list(_V2_CLOSED_AT))
        assert {cid: c.closed_at for cid, c in got.items()} == _V2_CLOSED_AT
        assert {c.clock_states == {} for c in got.values()} == {True}
        assert {c.id for c in store.stale_complaints(P, 0)} == set(_V2_CLOSED_AT)
        assert store.get_profile(P) is None
    finally:
        store.close()


def test_migration_lists_are_numbered_one_to_n() -> None:
    """Both dialects list versions 1..LATEST_VERSION; a gap is refused."""
    assert [m.version for m in SQLITE_MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    assert [m.version for m in POSTGRES_MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    with pytest.raises(StateStoreError, match=r"\[1, 3\]"):
        check_order([SQLITE_MIGRATIONS[0], Migration(3, "gap", ())])


def test_sqlite_uses_wal_and_the_due_index(tmp_path: Path) -> None:
    """The file is in WAL mode and due_complaints is answered from (profile, next_check)."""
    path = tmp_path / "s.sqlite3"
    store = SqliteStateStore(path)
    try:
        store.migrate()
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM complaints "
                "WHERE profile = ? AND next_check IS NOT NULL AND next_check <= ? "
                "ORDER BY next_check, id",
                ("p", 1),
            )
        )
    finally:
        conn.close()
    assert "complaints_due" in plan


@pytest.mark.postgres
def test_postgres_reconnects_once_after_the_connection_drops(
    postgres_url: str, pg_schema: str
) -> None:
    """A killed server connection is replaced and the call succeeds, logging a warning."""
    schema = pg_schema
    store = PostgresStateStore(postgres_url, schema=schema, application_name=schema)
    try:
        store.migrate()
        store.put_complaints([complaint("C-1")])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (schema,),
            ).fetchall()
        assert killed == [(True,)]
        with capture_logs() as logs:
            assert count_complaints(store, P) == 1
        assert [e["event"] for e in logs] == ["state_store.reconnect"]
        store.put_complaints([complaint("C-2")])
        assert count_complaints(store, P) == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://crm:Sup3r-S3cret@127.0.0.1:1/db",
        "postgres://crm:Sup3r-S3cret@127.0.0.1:1/db?sslmode=disable",
        "postgresql://crm@127.0.0.1:1/db?password=Sup3r-S3cret",
    ],
    ids=["userinfo", "postgres-scheme", "query"],
)
def test_postgres_errors_never_show_the_password(url: str) -> None:
    """Failing to connect (nothing listens on port 1) names the host but not the password."""
    with pytest.raises(StateStoreError) as caught:
        PostgresStateStore(url, connect_timeout=2)
    message = str(caught.value)
    assert "Sup3r-S3cret" not in message
    assert "127.0.0.1" in message
    assert "***" in message
    assert caught.value.__cause__ is None


# -------------------------------------------------------------------- factory


def test_factory_defaults_to_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    """No URL (None or empty) opens SQLite at data_dir/state.sqlite3, creating the folder."""
    for url in (None, ""):
        data_dir = tmp_path / f"data-{url!r}"
        store = open_state_store(url, data_dir)
        try:
            assert isinstance(store, SqliteStateStore)
            assert store.migrate() == LATEST_VERSION
        finally:
            store.close()
        assert (data_dir / "state.sqlite3").is_file()


def test_factory_reads_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:////abs/path is absolute, sqlite:///rel/path relative to the working folder."""
    absolute = open_state_store(f"sqlite:///{tmp_path}/abs.db", tmp_path / "unused")
    monkeypatch.chdir(tmp_path)
    relative = open_state_store("sqlite:///sub/rel%20x.db", tmp_path / "unused")
    try:
        assert isinstance(absolute, SqliteStateStore)
        assert isinstance(relative, SqliteStateStore)
        assert absolute.path == tmp_path / "abs.db"
        assert relative.path == Path("sub/rel x.db")
    finally:
        absolute.close()
        relative.close()
    assert (tmp_path / "abs.db").is_file()
    assert (tmp_path / "sub" / "rel x.db").is_file()
    assert not (tmp_path / "unused").exists()


def test_factory_opens_postgres_for_both_schemes(tmp_path: Path) -> None:
    """postgresql:// and postgres:// reach the PostgreSQL store (here: nothing listening)."""
    for scheme in ("postgresql", "postgres"):
        with pytest.raises(StateStoreError, match=r"cannot connect") as caught:
            open_state_store(f"{scheme}://crm:hunter22@127.0.0.1:1/db", tmp_path)
        assert "hunter22" not in str(caught.value)


@pytest.mark.postgres
def test_factory_returns_a_working_postgres_store(postgres_url: str, tmp_path: Path) -> None:
    """A reachable PostgreSQL URL gives a PostgresStateStore on the crmsync schema."""
    store = open_state_store(postgres_url, tmp_path)
    try:
        assert isinstance(store, PostgresStateStore)
        assert store.schema == "crmsync"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://crm:hunter22@db.example/crm", "scheme 'mysql'"),
        ("postgresql+psycopg://crm:hunter22@db/crm", "scheme 'postgresql+psycopg'"),
        ("crm:hunter22@db/crm", "no scheme"),
        ("/var/lib/crmsync/state.sqlite3", "no scheme"),
        ("sqlite://", "three slashes"),
        ("sqlite:///x.db?mode=hunter22", "no ? or #"),
    ],
)
def test_factory_refuses_other_urls_without_secrets(url: str, said: str, tmp_path: Path) -> None:
    """Unknown schemes and malformed URLs raise ConfigError naming the problem, not secrets."""
    with pytest.raises(ConfigError, match=re.escape(said)) as caught:
        open_state_store(url, tmp_path)
    assert "hunter22" not in str(caught.value)


def test_a_file_that_is_not_a_database_is_refused_by_name(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises StateStoreError naming the file."""
    path = tmp_path / "notes.txt"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StateStoreError, match=re.escape("notes.txt")):
        SqliteStateStore(path)
