"""``CrmPort`` on Microsoft Dataverse (Dynamics 365) through its Web API (OData v4, JSON).

Objects are table logical names (``incident``, ``task``, ``new_casestatuschange``), fields
column logical names; a lookup is read as ``_column_value``. Each record's fields hold its
primary id column and ``modifiedon`` besides the columns asked.

Reads: ``GET {entityset}?$select&$filter&$orderby=modifiedon,{id}`` with
``Prefer: odata.maxpagesize=5000``; the next page is ``@odata.nextLink``, followed only
when it points at the org's own Web API (a link elsewhere is a ``CrmError``, never sent a
token). Children of many parents and records by id are read with ``in`` filters of up to
``ids_per_query`` ids each (the ``In`` function: 400 GUIDs keep a URL near 16 KB, well
under the Web API's limit). Deleted records come from the recycle bin
(``deleteditemreferences``, which the org must have turned on; without it a deletion is
seen only as the record's absence).

Writes: ``POST $batch`` of up to 1,000 operations, each in its own change set, with
``Prefer: odata.continue-on-error``; each operation has its own result. An update is
``PATCH {set}({id})`` with ``If-Match: *`` (never creating a row for a missing id); a
follow-up is created only when absent by ``PATCH {set}({key}='K')`` with
``If-None-Match: *`` (412: it exists, nothing changed; its id is then read by key); an
upsert by key is that PATCH without the condition. ``complete_tasks`` reads the rows
first and writes only those not in the completed state already. ``write_page`` sends a
page's creates, completions and updates together: ``ceil(operations / 1000)`` batches.

Value formats are the adapter's. The Web API answers a date-time in whole seconds
(``2026-03-02T09:15:00Z``) while the org keeps it finer and compares what it keeps in
``$filter``: so datetimes are written in whole seconds, ``YYYY-MM-DDTHH:MM:SSZ`` (another
offset converted to UTC, a fraction of a second dropped), and a value reads back as it was
written; filter literals keep their milliseconds; a row's ``modifiedon`` as answered is
never after the one kept, so a watermark taken from it never passes the row. Per-record failures
carry the port's codes: ``NOT_FOUND`` (404), ``INVALID_FIELD`` (a column the table does
not have), ``REQUIRED_FIELD_MISSING`` (no key), ``DUPLICATE_VALUE`` (an alternate key
held twice), else Dataverse's own hex code; 429 and 5xx are transient and retried for
those records only (``RetryPolicy.record_retries`` rounds, honouring ``Retry-After``).

Requests run under the one retry policy with ``DATAVERSE_FAILURES``; a 401 renews the
token once and sends again. Calls are counted by kind: ``query``, ``write`` (one per
``$batch``), ``describe``, ``time``.

For ``crmsync check --online`` it also offers its choice columns' options
(``ChoiceOptions``) and what the application user's security role lacks (``AccessCheck``):
see ``dynamics365_access``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import structlog

from crmsync.adapters.crm import dynamics365_access as access
from crmsync.adapters.crm import dynamics365_batch as batch
from crmsync.adapters.crm.dynamics365_errors import DATAVERSE_FAILURES, api_error
from crmsync.adapters.crm.retry_policy import RetryPolicy
from crmsync.errors import ApiError, CrmError
from crmsync.ports import (
    Access,
    CallCounter,
    FieldFilter,
    FieldInfo,
    PageResults,
    PageWrites,
    Record,
    WriteResult,
)
from crmsync.redaction import redact_text

log = structlog.get_logger("crmsync.crm.dynamics365")

MODSTAMP = "modifiedon"
PAGE_SIZE = 5000
TokenSource = Callable[[bool], str]
"""Gives a bearer token; called with True after a 401 to get a renewed one."""

# table logical name -> (entity set, primary id column) for the reference org's tables;
# any other table is looked up once in EntityDefinitions.
KNOWN_TABLES: dict[str, tuple[str, str]] = {
    "incident": ("incidents", "incidentid"),
    "task": ("tasks", "activityid"),
    "new_casestatuschange": ("new_casestatuschanges", "new_casestatuschangeid"),
    "systemuser": ("systemusers", "systemuserid"),
}
# (table, lookup column) -> (navigation property, target entity set) of the reference org's
# lookups: read as ``_column_value``, written as ``navigation@odata.bind: /set(id)``.
KNOWN_LOOKUPS: dict[tuple[str, str], tuple[str, str]] = {
    ("incident", "ownerid"): ("ownerid", "systemusers"),
    ("incident", "new_complaintmanager"): ("new_ComplaintManager", "systemusers"),
    ("task", "ownerid"): ("ownerid", "systemusers"),
    ("task", "regardingobjectid"): ("regardingobjectid_incident", "incidents"),
    ("new_casestatuschange", "new_case"): ("new_Case", "incidents"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_OFFSET_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:?\d{2}|Z)\Z"
)
_UNKNOWN_PROPERTY = re.compile(r"property named '([^']+)'|Invalid property '([^']+)'")
_TYPES = {
    "DateTime": "datetime",
    "Picklist": "picklist",
    "State": "picklist",
    "Status": "picklist",
    "Lookup": "reference",
    "Owner": "reference",
    "Customer": "reference",
    "String": "string",
    "Memo": "textarea",
    "Integer": "int",
    "BigInt": "int",
    "Decimal": "double",
    "Double": "double",
    "Money": "double",
    "Boolean": "boolean",
    "Uniqueidentifier": "id",
}


def odata_name(name: str) -> str:
    """``name`` when it is a plain column or table name; a ``CrmError`` otherwise (never
    put into a URL)."""
    if not _NAME.match(name):
        raise CrmError(f"'{name[:60]}' is not a Dataverse column or table name")
    return name


def odata_literal(value: Any) -> str:
    """A value as an OData literal: strings quoted (quotes doubled), GUIDs bare, numbers
    and booleans as they are, datetimes in UTC with ``Z``, None as ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return odata_datetime(value)
    text = str(value)
    if _GUID.match(text):
        return text.lower()
    return "'" + text.replace("'", "''") + "'"


