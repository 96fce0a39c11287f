"""Schema versions of the SQL state stores: an ordered list of migrations per dialect.

Each dialect's list holds versions 1, 2, ... n in order (version 1 = the first tables);
both lists always end at the same version, ``LATEST_VERSION``. The table
``schema_version`` records one row per applied migration. ``migrate_sqlite`` and
``migrate_postgres`` apply the missing migrations in order inside one transaction and
return the version in force; a database at a version newer than the code knows is
refused with ``StateStoreError`` and left untouched. On PostgreSQL the transaction first
takes an advisory lock (per schema), so replicas starting together migrate one at a time.

Every table carries a ``profile`` column first; later tables (the archive) are added as
new migrations, never by editing an applied one.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from crmsync.errors import StateStoreError


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its version, what it does, and the statements that do it.

    PostgreSQL statements name tables as ``{schema}.table``; the schema is filled in as a
    quoted identifier.
    """

    version: int
    description: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "watermarks, complaints, ledger and runs",
        (
            """CREATE TABLE watermarks (
                profile  TEXT    NOT NULL,
                name     TEXT    NOT NULL,
                value_us INTEGER NOT NULL,  -- microseconds since the epoch, UTC
                PRIMARY KEY (profile, name)
            ) WITHOUT ROWID""",
            """CREATE TABLE complaints (
                profile     TEXT    NOT NULL,
                id          TEXT    NOT NULL,
                canonical   TEXT    NOT NULL,  -- JSON
                flags       TEXT    NOT NULL,  -- JSON
                next_check  INTEGER,           -- epoch seconds, NULL = never due
                source_hash TEXT    NOT NULL,
                closed      INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
                PRIMARY KEY (profile, id)
            )""",
            "CREATE INDEX complaints_due ON complaints (profile, next_check)",
            """CREATE TABLE ledger (
                profile      TEXT    NOT NULL,
                key          TEXT    NOT NULL,
                complaint_id TEXT    NOT NULL,
                clock        TEXT    NOT NULL,
                occurrence   INTEGER NOT NULL,
                state        TEXT    NOT NULL,
                status       TEXT    NOT NULL
                    CHECK (status IN ('planned', 'done', 'failed', 'completed')),
                crm_id       TEXT,
                error        TEXT,
                updated_at   INTEGER NOT NULL,
                PRIMARY KEY (profile, key)
            )""",
            "CREATE INDEX ledger_by_complaint ON ledger (profile, complaint_id)",
            """CREATE TABLE runs (
                profile     TEXT    NOT NULL,
                run_id      TEXT    NOT NULL,
                started_at  INTEGER NOT NULL,
                finished_at INTEGER,
                status      TEXT    NOT NULL,
                summary     TEXT    NOT NULL,  -- JSON
                PRIMARY KEY (profile, run_id)
            )""",
            "CREATE INDEX runs_recent ON runs (profile, started_at)",
        ),
    ),
    Migration(
        2,
        "closing instant of stored complaints, for retention",
        (
            "ALTER TABLE complaints ADD COLUMN closed_at INTEGER",  # epoch seconds; NULL: open
            # complaints stored closed before: their canonical 'closed' event, when it is one
            # instant (a date alone reads as UTC midnight: retention does not need the hour)
            """UPDATE complaints
                SET closed_at = CAST(strftime('%s', json_extract(canonical, '$.events.closed'))
                                     AS INTEGER)
                WHERE closed = 1 AND json_type(canonical, '$.events.closed') = 'text'""",
            """CREATE INDEX complaints_closed ON complaints (profile, closed_at)
                WHERE closed_at IS NOT NULL""",
        ),
    ),
    Migration(
        3,
        "clock states of stored complaints, for the population metrics",
        # clock id -> state at the last evaluation; {} until a complaint is evaluated again
        ("ALTER TABLE complaints ADD COLUMN clock_states TEXT NOT NULL DEFAULT '{}'",),
    ),
    Migration(
        4,
        "the archive head last seen, a witness kept apart from the archive",
        (
            """CREATE TABLE archive_witness (
                profile     TEXT    NOT NULL PRIMARY KEY,
                seq         INTEGER NOT NULL,
                entry_hash  TEXT    NOT NULL,
                recorded_at INTEGER NOT NULL  -- epoch seconds
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        5,
        "evaluation instant of stored complaints; per-profile follow-up horizon and hashes",
        (
            # the now of the last evaluation; NULL (every row stored before): evaluate again
            # at the next cycle, whatever its now
            "ALTER TABLE complaints ADD COLUMN evaluated_at INTEGER",
            "CREATE INDEX complaints_evaluated ON complaints (profile, evaluated_at)",
            """CREATE TABLE profiles (
                profile         TEXT    NOT NULL PRIMARY KEY,
                follow_up_since INTEGER NOT NULL,  -- epoch seconds, set once
                horizon         INTEGER NOT NULL,  -- epoch seconds, in force last cycle
                charter_hash    TEXT    NOT NULL,
                mapping_hash    TEXT    NOT NULL,
                updated_at      INTEGER NOT NULL
            ) WITHOUT ROWID""",
        ),
    ),
)

# an ISO date or date-time as PostgreSQL's timestamptz reads it (braces doubled: the
# statements go through ``sql.SQL.format``)
_ISO_INSTANT_RE = (
    "^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}"
    "([T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]+)?)?)?"
    "(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?$"
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "watermarks, complaints, ledger and runs",
        (
            """CREATE TABLE {schema}.watermarks (
                profile text        NOT NULL,
                name    text        NOT NULL,
                value   timestamptz NOT NULL,
                PRIMARY KEY (profile, name)
            )""",
            """CREATE TABLE {schema}.complaints (
                profile     text    NOT NULL,
                id          text    NOT NULL,
                canonical   jsonb   NOT NULL,
                flags       jsonb   NOT NULL,
                next_check  bigint,
                source_hash text    NOT NULL,
                closed      boolean NOT NULL DEFAULT false,
                PRIMARY KEY (profile, id)
            )""",
            "CREATE INDEX complaints_due ON {schema}.complaints (profile, next_check)",
            """CREATE TABLE {schema}.ledger (
                profile      text   NOT NULL,
                key          text   NOT NULL,
                complaint_id text   NOT NULL,
                clock        text   NOT NULL,
                occurrence   bigint NOT NULL,
                state        text   NOT NULL,
                status       text   NOT NULL
                    CHECK (status IN ('planned', 'done', 'failed', 'completed')),
                crm_id       text,
                error        text,
                updated_at   bigint NOT NULL,
                PRIMARY KEY (profile, key)
            )""",
            "CREATE INDEX ledger_by_complaint ON {schema}.ledger (profile, complaint_id)",
            """CREATE TABLE {schema}.runs (
                seq         bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order
                profile     text   NOT NULL,
                run_id      text   NOT NULL,
                started_at  bigint NOT NULL,
                finished_at bigint,
                status      text   NOT NULL,
                summary     jsonb  NOT NULL,
                PRIMARY KEY (profile, run_id)
            )""",
            "CREATE INDEX runs_recent ON {schema}.runs (profile, started_at, seq)",
        ),
    ),
    Migration(
        2,
        "closing instant of stored complaints, for retention",
        (
            "ALTER TABLE {schema}.complaints ADD COLUMN closed_at bigint",
            # as on SQLite; a value that is not an ISO date-time is left NULL, never an error
            """UPDATE {schema}.complaints
                SET closed_at = floor(extract(epoch FROM
                    (canonical -> 'events' ->> 'closed')::timestamptz))::bigint
                WHERE closed
                  AND jsonb_typeof(canonical -> 'events' -> 'closed') = 'string'
                  AND canonical -> 'events' ->> 'closed' ~ '"""
            + _ISO_INSTANT_RE
            + "'",
            """CREATE INDEX complaints_closed ON {schema}.complaints (profile, closed_at)
                WHERE closed_at IS NOT NULL""",
        ),
    ),
    Migration(
        3,
        "clock states of stored complaints, for the population metrics",
        ("ALTER TABLE {schema}.complaints ADD COLUMN clock_states jsonb NOT NULL DEFAULT '{{}}'",),
    ),
    Migration(
        4,
        "the archive head last seen, a witness kept apart from the archive",
        (
            """CREATE TABLE {schema}.archive_witness (
                profile     text   NOT NULL PRIMARY KEY,
                seq         bigint NOT NULL,
                entry_hash  text   NOT NULL,
                recorded_at bigint NOT NULL
            )""",
        ),
    ),
    Migration(
        5,
        "evaluation instant of stored complaints; per-profile follow-up horizon and hashes",
        (
            "ALTER TABLE {schema}.complaints ADD COLUMN evaluated_at bigint",
            "CREATE INDEX complaints_evaluated ON {schema}.complaints (profile, evaluated_at)",
            """CREATE TABLE {schema}.profiles (
                profile         text   NOT NULL PRIMARY KEY,
                follow_up_since bigint NOT NULL,
                horizon         bigint NOT NULL,
                charter_hash    text   NOT NULL,
                mapping_hash    text   NOT NULL,
                updated_at      bigint NOT NULL
            )""",
        ),
    ),
)

