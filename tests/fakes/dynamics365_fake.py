"""An HTTP-level fake Dataverse org (Web API v9.2) on ``responses``: callbacks over rows
kept in a local CRM (``LocalCrm``) on a private SQLite file, written by the local CRM's
rules in a Dataverse-shaped schema.

What it answers at ``ORG`` + ``/api/data/v9.2/``:

- ``WhoAmI`` (``Date`` from the org's clock);
- ``GET {entityset}`` with ``$select``, ``$filter`` (``eq ne lt le gt ge``, ``and``, ``or``,
  ``not``-free, parentheses; literals: quoted text with doubled quotes, GUIDs, numbers,
  ``null``, ``true``/``false``, UTC date-times), ``$orderby`` (columns, ``asc``/``desc``)
  and ``Prefer: odata.maxpagesize`` (default 5,000): pages behind ``@odata.nextLink``,
  dynamic as the org's paging is: the link carries the query and, in ``$skiptoken``, the
  last row's order values as stored and its id (the primary id always ends the order, as
  the org adds it); each page runs the query again on the rows as they are then and starts
  after that row. A column the table does not have is 400 ``0x80060888`` "Could not find
  a property named ...", as the org answers;
- ``POST $batch`` (multipart/mixed, change sets; at most 1,000 operations): ``PATCH
  set(id)`` with ``If-Match: *`` updates (404 when the row does not exist), ``PATCH
  set(key='v')`` upserts by an alternate key, with ``If-None-Match: *`` only creates (412
  when the key is held); ``Prefer: return=representation`` answers 201/200 with the row.
  Without ``Prefer: odata.continue-on-error`` the batch stops at the first failure;
- ``EntityDefinitions(LogicalName='t')`` (``EntitySetName``, ``PrimaryIdAttribute``,
  ``SchemaName``, ``IsActivity``, and with ``$expand`` its ``Attributes`` and ``Keys``);
  ``.../Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`` (each choice column's
  ``OptionSet`` options, from ``options``);
- ``systemusers(id)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`` (the application
  user's ``RolePrivileges``, name and depth, from ``privileges``);
- ``deleteditemreferences`` (the recycle bin): one row per deleted row, ``createdon`` the
  deletion instant, ``_deletedobject_value`` with its ``lookuplogicalname`` annotation.

Rows are stored as the local CRM stores records (``salesforce_records.RecordRules``), in
the schema ``schema_data`` makes of ``tables``: GUID ids, ``createdon``/``modifiedon`` set
by the org (``modifiedon`` from the clock, moved 1 ms past the previous write so every write
is ordered), datetimes kept as UTC ``Z`` text to the millisecond (other offsets refused),
read-only columns refused, empty text stored as null, a choice kept as its number, an
alternate key's value unique; a refusal carries Dataverse's error code (``ERROR_NAMES``).
Setting ``tables`` (as set-up tests do) makes the store write by the new schema.

Date-time columns are answered as the Web API answers ``Edm.DateTimeOffset``, in whole
seconds (``2026-03-02T09:15:00Z``, the stored value truncated), in rows, in write answers
and in the recycle bin; ``$filter``, ``$orderby`` and paging work on the stored value, to
the millisecond. So a row stored at ``09:15:00.400`` is answered ``09:15:00Z`` and is not
``lt 2026-03-02T09:15:00Z``. The back door (``get``, ``all``) shows what is stored.

The recycle bin and the fault hooks are the fake's own. Tokens are issued by
``token_source`` and checked on every request (``expire_tokens`` makes them 401). Fault
hooks: ``throttle`` (the next N requests answer 429 with ``Retry-After``), ``fail_op`` (a
row's next write answers an error inside the batch), ``foreign_next_link`` (next links
point at another host), ``stuck_next_links`` (the next N next links name the page they
are on, as a paging cookie gone wrong would). ``log`` keeps ``(method, path)`` of every request.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import itertools
import json
import re
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import requests
import responses

from crmsync.adapters.crm.dynamics365 import DataverseCrm
from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.retry_policy import NO_WAIT, RetryPolicy
from crmsync.ports import FieldFilter, Record, WriteResult

ORG = "https://fake-org.crm4.dynamics.com"
BASE = "/api/data/v9.2/"
PAGE = 5000
_END = datetime(9000, 1, 1, tzinfo=UTC)  # after every row's modifiedon


@dataclass(frozen=True)
class Table:
    """One table: entity set, primary id column, columns (name -> type) and alternate keys."""

    name: str
    entity_set: str
    primary: str
    columns: Mapping[str, str]
    keys: tuple[str, ...] = ()
    navigation: Mapping[str, str] = field(default_factory=dict)  # bind name -> lookup column


_SYSTEM = {"createdon": "DateTime", "modifiedon": "DateTime"}
_READ_ONLY = {"createdon", "modifiedon"}

_EVENT_COLUMNS = [
    "new_acknowledgedon",
    "new_feedbackon",
    "new_decisionon",
    "new_callbackrequestedon",
    "new_callbackon",
    "new_escalatedl2on",
    "new_escalatedl3on",
    "new_escalatedl4on",
    "new_managercontacton",
    "new_directorcontacton",
    "new_mediationrequestedon",
    "new_mediationdecidedon",
    "new_extensionnotifiedon",
    "new_escalationacknowledgedon",
    "new_escalationextendedon",
    "new_holdingresponseon",
    "new_investigationcompletedon",
]

REFERENCE_TABLES = {
    "incident": Table(
        "incident",
        "incidents",
        "incidentid",
        {
            "incidentid": "Uniqueidentifier",
            **_SYSTEM,
            "title": "String",
            "description": "Memo",
            "casetypecode": "Picklist",
            "caseorigincode": "Picklist",
            "statecode": "State",
            "statuscode": "Status",
            "new_closedon": "DateTime",
            **dict.fromkeys(_EVENT_COLUMNS, "DateTime"),
            "new_suppliedname": "String",
            "new_registeredby": "String",
            "new_involved": "String",
            "new_callbackpromisedon": "DateTime",
            "new_rootcause": "Memo",
            "new_solution": "Memo",
            "new_complaintlevel": "Integer",
            "new_complainanttype": "Picklist",
            "new_preferredlanguage": "Picklist",
            "new_expecteddecisiondate": "DateOnly",  # a DateTime column of format DateOnly
            "ownerid": "Owner",
            "crmsync_charterstatus": "Picklist",
            "crmsync_charterbreaches": "String",
            "crmsync_charternextdue": "DateTime",
            "crmsync_charterchecked": "DateTime",
            "crmsync_archiveref": "String",
            "crmsync_archivedon": "DateTime",
            "new_complaintmanager": "Lookup",
        },
        navigation={"ownerid": "ownerid", "new_ComplaintManager": "new_complaintmanager"},
    ),
    "task": Table(
        "task",
        "tasks",
        "activityid",
        {
            "activityid": "Uniqueidentifier",
            **_SYSTEM,
            "subject": "String",
            "description": "Memo",
            "category": "String",
            "scheduledend": "DateTime",
            "actualend": "DateTime",
            "statecode": "State",
            "statuscode": "Status",
            "prioritycode": "Picklist",
            "regardingobjectid": "Lookup",
            "ownerid": "Owner",
            "crmsync_key": "String",
        },
        keys=("crmsync_key",),
        navigation={"ownerid": "ownerid", "regardingobjectid_incident": "regardingobjectid"},
    ),
    "new_casestatuschange": Table(
        "new_casestatuschange",
        "new_casestatuschanges",
        "new_casestatuschangeid",
        {
            "new_casestatuschangeid": "Uniqueidentifier",
            **_SYSTEM,
            "new_case": "Lookup",
            "new_fromstatus": "String",
            "new_tostatus": "String",
        },
        navigation={"new_Case": "new_case"},
    ),
}


# The reference org's choices (option values by table and column), its tables' schema names
# and the privileges of an application user whose role grants what crmsync needs.
REFERENCE_OPTIONS: dict[tuple[str, str], list[int]] = {
    ("incident", "casetypecode"): [1, 2, 3, 100000000],
    ("incident", "caseorigincode"): [1, 2, 3, 100000000, 100000001],
    ("incident", "new_complainanttype"): [100000000, 100000001, 100000002],
    ("incident", "new_preferredlanguage"): [100000000, 100000001, 100000002],
    ("incident", "crmsync_charterstatus"): [100000000, 100000001, 100000002, 100000003, 100000004],
    ("task", "prioritycode"): [0, 1, 2],
}
SCHEMA_NAMES = {
    "incident": "Incident",
    "task": "Task",
    "new_casestatuschange": "new_CaseStatusChange",
}
ACTIVITIES = {"task"}
REFERENCE_PRIVILEGES = dict.fromkeys(
    [
        "prvReadIncident", "prvWriteIncident", "prvAppendToIncident",
        "prvReadActivity", "prvCreateActivity", "prvWriteActivity", "prvAppendActivity",
        "prvAssignActivity", "prvReadnew_CaseStatusChange",
    ],
    "Global",
)  # fmt: skip


def _column_of(table: Table, name: str) -> str | None:
    """The column a property names (``_x_value`` and ``x@odata.bind`` name lookup x)."""
    bind = re.fullmatch(r"(\w+)@odata\.bind", name)
    if bind:
        return table.navigation.get(bind.group(1))
    match = re.fullmatch(r"_(\w+)_value", name)
    if match and table.columns.get(match.group(1)) in {"Lookup", "Owner", "Customer"}:
        return match.group(1)
    if table.columns.get(name) in {"Lookup", "Owner", "Customer"}:
        return None  # a lookup is read as _x_value and written by @odata.bind
    return name if name in table.columns else None


def _stamp(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _answered(stored: Any) -> Any:
    """A stored date-time as the Web API answers it: truncated to the whole second,
    ``2026-03-02T09:15:00.400Z`` -> ``2026-03-02T09:15:00Z``."""
    if isinstance(stored, str) and len(stored) > 20 and stored[19] == ".":
        return stored[:19] + "Z"
    return stored


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ====================================================================== $filter subset

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<paren>[()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_OPS = {"eq", "ne", "lt", "le", "gt", "ge"}


class FilterSyntaxError(ValueError):
    """The fake cannot parse a $filter (answered 400 ``0x80060888``)."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FilterSyntaxError(f"cannot read $filter at '{text[pos : pos + 20]}'")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            out.append(("value", raw[1:-1].replace("''", "'")))
        elif kind == "guid":
            out.append(("value", raw.lower()))
        elif kind == "datetime":
            out.append(("value", _instant(raw)))
        elif kind == "number":
            out.append(("value", float(raw) if "." in raw else int(raw)))
        elif kind == "word" and raw in {"null", "true", "false"}:
            out.append(("value", {"null": None, "true": True, "false": False}[raw]))
        else:
            out.append((kind, raw))
    return out