def odata_datetime(instant: datetime) -> str:
    """An aware instant as Dataverse's UTC text (milliseconds kept when there are any: a
    filter literal compares what the org keeps)."""
    if instant.tzinfo is None:
        raise CrmError(f"{instant!r} has no time zone (the CRM needs aware datetimes)")
    utc = instant.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def write_value(value: Any) -> Any:
    """A value as Dataverse takes it: date-time text becomes UTC ``Z`` text in whole seconds
    (the fraction dropped: the org answers whole seconds, so it reads back as written)."""
    if isinstance(value, str):
        match = _OFFSET_DATETIME.match(value.strip())
        if match and (match.group(2) or match.group(3) != "Z"):
            try:
                return odata_datetime(datetime.fromisoformat(match.group(1) + match.group(3)))
            except ValueError:
                return value
    return value


def filter_clause(f: FieldFilter) -> str:
    """One ``FieldFilter`` as an OData condition (``!=`` keeps rows where it is null)."""
    name = odata_name(f.field)
    if f.op == "=":
        return f"{name} eq {odata_literal(f.value)}"
    if f.op == "!=":
        if f.value is None:
            return f"{name} ne null"
        return f"({name} ne {odata_literal(f.value)} or {name} eq null)"
    values = list(f.value)
    if not values:
        return "false"
    if len(values) == 1:
        return f"{name} eq {odata_literal(values[0])}"
    texts = ",".join(_in_literal(v) for v in values)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='{name}',PropertyValues=[{texts}])"


def _in_literal(value: Any) -> str:
    """A value of the ``In`` function's list: always text (Dataverse converts it)."""
    text = odata_literal(value)
    return text if text.startswith("'") else f"'{text}'"


_ONLY_IF_ABSENT = {"If-None-Match": "*"}  # a write by key that never changes a held row


@dataclasses.dataclass(eq=False)
class _Part:
    """One kind of write of a call: the results known before anything is sent (a bad
    value, a malformed id), the operations to send with the ref and the position of each,
    positions answered as another's (``same``: a key given twice) and, once sent, each
    operation's last answer and failure."""

    results: dict[int, WriteResult] = dataclasses.field(default_factory=dict)
    operations: list[batch.Operation] = dataclasses.field(default_factory=list)
    refs: list[str] = dataclasses.field(default_factory=list)
    where: list[int] = dataclasses.field(default_factory=list)
    same: dict[int, int] = dataclasses.field(default_factory=dict)
    answers: list[tuple[batch.OperationResult | None, WriteResult | None]] = dataclasses.field(
        default_factory=list
    )

    def add(self, position: int, ref: str, operation: batch.Operation) -> None:
        self.where.append(position)
        self.refs.append(ref)
        self.operations.append(operation)


