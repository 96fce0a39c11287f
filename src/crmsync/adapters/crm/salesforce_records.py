"""Salesforce's rules for the records a write may store, written once, storage apart.

The local CRM (``local.py``) keeps records in SQLite by these rules, and the HTTP fake org
in the tests keeps its records in a local CRM: whatever the two answer about a record's
values comes from here.

- Object schemas (field names, types, flags, key prefixes, the system field names) are
  data: a JSON file read by ``load_schema``. An object listed without fields, or not
  listed, declares no schema and takes any field.
- ``RecordRules.prepare`` checks and normalises a write's values by mode: an ``update`` or
  a ``create`` refuses read-only and system fields (``INVALID_FIELD_FOR_INSERT_UPDATE``),
  an ``import`` sets them; a field the object does not declare is ``INVALID_FIELD``, as is
  a value that is not JSON; a value of the wrong type is
  ``INVALID_TYPE_ON_FIELD_IN_RECORD``. Datetimes become Salesforce's text
  (``2026-03-02T09:15:00.000+0000``), ids their 18-character form, empty text null.
- A unique or external id field's value held by another record is ``DUPLICATE_VALUE``
  (``RecordRules.unique_fields`` names them; the store looks the value up).
- Made ids are the object's key prefix, ``LC`` and a base62 number, with the checksum.

Every refusal is a ``_RecordError`` for that record alone, never for the whole write.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal, NoReturn

from crmsync.adapters.crm.salesforce_values import (
    base62,
    format_sf_datetime,
    normalize_id,
    parse_sf_datetime,
    salesforce_id,
)
from crmsync.errors import CrmError
from crmsync.ports import FieldInfo, WriteResult

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""An object or field API name."""

Mode = Literal["update", "create", "import"]

_ID_MARK = "LC"  # characters 4-5 of made ids (a pod id in Salesforce): never hand-written ids
_TEXT_TYPES = frozenset({"id", "reference", "string", "textarea", "picklist", "email", "phone"})
_ID_TYPES = frozenset({"id", "reference"})


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """One object's key prefix and declared fields (None: no schema, any field)."""

    key_prefix: str
    fields: dict[str, FieldInfo] | None


@dataclass(frozen=True, slots=True)
class Schema:
    """Every listed object, and the names of the system fields."""

    objects: dict[str, ObjectSchema]
    id_field: str
    created_field: str
    modified_field: str
    modstamp_field: str


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
            objects[name] = ObjectSchema(key_prefix=spec["key_prefix"], fields=fields)
        system = data["system_fields"]
        return Schema(
            objects=objects,
            id_field=system["id"],
            created_field=system["created"],
            modified_field=system["last_modified"],
            modstamp_field=system["modstamp"],
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
        self.system_fields = frozenset(
            {schema.id_field, schema.created_field, schema.modified_field, schema.modstamp_field}
        )
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
        """The id made for ``object``'s record number ``number`` (key prefix, ``LC``, the
        number in base62, the checksum)."""
        spec = self.schema.objects.get(object)
        prefix = spec.key_prefix if spec is not None else _default_prefix(object)
        return salesforce_id(prefix + _ID_MARK + base62(number, 10))

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
                info = FieldInfo(name, "datetime") if name != s.id_field else None
            out[name] = _normalize(name, info.type, value) if info is not None else value
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


def _normalize(name: str, kind: str, value: Any) -> Any:
    """A declared field's value as Salesforce stores it; raises ``_RecordError``."""

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
            return normalize_id(value) or value
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            wrong("a date-time text")
        if value == "":
            return None
        try:
            return format_sf_datetime(parse_sf_datetime(value))
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
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            wrong("a number")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            wrong("true or false")
        return value
    return value