Predicate = Callable[[Mapping[str, Any]], bool]


_IN_FUNCTION = re.compile(
    r"Microsoft\.Dynamics\.CRM\.In\(PropertyName='(\w+)',"
    r"PropertyValues=\[((?:'(?:[^']|'')*',?)*)\]\)"
)


def _expand_in(text: str) -> str:
    """``Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b'])`` as
    ``(x eq 'a' or x eq 'b')`` (the values are text; compared as Dataverse converts them)."""

    def expand(match: re.Match[str]) -> str:
        values = re.findall(r"'(?:[^']|'')*'", match.group(2))
        if not values:
            raise FilterSyntaxError("In() needs at least one value")
        return "(" + " or ".join(f"{match.group(1)} eq {v}" for v in values) + ")"

    return _IN_FUNCTION.sub(expand, text)


def parse_filter(text: str, table: Table) -> tuple[Predicate, set[str]]:
    """A predicate over rows and the columns it names."""
    tokens = _tokens(_expand_in(text))
    named: set[str] = set()
    pos = 0

    def peek() -> tuple[str, Any]:
        return tokens[pos] if pos < len(tokens) else ("end", None)

    def take() -> tuple[str, Any]:
        nonlocal pos
        token = peek()
        pos += 1
        return token

    def expression() -> Predicate:
        left = conjunction()
        while peek() == ("word", "or"):
            take()
            right = conjunction()
            left = _either(left, right)
        return left

    def conjunction() -> Predicate:
        left = atom()
        while peek() == ("word", "and"):
            take()
            right = atom()
            left = _both(left, right)
        return left

    def atom() -> Predicate:
        kind, value = take()
        if kind == "paren" and value == "(":
            inner = expression()
            if take() != ("paren", ")"):
                raise FilterSyntaxError("unbalanced parentheses")
            return inner
        if kind == "word" and value == "false":
            return lambda row: False
        if kind != "word":
            raise FilterSyntaxError(f"a condition starts with {value!r}")
        column = _column_of(table, value)
        if column is None:
            raise KeyError(value)
        named.add(value)
        op_kind, op = take()
        if op_kind != "word" or op not in _OPS:
            raise FilterSyntaxError(f"unknown operator {op!r}")
        literal_kind, literal = take()
        if literal_kind != "value":
            raise FilterSyntaxError(f"{value} {op} needs a literal")
        return _compare(column, op, literal)

    predicate = expression()
    if pos != len(tokens):
        raise FilterSyntaxError("text after the end of the $filter")
    return predicate, named


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) or b(row)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) and b(row)


