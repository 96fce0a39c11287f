"""``CrmPort`` on a Salesforce org's REST API, over one ``requests.Session``.

Reads
    ``changed_records`` runs ``queryAll`` with a ``SystemModstamp`` window (``>= since``,
    ``< until``, milliseconds rounded up like the local CRM), ``IsDeleted = false`` and the
    caller's filters, ordered by ``SystemModstamp, Id``, following ``nextRecordsUrl`` (2,000
    records a page). A field-history object (``CaseHistory``) has no ``SystemModstamp``:
    its rows never change, so ``CreatedDate`` takes its place, and its ``OldValue`` and
    ``NewValue`` filters (anyType, which SOQL cannot filter) are applied to the rows read.
    The first page's ``totalSize`` is the size estimate: above
    ``bulk_threshold`` (a first sync or a long backfill) the rest is read by a Bulk API 2.0
    ``queryAll`` job instead, spooled to a temporary SQLite file and streamed back in the
    same order (Bulk 2.0 does not sort). Pulls opened before the first one is read share
    its request: their first pages go together in one Composite call (a cycle's related-change
    query and complaint query cost one call). ``related_records``/``records_by_id`` put the ids in
    ``IN (...)`` lists chunked by SOQL length and send up to five such queries (and their
    "query more" pages) in one Composite request, so 2,000 parents cost one call.

Writes
    sObject Collections, 200 records a request, ``allOrNone=false``; more than one request
    go as Composite requests of up to five Collections subrequests (Salesforce's cap for
    Collections and query subrequests in one Composite, under the 25-subrequest cap): one
    API call per 1,000 records. ``write_page`` sends a page's creates (POST) and its
    completions and updates (PATCH, sharing requests: the org takes records of several
    objects in one, object by object) in the same Composite requests; ``write_call_fits``
    tells the caller what one Composite call carries (five Collections requests). Results
    are read per record: ``UNABLE_TO_LOCK_ROW`` is retried for those records only
    (``RetryPolicy.record_retries`` rounds), then reported transient; other errors are
    permanent with code, fields and message. A request refused as a whole for an unknown
    field (``INVALID_FIELD``, "No such column 'F' on sobject of type O") fails the records
    of that object carrying that field and is sent again without them. Values that are not
    JSON and malformed ids fail their record before anything is sent.

Budget and errors
    Every HTTP request is counted in ``calls`` by kind (``time``, ``login``, ``query``,
    ``write``, ``describe``, ``bulk``); ``Sforce-Limit-Info`` is parsed into ``api_usage``.
    A request that counts against the org's limit is refused with ``CrmLimitError`` before
    it is sent once ``used >= budget_share * limit``, and ``REQUEST_LIMIT_EXCEEDED`` is a
    ``CrmLimitError`` too. Retries, and the translation of failures into crmsync errors, are
    ``retry_policy``'s; an expired session is renewed once (modes that allow it) and the
    request sent again.

``server_time`` reads the ``Date`` header of ``GET /services/data/`` (the Versions
resource, which does not count against the org's limit): the org's own clock, whole
seconds, rounded down (safe: a later record waits for the next window).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import requests
import structlog

from crmsync.adapters.crm import soql
from crmsync.adapters.crm.retry_policy import RetryPolicy
from crmsync.adapters.crm.salesforce_auth import SalesforceAuth
from crmsync.adapters.crm.salesforce_errors import (
    AUTH_CODES,
    LIMIT_CODES,
    SALESFORCE_FAILURES,
    is_transient,
    translate,
)
from crmsync.adapters.crm.salesforce_values import (
    ceil_millisecond,
    format_sf_datetime,
    normalize_id,
    parse_sf_datetime,
    sf_instant_text,
)
from crmsync.errors import ApiError, CrmError, CrmLimitError, QueryValueError
from crmsync.ports import (
    CallCounter,
    FieldFilter,
    FieldInfo,
    PageResults,
    PageWrites,
    Record,
    WriteResult,
)

log = structlog.get_logger("crmsync.crm.salesforce")

ID_FIELD = "Id"  # Salesforce system fields the port itself names
MODSTAMP_FIELD = "SystemModstamp"
HISTORY_STAMP_FIELD = "CreatedDate"
DELETED_FIELD = "IsDeleted"
UNFILTERABLE_HISTORY_FIELDS = frozenset({"OldValue", "NewValue"})


def modstamp_field(object: str) -> str:
    """The field an object's changes are windowed and ordered by: ``SystemModstamp``, or
    ``CreatedDate`` on a field-history object (``CaseHistory``, ``Foo__History``), whose
    rows are never changed and which has no ``SystemModstamp``."""
    return HISTORY_STAMP_FIELD if object.endswith("History") else MODSTAMP_FIELD


def _split_history_filters(
    object: str, where: Sequence[FieldFilter]
) -> tuple[list[FieldFilter], list[FieldFilter]]:
    """``(filters SOQL can apply, filters applied to the rows read)``: a field-history
    object's ``OldValue``/``NewValue`` are of type anyType, which SOQL cannot filter on."""
    if not object.endswith("History"):
        return list(where), []
    later = [f for f in where if f.field in UNFILTERABLE_HISTORY_FIELDS]
    return [f for f in where if f.field not in UNFILTERABLE_HISTORY_FIELDS], later


def _holds(record: Record, filters: Sequence[FieldFilter]) -> bool:
    """``record`` passes every filter, compared as text (anyType values come as text)."""
    for f in filters:
        value = record.fields.get(f.field)
        text = None if value is None else str(value)
        if f.op == "=" and text != str(f.value):
            return False
        if f.op == "!=" and text == str(f.value):
            return False
        if f.op == "in" and text not in {str(v) for v in f.value}:
            return False
    return True


