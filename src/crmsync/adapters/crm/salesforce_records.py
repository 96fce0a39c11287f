"""Salesforce's rules for the records a write may store, written once, storage apart.

The local CRM (``local.py``) keeps records in SQLite by these rules, and the HTTP fake orgs
in the tests (Salesforce's and Dataverse's) keep their records in a local CRM: whatever
they answer about a record's values comes from here.

- Object schemas (field names, types, flags, key prefixes, id fields, the system field
  names, the id and datetime format, the CRM's names of per-record errors) are data: a
  JSON file read by ``load_schema``. An object listed without fields, or not listed,
  declares no schema and takes any field. The defaults are Salesforce's: 18-character ids
  and ``+0000`` datetime text (``record_formats``), the error codes below.
- ``RecordRules.prepare`` checks and normalises a write's values by mode: an ``update`` or
  a ``create`` refuses read-only and system fields (``INVALID_FIELD_FOR_INSERT_UPDATE``),
  an ``import`` sets them; a field the object does not declare is ``INVALID_FIELD``, as is
  a value that is not JSON; a value of the wrong type is
  ``INVALID_TYPE_ON_FIELD_IN_RECORD``. Datetimes become the format's text
  (``2026-03-02T09:15:00.000+0000``), ids their stored form (18 characters), empty text
  null; an ``int`` field takes whole numbers only.
- A unique or external id field's value held by another record is ``DUPLICATE_VALUE``
  (``RecordRules.unique_fields`` names them; the store looks the value up).
- Made ids come from the object's key prefix and a number, in the format (Salesforce's:
  the prefix, ``LC`` and a base62 number, with the checksum).

Every refusal is a ``_RecordError`` for that record alone, never for the whole write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal, NoReturn

from crmsync.adapters.crm.record_formats import FORMATS, SALESFORCE, RecordFormat
from crmsync.adapters.crm.salesforce_values import base62
from crmsync.errors import CrmError
from crmsync.ports import FieldInfo, WriteResult

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""An object or field API name."""

Mode = Literal["update", "create", "import"]

_TEXT_TYPES = frozenset({"id", "reference", "string", "textarea", "picklist", "email", "phone"})
_ID_TYPES = frozenset({"id", "reference"})


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """One object's key prefix, declared fields (None: no schema, any field) and id field
    (None: the schema's)."""

    key_prefix: str
    fields: dict[str, FieldInfo] | None
    id_field: str | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    """Every listed object, the names of the system fields, the CRM's id and datetime
    text (``format``) and its names of per-record errors (``error_names``: the rules' code
    to the CRM's, the rules' own when not listed)."""

    objects: dict[str, ObjectSchema]
    id_field: str
    created_field: str
    modified_field: str
    modstamp_field: str
    format: RecordFormat = SALESFORCE
    error_names: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def id_field_of(self, object: str) -> str:
        """The name of ``object``'s id field."""
        spec = self.objects.get(object)
        return self.id_field if spec is None or spec.id_field is None else spec.id_field

    @property
    def id_fields(self) -> frozenset[str]:
        """Every object's id field name."""
        named = {spec.id_field for spec in self.objects.values() if spec.id_field is not None}
        return frozenset({self.id_field, *named})