def _compare(column: str, op: str, literal: Any) -> Predicate:
    def test(row: Mapping[str, Any]) -> bool:
        stored = row.get(column)
        if isinstance(literal, datetime) and isinstance(stored, str):
            stored = _instant(stored)
        if isinstance(literal, str) and stored is not None and not isinstance(stored, str):
            stored = str(stored)  # In()'s text values are converted to the column's type
        if isinstance(stored, str) and isinstance(literal, str):
            stored, lit = stored.lower(), literal.lower()  # Dataverse compares text case-blind
        else:
            lit = literal
        if op == "eq":
            return bool(stored == lit)
        if op == "ne":
            return bool(stored != lit)
        if stored is None or lit is None:
            return False
        return bool(
            {"lt": stored < lit, "le": stored <= lit, "gt": stored > lit, "ge": stored >= lit}[op]
        )

    return test


# ====================================================================== the org


# ====================================================================== storage

_LOCAL_TYPES = {
    "Uniqueidentifier": "id",
    "DateTime": "datetime",
    "DateOnly": "date",
    "Picklist": "int",
    "State": "int",
    "Status": "int",
    "Integer": "int",
    "BigInt": "int",
    "String": "string",
    "Memo": "textarea",
    "Lookup": "reference",
    "Owner": "reference",
    "Customer": "reference",
    "Boolean": "boolean",
    "Decimal": "double",
    "Double": "double",
    "Money": "double",
}
"""A column's Dataverse type -> the local CRM's storage type (a choice is its number)."""

