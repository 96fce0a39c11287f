"""The embedded local CRM: Salesforce-shaped records in one SQLite file, behind ``CrmPort``.

One table holds every record (``id``, ``object``, ``modstamp``, ``fields`` as JSON text),
indexed by ``(object, modstamp, id)`` for incremental pulls; lookups by an external id or
a parent field use expression indexes on ``json_extract(fields, '$.<field>')`` made on
first use (the field names come from the caller, never from this module). Reads by id or
rowid write ``+object`` (no index on it): the planner would otherwise walk an
``(object, ...)`` index over every record of the object for each batch of 200 ids.

It behaves like the Salesforce REST API where the sync worker can tell the difference:

- ids are 18-character Salesforce ids starting with the object's key prefix;
- ``CreatedDate``-like system fields are set on writes, in Salesforce's datetime text
  (``2026-03-02T09:15:00.000+0000``); every write transaction stamps its records with one
  ``SystemModstamp`` from the injected clock, bumped by 1 ms past the previous write of the
  database when the clock has not moved (so stamps strictly increase per database);
- writes report per record (``NOT_FOUND``, ``INVALID_FIELD``, ``DUPLICATE_VALUE``...),
  never all-or-nothing; datetime values are normalised to Salesforce's text and empty text
  becomes null, as Salesforce does; null fields are not stored (they read as null, and
  ``export_records`` leaves them out);
- ``calls`` counts what the API would bill: one ``query`` per page of 2,000 records (and
  per batch of 200 ids or parent ids), one ``write`` per batch of 200 records, one
  ``describe`` per describe. ``insert_records``/``export_records`` are local tools
  (import, seeding) and count nothing.

Object schemas (field names, types, flags, key prefixes and the system field names) are
data: ``local_schema.json`` beside this module. An object listed there without fields,
or not listed at all, has no declared schema and takes any field. What a write may store
(field rules, value normalising, per-record errors, made ids) is
``salesforce_records.RecordRules``: this module keeps the records, in SQLite. Another
schema file may shape the records as another CRM does (its ids, datetime text, per-object
id fields and error names: the test fake of Dataverse keeps its rows so); the above
describes the bundled, Salesforce-shaped one.

The file is in WAL mode with a busy timeout: any number of readers and processes may share
it; each write batch is one short ``BEGIN IMMEDIATE`` transaction. A lock held past the
timeout raises ``CrmTransientError``; any other database failure ``CrmError``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

from crmsync.adapters.crm.page_writes import write_in_parts
from crmsync.adapters.crm.record_formats import demo_id
from crmsync.adapters.crm.salesforce_records import (
    NAME,
    Mode,
    RecordRules,
    _RecordError,
    load_schema,
    type_of,
)
from crmsync.adapters.crm.salesforce_values import epoch_millis
from crmsync.errors import CrmError, CrmTransientError, did_you_mean
from crmsync.ports import (
    CallCounter,
    FieldFilter,
    FieldInfo,
    PageResults,
    PageWrites,
    Record,
    WriteResult,
)
from crmsync.private_file import create_private_file

SCHEMA_FILE = Path(__file__).with_name("local_schema.json")
QUERY_PAGE = 2000  # records per query call (Salesforce's default batch size)
WRITE_BATCH = 200  # records per write call (sObject Collections limit)
ID_BATCH = 200  # ids or parent ids per query call
BUSY_TIMEOUT_S = 30.0


# One encoder for every stored record: ``json.dumps`` with options builds one per call.
_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False)

_DDL = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    modstamp TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_changed ON records (object, modstamp, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deleted (
    id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    modstamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_changed ON deleted (object, modstamp);
"""


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ----------------------------------------------------------------------------- the CRM


