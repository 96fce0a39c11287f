"""An HTTP-level fake Salesforce org on ``responses``: callbacks over a fake org.

What it answers (API version ``API``, instance ``INSTANCE``, login server ``LOGIN``):

- ``GET /services/data/`` (Versions: no auth, not billed, ``Date`` from the org's clock);
- OAuth ``/services/oauth2/token`` (JWT bearer checked against the registered public key,
  client credentials) and the SOAP ``login`` used by simple-salesforce (password + token);
- ``query``/``queryAll`` with a SOQL subset (SELECT fields FROM object [WHERE conditions
  joined by AND: ``= != < <= > >=``, ``[NOT] IN (...)``] [ORDER BY fields] [LIMIT n]),
  pages of 2,000 behind ``nextRecordsUrl`` (a cursor holding the result as of the query);
  a condition on a field the schema marks ``filterable: false`` (``CaseHistory``'s anyType
  ``OldValue``/``NewValue``) is refused as ``INVALID_QUERY_FILTER_OPERATOR``, as the org does;
- sObject Collections update (``PATCH /composite/sobjects``), create (``POST
  /composite/sobjects``: a unique or external id value already held is ``DUPLICATE_VALUE``)
  and upsert (``PATCH /composite/sobjects/{object}/{field}``), at most 200 records,
  ``allOrNone=false`` answers per record; an unknown field refuses the whole request
  (``INVALID_FIELD``);
- Composite (``POST /composite``): at most 25 subrequests, at most 5 of them Collections or
  queries; one billed call;
- Bulk API 2.0 query jobs (create, state, CSV results in pages with ``Sforce-Locator``,
  rows in no particular order);
- ``/sobjects/{object}/describe`` from the local CRM's schema data file (picklist values
  from its ``values``); ``hide_field`` / ``set_field`` change what describe shows and what
  writes may do (field-level security, types, flags);
- the Metadata API's SOAP ``deploy`` and ``checkDeployStatus`` (``/services/Soap/m/``),
  session from the SOAP header: a deploy zip's CustomFields (in ``objects/*.object``) and
  permission sets are checked (a field permission naming a field that neither exists nor
  comes in the zip fails), ``deploy_failures`` makes named components fail, every deploy
  answers ``InProgress`` ``deploy_polls`` times; a deploy that succeeds and is not
  check-only adds its fields to the described schema (Activity fields to Task).

Records live in a ``LocalCrm`` on a private SQLite file: writes are the local CRM's
(one set of Salesforce record rules: read-only fields, empty text to null, datetime text,
unique and external id clashes, per-record error codes); the fake answers them in the
REST API's shapes (a missing id is ``INVALID_CROSS_REFERENCE_KEY``, an id not of 18
characters ``MALFORMED_ID``) and reads them for SOQL and Bulk (``IsDeleted`` false unless
stored). ``close`` (or leaving ``FakeSalesforce``) removes the file.

Every billed answer carries ``Sforce-Limit-Info: api-usage=used/limit``. Fault hooks:
``fail_next`` (e.g. a 503 for the next request matching a path part), ``lock`` (records
answering ``UNABLE_TO_LOCK_ROW`` for the next N writes), ``reject`` (a permanent error on
a record), ``limit_exceeded`` (every billed request answers ``REQUEST_LIMIT_EXCEEDED``),
``expire_sessions``; a fault message holding ``ECHO_HEADERS`` has it replaced by the
request's headers (``Authorization: Bearer ...`` too), as a careless server answers.
``log`` keeps ``(method, path, billed)`` of every HTTP request, ``composite_log`` the
``(method, path)`` of each answered Composite call's subrequests.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import tempfile
import threading
import weakref
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

import jwt
import requests
import responses
from pydantic import SecretStr

from crmsync.adapters.crm.local import SCHEMA_FILE, LocalCrm
from crmsync.adapters.crm.retry_policy import NO_WAIT, RetryPolicy
from crmsync.adapters.crm.salesforce import SalesforceCrm
from crmsync.adapters.crm.salesforce_auth import (
    SalesforceAuth,
    SalesforceCredentials,
    TimeoutSession,
)
from crmsync.adapters.crm.salesforce_values import parse_sf_datetime
from crmsync.ports import WriteResult

API = "62.0"
INSTANCE = "https://fake-org.my.salesforce.com"
LOGIN = "https://login.salesforce.com"
BASE = f"/services/data/v{API}"
ECHO_HEADERS = "{request_headers}"
"""Put in a fault's message: the fake answers with the request's headers there."""
PAGE = 2000
COLLECTION_CAP = 200
COMPOSITE_CAP = 25
COMPOSITE_HEAVY_CAP = 5
SYSTEM_DATETIMES = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
_OBJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

Json = Any


class FieldNotFilterableError(ValueError):
    """A WHERE condition on a field SOQL cannot filter (anyType: ``CaseHistory.NewValue``)."""


class SoqlSyntaxError(ValueError):
    """The fake cannot parse a SOQL statement (answered as MALFORMED_QUERY)."""


class FieldMissingError(ValueError):
    """A statement names a field the object does not have (answered as INVALID_FIELD)."""


# ====================================================================== SOQL subset

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


def _unescape(body: str) -> str:
    out = []
    chars = iter(body)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt not in _UNESCAPE:
            raise SoqlSyntaxError(f"invalid escape sequence \\{nxt}")
        out.append(_UNESCAPE[nxt])
    return "".join(out)


def tokenize(text: str) -> list[tuple[str, Any]]:
    """SOQL tokens as (kind, value); string literals unescaped."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise SoqlSyntaxError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            tokens.append(("value", _unescape(raw[1:-1])))
        elif kind == "datetime":
            tokens.append(("value", datetime.fromisoformat(raw.replace("Z", "+00:00"))))
        elif kind == "date":
            tokens.append(("value", date.fromisoformat(raw)))
        elif kind == "number":
            tokens.append(("value", float(raw) if "." in raw else int(raw)))
        elif kind == "word" and raw.lower() in ("true", "false", "null"):
            tokens.append(("value", {"true": True, "false": False, "null": None}[raw.lower()]))
        elif kind == "word":
            tokens.append(("word", raw))
        else:
            tokens.append((kind, raw))
        pos = match.end()
    return tokens