ERROR_NAMES = {
    "NOT_FOUND": "0x80040217",
    "DUPLICATE_VALUE": "0x80060892",
    "INVALID_FIELD": "0x80060888",
    "INVALID_FIELD_FOR_INSERT_UPDATE": "0x80048d19",
    "INVALID_TYPE_ON_FIELD_IN_RECORD": "0x80040203",
    "REQUIRED_FIELD_MISSING": "0x80040203",
    "MALFORMED_ID": "0x80040203",
}
"""The local CRM's per-record errors by Dataverse's codes."""
_STATUS_OF = {"0x80040217": 404, "0x80060892": 412}  # any other refusal: 400


def schema_data(tables: Mapping[str, Table]) -> dict[str, Any]:
    """The local CRM schema of ``tables``: Dataverse's ids, datetimes and error codes,
    ``createdon``/``modifiedon`` as system columns, alternate keys unique."""
    objects: dict[str, Any] = {}
    for number, (name, table) in enumerate(tables.items(), start=1):
        fields = {
            column: {
                "type": _LOCAL_TYPES.get(kind, "string"),
                "createable": column not in _READ_ONLY and column != table.primary,
                "updateable": column not in _READ_ONLY and column != table.primary,
                "external_id": column in table.keys,
                "unique": column in table.keys,
            }
            for column, kind in table.columns.items()
        }
        objects[name] = {"key_prefix": f"{number:x}", "id_field": table.primary, "fields": fields}
    return {
        "format": "dataverse",
        "system_fields": {
            "id": "id",
            "created": "createdon",
            "last_modified": "modifiedon",
            "modstamp": "modifiedon",
        },
        "errors": ERROR_NAMES,
        "objects": objects,
    }


def _close_stores(stores: list[LocalCrm], folder: tempfile.TemporaryDirectory[str]) -> None:
    for store in stores:
        store.close()
    stores.clear()
    folder.cleanup()


