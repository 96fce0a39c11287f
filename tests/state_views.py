"""What tests read back from a state store, through the ports production uses.

No port counts complaints, fetches ledger entries by key or lists runs: production never
asks. Tests observe the same facts through what it does ask (``complaints_page``,
``ledger_for_complaints``) and, for the run history (written for operators, retention
and ``known_profiles``; read back by no production code), where each store keeps it: the
in-memory fake's ``recorded_runs``, the SQLite file, the PostgreSQL schema.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

import psycopg
from psycopg import sql

from crmsync.adapters.state import codec
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.postgres import PostgresStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.ports import LedgerEntry, PopulationReader, RunRecord, StateStore

POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_PAGE = 1000


def stored_ids(store: PopulationReader, profile: str) -> list[str]:
    """The ids of every complaint (open and closed) the profile holds, in id order."""
    ids: list[str] = []
    while page := store.complaints_page(profile, ids[-1] if ids else "", _PAGE):
        ids.extend(c.id for c in page)
    return ids


def count_complaints(store: PopulationReader, profile: str) -> int:
    """How many complaints (open and closed) the profile holds."""
    return len(stored_ids(store, profile))


def ledger(
    store: StateStore, profile: str, complaint_ids: Sequence[str] = ("C-1",)
) -> dict[str, LedgerEntry]:
    """The ledger entries of these complaints, by key."""
    return {e.key: e for e in store.ledger_for_complaints(profile, complaint_ids)}


def recorded_runs(store: object, profile: str, limit: int = 20) -> list[RunRecord]:
    """The profile's last ``limit`` runs as the store keeps them, newest ``started_at``
    first (ties: last started first)."""
    if limit <= 0:
        return []
    if isinstance(store, MemoryStateStore):
        return store.recorded_runs(profile)[:limit]
    if isinstance(store, SqliteStateStore):
        conn = sqlite3.connect(store.path)
        try:
            rows = conn.execute(
                "SELECT profile, run_id, started_at, finished_at, status, summary FROM runs "
                "WHERE profile = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (profile, limit),
            ).fetchall()
        finally:
            conn.close()
        return [codec.run_from_row(row) for row in rows]
    if isinstance(store, PostgresStateStore):
        query = sql.SQL(
            "SELECT profile, run_id, started_at, finished_at, status, summary::text "
            "FROM {}.runs WHERE profile = %s ORDER BY started_at DESC, seq DESC LIMIT %s"
        ).format(sql.Identifier(store.schema))
        with psycopg.connect(POSTGRES_URL) as conn:
            return [codec.run_from_row(row) for row in conn.execute(query, (profile, limit))]
    raise TypeError(f"no run history reader for {type(store).__name__}")