@dataclass
class Condition:
    field: str
    op: str  # = != < <= > >= in notin
    value: Any


@dataclass
class Query:
    """A parsed statement: fields, object, AND-ed conditions, order, limit."""

    fields: list[str]
    object: str
    where: list[Condition]
    order_by: list[str]
    limit: int | None
    count: bool = False


def _value_list_from(tokens: list[tuple[str, Any]], pos: int) -> tuple[list[Any], int]:
    if tokens[pos] != ("punct", "("):
        raise SoqlSyntaxError("IN needs a parenthesised list")
    pos += 1
    values = []
    while True:
        kind, value = tokens[pos]
        if kind != "value":
            raise SoqlSyntaxError(f"expected a value, found {value!r}")
        values.append(value)
        pos += 1
        if tokens[pos] == ("punct", ","):
            pos += 1
            continue
        if tokens[pos] == ("punct", ")"):
            return values, pos + 1
        raise SoqlSyntaxError("unclosed IN list")


def parse_soql(text: str) -> Query:  # noqa: PLR0915 - one grammar, read top to bottom
    """Parse the SOQL subset the adapter generates (see the module docstring)."""
    tokens = tokenize(text)
    state = {"pos": 0}

    def peek() -> tuple[str, Any]:
        return tokens[state["pos"]] if state["pos"] < len(tokens) else ("end", None)

    def take(kind: str, value: str | None = None) -> Any:
        tk, tv = peek()
        if tk != kind or (value is not None and str(tv).upper() != value):
            raise SoqlSyntaxError(f"expected {value or kind}, found {tv!r}")
        state["pos"] += 1
        return tv

    def keyword(word: str) -> bool:
        tk, tv = peek()
        return tk == "word" and str(tv).upper() == word

    def values() -> list[Any]:
        try:
            out, state["pos"] = _value_list_from(tokens, state["pos"])
        except IndexError:
            raise SoqlSyntaxError("unclosed IN list") from None
        return out

    take("word", "SELECT")
    fields: list[str] = []
    count = False
    if keyword("COUNT"):
        take("word")
        take("punct", "(")
        take("punct", ")")
        count = True
    else:
        while True:
            fields.append(take("word"))
            if peek() == ("punct", ","):
                take("punct")
                continue
            break
    take("word", "FROM")
    object_name = take("word")
    where: list[Condition] = []
    if keyword("WHERE"):
        take("word")
        while True:
            column = take("word")
            if keyword("NOT"):
                take("word")
                take("word", "IN")
                where.append(Condition(column, "notin", values()))
            elif keyword("IN"):
                take("word")
                where.append(Condition(column, "in", values()))
            else:
                op = take("op")
                where.append(Condition(column, op, take("value")))
            if keyword("AND"):
                take("word")
                continue
            break
    order: list[str] = []
    if keyword("ORDER"):
        take("word")
        take("word", "BY")
        while True:
            order.append(take("word"))
            if keyword("ASC"):
                take("word")
            if peek() == ("punct", ","):
                take("punct")
                continue
            break
    limit = None
    if keyword("LIMIT"):
        take("word")
        limit = int(take("value"))
    if state["pos"] != len(tokens):
        raise SoqlSyntaxError(f"unexpected {tokens[state['pos']][1]!r}")
    return Query(fields, object_name, where, order, limit, count)


def _comparable(stored: Any, literal: Any) -> tuple[Any, Any]:
    """Stored value and literal in one comparable type (datetimes parsed)."""
    if isinstance(literal, datetime):
        try:
            return parse_sf_datetime(stored), literal.astimezone(UTC)
        except (TypeError, ValueError):
            return None, literal
    if isinstance(literal, date):
        return (date.fromisoformat(str(stored)[:10]) if stored else None), literal
    if isinstance(literal, int | float) and not isinstance(literal, bool):
        return (float(stored) if stored is not None else None), float(literal)
    return stored, literal


def matches(record: Mapping[str, Any], cond: Condition) -> bool:
    """SOQL semantics: ``!=`` keeps nulls, ordering comparisons never match null."""
    actual = record.get(cond.field)
    if cond.op in ("in", "notin"):
        pairs = [_comparable(actual, v) for v in cond.value]
        hit = any(a == b for a, b in pairs)
        return hit if cond.op == "in" else not hit
    left, right = _comparable(actual, cond.value)
    if cond.op == "=":
        return bool(left == right)
    if cond.op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    return bool(
        {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]
    )


# ====================================================================== the org


@dataclass
class _Cursor:
    object: str
    rows: list[dict[str, Any]]
    position: int