class FakeDataverse:
    """The org: its tables, rows kept in a local CRM on a private SQLite file (writes by
    the local CRM's rules in a Dataverse-shaped schema, ``schema_data``), and its
    behaviour; ``install`` it on a ``responses`` mock, ``close`` it when done."""

    def __init__(
        self, clock: Callable[[], datetime], tables: Mapping[str, Table] | None = None
    ) -> None:
        self.clock = clock
        self.deleted: list[dict[str, Any]] = []  # the recycle bin
        self.log: list[tuple[str, str]] = []
        self.throttles: list[tuple[str, float]] = []
        self.op_faults: dict[str, tuple[int, str, str]] = {}
        self.foreign_next_link: str | None = None
        self.created_options: dict[tuple[str, str], list[int]] = {}
        self.options = {k: list(v) for k, v in REFERENCE_OPTIONS.items()}
        self.privileges = dict(REFERENCE_PRIVILEGES)  # privilege name -> depth
        self._tokens: set[str] = set()
        self._serial = itertools.count()
        self.stuck_next_links = 0
        self._lock = threading.RLock()
        self._folder = tempfile.TemporaryDirectory(prefix="fake-dataverse-")
        self._schema_versions = itertools.count(1)
        self._stores: list[LocalCrm] = []
        weakref.finalize(self, _close_stores, self._stores, self._folder)
        self.tables = dict(REFERENCE_TABLES if tables is None else tables)

    @property
    def tables(self) -> Mapping[str, Table]:
        """The org's tables; setting them makes the store write by the new schema."""
        return self._tables

    @tables.setter
    def tables(self, tables: Mapping[str, Table]) -> None:
        with self._lock:
            self._tables = dict(tables)
            path = Path(self._folder.name) / f"schema-{next(self._schema_versions)}.json"
            path.write_text(json.dumps(schema_data(self._tables)), encoding="utf-8")
            store = LocalCrm(
                Path(self._folder.name) / "org.sqlite3", clock=self.clock, schema_file=path
            )
            self._stores.append(store)
            self._store = store

    def close(self) -> None:
        """Close the store and remove its file (the org must not be used after)."""
        _close_stores(self._stores, self._folder)

    # ------------------------------------------------------------- test controls

    def token_source(self) -> Callable[[bool], str]:
        """What an adapter calls for a token (a new one when asked to renew)."""
        current: list[str] = []

        def token(renew: bool) -> str:
            if renew or not current:
                current[:] = [f"token-{next(self._serial)}"]
                self._tokens.add(current[0])
            return current[0]

        return token

    @property
    def issued_tokens(self) -> set[str]:
        """Every bearer token handed out and still valid."""
        return set(self._tokens)

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def throttle(self, times: int = 1, retry_after: float = 1.0, path: str = "") -> None:
        """The next ``times`` requests whose path holds ``path`` answer 429 with
        ``Retry-After``."""
        self.throttles += [(path, retry_after)] * times

    def fail_op(self, row_id: str, status: int, code: str, message: str) -> None:
        """The next write of this row (or key value) answers this error in its change set."""
        self.op_faults[row_id] = (status, code, message)

    def _by_set(self, entity_set: str) -> Table | None:
        return next((t for t in self.tables.values() if t.entity_set == entity_set), None)

    def seed(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Put rows in as the local CRM imports them (the back door): the id and
        ``createdon``/``modifiedon`` are kept when given, else made / stamped now; read-only
        columns may be set. A row the store refuses is a ``ValueError``. Returns the ids."""
        table = self.tables[table_name]
        converted: list[dict[str, Any]] = []
        for given in rows:
            row: dict[str, Any] = {}
            for name, value in given.items():
                column = name if name in table.columns else _column_of(table, name)
                assert column is not None, f"{table_name} has no column {name}"
                row[column] = value
            converted.append(row)
        with self._lock:
            results = self._store.insert_records(table_name, converted)
        refused = [r for r in results if not r.ok]
        if refused:
            raise ValueError(f"the fake org refuses to seed {table_name}: {refused}")
        return [str(r.id) for r in results]

    def touch(self, table_name: str, rid: str, **changes: Any) -> None:
        """Change a row as a person would (the back door, read-only columns too):
        ``modifiedon`` moves to now. ``KeyError`` for a row the org does not hold."""
        table = self.tables[table_name]
        with self._lock:
            self.get(table_name, rid)
            [result] = self._store.insert_records(
                table_name, [{table.primary: rid, **changes}], upsert=True
            )
        if not result.ok:
            raise ValueError(f"the fake org refuses to change {rid}: {result}")

    def get(self, table_name: str, rid: str) -> dict[str, Any]:
        """A row's columns (unset ones None); ``KeyError`` when there is none."""
        with self._lock:
            found = list(self._store.export_records(table_name, [rid]))
        if not found:
            raise KeyError(rid)
        return self._full(table_name, found[0].fields)

    def all(self, table_name: str) -> list[dict[str, Any]]:
        """Every row of the table (columns unset None), in the order they were made."""
        with self._lock:
            return [self._full(table_name, r.fields) for r in self._rows(table_name)]

    def _rows(self, table_name: str) -> list[Record]:
        return list(self._store.export_records(table_name))

    def _full(self, table_name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {**dict.fromkeys(self.tables[table_name].columns), **fields}

    def delete(self, table_name: str, ids: Sequence[str]) -> None:
        """Delete rows as a person would; the recycle bin keeps a reference stamped now."""
        with self._lock:
            results = self._store.delete_records(table_name, ids)
            assert all(r.ok for r in results), results
            for rid in ids:
                self.deleted.append(
                    {
                        "deleteditemreferenceid": str(uuid.uuid4()),
                        "_deletedobject_value": rid,
                        "_deletedobject_value@Microsoft.Dynamics.CRM.lookuplogicalname": (
                            table_name
                        ),
                        "createdon": _stamp(self.clock()),
                    }
                )

    # ------------------------------------------------------------- HTTP

    def install(self, mock: responses.RequestsMock) -> None:
        for method in ("GET", "POST", "PATCH"):
            mock.add_callback(method, re.compile(re.escape(ORG) + r"/.*"), callback=self._handle)

    def _handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with self._lock:  # one request at a time, as one transaction
            return self._answer(request)

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlsplit(str(request.url))
        self.log.append((str(request.method), unquote(url.path)))
        date = {"Date": format_datetime(self.clock().astimezone(UTC), usegmt=True)}
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self._tokens:
            return 401, date, ""
        hit = next((t for t in self.throttles if t[0] in unquote(url.path)), None)
        if hit is not None:
            self.throttles.remove(hit)
            wait = hit[1]
            body = _error("0x80072322", "Number of requests exceeded the limit of 6000.")
            return 429, {**date, "Retry-After": f"{wait:g}"}, body
        path = unquote(url.path)
        if not path.startswith(BASE):
            return 404, date, _error("0x80060888", "Resource not found for the segment.")
        resource = path[len(BASE) :]
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        status, headers, body = self._route(request, resource, query)
        return status, {**date, **headers}, body

    def _route(
        self, request: requests.PreparedRequest, resource: str, query: Mapping[str, str]
    ) -> tuple[int, dict[str, str], str]:
        method = str(request.method)
        if method == "GET" and resource == "WhoAmI":
            return 200, _JSON, json.dumps({"UserId": str(uuid.uuid4())})
        if method == "POST" and resource == "$batch":
            return self._batch(request)
        created = re.fullmatch(
            r"EntityDefinitions\(LogicalName='(\w+)'\)/(Attributes|Keys)", resource
        )
        if method == "POST" and created:
            return self._create_metadata(created.group(1), created.group(2), request)
        if method == "GET" and resource.endswith("PicklistAttributeMetadata"):
            return self._choices(resource)
        if method == "GET" and resource.endswith("RetrieveUserPrivileges()"):
            return self._user_privileges()
        definition = re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)", resource)
        if method == "GET" and definition:
            return self._definition(definition.group(1), query)
        if method == "GET" and resource == "deleteditemreferences":
            return self._query_rows(_RECYCLE_BIN, list(self.deleted), query, request)
        table = self._by_set(resource)
        if method == "GET" and table is not None:
            rows = [dict(r.fields) for r in self._rows(table.name)]
            return self._query_rows(table, rows, query, request)
        return 404, _JSON, _error("0x80060888", f"Resource not found for the segment '{resource}'.")

    def _create_metadata(
        self, name: str, part: str, request: requests.PreparedRequest
    ) -> tuple[int, dict[str, str], str]:
        """A new column (``Attributes``) or alternate key (``Keys``) of a table."""
        table = self.tables.get(name)
        if table is None:
            return 404, _JSON, _error("0x80060888", f"Could not find an entity with name {name}")
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        body = json.loads(raw)
        if part == "Keys":
            columns = body.get("KeyAttributes") or []
            if len(columns) != 1 or columns[0] not in table.columns:
                return 400, _JSON, _error("0x80048d19", f"Invalid key attributes {columns}.")
            new = dataclasses.replace(table, keys=(*table.keys, columns[0]))
        else:
            logical = str(body.get("SchemaName", "")).lower()
            if logical in table.columns:
                message = f"An attribute with the name {logical} already exists."
                return 400, _JSON, _error("0x80044363", message)
            kind = str(body.get("@odata.type", "")).rsplit(".", 1)[-1]
            types = {
                "StringAttributeMetadata": "String",
                "DateTimeAttributeMetadata": "DateTime",
                "PicklistAttributeMetadata": "Picklist",
            }
            if kind not in types:
                return 400, _JSON, _error("0x80048d19", f"Unsupported attribute type {kind}.")
            new = dataclasses.replace(table, columns={**table.columns, logical: types[kind]})
            self.created_options[(name, logical)] = [
                o["Value"] for o in (body.get("OptionSet") or {}).get("Options", [])
            ]
        self.tables = {**self.tables, name: new}
        return 204, {}, ""

    def _choices(self, resource: str) -> tuple[int, dict[str, str], str]:
        """The choice columns of a table with their options (local option sets)."""
        match = re.fullmatch(
            r"EntityDefinitions\(LogicalName='(\w+)'\)/Attributes/"
            r"Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata",
            resource,
        )
        table = self.tables.get(match.group(1)) if match else None
        if table is None:
            return 404, _JSON, _error("0x80060888", f"Resource not found: '{resource}'.")
        value = [
            {
                "LogicalName": column,
                "OptionSet": {
                    "Options": [
                        {"Value": v, "Label": {"UserLocalizedLabel": {"Label": str(v)}}}
                        for v in self.options.get((table.name, column))
                        or self.created_options.get((table.name, column), [])
                    ]
                },
                "GlobalOptionSet": None,
            }
            for column, kind in table.columns.items()
            if kind == "Picklist"
        ]
        return 200, _JSON, json.dumps({"value": value})

    def _user_privileges(self) -> tuple[int, dict[str, str], str]:
        """The application user's privileges, each with its name and depth."""
        unit = "00000000-0000-0000-0000-0000000000b0"
        held = [
            {"PrivilegeName": name, "Depth": depth, "BusinessUnitId": unit,
             "PrivilegeId": str(uuid.uuid5(uuid.NAMESPACE_URL, name))}
            for name, depth in self.privileges.items()
        ]  # fmt: skip
        return 200, _JSON, json.dumps({"RolePrivileges": held})

    def _definition(self, name: str, query: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        table = self.tables.get(name)
        if table is None:
            return 404, _JSON, _error("0x80060888", f"Could not find an entity with name {name}")
        body: dict[str, Any] = {
            "LogicalName": name,
            "EntitySetName": table.entity_set,
            "PrimaryIdAttribute": table.primary,
            "SchemaName": SCHEMA_NAMES.get(name, name),
            "IsActivity": name in ACTIVITIES,
        }
        if "Attributes" in query.get("$expand", ""):
            body["Attributes"] = [
                {
                    "LogicalName": column,
                    "AttributeType": "DateTime" if kind == "DateOnly" else kind,
                    "IsValidForCreate": column not in _READ_ONLY and column != table.primary,
                    "IsValidForUpdate": column not in _READ_ONLY and column != table.primary,
                }
                for column, kind in table.columns.items()
            ]
            body["Keys"] = [{"KeyAttributes": [k]} for k in table.keys]
        return 200, _JSON, json.dumps(body)

    def _query_rows(
        self,
        shape: Table,
        rows: list[dict[str, Any]],
        query: Mapping[str, str],
        request: requests.PreparedRequest,
    ) -> tuple[int, dict[str, str], str]:
        """One page of the query on ``rows`` as they are now: filtered and ordered on the
        stored values (the primary id ending the order), after the row ``$skiptoken``
        names, at most the page size the request prefers; a next link when rows remain."""
        select = [s for s in query.get("$select", "").split(",") if s]
        for name in select:
            if _column_of(shape, name) is None:
                return _unknown(shape, name)
        if "$filter" in query:
            try:
                predicate, _named = parse_filter(query["$filter"], shape)
            except KeyError as exc:
                return _unknown(shape, str(exc.args[0]))
            except FilterSyntaxError as exc:
                return 400, _JSON, _error("0x80060888", f"Syntax error in $filter: {exc}")
            rows = [r for r in rows if predicate(r)]
        order: list[tuple[str, bool]] = []
        for part in [p.strip() for p in query.get("$orderby", "").split(",") if p.strip()]:
            name, _, direction = part.partition(" ")
            column = _column_of(shape, name)
            if column is None:
                return _unknown(shape, name)
            order.append((column, direction.strip() == "desc"))
        if shape.primary not in [column for column, _ in order]:
            order.append((shape.primary, False))  # the org orders by the primary id last
        rows = sorted(rows, key=lambda r: _order_key(r, order))
        page_number = 1
        if "$skiptoken" in query:
            cookie = _read_cookie(query["$skiptoken"], [column for column, _ in order])
            if cookie is None:
                return 400, _JSON, _error("0x80040203", "Invalid $skiptoken.")
            page_number, last = cookie
            after = _order_key(last, order)
            rows = [r for r in rows if _order_key(r, order) > after]
        size = _page_size(request.headers.get("Prefer", ""))
        page = rows[:size]
        body: dict[str, Any] = {"value": [_shape(shape, r, select) for r in page]}
        if len(rows) > size:
            asked = urlsplit(str(request.url)).query
            last = {column: page[-1].get(column) for column, _ in order}
            kept = [(k, v) for k, v in parse_qsl(asked) if k != "$skiptoken"]
            cookie = ("$skiptoken", _cookie(page_number + 1, last))
            link = urlencode([*kept, cookie], quote_via=quote)
            if self.stuck_next_links > 0:
                self.stuck_next_links -= 1
                link = asked
            host = self.foreign_next_link or ORG
            body["@odata.nextLink"] = f"{host}{BASE}{shape.entity_set}?{link}"
        return 200, _JSON, json.dumps(body)

    # ------------------------------------------------------------- $batch

    def _batch(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        content_type = request.headers.get("Content-Type", "")
        match = re.search(r"boundary=([^;]+)", content_type)
        if match is None:
            return 400, _JSON, _error("0x80048d19", "A $batch needs a multipart boundary.")
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        operations = _operations(raw, match.group(1))
        if len(operations) > 1000:
            return 400, _JSON, _error("0x80048d19", "The batch holds more than 1000 requests.")
        go_on = "odata.continue-on-error" in request.headers.get("Prefer", "")
        boundary = f"batchresponse_{uuid.uuid4().hex}"
        parts: list[str] = []
        for method, target, headers, body in operations:
            status, out_headers, out_body = self._operation(method, target, headers, body)
            changeset = f"changesetresponse_{uuid.uuid4().hex}"
            lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
            lines += [f"{k}: {v}" for k, v in out_headers.items()]
            lines += ["", out_body]
            parts.append(
                f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
                f"--{changeset}\r\nContent-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n\r\n"
                + "\r\n".join(lines)
                + f"\r\n--{changeset}--\r\n"
            )
            if status >= 400 and not go_on:
                break
        text = "".join(parts) + f"--{boundary}--\r\n"
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, text

    def _operation(
        self, method: str, target: str, headers: Mapping[str, str], body: Mapping[str, Any]
    ) -> tuple[int, dict[str, str], str]:
        path = unquote(urlsplit(target).path)
        if method != "PATCH" or not path.startswith(BASE):
            return 405, _JSON, _error("0x80060888", f"{method} is not supported here")
        match = re.fullmatch(r"(\w+)\((.+)\)", path[len(BASE) :])
        table = self._by_set(match.group(1)) if match else None
        if match is None or table is None:
            return 404, _JSON, _error("0x80060888", "Resource not found for the segment.")
        values: dict[str, Any] = {}
        for name, given in body.items():
            column = _column_of(table, name)
            if column is None:
                return _unknown(table, name)
            bound = name.endswith("@odata.bind") and isinstance(given, str)
            values[column] = given.rsplit("(", 1)[-1].rstrip(")") if bound else given
        address = match.group(2)
        key = re.fullmatch(r"(\w+)='((?:[^']|'')*)'", address)
        if key is None:
            rid = address.lower()
            fault = self.op_faults.pop(rid, None)
            if fault is not None:
                return fault[0], _JSON, _error(fault[1], fault[2])
            [result] = self._store.update_records(table.name, [(rid, values)])
            return self._answered(table, result, headers, created=False)
        column, value = key.group(1), key.group(2).replace("''", "'")
        if column not in table.keys:
            return 400, _JSON, _error("0x80060888", f"'{column}' is not an alternate key.")
        fault = self.op_faults.pop(value, None)
        if fault is not None:
            return fault[0], _JSON, _error(fault[1], fault[2])
        row = {column: value, **values}
        if headers.get("if-none-match") == "*":
            [result] = self._store.create_if_absent(table.name, column, [row])
            if result.ok and not result.created:
                message = "A record with matching key values already exists."
                return 412, _JSON, _error("0x80060882", message)
        elif headers.get("if-match") == "*":
            held = self._id_by_key(table, column, value)
            if held is None:
                return 404, _JSON, _error("0x80040217", "Does Not Exist")
            [result] = self._store.update_records(table.name, [(held, values)])
        else:
            [result] = self._store.upsert_records(table.name, column, [row])
        return self._answered(table, result, headers, created=result.created)

    def _id_by_key(self, table: Table, column: str, value: str) -> str | None:
        where = [FieldFilter(column, "=", value)]
        found = self._store.changed_records(table.name, [], since=None, until=_END, where=where)
        return next((r.id for r in found), None)

    def _answered(
        self, table: Table, result: WriteResult, headers: Mapping[str, str], *, created: bool
    ) -> tuple[int, dict[str, str], str]:
        """A write's answer: the store's refusal with its status, else 204 (or the row)."""
        if not result.ok:
            code = result.error_code or "0x80040203"
            message = result.message or "The record cannot be written."
            return _STATUS_OF.get(code, 400), _JSON, _error(code, message)
        rid = str(result.id)
        entity = {"OData-EntityId": f"{ORG}{BASE}{table.entity_set}({rid})"}
        if "return=representation" in headers.get("prefer", ""):
            shown = _shape(table, self.get(table.name, rid), [])
            return (201 if created else 200), {**_JSON, **entity}, json.dumps(shown)
        return 204, entity, ""


_JSON = {"Content-Type": "application/json; odata.metadata=minimal"}


def _shape(table: Table, row: Mapping[str, Any], select: Sequence[str]) -> dict[str, Any]:
    names = select or [
        f"_{c}_value" if k in {"Lookup", "Owner", "Customer"} else c
        for c, k in table.columns.items()
    ]
    shown: dict[str, Any] = {}
    for name in names:
        column = _column_of(table, name) or name
        value = row.get(column) if column in row else row.get(name)
        shown[name] = _answered(value) if table.columns.get(column) == "DateTime" else value
        annotation = f"{name}@Microsoft.Dynamics.CRM.lookuplogicalname"
        if annotation in row:
            shown[annotation] = row[annotation]
    return shown


_RECYCLE_BIN = Table(
    "deleteditemreference",
    "deleteditemreferences",
    "deleteditemreferenceid",
    {"deleteditemreferenceid": "Uniqueidentifier", "createdon": "DateTime",
     "deletedobject": "Lookup"},
)  # fmt: skip


@functools.total_ordering
class _Descending:
    """An order value sorted the other way round (``$orderby`` ... ``desc``)."""

    def __init__(self, key: tuple[bool, Any]) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.key < self.key)

    __hash__ = None  # type: ignore[assignment]


def _order_key(row: Mapping[str, Any], order: Sequence[tuple[str, bool]]) -> tuple[Any, ...]:
    """A row's place in ``order`` ((column, descending) pairs) on its stored values, null
    first when ascending."""
    key: list[Any] = []
    for column, descending in order:
        value = row.get(column)
        part = (value is not None, "" if value is None else value)
        key.append(_Descending(part) if descending else part)
    return tuple(key)


def _cookie(page_number: int, last: Mapping[str, Any]) -> str:
    """The ``$skiptoken`` of the page after one: its number and the last row's stored order
    values (the client keeps it as it is)."""
    raw = json.dumps({"page": page_number, "last": dict(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_cookie(token: str, columns: Sequence[str]) -> tuple[int, dict[str, Any]] | None:
    """(page number, last row's order values) of a ``$skiptoken``; None when it is not one
    of this query's."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("page"), int):
        return None
    last = data.get("last")
    if not isinstance(last, dict) or set(last) != set(columns):
        return None
    return data["page"], last


def _page_size(prefer: str) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return min(int(match.group(1)), PAGE) if match else PAGE


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def _unknown(table: Table, name: str) -> tuple[int, dict[str, str], str]:
    return (
        400,
        _JSON,
        _error(
            "0x80060888",
            f"Could not find a property named '{name}' on type "
            f"'Microsoft.Dynamics.CRM.{table.name}'.",
        ),
    )


def _operations(raw: str, boundary: str) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(method, url, headers, JSON body) of each request of a $batch body, in order."""
    found: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []
    for match in re.finditer(
        r"\r?\n\r?\n(GET|POST|PATCH|DELETE) (\S+) HTTP/1\.1\r?\n(.*?)\r?\n\r?\n(.*?)\r?\n--",
        raw,
        re.DOTALL,
    ):
        headers = {}
        for line in match.group(3).splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        text = match.group(4).strip()
        found.append((match.group(1), match.group(2), headers, json.loads(text) if text else {}))
    del boundary
    return found


# ====================================================================== clients


class FakeDataverseServer:
    """``with FakeDataverseServer(clock) as fake:`` — the org behind a ``responses`` mock."""

    def __init__(self, clock: Callable[[], datetime], **options: Any) -> None:
        self.org = FakeDataverse(clock, **options)
        self._mock = responses.RequestsMock(assert_all_requests_are_fired=False)

    def __enter__(self) -> FakeDataverseServer:
        self._mock.__enter__()
        self.org.install(self._mock)
        return self

    def __exit__(self, *exc: object) -> None:
        self._mock.__exit__(None, None, None)
        self.org.close()


def dataverse_client(
    org: FakeDataverse, *, policy: RetryPolicy = NO_WAIT, **options: Any
) -> DataverseCrm:
    """A Dataverse adapter on the fake org (tokens from the org's own issuer)."""
    return DataverseCrm(ORG, org.token_source(), policy=policy, **options)
