"""``ArchiveStore`` on PostgreSQL (psycopg 3): an append-only table on the state store's server.

Tables, in schema ``crmsync_archive`` unless told (a schema of its own, so that reading it
can be granted to complaint staff alone)::

    archive_entries (profile, seq, complaint_id, version, closed_at, charter, entry_hash,
                     document)     -- PRIMARY KEY (profile, seq); document = the entry as
                                   -- canonical JSON text (text, not jsonb: kept byte for byte)
    archive_heads   (profile, seq, entry_hash)   -- the recorded head of each chain

Triggers refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on ``archive_entries`` and let a
head only move forward one entry at a time, so the application role cannot rewrite
history; a superuser who bypasses them is still caught by ``verify`` (hashes, links, and
the head against the last row). The columns beside ``document`` are its index: search
selects by them, checks every row it returns against its document and refuses
(``ArchiveIndexError``) when they differ; ``verify`` checks every row. A row hidden from a
search by a changed column is found by ``verify`` only (a check at every search would read
the whole table); only a role that bypasses the triggers can change one. An append is
one transaction: lock the head row (``FOR UPDATE``), check that the entry follows it and
that its complaint version is not stored yet, insert, move the head. Tables and
triggers are created on first use under an advisory lock. Errors become ``ArchiveError``
and never quote the URL's password.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg

from crmsync.adapters._postgres_session import PostgresSession
from crmsync.domain.archive_chain import Finding
from crmsync.domain.archive_entry import (
    GENESIS,
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    StoredEntry,
    check_profile,
    entry_from_document,
    header_from_dict,
    make_ref,
    parse_ref,
)
from crmsync.errors import (
    ArchiveError,
    ArchiveIndexError,
    ChainConflictError,
    DuplicateEntryError,
    EntryNotFoundError,
)

T = TypeVar("T")

DEFAULT_SCHEMA = "crmsync_archive"
_PAGE = 1000  # rows per query when walking a chain

_DDL = [
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.archive_entries (
        profile text NOT NULL,
        seq bigint NOT NULL,
        complaint_id text COLLATE "C" NOT NULL,
        version text COLLATE "C" NOT NULL,
        closed_at text COLLATE "C" NOT NULL,
        charter text COLLATE "C" NOT NULL,
        entry_hash text NOT NULL,
        document text NOT NULL,
        PRIMARY KEY (profile, seq))""",
    "CREATE INDEX IF NOT EXISTS archive_entries_complaint "
    "ON {s}.archive_entries (profile, complaint_id, version)",
    "CREATE INDEX IF NOT EXISTS archive_entries_closed ON {s}.archive_entries (profile, closed_at)",
    """CREATE TABLE IF NOT EXISTS {s}.archive_heads (
        profile text PRIMARY KEY,
        seq bigint NOT NULL,
        entry_hash text NOT NULL)""",
    """CREATE OR REPLACE FUNCTION {s}.archive_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'crmsync archive is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END $$""",
    """CREATE OR REPLACE FUNCTION {s}.archive_head_forward() RETURNS trigger LANGUAGE plpgsql
    AS $$
    BEGIN
        IF NEW.profile <> OLD.profile OR NEW.seq <> OLD.seq + 1 THEN
            RAISE EXCEPTION 'crmsync archive head of % may only move forward by one',
                OLD.profile;
        END IF;
        RETURN NEW;
    END $$""",
    "DROP TRIGGER IF EXISTS archive_entries_frozen ON {s}.archive_entries",
    "CREATE TRIGGER archive_entries_frozen BEFORE UPDATE OR DELETE ON {s}.archive_entries "
    "FOR EACH ROW EXECUTE FUNCTION {s}.archive_refuse()",
    "DROP TRIGGER IF EXISTS archive_entries_no_truncate ON {s}.archive_entries",
    "CREATE TRIGGER archive_entries_no_truncate BEFORE TRUNCATE ON {s}.archive_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION {s}.archive_refuse()",
    "DROP TRIGGER IF EXISTS archive_heads_forward ON {s}.archive_heads",
    "CREATE TRIGGER archive_heads_forward BEFORE UPDATE ON {s}.archive_heads "
    "FOR EACH ROW EXECUTE FUNCTION {s}.archive_head_forward()",
    "DROP TRIGGER IF EXISTS archive_heads_kept ON {s}.archive_heads",
    "CREATE TRIGGER archive_heads_kept BEFORE DELETE ON {s}.archive_heads "
    "FOR EACH ROW EXECUTE FUNCTION {s}.archive_refuse()",
    "DROP TRIGGER IF EXISTS archive_heads_no_truncate ON {s}.archive_heads",
    "CREATE TRIGGER archive_heads_no_truncate BEFORE TRUNCATE ON {s}.archive_heads "
    "FOR EACH STATEMENT EXECUTE FUNCTION {s}.archive_refuse()",
]


_INDEXED = "seq, complaint_id, version, closed_at, charter, entry_hash"
"""The columns copied from each entry's header, in this order (search selects by them)."""