@dataclass
class _BulkJob:
    id: str
    rows: list[dict[str, Any]]
    fields: list[str]
    polls_left: int
    state: str = "InProgress"


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path contains ``match`` with an error.

    ``inside_composite`` faults hit subrequests of a Composite call (whose own answer is
    then 200) instead of top-level requests; with ``carrying``, only requests whose
    records include one of those ids (a Composite call's: its subrequests' records).
    """

    match: str
    status: int
    code: str
    message: str
    times: int = 1
    method: str | None = None
    inside_composite: bool = False
    carrying: frozenset[str] = frozenset()

    def hits(self, path: str, method: str, body: Json, *, inside_composite: bool) -> bool:
        """Whether this fault answers ``method path`` (and uses up one of its times)."""
        if (
            self.times > 0
            and self.inside_composite == inside_composite
            and self.match in path
            and self.method in (None, method)
            and (not self.carrying or self.carrying & _record_ids(body))
        ):
            self.times -= 1
            return True
        return False


@dataclass
class FakeOrg:
    """The in-memory org behind the HTTP fake.

    ``clock`` is the org's time. ``api_limit``/``api_used`` drive ``Sforce-Limit-Info``.
    """

    clock: Callable[[], datetime]
    api_limit: int = 1_000_000
    api_used: int = 0
    schema_file: Path = SCHEMA_FILE
    bulk_polls: int = 1
    log: list[tuple[str, str, bool]] = field(default_factory=list)
    composite_log: list[list[tuple[str, str]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    locks: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    inactive_users: set[str] = field(default_factory=set)
    """User ids that left: creating a record owned by one fails INACTIVE_OWNER_OR_USER."""
    limit_exceeded: bool = False
    tokens: set[str] = field(default_factory=set)
    jwt_apps: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    client_apps: dict[str, str] = field(default_factory=dict)
    password_users: dict[str, tuple[str, str]] = field(default_factory=dict)
    received_forms: list[dict[str, list[str]]] = field(default_factory=list)
    next_records_base: str = ""
    """Put before each ``nextRecordsUrl`` path (``INSTANCE`` for an absolute URL on the org,
    another host to play an org that points the client elsewhere)."""
    deploy_polls: int = 1
    deploy_failures: dict[str, str] = field(default_factory=dict)
    deploys: dict[str, dict[str, Any]] = field(default_factory=dict)
    permission_sets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._numbers = itertools.count(1)
        self._cursors: dict[str, _Cursor] = {}
        self._jobs: dict[str, _BulkJob] = {}
        self._request_headers: dict[str, str] = {}  # of the request being answered
        schema = json.loads(self.schema_file.read_text(encoding="utf-8"))
        self.schema: dict[str, dict[str, Any]] = schema["objects"]
        self._system_fields: dict[str, str] = schema["system_fields"]
        self._folder = tempfile.TemporaryDirectory(prefix="fake-org-")
        self._schema_versions = itertools.count(1)
        self._stores: list[LocalCrm] = []
        self._store = self._open_store(self.schema_file)
        weakref.finalize(self, _close_stores, self._stores, self._folder)

    def close(self) -> None:
        """Close the record store and remove its file (the org must not be used after)."""
        _close_stores(self._stores, self._folder)

    def _open_store(self, schema_file: Path) -> LocalCrm:
        """The local CRM holding the org's records, writing by ``schema_file``'s rules."""
        store = LocalCrm(
            Path(self._folder.name) / "org.sqlite3", clock=self.clock, schema_file=schema_file
        )
        self._stores.append(store)
        return store

    def _schema_changed(self) -> None:
        """Writes follow the schema as changed (flags, hidden and deployed fields)."""
        path = Path(self._folder.name) / f"schema-{next(self._schema_versions)}.json"
        path.write_text(
            json.dumps({"system_fields": self._system_fields, "objects": self.schema}),
            encoding="utf-8",
        )
        self._store = self._open_store(path)

    # ------------------------------------------------------------------ test controls

    def issue_session(self) -> str:
        """A valid session id (for ``session`` mode)."""
        with self._lock:
            token = f"00DFAKE!session{next(self._numbers)}"
            self.tokens.add(token)
            return token

    def expire_sessions(self) -> None:
        """Every session issued so far becomes invalid (INVALID_SESSION_ID)."""
        with self._lock:
            self.tokens.clear()

    def fail_next(
        self,
        match: str,
        *,
        status: int = 503,
        code: str = "SERVER_UNAVAILABLE",
        message: str = "Service temporarily unavailable",
        times: int = 1,
        method: str | None = None,
        inside_composite: bool = False,
        carrying: Sequence[str] = (),
    ) -> None:
        """The next ``times`` requests whose path contains ``match`` fail like this
        (``inside_composite``: subrequests of Composite calls, not top-level requests;
        ``carrying``: only those writing one of these record ids, a Composite call through
        its subrequests)."""
        fault = Fault(match, status, code, message, times, method, inside_composite)
        fault.carrying = frozenset(carrying)
        with self._lock:
            self.faults.append(fault)

    def lock(self, record_id: str, times: int = 1) -> None:
        """Writes to ``record_id`` answer UNABLE_TO_LOCK_ROW the next ``times`` times."""
        with self._lock:
            self.locks[record_id] = times

    def reject(self, record_id: str, code: str, message: str, fields: tuple[str, ...]) -> None:
        """Writes to ``record_id`` fail permanently with this error until ``accept``."""
        with self._lock:
            self.rejects[record_id] = (code, message, fields)

    def accept(self, record_id: str) -> None:
        with self._lock:
            self.rejects.pop(record_id, None)

    def billed(self) -> int:
        """Billed requests so far (what Salesforce would count against the limit)."""
        return sum(1 for _m, _p, b in self.log if b)

    def get(self, object: str, record_id: str) -> dict[str, Any]:
        """A stored record's fields (a copy); ``KeyError`` when there is none."""
        with self._lock:
            found = self._rows(object, [record_id])
        if not found:
            raise KeyError(record_id)
        return found[0]

    def all(self, object: str) -> list[dict[str, Any]]:
        """Every record of ``object`` (copies), in the order they were made."""
        with self._lock:
            return self._rows(object)

    def seed(self, object: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Put records straight into the org, as the local CRM imports them (given Id and
        system stamps kept, read-only fields set); a row it refuses is a ``ValueError``."""
        with self._lock:
            results = self._store.insert_records(object, rows)
        refused = [r for r in results if not r.ok]
        if refused:
            raise ValueError(f"the fake org refuses to seed {object}: {refused}")
        return [str(r.id) for r in results]

    def touch(self, object: str, record_id: str, **changes: Any) -> None:
        """Change fields as a person in the org would (read-only ones too; new
        SystemModstamp). ``KeyError`` for a record the org does not hold."""
        with self._lock:
            if not self._rows(object, [record_id]):
                raise KeyError(record_id)
            [result] = self._store.insert_records(
                object, [{"Id": record_id, **changes}], upsert=True
            )
        if not result.ok:
            raise ValueError(f"the fake org refuses to change {record_id}: {result}")

    def delete(self, object: str, record_ids: Sequence[str]) -> None:
        """Delete records as a person in the org would: into the recycle bin (``IsDeleted``
        true, a new SystemModstamp), left out of ``query`` but not of ``queryAll``; writes
        to them fail ``ENTITY_IS_DELETED``."""
        for record_id in record_ids:
            self.touch(object, record_id, IsDeleted=True)

    def hide_field(self, object: str, name: str) -> None:
        """Describe no longer shows the field (no field-level security for the user, or
        absent from the org)."""
        with self._lock:
            del self.schema[object]["fields"][name]
            self._schema_changed()

    def set_field(self, object: str, name: str, **flags: Any) -> None:
        """Change how describe shows a field (``type``, ``createable``, ``updateable``,
        ``values``...)."""
        with self._lock:
            self.schema[object]["fields"][name] = {
                **self.schema[object]["fields"].get(name, {}),
                **flags,
            }
            self._schema_changed()

    # ------------------------------------------------------------------ HTTP plumbing

    def install(self, mock: responses.RequestsMock) -> None:
        """Register the fake's callbacks on ``mock`` for the instance and login servers."""
        pattern = re.compile(f"({re.escape(INSTANCE)}|{re.escape(LOGIN)})/.*")
        for method in ("GET", "POST", "PATCH", "DELETE"):
            mock.add_callback(method, pattern, callback=self._handle)

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlsplit(str(request.url))
        method = str(request.method)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        with self._lock:
            headers = {"Date": format_datetime(self.clock().astimezone(UTC), usegmt=True)}
            if path.rstrip("/") == "/services/data":
                self.log.append((method, path, False))
                return 200, headers, json.dumps([{"version": API, "url": BASE}])
            if path == "/services/oauth2/token":
                self.log.append((method, path, False))
                return self._token(request, headers)
            if path.startswith("/services/Soap/u/"):
                self.log.append((method, path, False))
                return self._soap_login(request, headers)
            if path.startswith("/services/Soap/m/"):
                self.log.append((method, path, False))
                return self._metadata(path, request, headers)
            token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
            if token not in self.tokens:
                self.log.append((method, path, False))
                return _error(401, "INVALID_SESSION_ID", "Session expired or invalid", headers)
            body = json.loads(request.body) if request.body else None
            for fault in self.faults:
                if fault.hits(path, method, body, inside_composite=False):
                    self.log.append((method, path, False))
                    message = fault.message.replace(ECHO_HEADERS, _echo(request.headers))
                    return _error(fault.status, fault.code, message, headers)
            if self.limit_exceeded or self.api_used >= self.api_limit:
                self.log.append((method, path, False))
                headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
                return _error(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers
                )
            self.api_used += 1
            self.log.append((method, path, True))
            headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
            self._request_headers = dict(request.headers)
            status, answer, extra = self._dispatch(method, path, query, body, top=True)
            headers.update(extra)
            if isinstance(answer, str):
                headers["Content-Type"] = "text/csv"
                return status, headers, answer
            headers["Content-Type"] = "application/json"
            return status, headers, json.dumps(answer)

    def _dispatch(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Json,
        *,
        top: bool,
    ) -> tuple[int, Json, dict[str, str]]:
        if not path.startswith(BASE):
            return 404, _errors("NOT_FOUND", "The requested resource does not exist"), {}
        rest = path[len(BASE) :]
        if rest in ("/query", "/queryAll", "/query/", "/queryAll/") and method == "GET":
            return self._query(query.get("q", [""])[0], all_rows=rest.startswith("/queryAll"))
        if rest.startswith("/query/") and method == "GET":
            return self._query_more(rest.removeprefix("/query/"))
        if rest == "/composite" and method == "POST" and top:
            return self._composite(body)
        if rest == "/composite/sobjects" and method == "PATCH":
            return self._collection_update(body)
        if rest == "/composite/sobjects" and method == "POST":
            return self._collection_create(body)
        if rest.startswith("/composite/sobjects/") and method == "PATCH":
            object_name, _, ext = rest.removeprefix("/composite/sobjects/").partition("/")
            return self._collection_upsert(object_name, ext, body)
        match = re.fullmatch(r"/sobjects/([A-Za-z0-9_]+)/describe/?", rest)
        if match and method == "GET":
            return self._describe(match.group(1))
        if rest == "/jobs/query" and method == "POST" and top:
            return self._bulk_create(body)
        match = re.fullmatch(r"/jobs/query/([A-Za-z0-9]+)(/results)?", rest)
        if match and method == "GET" and top:
            if match.group(2):
                return self._bulk_results(match.group(1), query)
            return self._bulk_state(match.group(1))
        return 404, _errors("NOT_FOUND", "The requested resource does not exist"), {}

    # ------------------------------------------------------------------ auth

    def _token(
        self, request: requests.PreparedRequest, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        form = parse_qs(str(request.body or ""))
        self.received_forms.append(form)
        grant = form.get("grant_type", [""])[0]
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", [""])[0]
            try:
                unverified = jwt.decode(assertion, options={"verify_signature": False})
                public, username = self.jwt_apps[str(unverified.get("iss"))]
                claims = jwt.decode(
                    assertion,
                    public,
                    algorithms=["RS256"],
                    audience=LOGIN,
                    options={"require": ["exp", "iss", "sub", "aud"]},
                    leeway=0,
                )
                if claims["sub"] != username:
                    raise jwt.InvalidTokenError("wrong subject")
            except (KeyError, jwt.PyJWTError) as exc:
                return _oauth_error(
                    "invalid_grant", f"invalid assertion ({type(exc).__name__})", headers
                )
        elif grant == "client_credentials":
            key = form.get("client_id", [""])[0]
            secret = form.get("client_secret", [""])[0]
            if self.client_apps.get(key) != secret or not secret:
                return _oauth_error("invalid_client", "invalid client credentials", headers)
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported", headers)
        token = self.issue_session()
        headers["Content-Type"] = "application/json"
        return 200, headers, json.dumps({"access_token": token, "instance_url": INSTANCE})

    def _soap_login(
        self, request: requests.PreparedRequest, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        text = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        user = re.search(r"<n1:username>(.*?)</n1:username>", text, re.S)
        secret = re.search(r"<n1:password>(.*?)</n1:password>", text, re.S)
        from html import unescape

        name = unescape(user.group(1)) if user else ""
        given = unescape(secret.group(1)) if secret else ""
        known = self.password_users.get(name)
        if known is None or given != known[0] + known[1]:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><detail><sf:LoginFault>"
                "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>"
                "Invalid username, password, security token; or user locked out."
                "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return 500, headers, fault
        token = self.issue_session()
        server = f"{INSTANCE}/services/Soap/u/{API}/00DFAKE"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{server}</serverUrl><sessionId>{xml_escape(token)}</sessionId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return 200, headers, body

    # ------------------------------------------------------------------ Metadata API

    def _metadata(
        self, path: str, request: requests.PreparedRequest, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        text = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        headers["Content-Type"] = "text/xml"
        session = re.search(r"<(?:\w+:)?sessionId>(.*?)</(?:\w+:)?sessionId>", text, re.S)
        if session is None or session.group(1) not in self.tokens:
            return 500, headers, _soap_fault("sf:INVALID_SESSION_ID", "Invalid Session ID")
        if path != f"/services/Soap/m/{API}/deployRequest" and not path.startswith(
            f"/services/Soap/m/{API}/deployRequest/"
        ):
            return 404, headers, _soap_fault("sf:UNKNOWN_EXCEPTION", "no such endpoint")
        if path.endswith("/deployRequest"):
            return 200, headers, self._md_deploy(text)
        deploy_id = path.rsplit("/", 1)[1]
        deploy = self.deploys.get(deploy_id)
        if deploy is None:
            return 500, headers, _soap_fault("sf:INVALID_ID_FIELD", "invalid deploy id")
        return 200, headers, self._md_status(deploy)

    def _md_deploy(self, text: str) -> str:
        import base64

        data = re.search(r"<(?:\w+:)?ZipFile>(.*?)</(?:\w+:)?ZipFile>", text, re.S)
        check = re.search(r"<(?:\w+:)?checkOnly>(.*?)</(?:\w+:)?checkOnly>", text, re.S)
        check_only = bool(check) and check.group(1).strip().lower() == "true"  # type: ignore[union-attr]
        archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(data.group(1) if data else "")))
        ns = "{http://soap.sforce.com/2006/04/metadata}"
        fields: dict[str, dict[str, Any]] = {}
        components: list[tuple[str, str, str]] = []  # (type, full name, file)
        for name in archive.namelist():
            if name.startswith("objects/") and name.endswith(".object"):
                obj = name.removeprefix("objects/").removesuffix(".object")
                for f in ET.fromstring(archive.read(name)).findall(f"{ns}fields"):
                    full = f"{obj}.{f.findtext(f'{ns}fullName')}"
                    values = [v.text for v in f.iter(f"{ns}fullName")][1:]
                    fields[full] = {
                        "type": _DESCRIBE_TYPES.get(f.findtext(f"{ns}type") or "", "string"),
                        "external_id": f.findtext(f"{ns}externalId") == "true",
                        "unique": f.findtext(f"{ns}unique") == "true",
                        **({"values": values} if values else {}),
                    }
                    components.append(("CustomField", full, name))
        failures: list[tuple[str, str, str, str]] = []
        for name in archive.namelist():
            if name.startswith("permissionsets/"):
                perm = name.removeprefix("permissionsets/").removesuffix(".permissionset")
                components.append(("PermissionSet", perm, name))
                root = ET.fromstring(archive.read(name))
                for fp in root.findall(f"{ns}fieldPermissions"):
                    ref = fp.findtext(f"{ns}field") or ""
                    obj, _, field_name = ref.partition(".")
                    in_zip = ref in fields or f"Activity.{field_name}" in fields
                    known = field_name in (self._fields(obj) or {})
                    if not (in_zip or known):
                        failures.append(
                            (
                                "PermissionSet",
                                perm,
                                name,
                                f"In field: field - no CustomField named {ref} found",
                            )
                        )
                self.permission_sets.setdefault(perm, "")
        for kind, full, file in components:
            if full in self.deploy_failures:
                failures.append((kind, full, file, self.deploy_failures[full]))
        deploy_id = f"0AfFAKE{next(self._numbers):08d}"
        self.deploys[deploy_id] = {
            "check_only": check_only,
            "components": components,
            "failures": failures,
            "polls_left": self.deploy_polls,
        }
        if not failures and not check_only:
            for full, info in fields.items():
                obj, _, field_name = full.partition(".")
                for target in ("Task", "Event") if obj == "Activity" else (obj,):
                    if self._fields(target) is not None:
                        self.schema[target]["fields"][field_name] = info
            self._schema_changed()
            for kind, full, _file in components:
                if kind == "PermissionSet":
                    self.permission_sets[full] = "deployed"
        return (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><deployResponse>'
            f"<result><done>false</done><id>{deploy_id}</id><state>Queued</state></result>"
            "</deployResponse></soapenv:Body></soapenv:Envelope>"
        )

    def _md_status(self, deploy: dict[str, Any]) -> str:
        total = len(deploy["components"])
        failures = deploy["failures"]
        if deploy["polls_left"] > 0:
            deploy["polls_left"] -= 1
            status, done, deployed, details = "InProgress", "false", total // 2, ""
        else:
            status = "Failed" if failures else "Succeeded"
            done, deployed = "true", 0 if failures else total
            details = (
                "<details>"
                + "".join(
                    "<componentFailures><componentType>"
                    f"{xml_escape(kind)}</componentType><fileName>{xml_escape(file)}</fileName>"
                    f"<fullName>{xml_escape(full)}</fullName><problem>{xml_escape(problem)}"
                    "</problem><problemType>Error</problemType><success>false</success>"
                    "</componentFailures>"
                    for kind, full, file, problem in failures
                )
                + "</details>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body>'
            "<checkDeployStatusResponse><result>"
            f"<checkOnly>{'true' if deploy['check_only'] else 'false'}</checkOnly>"
            f"{details}<done>{done}</done>"
            f"<numberComponentErrors>{len(failures) if done == 'true' else 0}"
            f"</numberComponentErrors><numberComponentsDeployed>{deployed}"
            f"</numberComponentsDeployed><numberComponentsTotal>{total}"
            f"</numberComponentsTotal><status>{status}</status>"
            "</result></checkDeployStatusResponse></soapenv:Body></soapenv:Envelope>"
        )

    # ------------------------------------------------------------------ queries

    def _select(self, text: str, *, all_rows: bool) -> tuple[Query, list[dict[str, Any]]]:
        query = parse_soql(text)
        known = self._field_names(query.object)
        for name in [*query.fields, *(c.field for c in query.where), *query.order_by]:
            if known is not None and name not in known:
                raise FieldMissingError(name)
        fields = self._fields(query.object) or {}
        for c in query.where:
            if not fields.get(c.field, {}).get("filterable", True):
                raise FieldNotFilterableError(c.field)
        rows = [
            r
            for r in self._rows(query.object)
            if (all_rows or not r.get("IsDeleted")) and all(matches(r, c) for c in query.where)
        ]
        for name in reversed(query.order_by):
            rows.sort(key=lambda r, n=name: (r.get(n) is not None, r.get(n) or ""))
        if query.limit is not None:
            rows = rows[: query.limit]
        return query, rows

    def _query(self, text: str, *, all_rows: bool) -> tuple[int, Json, dict[str, str]]:
        try:
            query, rows = self._select(text, all_rows=all_rows)
        except SoqlSyntaxError as exc:
            return 400, _errors("MALFORMED_QUERY", str(exc)), {}
        except FieldMissingError as exc:
            return 400, _errors("INVALID_FIELD", f"No such column '{exc}' on entity"), {}
        except FieldNotFilterableError as exc:
            return (
                400,
                _errors(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"field '{exc}' can not be filtered in a query call",
                ),
                {},
            )
        if query.count:
            return 200, {"totalSize": len(rows), "done": True, "records": []}, {}
        shaped = [self._shape(query.object, r, query.fields) for r in rows]
        cursor = f"01gFAKE{next(self._numbers)}"
        self._cursors[cursor] = _Cursor(query.object, shaped, 0)
        return self._page(cursor, len(shaped))

    def _page(self, cursor_id: str, total: int) -> tuple[int, Json, dict[str, str]]:
        cursor = self._cursors[cursor_id]
        page = cursor.rows[cursor.position : cursor.position + PAGE]
        cursor.position += len(page)
        done = cursor.position >= len(cursor.rows)
        body: dict[str, Any] = {"totalSize": total, "done": done, "records": page}
        if done:
            self._cursors.pop(cursor_id)
        else:
            body["nextRecordsUrl"] = (
                f"{self.next_records_base}{BASE}/query/{cursor_id}-{cursor.position}"
            )
        return 200, body, {}

    def _query_more(self, locator: str) -> tuple[int, Json, dict[str, str]]:
        cursor_id, _, _position = locator.partition("-")
        if cursor_id not in self._cursors:
            return 400, _errors("INVALID_QUERY_LOCATOR", "invalid query locator"), {}
        return self._page(cursor_id, len(self._cursors[cursor_id].rows))

    @staticmethod
    def _shape(object_name: str, row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": object_name, "url": f"{BASE}/sobjects/{object_name}/{row['Id']}"}
        }
        for name in fields:
            out[name] = row.get(name)
        return out

    # ------------------------------------------------------------------ writes

    def _collection_update(self, body: Json) -> tuple[int, Json, dict[str, str]]:
        records = (body or {}).get("records") or []
        if len(records) > COLLECTION_CAP:
            return (
                400,
                _errors(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
                {},
            )
        problem = self._unknown_column(records)
        if problem is not None:
            return 400, problem, {}
        out: list[dict[str, Any]] = []
        for object_name, items in _runs_by_object(records):
            out.extend(self._update_run(object_name, items))
        return 200, out, {}

    @staticmethod
    def _no_such_type(object_name: str, items: Sequence[Any]) -> list[dict[str, Any]] | None:
        """Each record refused when ``object_name`` cannot name an object; else None."""
        if _OBJECT_NAME.fullmatch(object_name):
            return None
        message = f"sObject type '{object_name}' is not supported."
        return [_record_error("INVALID_TYPE", message, ()) for _ in items]

    def _update_run(
        self, object_name: str, items: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Update records of one object: the id checked and looked up, fault hooks applied,
        the rest written by the store in one call (one SystemModstamp)."""
        refused = self._no_such_type(object_name, items)
        if refused is not None:
            return refused
        ids = [i.get("id") for i in items]
        well_formed = [
            rid for rid in ids if isinstance(rid, str) and re.fullmatch(r"[A-Za-z0-9]{18}", rid)
        ]
        rows = self._rows(object_name, well_formed)
        held = {row["Id"] for row in rows}
        deleted = {row["Id"] for row in rows if row.get("IsDeleted")}
        out: list[dict[str, Any] | None] = [None] * len(items)
        pending: list[tuple[int, str, dict[str, Any]]] = []
        for index, (item, rid) in enumerate(zip(items, ids, strict=True)):
            if rid not in well_formed:
                out[index] = _record_error(
                    "MALFORMED_ID", f"Id in upsert is not valid: {rid}", ("Id",)
                )
            elif rid not in held:
                out[index] = _record_error(
                    "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ()
                )
            elif rid in deleted:
                out[index] = _record_error("ENTITY_IS_DELETED", "entity is deleted", ())
            elif (fault := self._record_fault(str(rid))) is not None:
                out[index] = fault
            else:
                values = {k: v for k, v in item.items() if k not in ("attributes", "id")}
                pending.append((index, str(rid), values))
        written = (
            self._store.update_records(object_name, [(rid, v) for _i, rid, v in pending])
            if pending
            else []
        )
        for (index, _rid, _values), result in zip(pending, written, strict=True):
            out[index] = _answer(result)
        return [answer for answer in out if answer is not None]

    def _collection_create(self, body: Json) -> tuple[int, Json, dict[str, str]]:
        """sObject Collections create (``allOrNone`` false): each record its own result; a
        unique or external id value already held fails that record with DUPLICATE_VALUE."""
        records = (body or {}).get("records") or []
        if len(records) > COLLECTION_CAP:
            return (
                400,
                _errors(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
                {},
            )
        problem = self._unknown_column(records)
        if problem is not None:
            return 400, problem, {}
        out: list[dict[str, Any]] = []
        for object_name, items in _runs_by_object(records):
            refused = self._no_such_type(object_name, items)
            if refused is not None:
                out.extend(refused)
                continue
            answers: list[dict[str, Any] | None] = [None] * len(items)
            pending: list[tuple[int, dict[str, Any]]] = []
            for index, item in enumerate(items):
                if "id" in item:
                    answers[index] = _record_error(
                        "INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)
                    )
                elif item.get("OwnerId") in self.inactive_users:
                    answers[index] = _record_error(
                        "INACTIVE_OWNER_OR_USER",
                        f"operation performed with inactive user [{item['OwnerId']}] as owner "
                        f"of {object_name.lower()}",
                        (),
                    )
                else:
                    pending.append((index, {k: v for k, v in item.items() if k != "attributes"}))
            made = self._store.create_records(object_name, [v for _i, v in pending])
            for (index, _values), result in zip(pending, made, strict=True):
                answers[index] = _answer(result)  # Salesforce's create answer has no 'created'
            out.extend(a for a in answers if a is not None)
        return 200, out, {}

    def _collection_upsert(
        self, object_name: str, ext: str, body: Json
    ) -> tuple[int, Json, dict[str, str]]:
        records = (body or {}).get("records") or []
        if len(records) > COLLECTION_CAP:
            return (
                400,
                _errors(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
                {},
            )
        refused = self._no_such_type(object_name, records)
        if refused is not None:
            return 200, refused, {}
        fields = self._fields(object_name)
        if fields is not None and not (fields.get(ext) or {}).get("external_id"):
            return (
                400,
                _errors(
                    "INVALID_FIELD",
                    f"Field name provided, {ext} is not an External ID or indexed field "
                    f"for {object_name}",
                ),
                {},
            )
        problem = self._unknown_column(records, object_name)
        if problem is not None:
            return 400, problem, {}
        holders: dict[Any, str] = {}
        if self.locks or self.rejects:  # fault hooks apply to records an upsert would update
            keys = {item.get(ext) for item in records}
            for row in self._rows(object_name):
                if row.get(ext) in keys:
                    holders.setdefault(row.get(ext), row["Id"])
        out: list[dict[str, Any] | None] = [None] * len(records)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(records):
            existing = holders.get(item.get(ext))
            fault = None if existing is None else self._record_fault(existing)
            if fault is not None:
                out[index] = fault
            else:
                pending.append((index, {k: v for k, v in item.items() if k != "attributes"}))
        written = self._store.upsert_records(object_name, ext, [v for _i, v in pending])
        for (index, _values), result in zip(pending, written, strict=True):
            out[index] = _answer(result) | {"created": result.created}
        return 200, [answer for answer in out if answer is not None], {}

    def _unknown_column(
        self, records: Sequence[Mapping[str, Any]], object_name: str | None = None
    ) -> Json:
        for item in records:
            name = object_name or (item.get("attributes") or {}).get("type", "")
            known = self._field_names(name)
            if known is None:
                continue
            for key in item:
                if key not in ("attributes", "id") and key not in known:
                    return _errors(
                        "INVALID_FIELD", f"No such column '{key}' on sobject of type {name}"
                    )
        return None

    def _record_fault(self, rid: str) -> dict[str, Any] | None:
        if self.locks.get(rid, 0) > 0:
            self.locks[rid] -= 1
            return _record_error(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {rid}",
                (),
            )
        if rid in self.rejects:
            code, message, fields = self.rejects[rid]
            return _record_error(code, message, fields)
        return None

    # ------------------------------------------------------------------ composite

    def _composite(self, body: Json) -> tuple[int, Json, dict[str, str]]:
        subs = (body or {}).get("compositeRequest") or []
        if len(subs) > COMPOSITE_CAP:
            return (
                400,
                _errors(
                    "LIMIT_EXCEEDED",
                    f"Max number of subrequests in a composite request is {COMPOSITE_CAP}",
                ),
                {},
            )
        heavy = [
            s
            for s in subs
            if "/composite/sobjects" in s.get("url", "") or "/query" in s.get("url", "")
        ]
        if len(heavy) > COMPOSITE_HEAVY_CAP:
            return (
                400,
                _errors(
                    "LIMIT_EXCEEDED",
                    f"Composite allows at most {COMPOSITE_HEAVY_CAP} sObject Collections "
                    "or query subrequests",
                ),
                {},
            )
        out = []
        self.composite_log.append(
            [(s.get("method", "GET"), unquote(urlsplit(s.get("url", "")).path)) for s in subs]
        )
        for sub in subs:
            url = urlsplit(sub.get("url", ""))
            method, path = sub.get("method", "GET"), unquote(url.path)
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.hits(path, method, sub.get("body"), inside_composite=True)
                ),
                None,
            )
            if fault is not None:  # this subrequest alone fails; nothing of it is applied
                echoed = _echo(self._request_headers)  # the Composite call's headers
                status = fault.status
                answer = _errors(fault.code, fault.message.replace(ECHO_HEADERS, echoed))
            else:
                status, answer, _extra = self._dispatch(
                    method,
                    path,
                    parse_qs(url.query, keep_blank_values=True),
                    sub.get("body"),
                    top=False,
                )
            out.append(
                {
                    "body": answer,
                    "httpHeaders": {},
                    "httpStatusCode": status,
                    "referenceId": sub.get("referenceId"),
                }
            )
        return 200, {"compositeResponse": out}, {}

    # ------------------------------------------------------------------ describe

    def _describe(self, object_name: str) -> tuple[int, Json, dict[str, str]]:
        if object_name not in self.schema:
            return 404, _errors("NOT_FOUND", "The requested resource does not exist"), {}
        fields = self._fields(object_name) or {
            "Id": {"type": "id", "createable": False, "updateable": False},
            **{
                n: {"type": "datetime", "createable": False, "updateable": False}
                for n in SYSTEM_DATETIMES
            },
        }
        described = [
            {
                "name": name,
                "type": info["type"],
                "createable": info.get("createable", True),
                "updateable": info.get("updateable", True),
                "externalId": info.get("external_id", False),
                "unique": info.get("unique", False),
                "nillable": True,
                "picklistValues": [
                    {"value": v, "label": v, "active": True, "defaultValue": False}
                    for v in info.get("values", ())
                ],
            }
            for name, info in fields.items()
        ]
        return 200, {"name": object_name, "fields": described}, {}

    # ------------------------------------------------------------------ Bulk API 2.0

    def _bulk_create(self, body: Json) -> tuple[int, Json, dict[str, str]]:
        text = str((body or {}).get("query", ""))
        if re.search(r"\b(ORDER\s+BY|LIMIT|COUNT\()", text, re.I):
            return (
                400,
                _errors(
                    "API_ERROR",
                    "ORDER BY, LIMIT and aggregates are not supported by Bulk API 2.0 queries",
                ),
                {},
            )
        try:
            query, rows = self._select(text, all_rows=(body or {}).get("operation") == "queryAll")
        except (SoqlSyntaxError, FieldMissingError) as exc:
            return 400, _errors("INVALIDJOB", str(exc)), {}
        job_id = f"750FAKE{next(self._numbers)}"
        snapshot = [dict(r) for r in reversed(rows)]  # no promised order
        self._jobs[job_id] = _BulkJob(job_id, snapshot, query.fields, self.bulk_polls)
        return 200, {"id": job_id, "operation": "queryAll", "state": "UploadComplete"}, {}

    def _bulk_state(self, job_id: str) -> tuple[int, Json, dict[str, str]]:
        job = self._jobs.get(job_id)
        if job is None:
            return 404, _errors("NOT_FOUND", "job not found"), {}
        if job.polls_left > 0:
            job.polls_left -= 1
        else:
            job.state = "JobComplete"
        return 200, {"id": job_id, "state": job.state, "numberRecordsProcessed": len(job.rows)}, {}

    def _bulk_results(
        self, job_id: str, query: Mapping[str, list[str]]
    ) -> tuple[int, Json, dict[str, str]]:
        job = self._jobs.get(job_id)
        if job is None or job.state != "JobComplete":
            return 400, _errors("INVALIDJOB", "the job is not complete"), {}
        start = int(query.get("locator", ["0"])[0] or 0)
        size = int(query.get("maxRecords", ["50000"])[0])
        chunk = job.rows[start : start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job.fields)
        for row in chunk:
            writer.writerow([_csv_value(row.get(name)) for name in job.fields])
        nxt = start + len(chunk)
        locator = str(nxt) if nxt < len(job.rows) else "null"
        return (
            200,
            out.getvalue(),
            {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(chunk))},
        )

    # ------------------------------------------------------------------ helpers

    def _fields(self, object_name: str) -> dict[str, dict[str, Any]] | None:
        spec = self.schema.get(object_name)
        return None if spec is None else spec.get("fields")

    def _field_names(self, object_name: str) -> set[str] | None:
        fields = self._fields(object_name)
        return None if fields is None else {*fields, "IsDeleted"}

    def _rows(self, object_name: str, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The stored records of an object (those of ``ids`` only, when given) as the API
        shows them: ``IsDeleted`` false unless stored. None for a name no object has."""
        if not _OBJECT_NAME.fullmatch(object_name):
            return []
        return [
            {**r.fields, "IsDeleted": r.fields.get("IsDeleted", False)}
            for r in self._store.export_records(object_name, ids)
        ]


# ====================================================================== answers


def _record_ids(body: Json) -> set[str]:
    """The ids of the records a Collections body writes (``Id`` or ``id``, as the API takes);
    of a Composite body, those its subrequests write."""
    if not isinstance(body, dict):
        return set()
    ids = {str(r.get("Id", r.get("id"))) for r in body.get("records") or () if isinstance(r, dict)}
    for sub in body.get("compositeRequest") or ():
        ids |= _record_ids(sub.get("body") if isinstance(sub, dict) else None)
    return ids


_DESCRIBE_TYPES = {
    "Text": "string",
    "LongTextArea": "textarea",
    "Number": "double",
    "Date": "date",
    "DateTime": "datetime",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "Lookup": "reference",
}


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        f"<soapenv:Fault><faultcode>{code}</faultcode><faultstring>{xml_escape(message)}"
        "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _errors(code: str, message: str) -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


def _error(
    status: int, code: str, message: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    headers["Content-Type"] = "application/json"
    return status, headers, json.dumps(_errors(code, message))


def _oauth_error(
    code: str, message: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    headers["Content-Type"] = "application/json"
    return 400, headers, json.dumps({"error": code, "error_description": message})


def _answer(result: WriteResult) -> dict[str, Any]:
    """A store's write result as a Collections answer (a missing record as the API says)."""
    if result.ok:
        return {"id": result.id, "success": True, "errors": []}
    if result.error_code == "NOT_FOUND":
        return _record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ())
    return _record_error(str(result.error_code), result.message or "", result.fields)


def _runs_by_object(records: Sequence[Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Collections records in runs of one object (by ``attributes.type``), in order."""
    runs: list[tuple[str, list[Mapping[str, Any]]]] = []
    for item in records:
        name = str((item.get("attributes") or {}).get("type", ""))
        if runs and runs[-1][0] == name:
            runs[-1][1].append(item)
        else:
            runs.append((name, [item]))
    return runs


def _close_stores(stores: list[LocalCrm], folder: tempfile.TemporaryDirectory[str]) -> None:
    for store in stores:
        store.close()
    stores.clear()
    folder.cleanup()


def _echo(headers: Mapping[str, str]) -> str:
    """The request's headers as a careless server echoes them in an error body."""
    return "; ".join(f"{name}: {value}" for name, value in headers.items())


def _record_error(code: str, message: str, fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": None,
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": list(fields)}],
    }


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000", value
    ):
        return value.replace("+0000", "Z")
    return str(value)


# ====================================================================== wiring for tests


@dataclass
class FakeSalesforce:
    """A started ``responses`` mock with the org installed (use as a context manager)."""

    org: FakeOrg
    mock: responses.RequestsMock

    def __enter__(self) -> FakeSalesforce:
        self.mock.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mock.stop(allow_assert=False)
        self.mock.reset()
        self.org.close()


def fake_salesforce(clock: Callable[[], datetime], **org_options: Any) -> FakeSalesforce:
    """A fake org on a fresh ``responses`` mock (not started yet)."""
    org = FakeOrg(clock, **org_options)
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    org.install(mock)
    return FakeSalesforce(org, mock)


def session_client(org: FakeOrg, *, policy: RetryPolicy = NO_WAIT, **options: Any) -> SalesforceCrm:
    """A Salesforce adapter on a fresh session of ``org`` (session mode, no waiting)."""
    return client(
        SalesforceCredentials(
            mode="session",
            instance_url=INSTANCE,
            session_id=SecretStr(org.issue_session()),
            api_version=API,
        ),
        policy=policy,
        **options,
    )


def client(
    credentials: SalesforceCredentials, *, policy: RetryPolicy = NO_WAIT, **options: Any
) -> SalesforceCrm:
    """A Salesforce adapter for ``credentials`` against the fake (5 s timeout, no waiting)."""
    auth = SalesforceAuth(credentials, TimeoutSession(5.0), policy=policy)
    return SalesforceCrm(auth, api_version=API, policy=policy, **options)