COLLECTION_SIZE = 200  # records per sObject Collections request
COMPOSITE_HEAVY = 5  # Collections or query subrequests per Composite request
SOQL_CHUNK = 20_000  # characters per generated IN-list query (Salesforce allows 100,000)
GET_URI_BUDGET = 8_000  # longer queries travel in a Composite body, not in the URL
BULK_PAGE = 50_000  # records per Bulk API 2.0 result request
LOCK_CODE = "UNABLE_TO_LOCK_ROW"
_MISSING_CODES = frozenset(
    {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "NOT_FOUND"}
)
_NO_SUCH_COLUMN = re.compile(
    r"No such column '([A-Za-z0-9_.]+)'(?: on sobject of type ([A-Za-z0-9_]+))?"
)
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_NUMBER_TYPES = frozenset({"double", "currency", "percent"})


class _Part:
    """One kind of write of a call: records of ``object`` sent to ``path``, their results
    filed by index (``refs`` name each record, for one the org never answered). ``kind``:
    ``create`` (POST; ``created`` True), ``update`` (PATCH by id; a missing record is
    ``NOT_FOUND``) or ``upsert`` (PATCH by external id; ``created`` as the org answers)."""

    __slots__ = ("kind", "object", "path", "pending", "refs", "results")

    def __init__(self, object: str, kind: str, path: str, size: int) -> None:
        self.object, self.kind, self.path = object, kind, path
        self.results: list[WriteResult | None] = [None] * size
        self.refs: list[str] = []
        self.pending: list[_Pending] = []

    @property
    def method(self) -> str:
        """The Collections request's HTTP method."""
        return "POST" if self.kind == "create" else "PATCH"

    def add(self, index: int, ref: str, values: Mapping[str, Any], rid: str | None = None) -> None:
        """Record ``index`` (``ref``) to send with ``values`` (by id ``rid`` for an update),
        or failed now when a name is no field name or a value is not JSON."""
        self.refs.append(ref)
        problem = _value_problem(values)
        if problem is not None:
            self.results[index] = problem.with_ref(ref)
            return
        head: dict[str, Any] = {"attributes": {"type": self.object}}
        if rid is not None:
            head["id"] = rid
        self.pending.append(_Pending(self, index, ref, head | dict(values)))

    def fail(self, index: int, result: WriteResult) -> None:
        """Record ``index`` failed before anything is sent."""
        self.refs.append(result.ref)
        self.results[index] = result

    def answers(self) -> list[WriteResult]:
        """Every record's result in order; one the org gave no answer for failed
        transiently."""
        return [
            r
            if r is not None
            else WriteResult(
                ref=ref, ok=False, error_code="NO_RESULT", message="no answer", transient=True
            )
            for r, ref in zip(self.results, self.refs, strict=True)
        ]


@dataclass(frozen=True, slots=True, eq=False)
class _Pending:
    """One record of a write: its part, where its result goes, its ref and the body to
    send (compared and hashed by identity)."""

    part: _Part
    index: int
    ref: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Answer:
    """A Collections request's answer: HTTP status and JSON body."""

    status: int
    body: Any