LATEST_VERSION = 5


def check_order(migrations: Sequence[Migration]) -> None:
    """Raise ``StateStoreError`` unless the versions are exactly 1, 2, ... n in order."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StateStoreError(f"migrations must be numbered 1..n in order, got {versions}")


def pending(current: int, migrations: Sequence[Migration], where: str) -> list[Migration]:
    """The migrations still to apply to a database at version ``current``, in order.

    Raises ``StateStoreError`` if the database is newer than the last migration known.
    """
    check_order(migrations)
    known = len(migrations)
    if current > known:
        raise StateStoreError(
            f"{where}: the database schema is at version {current}, newer than this "
            f"crmsync knows (version {known}); upgrade crmsync, or point it at another "
            "database"
        )
    return [m for m in migrations if m.version > current]


_SQLITE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""


def migrate_sqlite(
    conn: sqlite3.Connection, where: str, migrations: Sequence[Migration] = SQLITE_MIGRATIONS
) -> int:
    """Bring a SQLite database (connection in autocommit mode) to the last version.

    One ``BEGIN IMMEDIATE`` transaction: concurrent migrators wait for each other.
    Returns the version in force; raises ``StateStoreError`` for a newer database.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SQLITE_VERSION_TABLE)
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        current = int(row[0])
        for migration in pending(current, migrations, where):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) "
                "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (migration.version, migration.description),
            )
            current = migration.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return current