class DataverseCrm:
    """``CrmPort`` (and no API budget: Dataverse meters requests, it does not count a day's)
    on one Dataverse org. ``org_url`` is ``https://ORG.crm.dynamics.com``."""

    def __init__(
        self,
        org_url: str,
        token: TokenSource,
        *,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        api_version: str = "9.2",
        timeout: float = 60.0,
        page_size: int = PAGE_SIZE,
        batch_size: int = batch.MAX_OPERATIONS,
        ids_per_query: int = 400,
        lookups: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    ) -> None:
        parts = urlsplit(org_url.rstrip("/"))
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise CrmError(f"the Dataverse org URL must be https://HOST, not '{org_url[:80]}'")
        self.org = f"{parts.scheme}://{parts.netloc}"
        self.base = f"{self.org}/api/data/v{api_version}/"
        self.token = token
        self.session = session or requests.Session()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.page_size = page_size
        self.batch_size = min(batch_size, batch.MAX_OPERATIONS)
        self.ids_per_query = ids_per_query
        self.calls = CallCounter()
        self._tables = dict(KNOWN_TABLES)
        self.lookups = {**KNOWN_LOOKUPS, **(lookups or {})}
        self._bearer: str | None = None
        self._held: set[str] = set()  # every token sent: scrubbed from what is raised

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the HTTP session (twice is fine)."""
        self.session.close()

    def __enter__(self) -> DataverseCrm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        if self._bearer is None:
            self._bearer = self.token(False)
        self._held.add(self._bearer)
        headers = {
            "Authorization": f"Bearer {self._bearer}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
        }
        headers.update(extra or {})
        return headers

    def _request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        kind: str,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        """One request under the retry policy, renewing the token once on a 401."""
        self._check_url(url)
        renewed = False

        def attempt() -> requests.Response:
            nonlocal renewed
            self.calls.add(kind)
            response = self.session.request(
                method, url, headers=self._headers(headers), data=data, timeout=self.timeout
            )
            if response.status_code == 401 and not renewed:
                renewed = True
                self._bearer = self.token(True)
                self.calls.add(kind)
                response = self.session.request(
                    method, url, headers=self._headers(headers), data=data, timeout=self.timeout
                )
            if response.status_code >= 400:
                error = api_error(response.status_code, response.headers, _json_or_text(response))
                raise self._scrubbed(error)
            return response

        return self.policy.run(attempt, operation=operation, failures=DATAVERSE_FAILURES)

    def _scrub(self, text: str) -> str:
        """``text`` without any bearer token this adapter has sent (a server may echo the
        request's ``Authorization`` header in its message)."""
        return redact_text(text, sorted(self._held))

    def _scrubbed(self, error: ApiError) -> ApiError:
        """``error`` with its server message scrubbed (``_scrub``)."""
        return ApiError(
            error.status, error.code, self._scrub(error.message), retry_after=error.retry_after
        )

    def _check_url(self, url: str) -> None:
        """Only the org's own Web API is ever sent a request (and so the token)."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.org or not url.startswith(self.base):
            host = parts.hostname or "no host"
            raise CrmError(
                f"refused to follow a link to {host} outside the org's Web API ({self.base})"
            )

    def _get_json(self, url: str, *, operation: str, kind: str, prefer: str = "") -> Any:
        headers = {"Prefer": prefer} if prefer else None
        response = self._request("GET", url, operation=operation, kind=kind, headers=headers)
        body = _json_or_text(response)
        if not isinstance(body, dict):
            raise CrmError(f"{operation}: the answer is not a JSON object")
        return body

    # ------------------------------------------------------------------ tables

    def _table(self, object: str) -> tuple[str, str]:
        """(entity set, primary id column) of a table, looked up once when not known."""
        name = odata_name(object)
        if name not in self._tables:
            url = (
                f"{self.base}EntityDefinitions(LogicalName='{name}')"
                "?$select=EntitySetName,PrimaryIdAttribute"
            )
            body = self._get_json(url, operation=f"describe {name}", kind="describe")
            entity_set, primary = body.get("EntitySetName"), body.get("PrimaryIdAttribute")
            if not isinstance(entity_set, str) or not isinstance(primary, str):
                raise CrmError(f"describe {name}: Dataverse named no entity set for it")
            self._tables[name] = (odata_name(entity_set), odata_name(primary))
        return self._tables[name]

    # ------------------------------------------------------------------ ValueFormats

    def instant_text(self, instant: int) -> str:
        """Dataverse's datetime text: ``2026-03-02T09:15:00Z``."""
        return odata_datetime(datetime.fromtimestamp(instant, UTC))

    # ------------------------------------------------------------------ reads

    def server_time(self) -> datetime:
        """The org's clock from the ``Date`` header of ``WhoAmI``, whole seconds."""
        response = self._request("GET", f"{self.base}WhoAmI", operation="server time", kind="time")
        header = response.headers.get("Date")
        try:
            when = parsedate_to_datetime(header) if header else None
        except (TypeError, ValueError):
            when = None
        if when is None or when.tzinfo is None:
            raise CrmError("server time: the org's answer carries no valid Date header")
        return when.astimezone(UTC)

    def _select(self, object: str, fields: Sequence[str]) -> tuple[str, str, list[str]]:
        entity_set, primary = self._table(object)
        wanted = [primary, MODSTAMP] + [odata_name(f) for f in fields]
        return entity_set, primary, list(dict.fromkeys(wanted))

    def _wire(self, object: str, name: str) -> str:
        """The property a column is read and filtered by (a lookup's ``_x_value``)."""
        return f"_{name}_value" if (object, name) in self.lookups else name

    def _filter(self, object: str, f: FieldFilter) -> str:
        return filter_clause(FieldFilter(self._wire(object, f.field), f.op, f.value))

    def _bad_lookup(self, object: str, ref: str, values: Mapping[str, Any]) -> WriteResult | None:
        """A lookup given something that is not a Dataverse id fails that record alone."""
        for name, value in values.items():
            if (
                (object, name) in self.lookups
                and value not in (None, "")
                and (not isinstance(value, str) or not _GUID.match(value))
            ):
                return WriteResult(
                    ref,
                    False,
                    error_code="INVALID_FIELD",
                    message=f"{name}: {str(value)[:40]!r} is not a Dataverse id (a GUID)",
                    fields=(name,),
                )
        return None

    def _body(self, object: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """A row's values as Dataverse takes them: lookups bound by ``@odata.bind``."""
        body: dict[str, Any] = {}
        for name, value in values.items():
            lookup = self.lookups.get((object, odata_name(name)))
            if lookup is not None and isinstance(value, str) and _GUID.match(value):
                body[f"{lookup[0]}@odata.bind"] = f"/{lookup[1]}({value.lower()})"
            else:
                body[name] = write_value(value)
        return body

    def _pages(self, url: str, operation: str) -> Iterator[dict[str, Any]]:
        """Every row behind ``url``, page after page by ``@odata.nextLink``; a page the same
        as the one before it is a ``CrmError`` (paging moves on past the last row read, so
        the org's paging would go round forever)."""
        prefer = f'odata.maxpagesize={self.page_size},odata.include-annotations="*"'
        next_url: str | None = url
        previous: list[Any] = []
        while next_url is not None:
            body = self._get_json(next_url, operation=operation, kind="query", prefer=prefer)
            rows = body.get("value")
            if not isinstance(rows, list):
                raise CrmError(f"{operation}: the answer holds no 'value' list")
            if rows and rows == previous:
                raise CrmError(
                    f"{operation}: the org answered the same page twice in a row (its paging "
                    "does not move on); stopped rather than read the same rows again"
                )
            previous = rows
            for row in rows:
                if not isinstance(row, dict):
                    raise CrmError(f"{operation}: a row of the answer is not an object")
                yield row
            link = body.get("@odata.nextLink")
            if link is not None and not isinstance(link, str):
                raise CrmError(f"{operation}: @odata.nextLink is not a link")
            if link is not None:
                self._check_url(link)
            next_url = link

    def _record(
        self, object: str, primary: str, select: Sequence[str], row: Mapping[str, Any]
    ) -> Record:
        rid = row.get(primary)
        if not isinstance(rid, str) or not rid:
            raise CrmError(f"read {object}: a row came without its id ({primary})")
        return Record(object, rid, {name: row.get(self._wire(object, name)) for name in select})

    def _query_url(
        self,
        entity_set: str,
        select: Sequence[str],
        where: Sequence[str],
        order: str,
        object: str = "",
    ) -> str:
        wire = ",".join(dict.fromkeys(self._wire(object, n) for n in select))
        url = f"{self.base}{entity_set}?$select={wire}"
        if where:
            url += "&$filter=" + quote(" and ".join(where), safe="()',=")
        if order:
            url += f"&$orderby={order}"
        return url

    def changed_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        since: datetime | None,
        until: datetime,
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Rows with ``since <= modifiedon < until`` matching ``where``, ordered by
        ``(modifiedon, id)``; de-duplicated by id (a row moved during the read is seen in
        the window it moved to, once)."""
        entity_set, primary, select = self._select(object, fields)
        conditions = [f"{MODSTAMP} lt {odata_datetime(until)}"]
        if since is not None:
            conditions.insert(0, f"{MODSTAMP} ge {odata_datetime(since)}")
        conditions += [self._filter(object, f) for f in where]
        url = self._query_url(
            entity_set, select, conditions, f"{MODSTAMP} asc,{primary} asc", object
        )
        seen: set[str] = set()
        for row in self._pages(url, f"read {object}"):
            record = self._record(object, primary, select, row)
            if record.id not in seen:
                seen.add(record.id)
                yield record

    def related_records(
        self,
        object: str,
        fields: Sequence[str],
        *,
        parent_field: str,
        parent_ids: Sequence[str],
        where: Sequence[FieldFilter] = (),
    ) -> Iterator[Record]:
        """Rows whose ``parent_field`` is one of ``parent_ids``, read in bulk."""
        entity_set, primary, select = self._select(object, [*fields, parent_field])
        parents = list(dict.fromkeys(parent_ids))
        extra = [self._filter(object, f) for f in where]
        for start in range(0, len(parents), self.ids_per_query):
            chunk = parents[start : start + self.ids_per_query]
            parents_in = FieldFilter(parent_field, "in", tuple(chunk))
            conditions = [self._filter(object, parents_in), *extra]
            url = self._query_url(entity_set, select, conditions, "", object)
            for row in self._pages(url, f"read {object} of {len(chunk)} parents"):
                yield self._record(object, primary, select, row)

    def records_by_id(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[Record]:
        """The rows with these ids that exist (missing ids left out)."""
        entity_set, primary, select = self._select(object, fields)
        wanted = [i for i in dict.fromkeys(ids) if _GUID.match(i)]
        found: list[Record] = []
        for start in range(0, len(wanted), self.ids_per_query):
            chunk = wanted[start : start + self.ids_per_query]
            condition = filter_clause(FieldFilter(primary, "in", tuple(chunk)))
            url = self._query_url(entity_set, select, [condition], "", object)
            found += [
                self._record(object, primary, select, r)
                for r in self._pages(url, f"read {object} by id")
            ]
        return found

    def deleted_records(
        self, object: str, *, since: datetime | None, until: datetime
    ) -> Iterator[str]:
        """Ids of the table's rows deleted in the window, from the recycle bin."""
        self._table(object)
        conditions = [f"createdon lt {odata_datetime(until)}"]
        if since is not None:
            conditions.insert(0, f"createdon ge {odata_datetime(since)}")
        url = self._query_url(
            "deleteditemreferences", ["_deletedobject_value", "createdon"], conditions, ""
        )
        kind = "_deletedobject_value@Microsoft.Dynamics.CRM.lookuplogicalname"
        seen: set[str] = set()
        for row in self._pages(url, f"read deleted {object}"):
            rid = row.get("_deletedobject_value")
            if row.get(kind) == object and isinstance(rid, str) and rid not in seen:
                seen.add(rid)
                yield rid

    # ------------------------------------------------------------------ writes

    def _send_batch(
        self, operations: Sequence[batch.Operation], what: str
    ) -> list[batch.OperationResult | None]:
        results: list[batch.OperationResult | None] = []
        for start in range(0, len(operations), self.batch_size):
            chunk = operations[start : start + self.batch_size]
            content_type, body = batch.encode(chunk)
            response = self._request(
                "POST",
                f"{self.base}$batch",
                operation=f"write {what}",
                kind="write",
                headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
                data=body,
            )
            try:
                results += batch.decode(
                    response.headers.get("Content-Type", ""), response.text, len(chunk)
                )
            except ValueError as exc:
                raise CrmError(f"write {what}: the $batch answer cannot be read ({exc})") from None
        return results

    def _write(
        self, operations: Sequence[batch.Operation], refs: Sequence[str], what: str
    ) -> list[tuple[int, batch.OperationResult | None, WriteResult | None]]:
        """Send the operations; retry those answered transiently (own rounds, waiting as
        the policy says). Returns, per operation, its last answer and its failure if any."""
        outcome: dict[int, tuple[batch.OperationResult | None, WriteResult | None]] = {}
        pending = list(range(len(operations)))
        rounds = 0
        while pending:
            answers = self._send_batch([operations[i] for i in pending], what)
            retry: list[int] = []
            wait = 0.0
            for index, answer in zip(pending, answers, strict=True):
                failure = _failure(refs[index], answer)
                if failure is not None and failure.message:
                    failure = dataclasses.replace(failure, message=self._scrub(failure.message))
                outcome[index] = (answer, failure)
                if failure is not None and failure.transient:
                    retry.append(index)
                    if answer is not None:
                        wait = max(wait, _retry_after(answer))
            rounds += 1
            if not retry or rounds > self.policy.record_retries:
                break
            log.warning("crm_records_retried", object=what, records=len(retry), round=rounds)
            self.policy.sleep(max(wait, self.policy.wait_for(rounds)))
            pending = retry
        return [(i, *outcome[i]) for i in range(len(operations))]

    def _entity_url(self, entity_set: str, rid: str) -> str:
        return f"{self.base}{entity_set}({rid.lower()})"

    def _send(self, parts: Sequence[_Part], what: str) -> None:
        """Send the operations of every part together (``$batch`` requests of up to
        ``batch_size`` operations, transient answers sent again as ``_write`` says) and file
        each operation's answer in its part."""
        operations = [op for part in parts for op in part.operations]
        if not operations:
            return
        refs = [ref for part in parts for ref in part.refs]
        outcome = self._write(operations, refs, what)
        start = 0
        for part in parts:
            end = start + len(part.operations)
            part.answers = [(answer, failure) for _i, answer, failure in outcome[start:end]]
            start = end

    def _update_part(self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> _Part:
        """One ``PATCH {set}({id})`` with ``If-Match: *`` per update (a missing id fails
        NOT_FOUND, never creating a row); a bad value or a malformed id fails before."""
        entity_set, _ = self._table(object)
        part = _Part()
        for n, (rid, values) in enumerate(updates):
            problem = _bad_values(rid, values) or self._bad_lookup(object, rid, values)
            if problem is not None:
                part.results[n] = problem
            elif not _GUID.match(rid):
                part.results[n] = WriteResult(
                    rid, False, error_code="NOT_FOUND", message=f"no {object} row {rid}"
                )
            else:
                url = self._entity_url(entity_set, rid)
                body = self._body(object, values)
                part.add(n, rid, batch.Operation("PATCH", url, body, {"If-Match": "*"}))
        return part

    @staticmethod
    def _updated(part: _Part, count: int) -> list[WriteResult]:
        """The results of an update part, in the order of its ``count`` updates."""
        for i, (_answer, failure) in enumerate(part.answers):
            ref = part.refs[i]
            part.results[part.where[i]] = failure or WriteResult(ref, True, id=ref)
        return [part.results[n] for n in range(count)]

    def update_records(
        self, object: str, updates: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]:
        """One PATCH per row (``If-Match: *``: a missing id fails NOT_FOUND)."""
        if not updates:
            return []
        part = self._update_part(object, updates)
        self._send([part], object)
        return self._updated(part, len(updates))

    def _key_part(
        self,
        object: str,
        key_field: str,
        records: Sequence[Mapping[str, Any]],
        condition: Mapping[str, str],
    ) -> _Part:
        """One ``PATCH {set}({key}='K')`` with ``condition`` per key (a key given twice in
        one call is sent once and answered alike); a record without its key or with a bad
        value fails before."""
        entity_set, _ = self._table(object)
        key = odata_name(key_field)
        part = _Part()
        first_of: dict[str, int] = {}
        for n, record in enumerate(records):
            value = record.get(key_field)
            if value is None or value == "":
                part.results[n] = WriteResult(
                    "",
                    False,
                    error_code="REQUIRED_FIELD_MISSING",
                    message=f"no {key_field}",
                    fields=(key_field,),
                )
                continue
            ref = str(value)
            problem = _bad_values(ref, record) or self._bad_lookup(object, ref, record)
            if problem is not None:
                part.results[n] = problem
                continue
            if ref in first_of:
                part.same[n] = first_of[ref]  # the same key twice in one call: one row
                continue
            first_of[ref] = n
            body = self._body(object, {k: v for k, v in record.items() if k != key_field})
            url = f"{self.base}{entity_set}({key}={quote(odata_literal(ref), safe=chr(39))})"
            headers = {**condition, "Prefer": "return=representation"}
            part.add(n, ref, batch.Operation("PATCH", url, body, headers))
        return part

    def _keyed(self, object: str, key_field: str, part: _Part, count: int) -> list[WriteResult]:
        """The results of a part written by key, in the order of its ``count`` records: a
        key answered without its row's id (412: held already) has the id read by key."""
        _, primary = self._table(object)
        results = part.results
        existing: list[str] = []
        for i, (answer, failure) in enumerate(part.answers):
            n, ref = part.where[i], part.refs[i]
            if failure is None and answer is not None:
                rid = _row_id(answer, primary)
                results[n] = WriteResult(ref, True, id=rid, created=answer.status == 201)
                if rid is None:
                    existing.append(ref)
            elif answer is not None and answer.status == 412:
                existing.append(ref)
                results[n] = WriteResult(ref, True)
            else:
                results[n] = failure or WriteResult(ref, False, error_code="ERROR", transient=True)
        if existing:
            ids = self._ids_by_key(object, odata_name(key_field), existing)
            for n, result in list(results.items()):
                if result.ok and result.id is None:
                    found = ids.get(result.ref)
                    results[n] = (
                        WriteResult(result.ref, True, id=found, created=result.created)
                        if found
                        else WriteResult(
                            result.ref,
                            False,
                            error_code="NOT_FOUND",
                            message="the row by its key is gone",
                            transient=True,
                        )
                    )
        for n, first in part.same.items():
            results[n] = results[first]
        return [results[n] for n in range(count)]

    def _by_key(
        self,
        object: str,
        key_field: str,
        records: Sequence[Mapping[str, Any]],
        condition: Mapping[str, str],
    ) -> list[WriteResult]:
        part = self._key_part(object, key_field, records, condition)
        self._send([part], object)
        return self._keyed(object, key_field, part, len(records))

    def _ids_by_key(self, object: str, key: str, values: Sequence[str]) -> dict[str, str]:
        entity_set, primary = self._table(object)
        found: dict[str, str] = {}
        for start in range(0, len(values), self.ids_per_query):
            chunk = values[start : start + self.ids_per_query]
            condition = filter_clause(FieldFilter(key, "in", tuple(chunk)))
            url = self._query_url(entity_set, [primary, key], [condition], "")
            for row in self._pages(url, f"read {object} by {key}"):
                if isinstance(row.get(key), str) and isinstance(row.get(primary), str):
                    found[row[key]] = row[primary]
        return found

    def upsert_records(
        self, object: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Insert or update each row by its alternate key."""
        return self._by_key(object, external_id_field, records, {})

    def create_if_absent(
        self, object: str, key_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        """Create each row whose key is not held yet; a held key is answered with the
        existing row's id, ``created`` False, and nothing of it changed."""
        return self._by_key(object, key_field, records, _ONLY_IF_ABSENT)

    def _completion(
        self, object: str, ids: Sequence[str], fields: Mapping[str, Any]
    ) -> tuple[set[str], list[str]]:
        """The rows of ``ids`` that exist (read in bulk), and those of them that do not show
        ``fields`` yet: the ones to write, each once."""
        current = {r.id: r.fields for r in self.records_by_id(object, ids, list(fields))}
        todo = [
            rid
            for rid in dict.fromkeys(ids)
            if rid in current and any(current[rid].get(k) != v for k, v in fields.items())
        ]
        return set(current), todo

    @staticmethod
    def _completed(
        object: str, ids: Sequence[str], present: set[str], written: Sequence[WriteResult]
    ) -> list[WriteResult]:
        """One result per id in order: its write's, else success for a row already
        complete, else NOT_FOUND."""
        by_ref = {r.ref: r for r in written}
        return [
            by_ref.get(rid)
            or (
                WriteResult(rid, True, id=rid)
                if rid in present
                else WriteResult(
                    rid, False, error_code="NOT_FOUND", message=f"no {object} row {rid}"
                )
            )
            for rid in ids
        ]

    def complete_tasks(
        self, object: str, ids: Sequence[str], fields: Mapping[str, Any]
    ) -> list[WriteResult]:
        """Set ``fields`` (the completed state) on the rows not already showing them."""
        if not ids:
            return []
        present, todo = self._completion(object, ids, fields)
        written = self.update_records(object, [(rid, fields) for rid in todo])
        return self._completed(object, ids, present, written)

    def write_page(self, writes: PageWrites) -> PageResults:
        """The creates (by key, only when absent), the completions of the rows not complete
        yet (their state read first) and the updates, all in the same ``$batch`` requests:
        ``ceil(operations / batch_size)`` of them, each operation its own change set."""
        tasks, records, key = writes.follow_up_object, writes.record_object, writes.key_field
        creates, completes, updates = _Part(), _Part(), _Part()
        present: set[str] = set()
        todo: list[str] = []
        if writes.creates:
            creates = self._key_part(tasks, key, writes.creates, _ONLY_IF_ABSENT)
        if writes.completes:
            present, todo = self._completion(tasks, writes.completes, writes.completion)
            completes = self._update_part(tasks, [(rid, writes.completion) for rid in todo])
        if writes.updates:
            updates = self._update_part(records, writes.updates)
        objects = [tasks] if creates.operations or completes.operations else []
        objects += [records] if updates.operations else []
        self._send([creates, completes, updates], ", ".join(dict.fromkeys(objects)))
        return PageResults(
            self._keyed(tasks, key, creates, len(writes.creates)) if writes.creates else [],
            self._completed(tasks, writes.completes, present, self._updated(completes, len(todo))),
            self._updated(updates, len(writes.updates)),
        )

    def write_call_fits(self, creates: int, completes: int, updates: int) -> bool:
        """One ``$batch`` request's worth: ``batch_size`` operations (1,000 at most) of any
        kinds together."""
        return creates + completes + updates <= self.batch_size

    # ------------------------------------------------------------------ metadata

    def post_metadata(self, path: str, body: Mapping[str, Any]) -> None:
        """Create a metadata item (a column, a key) at ``path`` under the Web API; a
        refusal is a ``CrmError`` naming the org's reason."""
        self._request(
            "POST",
            f"{self.base}{path}",
            operation=f"create {path}",
            kind="metadata",
            headers={"Content-Type": "application/json"},
            data=json.dumps(body).encode("utf-8"),
        )

    # ------------------------------------------------------------------ describe

    def describe(self, object: str) -> dict[str, FieldInfo]:
        """The table's columns by logical name (a lookup too: the adapter reads it as
        ``_x_value`` and binds it on write), types as the port names them, and which
        columns are alternate keys."""
        name = odata_name(object)
        url = (
            f"{self.base}EntityDefinitions(LogicalName='{name}')?$select=LogicalName"
            "&$expand=Attributes($select=LogicalName,AttributeType,IsValidForCreate,IsValidForUpdate),"
            "Keys($select=KeyAttributes)"
        )
        try:
            body = self._get_json(url, operation=f"describe {name}", kind="describe")
        except CrmError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status == 404:
                raise CrmError(f"describe {name}: Dataverse has no table '{name}'") from None
            raise
        keyed = {
            column
            for key in body.get("Keys") or []
            if isinstance(key, dict)
            for column in key.get("KeyAttributes") or []
        }
        fields: dict[str, FieldInfo] = {}
        for column in body.get("Attributes") or []:
            if not isinstance(column, dict) or not isinstance(column.get("LogicalName"), str):
                continue
            logical = column["LogicalName"]
            kind = _TYPES.get(str(column.get("AttributeType")), "string")
            fields[logical] = FieldInfo(
                name=logical,
                type=kind,
                createable=bool(column.get("IsValidForCreate")),
                updateable=bool(column.get("IsValidForUpdate")),
                external_id=logical in keyed,
                unique=logical in keyed,
            )
        return fields

    # ------------------------------------------------------------------ online check

    def choice_values(self, object: str) -> dict[str, tuple[str, ...]]:
        """Each choice column of the table -> its options' values (numbers as text)."""
        return access.choice_values(self._describe_json, self.base, odata_name(object))

    def access_problems(self, needs: Mapping[str, frozenset[Access]]) -> list[tuple[str, str]]:
        """What the application user's security role lacks of ``needs``, with the fix."""
        tables = {odata_name(table): wanted for table, wanted in needs.items()}
        return access.access_problems(self._describe_json, self.base, tables)

    def _describe_json(self, url: str, operation: str) -> Any:
        return self._get_json(url, operation=operation, kind="describe")


# ---------------------------------------------------------------------- helpers


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300] if response.text else None


def _retry_after(answer: batch.OperationResult) -> float:
    value = answer.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def _row_id(answer: batch.OperationResult, primary: str) -> str | None:
    if isinstance(answer.body, dict) and isinstance(answer.body.get(primary), str):
        return str(answer.body[primary])
    entity = answer.headers.get("odata-entityid", "")
    match = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", entity)
    return match.group(1).lower() if match else None


def _bad_values(ref: str, values: Mapping[str, Any]) -> WriteResult | None:
    """A value JSON cannot carry fails that record alone, before anything is sent."""
    for name, value in values.items():
        if not _NAME.match(name):
            return WriteResult(
                ref,
                False,
                error_code="INVALID_FIELD",
                message=f"'{name[:60]}' is not a column name",
                fields=(name[:60],),
            )
        if not isinstance(value, str | int | float | bool | type(None)):
            return WriteResult(
                ref,
                False,
                error_code="INVALID_FIELD",
                message=f"{name}: a {type(value).__name__} cannot be written",
                fields=(name,),
            )
    return None


def _failure(ref: str, answer: batch.OperationResult | None) -> WriteResult | None:
    """None for a success, else the record's failure in the port's terms."""
    if answer is None:
        return WriteResult(
            ref,
            False,
            error_code="NOT_SENT",
            message="the batch stopped before this record",
            transient=True,
        )
    if answer.status < 400:
        return None
    error = api_error(answer.status, answer.headers, answer.body)
    if answer.status == 412:
        return WriteResult(ref, False, error_code="DUPLICATE_VALUE", message=error.message)
    if answer.status == 404:
        return WriteResult(ref, False, error_code="NOT_FOUND", message=error.message)
    unknown = _UNKNOWN_PROPERTY.search(error.message)
    if unknown:
        column = unknown.group(1) or unknown.group(2)
        return WriteResult(
            ref, False, error_code="INVALID_FIELD", message=error.message, fields=(column,)
        )
    transient = DATAVERSE_FAILURES.is_transient(error)
    return WriteResult(
        ref, False, error_code=error.code, message=error.message, transient=transient
    )