class SalesforceCrm:
    """``CrmPort`` on the Salesforce REST API (see the module docstring for the rules)."""

    def __init__(
        self,
        auth: SalesforceAuth,
        *,
        api_version: str = "62.0",
        budget_share: float = 0.5,
        bulk_threshold: int = 10_000,
        policy: RetryPolicy | None = None,
        bulk_poll_seconds: float = 2.0,
        bulk_max_wait_seconds: float = 3600.0,
    ) -> None:
        if not 0 < budget_share <= 1:
            raise ValueError("budget_share must be in (0, 1]")
        self.auth = auth
        self.session = auth.session
        self.api_version = api_version.removeprefix("v")
        self.budget_share = budget_share
        self.bulk_threshold = bulk_threshold
        self.policy = policy or auth.policy
        self.bulk_poll_seconds = bulk_poll_seconds
        self.bulk_max_wait_seconds = bulk_max_wait_seconds
        self.calls = CallCounter()
        self.api_usage: tuple[int, int] | None = None
        self._types: dict[str, dict[str, FieldInfo]] = {}
        self._tickets = itertools.count()
        self._pending: dict[int, str] = {}  # pulls opened, first page not fetched yet
        # first pages fetched alongside another pull's: (url, status, body)
        self._prefetched: dict[int, tuple[str, int, Any]] = {}

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    @property
    def base(self) -> str:
        """``/services/data/vXX.X`` of the configured API version."""
        return f"/services/data/v{self.api_version}"

    # ------------------------------------------------------------------ ValueFormats

    def instant_text(self, instant: int) -> str:
        """Salesforce's datetime text: ``2026-03-02T09:15:00.000+0000``."""
        return sf_instant_text(instant)

    # ------------------------------------------------------------------ CrmPort: time

    def server_time(self) -> datetime:
        """The org's clock: the ``Date`` header of the (unbilled) Versions resource."""
        response = self._call(
            "time", "GET", "/services/data/", operation="server time", billed=False
        )
        header = response.headers.get("Date")
        try:
            stamp = parsedate_to_datetime(header) if header else None
        except (TypeError, ValueError):
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            raise CrmError("server time: the answer carries no usable Date header")
        return stamp.astimezone(UTC)

    # ------------------------------------------------------------------ CrmPort: reads

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
        ``(SystemModstamp, Id)``; Bulk API 2.0 past ``bulk_threshold`` records.

        Raises ``CrmError`` for a bad name or value, and what requests raise."""
        served, later = _split_history_filters(object, where)
        names = self._names(object, [*fields, *(f.field for f in later)])
        conditions = self._conditions(served)
        if conditions is None:
            return iter(())
        stamp = modstamp_field(object)
        window = [f"{stamp} < {soql.datetime_literal(_ceil_ms(until))}"]
        if since is not None:
            window.insert(0, f"{stamp} >= {soql.datetime_literal(_ceil_ms(since))}")
        clauses = [*window, f"{DELETED_FIELD} = false", *conditions]
        ordered = soql.select(object, names, clauses, order_by=(stamp, ID_FIELD))
        unordered = soql.select(object, names, clauses)
        ticket = next(self._tickets)
        self._pending[ticket] = self._query_url(ordered)

        def generate() -> Iterator[Record]:
            first = self._first_page(ticket, operation=f"query {object}")
            total = int(first.get("totalSize") or 0)
            if total > self.bulk_threshold and not first.get("done", True):
                log.info("sf_bulk_query", object=object, estimate=total)
                for record in self._bulk_query(object, names, unordered):
                    if _holds(record, later):
                        yield record
                return
            body = first
            while True:
                for raw in body.get("records") or []:
                    record = self._record(object, names, raw)
                    if not later or _holds(record, later):
                        yield record
                next_url = body.get("nextRecordsUrl")
                if body.get("done", True) or not next_url:
                    return
                body = self._json(
                    self._call("query", "GET", str(next_url), operation=f"query more {object}")
                )

        pull = generate()
        weakref.finalize(pull, self._forget, ticket)
        return pull

    def deleted_records(
        self, object: str, *, since: datetime | None, until: datetime
    ) -> Iterator[str]:
        """Ids of records in the recycle bin deleted in the window: ``queryAll`` with
        ``IsDeleted = true`` and the ``SystemModstamp`` window. Opened like
        ``changed_records``: its first page travels in the same Composite call as the
        cycle's other first pages."""
        soql.name(object)
        stamp = modstamp_field(object)
        window = [f"{stamp} < {soql.datetime_literal(_ceil_ms(until))}"]
        if since is not None:
            window.insert(0, f"{stamp} >= {soql.datetime_literal(_ceil_ms(since))}")
        statement = soql.select(object, [ID_FIELD], [*window, f"{DELETED_FIELD} = true"])
        ticket = next(self._tickets)
        self._pending[ticket] = self._query_url(statement)

        def generate() -> Iterator[str]:
            body = self._first_page(ticket, operation=f"query deleted {object}")
            while True:
                for raw in body.get("records") or []:
                    rid = raw.get(ID_FIELD) if isinstance(raw, dict) else None
                    if isinstance(rid, str):
                        yield rid
                next_url = body.get("nextRecordsUrl")
                if body.get("done", True) or not next_url:
                    return
                body = self._json(
                    self._call(
                        "query", "GET", str(next_url), operation=f"query more deleted {object}"
                    )
                )

        pull = generate()
        weakref.finalize(pull, self._forget, ticket)
        return pull

    def related_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        parent_field: str,
        parent_ids: Sequence[str],
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Records whose ``parent_field`` is one of ``parent_ids``: IN-list queries chunked
        by SOQL length, up to five a Composite call; no promised order. A pull of one query
        is opened like ``changed_records``: its first page travels in the same Composite
        call as the other pulls opened before it is read."""
        served, later = _split_history_filters(object, where)
        names = self._names(object, [*fields, *(f.field for f in later)])
        soql.name(parent_field)
        conditions = self._conditions(served)
        wanted = _valid_ids(parent_ids)
        if conditions is None or not wanted:
            return iter(())
        statements = [
            text
            for text, _chunk in soql.select_in_chunks(
                object,
                names,
                parent_field,
                wanted,
                [f"{DELETED_FIELD} = false", *conditions],
                max_length=SOQL_CHUNK,
            )
        ]

        operation = f"query {object} by parent"
        if len(statements) == 1:  # opened now: its first page travels with the others
            ticket = next(self._tickets)
            self._pending[ticket] = self._query_url(statements[0])

            def pages() -> Iterator[dict[str, Any]]:
                body = self._first_page(ticket, operation=operation)
                while True:
                    yield from body.get("records") or []
                    next_url = body.get("nextRecordsUrl")
                    if body.get("done", True) or not next_url:
                        return
                    body = self._json(
                        self._call("query", "GET", str(next_url), operation=operation)
                    )

            raws: Iterator[dict[str, Any]] = pages()
        else:
            raws = self._query_many(statements, operation=operation)

        def generate() -> Iterator[Record]:
            for raw in raws:
                record = self._record(object, names, raw)
                if not later or _holds(record, later):
                    yield record

        pull = generate()
        if len(statements) == 1:
            weakref.finalize(pull, self._forget, ticket)
        return pull

    def records_by_id(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[Record]:
        """The existing records among ``ids``, in the order asked, each once (``queryAll``
        with ``IsDeleted = false``: a record in the recycle bin does not exist)."""
        names = self._names(object, fields)
        wanted = _valid_ids(ids)
        if not wanted:
            return []
        statements = [
            text
            for text, _chunk in soql.select_in_chunks(
                object, names, ID_FIELD, wanted, [f"{DELETED_FIELD} = false"], max_length=SOQL_CHUNK
            )
        ]
        found: dict[str, Record] = {}
        for raw in self._query_many(statements, operation=f"query {object} by id"):
            record = self._record(object, names, raw)
            found[record.id] = record
        return [found[key] for key in wanted if key in found]

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The object's fields from ``/sobjects/{object}/describe``; ``CrmError`` (naming the
        object) when the org has no such object."""
        _check_name(object)
        response = self._call(
            "describe",
            "GET",
            f"{self.base}/sobjects/{object}/describe",
            operation=f"describe {object}",
        )
        body = self._json(response)
        fields: dict[str, FieldInfo] = {}
        for item in body.get("fields") or []:
            name = str(item.get("name"))
            fields[name] = FieldInfo(
                name=name,
                type=str(item.get("type")),
                createable=bool(item.get("createable")),
                updateable=bool(item.get("updateable")),
                external_id=bool(item.get("externalId")),
                unique=bool(item.get("unique")),
                picklist_values=_picklist_values(item),
            )
        self._types[object] = fields
        return fields

    # ------------------------------------------------------------------ CrmPort: writes

    def update_records(
        self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        """Set fields on existing records through sObject Collections; one result per
        update in order. A missing record is ``NOT_FOUND`` (Salesforce's
        ``INVALID_CROSS_REFERENCE_KEY``/``ENTITY_IS_DELETED``/``MALFORMED_ID`` on the id)."""
        part = self._update_part(object, updates)
        self._write([part])
        return part.answers()

    def upsert_records(
        self, object: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Insert or update by external id through sObject Collections upsert
        (``PATCH /composite/sobjects/{object}/{field}``); one result per record in order,
        ``ref`` the key, ``created`` as Salesforce reports it."""
        _check_name(object)
        _check_name(external_id_field)
        path = f"{self.base}/composite/sobjects/{object}/{external_id_field}"
        part = _Part(object, "upsert", path, len(records))
        for index, values in enumerate(records):
            key = values.get(external_id_field)
            ref = "" if key is None else str(key)
            if key is None or key == "":
                part.fail(
                    index,
                    _failed(
                        ref,
                        "REQUIRED_FIELD_MISSING",
                        f"{external_id_field} is required to upsert",
                        (external_id_field,),
                    ),
                )
            else:
                part.add(index, ref, values)
        self._write([part])
        return part.answers()

    def create_if_absent(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Create through sObject Collections (``POST /composite/sobjects``); a record the org
        refuses with ``DUPLICATE_VALUE`` on ``key_field`` already exists and is left as it
        is: its id is looked up by key (one query per chunk of such keys, none when there
        are none), and it is answered ``ok`` with ``created`` False. Never an upsert: an
        upsert by external id would overwrite what staff did with the task."""
        part = self._create_part(object, key_field, records)
        self._write([part])
        return self._created(part, key_field, records)

    def complete_tasks(
        self, object: str, ids: Sequence[str], completion: Mapping[str, Any]
    ) -> list[WriteResult]:
        """Read the current values of ``completion``'s fields (one query per 1,000 ids or
        so), then write only the records that do not hold them yet."""
        current, todo = self._incomplete(object, ids, completion)
        part = self._update_part(object, todo)
        self._write([part])
        return self._completed(object, ids, current, part.answers())

    def write_page(self, writes: PageWrites) -> PageResults:
        """The creates, the completions of the tasks not complete yet (their state read
        first: one query call per 1,000 ids or so) and the updates, in the same requests:
        creates in Collections requests of their own (POST), completions and updates
        sharing Collections requests (PATCH; the org updates a request's records object by
        object, in order), all packed five Collections to a Composite call. The page's
        write calls are ``ceil(collections / 5)`` with ``collections = ceil(creates / 200)
        + ceil((completions written + updates) / 200)``; a single Collections request goes
        alone. A held key costs one more query call (its id looked up). Each record by the
        rules of ``create_if_absent``, ``complete_tasks`` and ``update_records``."""
        tasks, key = writes.follow_up_object, writes.key_field
        current: dict[str, Record] = {}
        todo: list[tuple[str, Mapping[str, Any]]] = []
        if writes.completes:
            current, todo = self._incomplete(tasks, writes.completes, writes.completion)
        creating = self._create_part(tasks, key, writes.creates) if writes.creates else None
        completing = self._update_part(tasks, todo) if todo else None
        updating = (
            self._update_part(writes.record_object, writes.updates) if writes.updates else None
        )
        self._write([part for part in (creating, completing, updating) if part is not None])
        completed = completing.answers() if completing is not None else []
        return PageResults(
            self._created(creating, key, writes.creates) if creating is not None else [],
            self._completed(tasks, writes.completes, current, completed),
            updating.answers() if updating is not None else [],
        )

    def write_call_fits(self, creates: int, completes: int, updates: int) -> bool:
        """One Composite call's worth: ``ceil(creates / 200) + ceil((completes + updates) /
        200)`` Collections requests, at most five (``write_page`` packs them so; completions
        counted whether or not they prove complete already)."""
        collections = math.ceil(creates / COLLECTION_SIZE) + math.ceil(
            (completes + updates) / COLLECTION_SIZE
        )
        return collections <= COMPOSITE_HEAVY

    # ------------------------------------------------------------------ writing

    def _update_part(self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> _Part:
        """Updates by id (PATCH ``/composite/sobjects``): a malformed id is ``NOT_FOUND``
        and a value that is not JSON fails its record, before anything is sent."""
        _check_name(object)
        part = _Part(object, "update", f"{self.base}/composite/sobjects", len(updates))
        for index, (ref, values) in enumerate(updates):
            rid = normalize_id(ref) if isinstance(ref, str) else None
            if rid is None:
                part.fail(index, _not_found(object, str(ref)))
            else:
                part.add(index, ref, values, rid)
        return part

    def _create_part(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> _Part:
        """Creates (POST ``/composite/sobjects``), each carrying its ``key_field`` value (a
        record without one fails ``REQUIRED_FIELD_MISSING`` before anything is sent)."""
        _check_name(object)
        _check_name(key_field)
        part = _Part(object, "create", f"{self.base}/composite/sobjects", len(records))
        for index, values in enumerate(records):
            key = values.get(key_field)
            ref = "" if key is None else str(key)
            if key is None or key == "":
                part.fail(
                    index,
                    _failed(
                        ref, "REQUIRED_FIELD_MISSING", f"{key_field} is required", (key_field,)
                    ),
                )
            else:
                part.add(index, ref, values)
        return part

    def _created(
        self, part: _Part, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """A create part's answers, a key the org already held (``DUPLICATE_VALUE`` on
        ``key_field``) answered ``ok`` with the holder's id, ``created`` False (its ids
        looked up by key: one query per chunk of such keys, none when there are none)."""
        object, results = part.object, part.results
        taken = [
            index
            for index, result in enumerate(results)
            if result is not None
            and not result.ok
            and result.error_code == "DUPLICATE_VALUE"
            and (key_field in result.fields or key_field in (result.message or ""))
        ]
        if taken:
            names = self._names(object, [key_field])
            keys = sorted({str(records[i][key_field]) for i in taken})
            statements = [
                text
                for text, _chunk in soql.select_in_chunks(
                    object, names, key_field, keys, max_length=SOQL_CHUNK
                )
            ]
            found: dict[str, str] = {}
            for raw in self._query_many(statements, operation=f"query {object} by {key_field}"):
                record = self._record(object, names, raw)
                value = record.fields.get(key_field)
                if isinstance(value, str):
                    found[value] = record.id
            for index in taken:
                key = str(records[index][key_field])
                if key in found:
                    results[index] = WriteResult(ref=key, ok=True, id=found[key])
        return part.answers()

    def _incomplete(
        self, object: str, ids: Sequence[str], completion: Mapping[str, Any]
    ) -> tuple[dict[str, Record], list[tuple[str, Mapping[str, Any]]]]:
        """The tasks among ``ids`` as they are now (their ``completion`` fields read, by
        18-character id), and the updates completing those that do not hold it yet (each
        id once, as given)."""
        current = {r.id: r for r in self.records_by_id(object, ids, list(completion))}
        todo: list[tuple[str, Mapping[str, Any]]] = [
            (ref, dict(completion))
            for ref in dict.fromkeys(ids)
            if (key := normalize_id(ref)) in current
            and any(current[key].fields.get(f) != v for f, v in completion.items())
        ]
        return current, todo

    @staticmethod
    def _completed(
        object: str,
        ids: Sequence[str],
        current: Mapping[str, Record],
        written: Sequence[WriteResult],
    ) -> list[WriteResult]:
        """One result per id asked to complete: the write's, or ``ok`` for a task that was
        complete already, or ``NOT_FOUND``."""
        by_ref = {r.ref: r for r in written}
        out: list[WriteResult] = []
        for ref in ids:
            key = normalize_id(ref) if isinstance(ref, str) else None
            if ref in by_ref:
                out.append(by_ref[ref])
            elif key is not None and key in current:
                out.append(WriteResult(ref=ref, ok=True, id=key))
            else:
                out.append(_not_found(object, ref))
        return out

    def _write(self, parts: Sequence[_Part]) -> None:
        """Send the parts' pending records, every result filed in its part: records of the
        same method and path share Collections requests (200 records each, in the parts'
        order), all sent together (``_send_collections``). Row locks and subrequests that
        failed transiently are sent again, ``RetryPolicy.record_retries`` rounds at most."""
        pending = [p for part in parts for p in part.pending]
        what = f"write {', '.join(dict.fromkeys(p.part.object for p in pending))}"
        why: dict[_Pending, tuple[str, str]] = {}  # a transient refusal's code and message
        rounds = 0
        while pending:
            locked: list[_Pending] = []
            channels: dict[tuple[str, str], list[_Pending]] = {}
            for p in pending:
                channels.setdefault((p.part.method, p.part.path), []).append(p)
            batches = [
                (method, path, records[i : i + COLLECTION_SIZE])
                for (method, path), records in channels.items()
                for i in range(0, len(records), COLLECTION_SIZE)
            ]
            answers = self._send_collections(
                what, [(method, path, [p.body for p in b]) for method, path, b in batches]
            )
            resend: list[_Pending] = []
            for (_method, _path, batch), answer in zip(batches, answers, strict=True):
                resend.extend(self._read_answer(what, batch, answer, locked=locked, why=why))
            if resend:  # refused as a whole for an unknown field: the rest again, now
                pending = resend + locked
                continue
            if not locked:
                return
            rounds += 1
            if rounds > self.policy.record_retries:
                for p in locked:
                    code, message = why.get(
                        p, (LOCK_CODE, "the record stayed locked by another transaction")
                    )
                    p.part.results[p.index] = WriteResult(
                        ref=p.ref, ok=False, error_code=code, message=message, transient=True
                    )
                log.warning("sf_rows_locked", operation=what, records=len(locked), rounds=rounds)
                return
            log.info("sf_rows_locked_retry", operation=what, records=len(locked), round=rounds)
            self.policy.sleep(self.policy.wait_for(rounds))
            pending = locked

    def _read_answer(
        self,
        what: str,
        batch: list[_Pending],
        answer: _Answer,
        *,
        locked: list[_Pending],
        why: dict[_Pending, tuple[str, str]],
    ) -> list[_Pending]:
        """File one Collections answer's results in the records' parts; add records to send
        again in a later round to ``locked`` (with ``why`` when refused as a whole); return
        records to send again at once."""
        body = answer.body
        if answer.status >= 400 or not isinstance(body, list) or len(body) != len(batch):
            error = self._api_error(answer.status, body)
            if error.code in LIMIT_CODES or error.code in AUTH_CODES:
                raise translate(error, what)
            if is_transient(error):
                for p in batch:
                    why[p] = (error.code, error.message)
                locked.extend(batch)
                return []
            column = _NO_SUCH_COLUMN.search(error.message)
            if error.code == "INVALID_FIELD" and column:
                name, object = column.group(1), column.group(2)
                keep = []
                for p in batch:
                    if name in p.body and object in (None, p.part.object):
                        p.part.results[p.index] = _failed(
                            p.ref, "INVALID_FIELD", error.message, (name,)
                        )
                    else:
                        keep.append(p)
                if len(keep) < len(batch):
                    return keep
            for p in batch:
                p.part.results[p.index] = _failed(p.ref, error.code, error.message)
            return []
        for p, item in zip(batch, body, strict=True):
            kind = p.part.kind
            if item.get("success"):
                p.part.results[p.index] = WriteResult(
                    ref=p.ref,
                    ok=True,
                    id=item.get("id"),
                    created=kind == "create" or (kind == "upsert" and bool(item.get("created"))),
                )
                continue
            errors = item.get("errors") or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR")
            message = self.auth.scrub(str(first.get("message") or ""))
            fields = tuple(str(f) for f in first.get("fields") or ())
            if code == LOCK_CODE:
                locked.append(p)
            elif kind == "update" and code in _MISSING_CODES and set(fields) <= {ID_FIELD}:
                p.part.results[p.index] = _failed(
                    p.ref, "NOT_FOUND", f"no {p.part.object} with Id {p.ref} ({code}: {message})"
                )
            else:
                p.part.results[p.index] = _failed(p.ref, code, message, fields)
        return []

    def _send_collections(
        self, what: str, batches: list[tuple[str, str, list[dict[str, Any]]]]
    ) -> list[_Answer]:
        """One answer per ``(method, path, records)`` batch: a single batch as one
        Collections request, more as Composite requests of up to ``COMPOSITE_HEAVY``
        Collections subrequests each (``allOrNone`` false at both levels)."""
        if len(batches) == 1:
            [(method, path, records)] = batches
            response = self._call(
                "write",
                method,
                path,
                json_body={"allOrNone": False, "records": records},
                operation=what,
                accept_errors=True,
            )
            return [_Answer(response.status_code, _maybe_json(response))]
        answers: list[_Answer] = []
        for start in range(0, len(batches), COMPOSITE_HEAVY):
            group = batches[start : start + COMPOSITE_HEAVY]
            subrequests = [
                {
                    "method": method,
                    "url": path,
                    "referenceId": f"w{n}",
                    "body": {"allOrNone": False, "records": records},
                }
                for n, (method, path, records) in enumerate(group)
            ]
            for status, body in self._composite("write", subrequests, what):
                answers.append(_Answer(status, body))
        return answers

    def _composite(
        self, kind: str, subrequests: list[dict[str, Any]], operation: str
    ) -> list[tuple[int, Any]]:
        """One Composite request (``allOrNone=false``); (status, body) per subrequest."""
        response = self._call(
            kind,
            "POST",
            f"{self.base}/composite",
            json_body={"allOrNone": False, "compositeRequest": subrequests},
            operation=operation,
        )
        body = self._json(response)
        answers = {
            str(item.get("referenceId")): (int(item.get("httpStatusCode", 500)), item.get("body"))
            for item in body.get("compositeResponse") or []
        }
        out = []
        for sub in subrequests:
            found = answers.get(sub["referenceId"])
            if found is None:
                raise CrmError(f"{operation}: the Composite answer lacks {sub['referenceId']}")
            out.append(found)
        return out

    # ------------------------------------------------------------------ querying

    def _query_url(self, statement: str) -> str:
        return f"{self.base}/queryAll?q={quote(statement, safe='')}"

    def _first_page(self, ticket: int, *, operation: str) -> dict[str, Any]:
        """The first page of a ``changed_records`` pull. Pulls opened but not started yet
        travel along: up to five first pages in one Composite call, the others kept for
        their own iterators (so a cycle's related-change and complaint queries cost one)."""
        if ticket in self._prefetched:
            return self._page(*self._prefetched.pop(ticket), operation)
        url = self._pending.pop(ticket)
        others = list(self._pending.items())[: COMPOSITE_HEAVY - 1]
        if not others:
            return self._query_one(url, operation=operation)
        for other, _url in others:
            del self._pending[other]
        subrequests = [{"method": "GET", "url": url, "referenceId": "q"}] + [
            {"method": "GET", "url": other_url, "referenceId": f"q{other}"}
            for other, other_url in others
        ]
        answers = self._composite("query", subrequests, operation)
        for (other, other_url), (status, body) in zip(others, answers[1:], strict=True):
            self._prefetched[other] = (other_url, status, body)
        return self._page(url, *answers[0], operation)

    def _forget(self, ticket: int) -> None:
        """An abandoned pull: its first page is no longer wanted."""
        self._pending.pop(ticket, None)
        self._prefetched.pop(ticket, None)

    def _query_one(self, url: str, *, operation: str) -> dict[str, Any]:
        """The first page of a query: GET when the URL is short, else in a Composite body."""
        if len(url) <= GET_URI_BUDGET:
            return self._json(self._call("query", "GET", url, operation=operation))
        [(status, body)] = self._composite(
            "query", [{"method": "GET", "url": url, "referenceId": "q0"}], operation
        )
        return self._query_answer(status, body, operation)

    def _query_many(self, statements: list[str], *, operation: str) -> Iterator[dict[str, Any]]:
        """Raw records of several queries (and their further pages), up to five first pages
        or "query more" requests per Composite call; a single short query is a plain GET."""
        queue = [self._query_url(s) for s in statements]
        while queue:
            group, queue = queue[:COMPOSITE_HEAVY], queue[COMPOSITE_HEAVY:]
            if len(group) == 1 and len(group[0]) <= GET_URI_BUDGET:
                pages = [self._json(self._call("query", "GET", group[0], operation=operation))]
            else:
                subrequests = [
                    {"method": "GET", "url": url, "referenceId": f"q{n}"}
                    for n, url in enumerate(group)
                ]
                answers = self._composite("query", subrequests, operation)
                pages = [
                    self._page(url, status, body, operation)
                    for url, (status, body) in zip(group, answers, strict=True)
                ]
            for page in pages:
                yield from page.get("records") or []
                if not page.get("done", True) and page.get("nextRecordsUrl"):
                    queue.append(self._own_path(str(page["nextRecordsUrl"])))

    def _page(self, url: str, status: int, body: Any, operation: str) -> dict[str, Any]:
        """The page of ``url`` answered inside a Composite call. When that subrequest alone
        failed transiently (the Composite call itself succeeded, so the retry policy never
        saw it), the page is fetched again on its own under the retry policy; any other
        failure is raised as ``_query_answer`` raises it."""
        if status >= 400 or not isinstance(body, dict):
            error = self._api_error(status, body)
            if is_transient(error):
                log.info("sf_subrequest_retry", operation=operation, status=status, code=error.code)
                return self._query_one(url, operation=operation)
        return self._query_answer(status, body, operation)

    def _query_answer(self, status: int, body: Any, operation: str) -> dict[str, Any]:
        if status >= 400 or not isinstance(body, dict):
            raise translate(self._api_error(status, body), operation)
        return dict(body)

    # ------------------------------------------------------------------ Bulk API 2.0

    def _bulk_query(self, object: str, names: list[str], statement: str) -> Iterator[Record]:
        """Run a Bulk API 2.0 ``queryAll`` job and stream its rows ordered by
        ``(SystemModstamp, Id)`` (``modstamp_field``) from a temporary SQLite spool (memory
        stays flat)."""
        types = self._types.get(object) or self.describe(object)
        stamp = modstamp_field(object)
        operation = f"bulk query {object}"
        job = self._json(
            self._call(
                "bulk",
                "POST",
                f"{self.base}/jobs/query",
                json_body={"operation": "queryAll", "query": statement},
                operation=operation,
            )
        )
        job_id = str(job.get("id"))
        if not re.fullmatch(r"[A-Za-z0-9]+", job_id):
            raise CrmError(f"{operation}: the job answer has no usable id")
        waited = 0.0
        while True:
            state = self._json(
                self._call("bulk", "GET", f"{self.base}/jobs/query/{job_id}", operation=operation)
            )
            status = state.get("state")
            if status == "JobComplete":
                break
            if status in ("Failed", "Aborted"):
                why = self.auth.scrub(str(state.get("errorMessage")))
                raise CrmError(f"{operation}: job {job_id} {status}: {why}")
            if waited >= self.bulk_max_wait_seconds:
                raise CrmError(f"{operation}: job {job_id} not done after {waited:.0f} s")
            self.policy.sleep(self.bulk_poll_seconds)
            waited += self.bulk_poll_seconds
        with tempfile.TemporaryDirectory(prefix="crmsync-bulk-") as folder:
            spool = sqlite3.connect(Path(folder) / "spool.sqlite3")
            try:
                spool.execute("CREATE TABLE rows (stamp TEXT, id TEXT, fields TEXT)")
                locator: str | None = None
                while True:
                    params = {"maxRecords": str(BULK_PAGE)}
                    if locator:
                        params["locator"] = locator
                    response = self._call(
                        "bulk",
                        "GET",
                        f"{self.base}/jobs/query/{job_id}/results",
                        params=params,
                        operation=operation,
                    )
                    rows = []
                    for row in csv.DictReader(io.StringIO(response.text)):
                        fields = {n: _from_csv(row.get(n, ""), types.get(n)) for n in names}
                        rows.append((str(fields[stamp]), str(fields[ID_FIELD]), json.dumps(fields)))
                    spool.executemany("INSERT INTO rows VALUES (?, ?, ?)", rows)
                    locator = response.headers.get("Sforce-Locator")
                    if not locator or locator == "null":
                        break
                spool.execute("CREATE INDEX rows_order ON rows (stamp, id)")
                cursor = spool.execute("SELECT fields FROM rows ORDER BY stamp, id")
                for (text,) in cursor:
                    values = json.loads(text)
                    yield Record(object, str(values[ID_FIELD]), values)
            finally:
                spool.close()

    # ------------------------------------------------------------------ HTTP

    def _call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        billed: bool = True,
        accept_errors: bool = False,
    ) -> requests.Response:
        """One API request under the retry policy; raises the translated crmsync error.

        ``accept_errors`` returns a 4xx answer that is neither transient, a limit nor an
        auth failure to the caller (Collections answers read per record)."""

        def attempt() -> requests.Response:
            if billed:
                self._check_budget(operation)
            response = self._send(kind, method, path, params, json_body)
            if response.status_code == 401:
                error = self._api_error(401, _maybe_json(response))
                if error.code in AUTH_CODES and self._renew():
                    response = self._send(kind, method, path, params, json_body)
            if response.status_code < 400:
                return response
            error = self._api_error(response.status_code, _maybe_json(response))
            if response.status_code == 401 and error.code not in AUTH_CODES:
                error = ApiError(401, "INVALID_SESSION_ID", error.message)
            if (
                accept_errors
                and not is_transient(error)
                and error.code not in LIMIT_CODES
                and error.code not in AUTH_CODES
            ):
                return response
            raise error

        return self.policy.run(attempt, operation=operation, failures=SALESFORCE_FAILURES)

    def _api_error(self, status: int, body: Any) -> ApiError:
        """``_api_error`` of an answer, its message scrubbed of every credential the
        adapter holds (a server may echo the request's ``Authorization`` header)."""
        error = _api_error(status, body)
        return ApiError(error.status, error.code, self.auth.scrub(error.message))

    def _renew(self) -> bool:
        before = self.auth.logins
        try:
            return self.auth.renew()
        finally:
            self.calls.add("login", self.auth.logins - before)

    def _send(
        self,
        kind: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json_body: Any,
    ) -> requests.Response:
        before = self.auth.logins
        try:
            headers = self.auth.headers()
        finally:
            if self.auth.logins != before:
                self.calls.add("login", self.auth.logins - before)
        headers["Accept"] = "application/json"
        url = f"{self.auth.instance_url}{self._own_path(path)}"
        self.calls.add(kind)
        response = self.session.request(method, url, params=params, json=json_body, headers=headers)
        self._note_usage(response)
        return response

    def _own_path(self, url: str) -> str:
        """``url`` (an API path, or a ``nextRecordsUrl`` as the org answered it) as a path
        on the org's own host: a path from the root, or an absolute URL on the instance
        URL's scheme, host and port. Anything else is a ``CrmError`` and is never requested:
        the request would carry the session token to another host."""
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc and url.startswith("/"):
            return url
        own = urlsplit(self.auth.instance_url or "")
        same = (parts.scheme.lower(), _host_port(parts)) == (own.scheme.lower(), _host_port(own))
        if parts.scheme and parts.netloc and same and not parts.username:
            return urlunsplit(("", "", parts.path or "/", parts.query, ""))
        where = parts.hostname or "a relative path"
        raise CrmError(
            f"the org answered a URL on another host ({where}), not {own.hostname}: "
            "not requested (it would carry the session token there)"
        )

    def _note_usage(self, response: requests.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    def _check_budget(self, operation: str) -> None:
        if self.api_usage is None:
            return
        used, limit = self.api_usage
        allowed = math.floor(self.budget_share * limit)
        if used >= allowed:
            raise CrmLimitError(
                f"{operation}: not sent, the org has used {used} of its {limit} daily API "
                f"calls and CRMSYNC_SF_API_BUDGET_SHARE={self.budget_share} allows {allowed}"
            )

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        """The answer's JSON object; ``CrmError`` for anything else."""
        body = _maybe_json(response)
        if not isinstance(body, dict):
            raise CrmError(
                f"{response.request.method} {_path_of(response.url)}: "
                "the answer is not a JSON object"
            )
        return body

    # ------------------------------------------------------------------ helpers

    def _names(self, object: str, fields: Sequence[str]) -> list[str]:
        if isinstance(fields, str):
            raise CrmError("fields must be a sequence of field names, not one string")
        try:
            soql.name(object)
            stamp = modstamp_field(object)
            return list(dict.fromkeys([ID_FIELD, stamp, *(soql.name(f) for f in fields)]))
        except QueryValueError as exc:
            raise CrmError(str(exc)) from exc

    @staticmethod
    def _conditions(where: Sequence[FieldFilter]) -> list[str] | None:
        out = []
        try:
            for f in where:
                text = soql.condition(f)
                if text is None:
                    return None
                out.append(text)
        except QueryValueError as exc:
            raise CrmError(str(exc)) from exc
        return out

    @staticmethod
    def _record(object: str, names: Sequence[str], raw: Mapping[str, Any]) -> Record:
        fields = {name: _dotted(raw, name) for name in names}
        return Record(object, str(raw.get(ID_FIELD)), fields)


# ---------------------------------------------------------------------- module helpers


class _ValueProblem:
    def __init__(self, code: str, message: str, field: str) -> None:
        self.code, self.message, self.field = code, message, field

    def with_ref(self, ref: str) -> WriteResult:
        return _failed(ref, self.code, self.message, (self.field,))


def _value_problem(values: Mapping[str, Any]) -> _ValueProblem | None:
    for name, value in values.items():
        if not _is_name(name) or "." in name:
            return _ValueProblem("INVALID_FIELD", f"'{name}' is not a field name", str(name))
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return _ValueProblem(
                "INVALID_FIELD", f"{name}: a {type(value).__name__} is not JSON-compatible", name
            )
    return None


def _failed(ref: str, code: str, message: str, fields: tuple[str, ...] = ()) -> WriteResult:
    return WriteResult(ref=ref, ok=False, error_code=code, message=message, fields=fields)


def _not_found(object: str, ref: str) -> WriteResult:
    return _failed(ref, "NOT_FOUND", f"no {object} with Id {ref}")


def _is_name(text: object) -> bool:
    try:
        soql.name(text)  # type: ignore[arg-type]
    except QueryValueError:
        return False
    return True


def _check_name(text: object) -> str:
    if not _is_name(text):
        raise CrmError(f"'{text}' is not a Salesforce API name")
    return str(text)


def _valid_ids(ids: Sequence[str]) -> list[str]:
    """Well-formed ids as 18 characters, each once, in order (others cannot exist)."""
    return list(dict.fromkeys(key for i in ids if isinstance(i, str) and (key := normalize_id(i))))


def _ceil_ms(instant: datetime) -> datetime:
    """``instant`` rounded up to a whole millisecond; a naive one is a ``CrmError``."""
    try:
        return ceil_millisecond(instant)
    except ValueError as exc:
        raise CrmError(str(exc)) from exc


def _dotted(raw: Mapping[str, Any], name: str) -> Any:
    value: Any = raw
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _maybe_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _api_error(status: int, body: Any) -> ApiError:
    """The first ``{errorCode, message}`` of an error body (a list or one object)."""
    item = body[0] if isinstance(body, list) and body else body
    if isinstance(item, dict):
        code = item.get("errorCode") or item.get("statusCode") or item.get("error")
        message = item.get("message") or item.get("error_description") or ""
        if code:
            return ApiError(status, str(code), str(message))
    return ApiError(status, "SERVER_UNAVAILABLE" if status >= 500 else f"HTTP_{status}", "")


def _path_of(url: str | None) -> str:
    """A URL's path without its query string (which may hold SOQL values)."""
    return (url or "").split("?", 1)[0]


def _from_csv(text: str | None, info: FieldInfo | None) -> Any:
    """A Bulk API CSV value as the REST API would give it (typed by describe)."""
    if text is None or text == "":
        return None
    kind = info.type if info is not None else "string"
    try:
        if kind in _NUMBER_TYPES:
            return float(text)
        if kind == "int":
            return int(text)
        if kind == "boolean":
            return text.lower() == "true"
        if kind == "datetime":
            return format_sf_datetime(parse_sf_datetime(text.replace("Z", "+00:00")))
    except ValueError:
        return text
    return text


def _picklist_values(item: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The active values of a described picklist field; None for other types."""
    if item.get("type") not in ("picklist", "multipicklist"):
        return None
    return tuple(
        str(v.get("value"))
        for v in item.get("picklistValues") or []
        if isinstance(v, dict) and v.get("active", True)
    )


def _host_port(parts: SplitResult) -> tuple[str, int | None]:
    """The host (lower case) and port of a URL, the scheme's default port made explicit."""
    try:
        port = parts.port
    except ValueError:
        port = -1  # a port that is no number matches nothing
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return (parts.hostname or "").lower(), port