class LocalCrm:
    """``CrmPort`` on a SQLite file (created on first use), plus import/export tools.

    ``clock`` is the CRM's time (``server_time`` and every stamp); it must return aware
    datetimes and defaults to the system clock. One instance may be used from several
    threads (one connection per thread); call ``close`` when done.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        schema_file: Path = SCHEMA_FILE,
    ) -> None:
        self.path = Path(path)
        self.calls = CallCounter()
        self._clock = clock if clock is not None else _system_clock
        self._schema = load_schema(schema_file)
        self._format = self._schema.format
        self._rules = RecordRules(self._schema)
        self._conns: dict[tuple[int, int], sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._indexed: set[str] = set()
        keys = {
            info.name
            for spec in self._schema.objects.values()
            for info in (spec.fields or {}).values()
            if info.external_id or info.unique
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private_file(self.path)  # 0600, like the archive's files
            with self._write() as conn:
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                for field in sorted(keys):
                    conn.execute(self._index_sql(field))
        except OSError as exc:
            self.close()
            raise CrmError(f"local CRM {self.path}: cannot create ({exc.strerror})") from exc
        except CrmError:
            self.close()
            raise
        self._indexed.update(keys)

    # -- lifecycle

    def close(self) -> None:
        """Close this process's connections (the instance must not be used afterwards)."""
        with self._lock:
            mine = [key for key in self._conns if key[0] == os.getpid()]
            for key in mine:
                self._conns.pop(key).close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- ValueFormats

    def instant_text(self, instant: int) -> str:
        """The local CRM's datetime text, the reference org's: ``2026-03-02T09:15:00.000+0000``."""
        return self._format.millis_text(instant * 1000)

    def demo_record_id(self, kind: str, serial: int) -> str:
        """The demo's id of a ``complaint`` or a ``user``, in the store's id format."""
        return demo_id(self._format, kind, serial)

    # -- CrmPort

    def server_time(self) -> datetime:
        """The injected clock's time, in UTC."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the local CRM's clock returned a naive datetime")
        return now.astimezone(UTC)

    def changed_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        since: datetime | None,
        until: datetime,
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Records with ``since <= SystemModstamp < until`` matching ``where``, ordered by
        ``(SystemModstamp, Id)``, read in pages of 2,000 (one ``query`` call each) from one
        snapshot: records written while the caller iterates do not show up twice.

        Raises ``CrmError`` for a field the object's schema does not declare.
        """
        names = self._read_fields(object, fields)
        self._check_filters(object, where)
        low = None if since is None else self._format.millis_text(epoch_millis(since, ceil=True))
        high = self._format.millis_text(epoch_millis(until, ceil=True))
        sql_filter, filter_params = self._sql_prefilter(object, where)

        def pages() -> Iterator[list[tuple[str, str, str]]]:
            with self._snapshot() as conn:
                yield from snapshot_pages(conn)

        def snapshot_pages(conn: sqlite3.Connection) -> Iterator[list[tuple[str, str, str]]]:
            after: tuple[str, str] | None = None
            while True:
                sql = "SELECT id, modstamp, fields FROM records WHERE object = ? AND modstamp < ?"
                params: list[Any] = [object, high]
                # One lower bound only: the next page starts after the last row read (which
                # is past ``low``). Given both, SQLite seeks the index to ``low`` and steps
                # over every row read before on each page: quadratic in the window's size.
                if after is not None:
                    sql += " AND (modstamp, id) > (?, ?)"
                    params.extend(after)
                elif low is not None:
                    sql += " AND modstamp >= ?"
                    params.append(low)
                sql += sql_filter + " ORDER BY modstamp, id LIMIT ?"
                rows = self._fetch(sql, [*params, *filter_params, QUERY_PAGE], conn)
                yield rows
                if len(rows) < QUERY_PAGE:
                    return
                after = (rows[-1][1], rows[-1][0])

        return self._records(object, names, pages(), where)

    def related_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        parent_field: str,
        parent_ids: Sequence[str],
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Records whose ``parent_field`` is one of ``parent_ids``, queried 200 parents at a
        time (each batch one ``query`` call, plus one per further 2,000 records).

        Raises ``CrmError`` for a field the object's schema does not declare.
        """
        names = self._read_fields(object, fields)
        self._check_field(object, parent_field)
        self._check_filters(object, where)
        wanted = list(dict.fromkeys(self._format.normalize_id(p) or p for p in parent_ids))
        column = self._column(object, parent_field)
        sql_filter, filter_params = self._sql_prefilter(object, where)

        def generate() -> Iterator[Record]:
            if wanted:
                self._ensure_index(parent_field)
            for batch in _chunks(wanted, ID_BATCH):
                marks = ",".join("?" * len(batch))

                def pages(batch: Sequence[str] = batch, marks: str = marks) -> Iterator[Any]:
                    after = 0
                    while True:
                        rows = self._fetch(
                            "SELECT id, modstamp, fields, rowid FROM records"
                            f" WHERE object = ? AND {column} IN ({marks}) AND rowid > ?"
                            f"{sql_filter} ORDER BY rowid LIMIT ?",
                            [object, *batch, after, *filter_params, QUERY_PAGE],
                        )
                        yield rows
                        if len(rows) < QUERY_PAGE:
                            return
                        after = rows[-1][3]

                yield from self._records(object, names, pages(), where)

        return generate()

    def deleted_records(
        self, object: str, *, since: datetime | None, until: datetime
    ) -> Iterator[str]:
        """Ids of the object's records deleted (``delete_records``) with ``since <= stamp <
        until``, in deletion order; one ``query`` call."""
        self._check_object(object)
        self.calls.add("query")
        sql = "SELECT id FROM deleted WHERE object = ? AND modstamp < ?"
        params: list[Any] = [object, self._format.millis_text(epoch_millis(until, ceil=True))]
        if since is not None:
            sql += " AND modstamp >= ?"
            params.append(self._format.millis_text(epoch_millis(since, ceil=True)))
        return iter([str(rid) for (rid,) in self._fetch(sql + " ORDER BY modstamp, id", params)])

    def records_by_id(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[Record]:
        """The existing records among ``ids``, in the order asked (each once); one ``query``
        call per 200 ids. Raises ``CrmError`` for an undeclared field."""
        names = self._read_fields(object, fields)
        found = self._rows_by_id(object, ids)
        return [self._record(object, names, *found[key]) for key in found]

    def update_records(
        self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        """Set fields on existing records, one ``write`` call per 200; one result each, in
        order: ``NOT_FOUND``, ``INVALID_FIELD`` (unknown field, value not JSON-compatible),
        ``INVALID_FIELD_FOR_INSERT_UPDATE`` (read-only field),
        ``INVALID_TYPE_ON_FIELD_IN_RECORD`` (wrong type) or ``DUPLICATE_VALUE`` (a unique
        field's value taken) fail that record alone."""
        self._check_object(object)
        results: list[WriteResult] = []
        for batch in _chunks(updates, WRITE_BATCH):
            self.calls.add("write")
            with self._write() as conn:
                txn = _Txn(self, conn)
                results.extend(self._update_batch(conn, object, batch, txn, skip_unchanged=False))
        return results

    def upsert_records(
        self, object: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Insert or update by ``external_id_field``, one ``write`` call per 200; one result
        per record in order (``ref`` = the key, ``created`` True for an insert). A record
        without the key fails with ``REQUIRED_FIELD_MISSING``; a key given twice in one call
        fails every record carrying it with ``DUPLICATE_VALUE``.

        Raises ``CrmError`` when the object declares a schema in which the field is not an
        external id.
        """
        return self._write_by_key(object, external_id_field, records, update_existing=True)

    def create_if_absent(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Create the records whose ``key_field`` (an external id) no record holds; one
        holding it already (or made earlier in the same call) is left untouched and
        answered ``ok`` with its id, ``created`` False. Calls, errors and checks as
        ``upsert_records``."""
        return self._write_by_key(object, key_field, records, update_existing=False)

    def _write_by_key(
        self,
        object: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        update_existing: bool,
    ) -> list[WriteResult]:
        self._check_object(object)
        spec = self._fields_of(object)
        if spec is not None:
            info = spec.get(external_id_field)
            if info is None or not info.external_id:
                raise CrmError(f"{object}.{external_id_field} is not an external id field")
        elif not NAME.fullmatch(external_id_field):
            raise CrmError(f"'{external_id_field}' is not a field name")
        self._ensure_index(external_id_field)
        seen = Counter(
            r.get(external_id_field) for r in records if isinstance(r.get(external_id_field), str)
        )
        results: list[WriteResult] = []
        for batch in _chunks(records, WRITE_BATCH):
            self.calls.add("write")
            with self._write() as conn:
                txn = _Txn(self, conn)
                for values in batch:
                    key = values.get(external_id_field)
                    ref = "" if key is None else str(key)
                    try:
                        if key is None or key == "":
                            raise _RecordError(
                                "REQUIRED_FIELD_MISSING",
                                f"{external_id_field} is required to upsert",
                                (external_id_field,),
                            )
                        if not isinstance(key, str):
                            raise _RecordError(
                                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                f"{external_id_field}: the external id must be text",
                                (external_id_field,),
                            )
                        if seen[key] > 1 and update_existing:
                            raise _RecordError(
                                "DUPLICATE_VALUE",
                                f"{external_id_field} '{key}' is given more than once",
                                (external_id_field,),
                            )
                        existing = self._find_by_field(conn, object, external_id_field, key)
                        if existing is not None and not update_existing:
                            results.append(WriteResult(ref=key, ok=True, id=existing))
                            continue
                        if existing is not None:
                            updated = self._update_one(
                                conn, object, existing, values, txn, skip_unchanged=False
                            )
                            results.append(replace(updated, ref=key))
                            continue
                        new_id = self._create_one(conn, object, values, txn, mode="create")
                        results.append(WriteResult(ref=key, ok=True, id=new_id, created=True))
                    except _RecordError as problem:
                        results.append(self._rules.failure(problem, ref))
        return results

    def complete_tasks(
        self, object: str, ids: Sequence[str], completion: Mapping[str, Any]
    ) -> list[WriteResult]:
        """Set ``completion`` on the records not holding it yet: one ``query`` call per 200
        ids, and one ``write`` call per 200 records that need it (none when all hold it)."""
        self._check_object(object)
        try:
            wanted = self._rules.prepare(object, completion, mode="update")
        except _RecordError as problem:
            return [self._rules.failure(problem, ref) for ref in ids]
        results: list[WriteResult] = []
        for batch in _chunks(ids, ID_BATCH):
            found = self._rows_by_id(object, batch)
            pending = [
                ref
                for ref in batch
                if (key := self._format.normalize_id(ref)) in found
                and any(found[key][2].get(f) != v for f, v in wanted.items())
            ]
            done: dict[str, WriteResult] = {}
            if pending:
                self.calls.add("write")
                with self._write() as conn:
                    txn = _Txn(self, conn)
                    refs = list(dict.fromkeys(pending))
                    updates = [(ref, completion) for ref in refs]
                    done.update(
                        zip(
                            refs,
                            self._update_batch(conn, object, updates, txn, skip_unchanged=True),
                            strict=True,
                        )
                    )
            for ref in batch:
                key = self._format.normalize_id(ref)
                if ref in done:
                    results.append(done[ref])
                elif key is not None and key in found:
                    results.append(WriteResult(ref=ref, ok=True, id=key))
                else:
                    results.append(self._rules.not_found(object, ref))
        return results

    def write_page(self, writes: PageWrites) -> PageResults:
        """The three kinds of write in turn (``page_writes.write_in_parts``), each counted
        as its own method counts it: as Salesforce would bill them."""
        return write_in_parts(self, writes)

    def write_call_fits(self, creates: int, completes: int, updates: int) -> bool:
        """Any number: ``write_page`` counts its requests part by part whatever it is given."""
        return True

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields: the declared schema, or for an object without one the system
        fields plus every field its records hold (typed from their values).

        Raises ``CrmError`` for an object neither declared nor holding records.
        """
        self._check_object(object)
        self.calls.add("describe")
        declared = self._fields_of(object)
        if declared is not None:
            return dict(declared)
        s = self._schema
        id_field = s.id_field_of(object)
        fields = {id_field: FieldInfo(id_field, "id", createable=False, updateable=False)}
        for name in (s.created_field, s.modified_field, s.modstamp_field):
            fields[name] = FieldInfo(name, "datetime", createable=False, updateable=False)
        any_record = False
        for record in self.export_records(object):
            any_record = True
            for name, value in record.fields.items():
                if name not in fields and value is not None:
                    fields[name] = FieldInfo(name, type_of(value))
        if not any_record and object not in s.objects:
            raise CrmError(f"local CRM: no object '{object}' (no schema and no records)")
        return fields

    # -- import / export (local tools, not API calls)

    def has_schema(self, object: str) -> bool:
        """Whether ``object`` declares its fields (an object without a schema takes any)."""
        return self._fields_of(object) is not None

    def insert_records(
        self, object: str, rows: Sequence[Mapping[str, Any]], *, upsert: bool = False
    ) -> list[WriteResult]:
        """Insert records as they are, for import and seeding: a given ``Id`` (15 or 18
        characters) is kept, else one is made; given system datetimes (``CreatedDate``,
        ``SystemModstamp``...) are kept, missing ones stamped now. Read-only fields may be
        set; fields outside a declared schema may not. One result per row in order, ``ref``
        the given Id or ``row N`` (1-based); a taken Id fails with ``DUPLICATE_VALUE``, a
        malformed one with ``MALFORMED_ID``. With ``upsert``, a row whose Id is a record of
        ``object`` updates it instead (``created`` False): the given fields are set, a null
        one cleared, the others kept. Counts no API call.
        """
        self._check_object(object)
        results: list[WriteResult] = []
        id_field = self._schema.id_field_of(object)
        for offset, batch in enumerate(_chunks(rows, WRITE_BATCH)):
            with self._write() as conn:
                txn = _Txn(self, conn)
                for number, row in enumerate(batch, start=offset * WRITE_BATCH + 1):
                    given = row.get(id_field)
                    ref = given if isinstance(given, str) and given else f"row {number}"
                    try:
                        existing = self._importable_id(conn, object, given) if upsert else None
                        if existing is not None:
                            self._import_update(conn, object, existing, row, txn)
                            results.append(WriteResult(ref=ref, ok=True, id=existing))
                            continue
                        new_id = self._create_one(conn, object, row, txn, mode="import")
                    except _RecordError as problem:
                        results.append(self._rules.failure(problem, ref))
                        continue
                    results.append(WriteResult(ref=ref, ok=True, id=new_id, created=True))
        return results

    def create_records(
        self, object: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Create records as the API's create does: ids and system fields are made,
        read-only fields refused (``INVALID_FIELD_FOR_INSERT_UPDATE``), a unique or external
        id value already held fails that record (``DUPLICATE_VALUE``); values are checked and
        normalised as ``update_records`` does. One ``write`` call per 200, one result per
        record in order, ``ref`` ``row N`` (1-based), ``created`` True."""
        self._check_object(object)
        results: list[WriteResult] = []
        for offset, batch in enumerate(_chunks(records, WRITE_BATCH)):
            self.calls.add("write")
            with self._write() as conn:
                txn = _Txn(self, conn)
                for number, values in enumerate(batch, start=offset * WRITE_BATCH + 1):
                    ref = f"row {number}"
                    try:
                        new_id = self._create_one(conn, object, values, txn, mode="create")
                    except _RecordError as problem:
                        results.append(self._rules.failure(problem, ref))
                        continue
                    results.append(WriteResult(ref=ref, ok=True, id=new_id, created=True))
        return results

    def delete_records(self, object: str, ids: Sequence[str]) -> list[WriteResult]:
        """Delete records as a person in the CRM does (a local tool, no API call): each is
        gone from every read and write, and ``deleted_records`` names it from now on (one
        stamp per call). One result per id in order; ``NOT_FOUND`` for an id the object
        does not hold."""
        self._check_object(object)
        results: list[WriteResult] = []
        with self._write() as conn:
            txn = _Txn(self, conn)
            for given in ids:
                rid = self._format.normalize_id(given) if isinstance(given, str) else None
                gone = (
                    None
                    if rid is None
                    else conn.execute(
                        "DELETE FROM records WHERE id = ? AND object = ? RETURNING id",
                        (rid, object),
                    ).fetchone()
                )
                if rid is None or gone is None:
                    results.append(self._rules.not_found(object, str(given)))
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO deleted (id, object, modstamp) VALUES (?, ?, ?)",
                    (rid, object, txn.stamp()),
                )
                results.append(WriteResult(ref=str(given), ok=True, id=rid))
        return results

    def _importable_id(self, conn: sqlite3.Connection, object: str, given: Any) -> str | None:
        """The normalised ``given`` Id when it is a record of ``object``, else None."""
        rid = self._format.normalize_id(given) if isinstance(given, str) and given else None
        if rid is None:
            return None
        row = conn.execute(
            "SELECT 1 FROM records WHERE id = ? AND object = ?", (rid, object)
        ).fetchone()
        return None if row is None else rid

    def _import_update(
        self, conn: sqlite3.Connection, object: str, rid: str, row: Mapping[str, Any], txn: _Txn
    ) -> None:
        """Set an imported row's fields on the existing record ``rid`` (read-only fields
        too, as import does); the modstamp is the row's own or now."""
        s = self._schema
        changes = self._rules.prepare(
            object, {k: v for k, v in row.items() if k != s.id_field_of(object)}, mode="import"
        )
        self._check_unique(conn, object, changes, rid)
        (text,) = conn.execute("SELECT fields FROM records WHERE id = ?", (rid,)).fetchone()
        current = json.loads(text)
        for name, value in changes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        for name in (s.modified_field, s.modstamp_field):
            if changes.get(name) is None:
                current[name] = txn.stamp()
        conn.execute(
            "UPDATE records SET modstamp = ?, fields = ? WHERE id = ?",
            (current[s.modstamp_field], _RECORD_ENCODER.encode(current), rid),
        )

    def export_records(self, object: str, ids: Sequence[str] | None = None) -> Iterator[Record]:
        """Every record of ``object`` with all its fields (``Id`` first), in insertion order,
        read in pages; with ``ids`` (15 or 18 characters), only those that exist. Counts no
        API call."""
        self._check_object(object)
        id_field = self._schema.id_field_of(object)
        if ids is not None:
            wanted = list(
                dict.fromkeys(key for i in ids if (key := self._format.normalize_id(i)) is not None)
            )
            return iter(
                Record(object, rid, {id_field: rid, **json.loads(text)})
                for batch in _chunks(wanted, ID_BATCH)
                for rid, text in self._fetch(
                    f"SELECT id, fields FROM records WHERE id IN ({','.join('?' * len(batch))})"
                    " AND +object = ? ORDER BY rowid",
                    [*batch, object],
                )
            )

        def generate() -> Iterator[Record]:
            after = 0
            while True:
                rows = self._fetch(
                    "SELECT rowid, id, fields FROM records WHERE rowid > ? AND +object = ?"
                    " ORDER BY rowid LIMIT ?",
                    [after, object, QUERY_PAGE],
                )
                for _, rid, text in rows:
                    yield Record(object, rid, {id_field: rid, **json.loads(text)})
                if len(rows) < QUERY_PAGE:
                    return
                after = rows[-1][0]

        return generate()

    # -- connections and transactions

    def _conn(self) -> sqlite3.Connection:
        key = (os.getpid(), threading.get_ident())
        conn = self._conns.get(key)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                _raise_crm_error(self.path, exc)
            with self._lock:
                self._conns[key] = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``: writers queue on the lock)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _raise_crm_error(self.path, exc)
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            _raise_crm_error(self.path, exc)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _raise_crm_error(self.path, exc)

    def _fetch(
        self, sql: str, params: Sequence[Any], conn: sqlite3.Connection | None = None
    ) -> list[Any]:
        try:
            return (conn or self._conn()).execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            _raise_crm_error(self.path, exc)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own holding one read transaction: every page read through it
        sees the same snapshot (like a query cursor), whatever is written meanwhile, even by
        this instance between pages. Closed when the reading ends or is abandoned."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            _raise_crm_error(self.path, exc)
        try:
            conn.execute("BEGIN")
            yield conn
        except sqlite3.Error as exc:
            _raise_crm_error(self.path, exc)
        finally:
            conn.close()  # ends the read transaction

    def _ensure_index(self, field: str) -> None:
        """An index on ``(object, field value)`` for lookups by that field (made once)."""
        if field in self._indexed or field in self._schema.id_fields:
            return
        try:
            self._conn().execute(self._index_sql(field))
        except sqlite3.Error as exc:
            _raise_crm_error(self.path, exc)
        self._indexed.add(field)

    def _index_sql(self, field: str) -> str:
        return (
            f'CREATE INDEX IF NOT EXISTS "records_by_{field}"'
            f" ON records (object, {self._json_column(field)})"
        )

    def _next_stamp(self, conn: sqlite3.Connection) -> str:
        """The next ``SystemModstamp``: the clock, or 1 ms past the last one if not later."""
        now = epoch_millis(self.server_time())
        row = conn.execute("SELECT value FROM counters WHERE name = 'modstamp'").fetchone()
        millis = now if row is None else max(now, row[0] + 1)
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('modstamp', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (millis,),
        )
        return self._format.millis_text(millis)

    def _new_id(self, conn: sqlite3.Connection, object: str, txn: _Txn) -> str:
        """A fresh id for ``object``: key prefix, ``_ID_MARK``, a database-wide number."""
        while True:
            candidate = self._rules.made_id(object, txn.next_number())
            if conn.execute("SELECT 1 FROM records WHERE id = ?", (candidate,)).fetchone() is None:
                return candidate

    # -- reading

    def _records(
        self,
        object: str,
        names: Sequence[str],
        pages: Iterator[list[Any]],
        where: Sequence[FieldFilter],
    ) -> Iterator[Record]:
        """Records from SQL pages, filtered in Python, counting one query per 2,000 out."""
        self.calls.add("query")
        produced = 0
        id_field = self._schema.id_field_of(object)
        for rows in pages:
            for row in rows:
                values = json.loads(row[2])
                values[id_field] = row[0]
                if not all(f.matches(values) for f in where):
                    continue
                if produced and produced % QUERY_PAGE == 0:
                    self.calls.add("query")
                produced += 1
                yield self._record(object, names, row[0], row[1], values)

    def _record(
        self, object: str, names: Sequence[str], rid: str, stamp: str, values: Mapping[str, Any]
    ) -> Record:
        fields: dict[str, Any] = {
            self._schema.id_field_of(object): rid,
            self._schema.modstamp_field: stamp,
        }
        for name in names:
            if name not in fields:
                fields[name] = values.get(name)
        return Record(object, rid, fields)

    def _rows_by_id(
        self, object: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """Existing rows by normalised id, in the order asked; one query call per 200 ids."""
        wanted = list(
            dict.fromkeys(key for i in ids if (key := self._format.normalize_id(i)) is not None)
        )
        found: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for batch in _chunks(wanted, ID_BATCH):
            self.calls.add("query")
            marks = ",".join("?" * len(batch))
            rows = self._fetch(
                f"SELECT id, modstamp, fields FROM records WHERE id IN ({marks}) AND +object = ?",
                [*batch, object],
            )
            by_id = {rid: (rid, stamp, json.loads(text)) for rid, stamp, text in rows}
            found.update((key, by_id[key]) for key in batch if key in by_id)
        return found

    def _find_by_field(
        self, conn: sqlite3.Connection, object: str, field: str, value: Any
    ) -> str | None:
        row = conn.execute(
            f"SELECT id FROM records WHERE object = ? AND {self._column(object, field)} = ?"
            " ORDER BY rowid LIMIT 1",
            (object, value),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- writing

    def _update_one(
        self,
        conn: sqlite3.Connection,
        object: str,
        ref: str,
        values: Mapping[str, Any],
        txn: _Txn,
        *,
        skip_unchanged: bool,
    ) -> WriteResult:
        rid = self._format.normalize_id(ref) if isinstance(ref, str) else None
        row = None
        if rid is not None:
            row = conn.execute(
                "SELECT fields FROM records WHERE id = ? AND object = ?", (rid, object)
            ).fetchone()
        if rid is None or row is None:
            return self._rules.not_found(object, str(ref))
        try:
            changes = self._rules.prepare(object, values, mode="update")
            current = json.loads(row[0])
            if skip_unchanged and all(current.get(f) == v for f, v in changes.items()):
                return WriteResult(ref=ref, ok=True, id=rid)
            self._check_unique(conn, object, changes, rid)
        except _RecordError as problem:
            return self._rules.failure(problem, ref)
        now = txn.stamp()
        for name, value in changes.items():
            if value is None:
                current.pop(name, None)  # null fields are not stored
            else:
                current[name] = value
        current[self._schema.modified_field] = now
        current[self._schema.modstamp_field] = now
        conn.execute(
            "UPDATE records SET modstamp = ?, fields = ? WHERE id = ?",
            (now, _RECORD_ENCODER.encode(current), rid),
        )
        return WriteResult(ref=ref, ok=True, id=rid)

    def _update_batch(
        self,
        conn: sqlite3.Connection,
        object: str,
        updates: Sequence[tuple[str, Mapping[str, Any]]],
        txn: _Txn,
        *,
        skip_unchanged: bool,
    ) -> list[WriteResult]:
        """``_update_one`` for each update in order, with one read of the rows and one
        ``executemany`` of the writes (flushed before a unique field is checked, so that the
        check sees the batch's earlier writes, as one statement per record did)."""
        s = self._schema
        rids = [
            self._format.normalize_id(ref) if isinstance(ref, str) else None
            for ref, _values in updates
        ]
        wanted = list(dict.fromkeys(rid for rid in rids if rid is not None))
        rows: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, ID_BATCH):
            marks = ",".join("?" * len(chunk))
            for rid, text in conn.execute(
                f"SELECT id, fields FROM records WHERE id IN ({marks}) AND +object = ?",
                [*chunk, object],
            ):
                rows[rid] = json.loads(text)
        unique = self._rules.unique_fields(object)
        pending: dict[str, None] = {}

        def flush() -> None:
            conn.executemany(
                "UPDATE records SET modstamp = ?, fields = ? WHERE id = ?",
                [
                    (rows[rid][s.modstamp_field], _RECORD_ENCODER.encode(rows[rid]), rid)
                    for rid in pending
                ],
            )
            pending.clear()

        results: list[WriteResult] = []
        for (ref, values), rid in zip(updates, rids, strict=True):
            current = None if rid is None else rows.get(rid)
            if rid is None or current is None:
                results.append(self._rules.not_found(object, str(ref)))
                continue
            try:
                changes = self._rules.prepare(object, values, mode="update")
                if skip_unchanged and all(current.get(f) == v for f, v in changes.items()):
                    results.append(WriteResult(ref=ref, ok=True, id=rid))
                    continue
                if any(v is not None and f in unique for f, v in changes.items()):
                    if pending:
                        flush()
                    self._check_unique(conn, object, changes, rid)
            except _RecordError as problem:
                results.append(self._rules.failure(problem, ref))
                continue
            now = txn.stamp()
            for name, value in changes.items():
                if value is None:
                    current.pop(name, None)  # null fields are not stored
                else:
                    current[name] = value
            current[s.modified_field] = now
            current[s.modstamp_field] = now
            pending[rid] = None
            results.append(WriteResult(ref=ref, ok=True, id=rid))
        if pending:
            flush()
        return results

    def _create_one(
        self,
        conn: sqlite3.Connection,
        object: str,
        values: Mapping[str, Any],
        txn: _Txn,
        *,
        mode: Mode,
    ) -> str:
        """Insert one record; returns its id or raises ``_RecordError``."""
        s = self._schema
        id_field = s.id_field_of(object)
        body = {k: v for k, v in values.items() if not (mode == "import" and k == id_field)}
        fields = self._rules.prepare(object, body, mode=mode)
        given = values.get(id_field) if mode == "import" else None
        if given is not None and given != "":
            rid = self._format.normalize_id(given) if isinstance(given, str) else None
            if rid is None:
                raise _RecordError("MALFORMED_ID", f"'{given}' is not a Salesforce id", (id_field,))
            if conn.execute("SELECT 1 FROM records WHERE id = ?", (rid,)).fetchone():
                raise _RecordError("DUPLICATE_VALUE", f"a record with Id {rid} exists", (id_field,))
        else:
            rid = self._new_id(conn, object, txn)
        self._check_unique(conn, object, fields, rid)
        stored: dict[str, Any] = {}
        for name in (s.created_field, s.modified_field, s.modstamp_field):
            stored[name] = fields.pop(name, None) or stored.get(name) or txn.stamp()
        stored.update((name, value) for name, value in fields.items() if value is not None)
        conn.execute(
            "INSERT INTO records (id, object, modstamp, fields) VALUES (?, ?, ?, ?)",
            (rid, object, stored[s.modstamp_field], _RECORD_ENCODER.encode(stored)),
        )
        return rid

    def _check_unique(
        self, conn: sqlite3.Connection, object: str, fields: Mapping[str, Any], rid: str
    ) -> None:
        declared = self._fields_of(object) or {}
        for name, value in fields.items():
            info = declared.get(name)
            if info is None or not (info.unique or info.external_id) or value is None:
                continue
            other = self._find_by_field(conn, object, name, value)
            if other is not None and other != rid:
                raise _RecordError(
                    "DUPLICATE_VALUE", f"{name} '{value}' is already on record {other}", (name,)
                )

    # -- validation helpers

    def _fields_of(self, object: str) -> dict[str, FieldInfo] | None:
        return self._rules.fields_of(object)

    def _check_object(self, object: str) -> None:
        if not isinstance(object, str) or not NAME.fullmatch(object):
            raise CrmError(f"'{object}' is not an object name")

    def _check_field(self, object: str, name: str) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise CrmError(f"'{name}' is not a field name")
        declared = self._fields_of(object)
        system = {self._schema.id_field_of(object), self._schema.modstamp_field}
        if declared is not None and name not in declared and name not in system:
            raise CrmError(f"no field {name} on {object}")

    def _read_fields(self, object: str, fields: Sequence[str]) -> list[str]:
        self._check_object(object)
        if isinstance(fields, str):
            raise CrmError("fields must be a sequence of field names, not one string")
        for name in fields:
            self._check_field(object, name)
        head = [self._schema.id_field_of(object), self._schema.modstamp_field]
        return list(dict.fromkeys([*head, *fields]))

    def _check_filters(self, object: str, where: Sequence[FieldFilter]) -> None:
        for f in where:
            self._check_field(object, f.field)
            if f.op not in ("=", "!=", "in"):
                raise CrmError(f"filter on {f.field}: unknown operator '{f.op}'")
            if f.op == "in" and (isinstance(f.value, str) or not isinstance(f.value, Iterable)):
                raise CrmError(f"filter on {f.field}: 'in' needs a collection of values")

    def _sql_prefilter(self, object: str, where: Sequence[FieldFilter]) -> tuple[str, list[Any]]:
        """SQL narrowing the rows for text ``=``/``in`` filters (Python re-checks them all)."""
        sql = ""
        params: list[Any] = []
        for f in where:
            column = self._column(object, f.field)
            if f.op == "=" and isinstance(f.value, str):
                sql += f" AND {column} = ?"
                params.append(f.value)
            elif f.op == "in":
                values = tuple(f.value)
                if values and all(isinstance(v, str) for v in values):
                    sql += f" AND {column} IN ({','.join('?' * len(values))})"
                    params.extend(values)
        return sql, params

    def _column(self, object: str, field: str) -> str:
        """The SQL expression for a field's value: the ``id`` column or the JSON value."""
        return "id" if field == self._schema.id_field_of(object) else self._json_column(field)

    @staticmethod
    def _json_column(field: str) -> str:
        """The SQL expression for a field's value (the name is checked: safe to inline)."""
        if not NAME.fullmatch(field):
            raise CrmError(f"'{field}' is not a field name")
        return f"json_extract(fields, '$.{field}')"


# ----------------------------------------------------------------------------- helpers


class _Txn:
    """What one write transaction takes from the database's counters, on first use only:
    its ``SystemModstamp`` and blocks of id numbers (an unused rest of a block is a gap)."""

    ID_BLOCK = 64

    def __init__(self, crm: LocalCrm, conn: sqlite3.Connection) -> None:
        self._crm = crm
        self._conn = conn
        self._value: str | None = None
        self._numbers: Iterator[int] = iter(())

    def stamp(self) -> str:
        """The transaction's ``SystemModstamp`` text."""
        if self._value is None:
            self._value = self._crm._next_stamp(self._conn)
        return self._value

    def next_number(self) -> int:
        """The next unused id number (reserved in this transaction)."""
        number = next(self._numbers, None)
        if number is None:
            row = self._conn.execute(
                "INSERT INTO counters (name, value) VALUES ('id', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + ? RETURNING value",
                (self.ID_BLOCK, self.ID_BLOCK),
            ).fetchone()
            last = int(row[0])
            self._numbers = iter(range(last - self.ID_BLOCK + 1, last + 1))
            number = next(self._numbers)
        return number


# ------------------------------------------------------------ the objects it takes records of


def schema_objects(schema_file: Path = SCHEMA_FILE) -> list[str]:
    """The objects the schema declares (``local_schema.json``), in its order."""
    return list(load_schema(schema_file).objects)


def refuse_unknown_object(path: Path, object: str) -> None:
    """Raise ``CrmError`` naming ``object`` (and the closest known name) unless the local CRM
    at ``path`` takes records of it: an object its schema declares, a custom object (named
    ``..__c``, as Salesforce names them) or one its file already holds records of. Creates
    no file: a misspelt ``Kase`` would otherwise become a new object."""
    known = schema_objects()
    if object in known or object.endswith("__c"):
        return
    if path.is_file():
        try:
            with LocalCrm(path) as crm:
                crm.describe(object)  # an object without a schema that already holds records
            return
        except CrmError:
            pass  # not there either (an unreadable file is named when it is opened)
    raise CrmError(
        f"the local CRM has no object '{object}'{did_you_mean(object, known)}; "
        f"its objects are {', '.join(known)} and custom objects (named ..__c)"
    )


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _raise_crm_error(path: Path, exc: sqlite3.Error) -> NoReturn:
    """Translate a SQLite failure: a lock held too long is transient, the rest is not."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        raise CrmTransientError(f"local CRM {path}: {text}") from exc
    raise CrmError(f"local CRM {path}: {text}") from exc