def _column_differences(row: tuple[Any, ...], header: EntryHeader) -> list[str]:
    """The names of the indexed columns of ``row`` (``_INDEXED`` order) that differ from
    the entry's header."""
    names = ("seq", "complaint_id", "version", "closed_at", "charter", "entry_hash")
    return [n for n, v in zip(names, row, strict=False) if getattr(header, n) != v]


class PostgresArchiveStore:
    """The archive in schema ``schema`` of the database at ``url`` (created on first use).

    Connects at construction (``ArchiveError`` if it cannot). Calls are serialised, so one
    store may be shared by threads.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        connect_timeout: int = 10,
        application_name: str = "crmsync-archive",
    ) -> None:
        self._session = PostgresSession(
            url,
            schema=schema,
            kind="archive",
            error=ArchiveError,
            connect_timeout=connect_timeout,
            application_name=application_name,
        )
        self._where = self._session.where
        self._schema = schema
        self._ident = self._session.ident
        self._q = self._session.q
        self._run = self._session.run
        self._run("create tables", self._create)

    def __repr__(self) -> str:
        return f"PostgresArchiveStore({self._where!r})"

    # ------------------------------------------------------------------ plumbing

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmsync-archive-ddl'))")
        exists = conn.execute(
            "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND t.tgname = 'archive_heads_no_truncate'",
            (self._schema,),
        ).fetchone()
        if exists:
            return
        for statement in _DDL:
            conn.execute(self._q(statement))

    @staticmethod
    def _entry(document: str, where: str) -> ArchiveEntry:
        try:
            data = json.loads(document)
        except ValueError as exc:
            raise ArchiveError(f"{where}: not JSON ({exc})") from exc
        return entry_from_document(data, where)

    # ------------------------------------------------------------------ the port

    def append(self, entry: ArchiveEntry) -> None:
        """Insert the entry and move the head in one transaction (``ChainConflictError``
        when it does not follow the head)."""
        h = entry.header
        check_profile(h.profile)
        document = entry.to_bytes().decode("utf-8").rstrip("\n")

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                self._q(
                    "INSERT INTO {s}.archive_heads (profile, seq, entry_hash) "
                    "VALUES (%s, 0, %s) ON CONFLICT (profile) DO NOTHING"
                ),
                (h.profile, GENESIS),
            )
            row = conn.execute(
                self._q(
                    "SELECT seq, entry_hash FROM {s}.archive_heads WHERE profile = %s FOR UPDATE"
                ),
                (h.profile,),
            ).fetchone()
            assert row is not None
            if h.seq != row[0] + 1 or h.prev_hash != row[1]:
                raise ChainConflictError(
                    f"{self._where}: entry {entry.ref} does not follow the head "
                    f"{h.profile}/{row[0]}"
                )
            same = conn.execute(  # appends are serialised by the head row's lock
                self._q(
                    "SELECT seq FROM {s}.archive_entries "
                    "WHERE profile = %s AND complaint_id = %s AND version = %s LIMIT 1"
                ),
                (h.profile, h.complaint_id, h.version),
            ).fetchone()
            if same is not None:
                raise DuplicateEntryError(
                    f"{self._where}: complaint {h.complaint_id} version {h.version} is "
                    f"archived already as {h.profile}/{same[0]}"
                )
            taken = False
            try:
                conn.execute(
                    self._q(
                        "INSERT INTO {s}.archive_entries (profile, seq, complaint_id, version, "
                        "closed_at, charter, entry_hash, document) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ),
                    (
                        h.profile,
                        h.seq,
                        h.complaint_id,
                        h.version,
                        h.closed_at,
                        h.charter,
                        h.entry_hash,
                        document,
                    ),
                )
            except psycopg.errors.UniqueViolation:
                taken = True
            if taken:
                # no cause, no context (raised past the except block): the driver's error
                # holds its connection, password included
                raise ChainConflictError(
                    f"{self._where}: entry {entry.ref} exists already"
                ) from None
            conn.execute(
                self._q(
                    "UPDATE {s}.archive_heads SET seq = %s, entry_hash = %s WHERE profile = %s"
                ),
                (h.seq, h.entry_hash, h.profile),
            )

        self._run("append", work)

    def head(self, profile: str) -> ChainHead:
        """The recorded head (the heads table)."""
        check_profile(profile)

        def work(conn: psycopg.Connection[Any]) -> ChainHead:
            row = conn.execute(
                self._q("SELECT seq, entry_hash FROM {s}.archive_heads WHERE profile = %s"),
                (profile,),
            ).fetchone()
            return ChainHead(profile) if row is None else ChainHead(profile, int(row[0]), row[1])

        return self._run("head", work)

    def get(self, ref: str) -> ArchiveEntry:
        """The entry ``profile/seq`` (``EntryNotFoundError`` if none)."""
        profile, seq = parse_ref(ref)

        def work(conn: psycopg.Connection[Any]) -> str | None:
            row = conn.execute(
                self._q("SELECT document FROM {s}.archive_entries WHERE profile = %s AND seq = %s"),
                (profile, seq),
            ).fetchone()
            return None if row is None else str(row[0])

        document = self._run("get", work)
        if document is None:
            raise EntryNotFoundError(f"no archive entry {profile}/{seq}")
        entry = self._entry(document, f"{self._where} entry {profile}/{seq}")
        if entry.header.seq != seq or entry.header.profile != profile:
            raise ArchiveError(f"{self._where}: row {profile}/{seq} holds entry {entry.ref}")
        return entry

    def iterate(self, profile: str) -> Iterator[StoredEntry]:
        """Every row of the profile by ``seq``, read 1,000 at a time."""
        check_profile(profile)
        after = 0
        while True:
            last = after

            def work(conn: psycopg.Connection[Any], last: int = last) -> list[tuple[int, str]]:
                return [
                    (int(r[0]), str(r[1]))
                    for r in conn.execute(
                        self._q(
                            "SELECT seq, document FROM {s}.archive_entries "
                            "WHERE profile = %s AND seq > %s ORDER BY seq LIMIT %s"
                        ),
                        (profile, last, _PAGE),
                    )
                ]

            rows = self._run("iterate", work)
            for seq, document in rows:
                try:
                    yield StoredEntry(seq, self._entry(document, f"row {profile}/{seq}"))
                except ArchiveError as exc:
                    yield StoredEntry(seq, None, str(exc))
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def search(
        self,
        profile: str,
        *,
        complaint_id: str | None = None,
        version: str | None = None,
        closed_from: str | None = None,
        closed_before: str | None = None,
        charter: str | None = None,
    ) -> list[EntryHeader]:
        """Matching headers by ``seq`` (indexed by complaint and by closing instant)."""
        check_profile(profile)
        clauses = ["profile = %s"]
        params: list[Any] = [profile]
        for column, op, value in (
            ("complaint_id", "=", complaint_id),
            ("version", "=", version),
            ("closed_at", ">=", closed_from),
            ("closed_at", "<", closed_before),
            ("charter", "=", charter),
        ):
            if value is not None:
                clauses.append(f"{column} {op} %s")
                params.append(value)
        query = self._q(
            f"SELECT {_INDEXED}, document FROM {{s}}.archive_entries WHERE "
            + " AND ".join(clauses)
            + " ORDER BY seq"
        )

        def work(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(query, params)]

        out: list[EntryHeader] = []
        for row in self._run("search", work):
            where = f"{self._where} entry {profile}/{row[0]}"
            try:
                header = header_from_dict(json.loads(row[-1]).get("header"), where)
            except (ValueError, AttributeError) as exc:
                raise ArchiveError(f"{where}: unreadable ({exc})") from exc
            differ = _column_differences(row, header)
            if differ:
                raise ArchiveIndexError(
                    f"{where}: its {', '.join(differ)} column(s) disagree with the entry; "
                    "nothing is answered from them. Run 'crmsync archive verify'"
                )
            out.append(header)
        return out

    def index_problems(self, profile: str) -> list[Finding]:
        """Every row whose indexed columns (what search selects by) differ from its entry
        (rows that cannot be read are left to the chain's walk)."""
        check_profile(profile)
        findings: list[Finding] = []
        after = 0
        while True:
            last = after

            def work(conn: psycopg.Connection[Any], last: int = last) -> list[tuple[Any, ...]]:
                return [
                    tuple(r)
                    for r in conn.execute(
                        self._q(
                            f"SELECT {_INDEXED}, document FROM {{s}}.archive_entries "
                            "WHERE profile = %s AND seq > %s ORDER BY seq LIMIT %s"
                        ),
                        (profile, last, _PAGE),
                    )
                ]

            rows = self._run("index check", work)
            for row in rows:
                try:
                    header = header_from_dict(json.loads(row[-1]).get("header"), "row")
                except (ValueError, AttributeError, ArchiveError):
                    continue
                differ = _column_differences(row, header)
                if differ:
                    findings.append(
                        Finding(
                            int(row[0]),
                            make_ref(profile, int(row[0])),
                            f"the row's {', '.join(differ)} column(s) differ from the entry",
                        )
                    )
            if len(rows) < _PAGE:
                return findings
            after = int(rows[-1][0])

    def reindex(self, profile: str) -> int:
        """Nothing to rebuild when the columns agree with the entries (returns the rows);
        otherwise ``ArchiveError``: the table refuses ``UPDATE`` (append-only), so the
        columns are restored by a database administrator (see the project's README)."""
        problems = self.index_problems(profile)
        if problems:
            raise ArchiveError(
                f"{self._where}: {len(problems)} row(s) of profile '{profile}' have indexed "
                "columns that differ from their entry (first: "
                f"{problems[0]}); the append-only table refuses UPDATE, so crmsync cannot "
                "rewrite them: restore the table from a backup, or have a database "
                "administrator set the columns from each row's document"
            )
        return self.head(profile).seq

    def close(self) -> None:
        """Close the connection; later calls raise ``ArchiveError``. Idempotent."""
        self._session.close()