def advisory_lock_key(schema: str) -> int:
    """The signed 64-bit advisory lock key guarding migrations of ``schema``."""
    digest = hashlib.blake2b(f"crmsync.migrate:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def migrate_postgres(
    conn: psycopg.Connection[Any],
    schema: str,
    where: str,
    migrations: Sequence[Migration] = POSTGRES_MIGRATIONS,
) -> int:
    """Bring ``schema`` (created if missing) to the last version, in one transaction.

    ``conn`` has autocommit off and no transaction open. The transaction first takes
    ``pg_advisory_xact_lock`` for the schema, released at commit or rollback. Returns the
    version in force; raises ``StateStoreError`` for a newer database.
    """
    ident = sql.Identifier(schema)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(schema),))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                    " version integer PRIMARY KEY,"
                    " description text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
            cur.execute(
                sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}.schema_version").format(ident)
            )
            row = cur.fetchone()
            current = int(row[0]) if row is not None else 0
            for migration in pending(current, migrations, where):
                for statement in migration.statements:
                    cur.execute(sql.SQL(statement).format(schema=ident))
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)"
                    ).format(ident),
                    (migration.version, migration.description),
                )
                current = migration.version
        conn.commit()
    except BaseException:
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):  # keep the original error
                conn.rollback()
        raise
    return current