@cache
def load_schema(path: Path) -> Schema:
    """Read the schema data file; a malformed file is a ``CrmError`` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        objects: dict[str, ObjectSchema] = {}
        for name, spec in data["objects"].items():
            fields = None
            if spec.get("fields") is not None:
                fields = {
                    field: FieldInfo(
                        name=field,
                        type=info["type"],
                        createable=info.get("createable", True),
                        updateable=info.get("updateable", True),
                        external_id=info.get("external_id", False),
                        unique=info.get("unique", False),
                        picklist_values=(
                            None if info.get("values") is None else tuple(info["values"])
                        ),
                    )
                    for field, info in spec["fields"].items()
                }
            objects[name] = ObjectSchema(
                key_prefix=spec["key_prefix"], fields=fields, id_field=spec.get("id_field")
            )
        system = data["system_fields"]
        format_name = data.get("format", SALESFORCE.name)
        if format_name not in FORMATS:
            raise ValueError(f"unknown format '{format_name}' (known: {', '.join(FORMATS)})")
        return Schema(
            objects=objects,
            id_field=system["id"],
            created_field=system["created"],
            modified_field=system["last_modified"],
            modstamp_field=system["modstamp"],
            format=FORMATS[format_name],
            error_names=dict(data.get("errors") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CrmError(f"local CRM schema {path}: cannot be read ({exc!r})") from exc


def _default_prefix(object: str) -> str:
    """A stable key prefix for an object the schema file does not list (like custom ones)."""
    digest = int.from_bytes(hashlib.sha256(object.encode()).digest()[:4], "big")
    return "a" + base62(digest % (62 * 62), 2)


# ----------------------------------------------------------------------------- errors


class _RecordError(Exception):
    """One record cannot be written: becomes that record's ``WriteResult(ok=False)``, never
    reaches a caller (private to the CRM adapters, hence not in ``errors.py``)."""

    def __init__(self, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields

    def result(self, ref: str) -> WriteResult:
        """The failed result of the record written as ``ref``."""
        return WriteResult(
            ref=ref, ok=False, error_code=self.code, message=self.message, fields=self.fields
        )


def not_found(object: str, ref: str) -> WriteResult:
    """The result for a record ``ref`` that ``object`` does not hold."""
    return WriteResult(
        ref=ref, ok=False, error_code="NOT_FOUND", message=f"no {object} with Id {ref}"
    )


# ----------------------------------------------------------------------------- the rules


class RecordRules:
    """What a write may store in the objects of ``schema`` (see the module docstring).

    The answer for a field depends on its object, name and the write's mode alone, so it
    is worked out once per name and kept.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.id_fields = schema.id_fields
        self.system_fields = self.id_fields | {
            schema.created_field,
            schema.modified_field,
            schema.modstamp_field,
        }
        self._rules: dict[tuple[str, str, Mode], tuple[FieldInfo | None, tuple[Any, ...]]] = {}

    def fields_of(self, object: str) -> dict[str, FieldInfo] | None:
        """The object's declared fields; None when it declares no schema."""
        spec = self.schema.objects.get(object)
        return None if spec is None else spec.fields

    def unique_fields(self, object: str) -> frozenset[str]:
        """The object's fields whose values no two records may share."""
        declared = self.fields_of(object) or {}
        return frozenset(n for n, info in declared.items() if info.unique or info.external_id)

    def made_id(self, object: str, number: int) -> str:
        """The id made for ``object``'s record number ``number``, from its key prefix, in
        the schema's format."""
        spec = self.schema.objects.get(object)
        prefix = spec.key_prefix if spec is not None else _default_prefix(object)
        return self.schema.format.made_id(prefix, number)

    def failure(self, problem: _RecordError, ref: str) -> WriteResult:
        """The failed result of the record written as ``ref``, in the CRM's error names."""
        return self._named(problem.result(ref))

    def not_found(self, object: str, ref: str) -> WriteResult:
        """The result for a record ``ref`` that ``object`` does not hold."""
        return self._named(not_found(object, ref))

    def _named(self, result: WriteResult) -> WriteResult:
        name = self.schema.error_names.get(result.error_code or "")
        return result if name is None else replace(result, error_code=name)

    def prepare(self, object: str, values: Mapping[str, Any], *, mode: Mode) -> dict[str, Any]:
        """Validate and normalise field values for a write; raises ``_RecordError``."""
        s = self.schema
        out: dict[str, Any] = {}
        for name, value in values.items():
            if not isinstance(name, str):
                raise _RecordError("INVALID_FIELD", f"'{name}' is not a field name", (str(name),))
            rule = self._rules.get((object, name, mode))
            if rule is None:
                rule = self._rules[(object, name, mode)] = self._field_rule(object, name, mode)
            info, refusal = rule
            if refusal:
                raise _RecordError(*refusal)
            problem = _json_problem(value)
            if problem:
                raise _RecordError("INVALID_FIELD", f"{name}: {problem}", (name,))
            if (
                info is None
                and name in self.system_fields
                and mode == "import"
                and value not in (None, "")
            ):
                info = FieldInfo(name, "datetime") if name not in self.id_fields else None
            out[name] = _normalize(name, info.type, value, s.format) if info is not None else value
        return out

    def _field_rule(
        self, object: str, name: str, mode: Mode
    ) -> tuple[FieldInfo | None, tuple[Any, ...]]:
        """What a write in ``mode`` may do with the field: its declared info (None when the
        object declares no schema or it is a system field), and the ``_RecordError``
        arguments refusing it (empty when it may be written)."""
        declared = self.fields_of(object)
        if not NAME.fullmatch(name):
            return None, ("INVALID_FIELD", f"'{name}' is not a field name", (name,))
        info = declared.get(name) if declared is not None else None
        if declared is not None and info is None:
            return None, ("INVALID_FIELD", f"no field {name} on {object}", (name,))
        writable = mode == "import" or (
            name not in self.system_fields
            and (info is None or (info.updateable if mode == "update" else info.createable))
        )
        if not writable:
            return info, (
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"{object}.{name} cannot be {'updated' if mode == 'update' else 'set'}",
                (name,),
            )
        return info, ()


def type_of(value: Any) -> str:
    """The field type a stored value suggests, for objects without a schema."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "double"
    return "string"


def _json_problem(value: Any) -> str | None:
    """Why ``value`` is not JSON-compatible, or None when it is."""
    if value is None or isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list | tuple):
        for item in value:
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"object key {key!r} is not text"
            problem = _json_problem(item)
            if problem:
                return problem
        return None
    return f"a {type(value).__name__} is not JSON-compatible"


def _normalize(name: str, kind: str, value: Any, format: RecordFormat) -> Any:
    """A declared field's value as the CRM stores it (ids and datetimes in ``format``);
    raises ``_RecordError``."""

    def wrong(expected: str) -> NoReturn:
        raise _RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: {value!r} is not {expected}", (name,)
        )

    if value is None:
        return None
    if kind in _TEXT_TYPES:
        if not isinstance(value, str):
            wrong("text")
        if value == "":
            return None
        if kind in _ID_TYPES:
            return format.normalize_id(value) or value
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            wrong("a date-time text")
        if value == "":
            return None
        try:
            return format.instant_text(format.parse_datetime(value))
        except ValueError as exc:
            raise _RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: {exc}", (name,)
            ) from None
    if kind == "date":
        if not isinstance(value, str):
            wrong("a date text (YYYY-MM-DD)")
        if value == "":
            return None
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value).isoformat()
        except ValueError:
            wrong("a date (YYYY-MM-DD)")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            wrong("a whole number")
        return value
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            wrong("a number")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            wrong("true or false")
        return value
    return value
