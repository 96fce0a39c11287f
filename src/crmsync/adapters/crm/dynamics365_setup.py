"""crmsync's own columns, status choice and follow-up key in a Dataverse org, created
through the Web API's metadata endpoints (``EntityDefinitions(...)/Attributes`` and
``/Keys``).

``plan`` compares what is wanted with the tables' definitions and lists only what is
missing (so running it again changes nothing); ``apply`` creates those, one request each,
and reports each refusal by name. A column that exists with another type is reported,
never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from crmsync.errors import CrmError
from crmsync.ports import FieldInfo

ColumnKind = Literal["choice", "text", "datetime"]


class MetadataClient(Protocol):
    """What set-up needs of the Dataverse adapter."""

    def describe(self, object: str) -> dict[str, FieldInfo]: ...

    def post_metadata(self, path: str, body: Mapping[str, Any]) -> None: ...


_TYPE_OF = {"choice": "picklist", "text": "string", "datetime": "datetime"}
_LANGUAGE = 1033  # labels in English; admins may translate them in the maker portal


@dataclass(frozen=True)
class Wanted:
    """A column crmsync needs (``kind``, a choice's ``options`` by number) or, with
    ``key``, an alternate key on that one column."""

    table: str
    column: str
    kind: ColumnKind = "text"
    label: str = ""
    options: Mapping[int, str] = field(default_factory=dict)
    key: bool = False

    def describe(self) -> str:
        if self.key:
            return f"alternate key {self.column} on {self.table}.{self.column}"
        extra = f", {len(self.options)} values" if self.options else ""
        return f"column {self.table}.{self.column} ({self.kind}{extra})"


@dataclass(frozen=True)
class Step:
    """One thing to do: ``create`` a missing column or key, or ``conflict`` (a column of
    another type: named, never changed)."""

    action: Literal["create", "conflict"]
    wanted: Wanted
    note: str = ""


def plan(crm: MetadataClient, wanted: Sequence[Wanted]) -> list[Step]:
    """What is missing in the org (one describe per table)."""
    steps: list[Step] = []
    described: dict[str, Any] = {}
    for item in wanted:
        if item.table not in described:
            described[item.table] = crm.describe(item.table)
        columns = described[item.table]
        info = columns.get(item.column)
        if item.key:
            if info is None or not info.external_id:
                steps.append(Step("create", item))
        elif info is None:
            steps.append(Step("create", item))
        elif info.type != _TYPE_OF[item.kind]:
            steps.append(Step("conflict", item, f"it exists as {info.type}"))
    return steps


def _label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": _LANGUAGE}]}


def attribute_body(item: Wanted) -> dict[str, Any]:
    """The attribute metadata Dataverse creates the column from."""
    body: dict[str, Any] = {
        "SchemaName": item.column,
        "DisplayName": _label(item.label or item.column),
        "RequiredLevel": {"Value": "None"},
    }
    if item.kind == "text":
        body |= {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "MaxLength": 255,
            "FormatName": {"Value": "Text"},
        }
    elif item.kind == "datetime":
        body |= {
            "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
            "Format": "DateAndTime",
            "DateTimeBehavior": {"Value": "UserLocal"},
        }
    else:
        body |= {
            "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            "OptionSet": {
                "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
                "IsGlobal": False,
                "OptionSetType": "Picklist",
                "Options": [
                    {"Value": value, "Label": _label(name)}
                    for value, name in sorted(item.options.items())
                ],
            },
        }
    return body


def key_body(item: Wanted) -> dict[str, Any]:
    return {
        "SchemaName": item.column,
        "DisplayName": _label(item.label or item.column),
        "KeyAttributes": [item.column],
    }


def apply(crm: MetadataClient, steps: Sequence[Step]) -> list[tuple[Step, str | None]]:
    """Create every ``create`` step (columns before keys); per step None when done, else
    the org's reason. Conflicts are not touched."""
    todo = [s for s in steps if s.action == "create"]
    todo.sort(key=lambda s: s.wanted.key)
    done: list[tuple[Step, str | None]] = []
    for step in todo:
        item = step.wanted
        part = "Keys" if item.key else "Attributes"
        body = key_body(item) if item.key else attribute_body(item)
        try:
            crm.post_metadata(f"EntityDefinitions(LogicalName='{item.table}')/{part}", body)
        except CrmError as exc:
            done.append((step, str(exc)))
        else:
            done.append((step, None))
    return done


_LABELS = {
    "status": "Charter status",
    "breaches": "Charter breaches",
    "next_due": "Charter next due",
    "checked_at": "Charter checked",
    "archived_at": "Archived on",
    "archive_ref": "Archive reference",
}
_KINDS: dict[str, ColumnKind] = {
    "status": "choice",
    "breaches": "text",
    "next_due": "datetime",
    "checked_at": "datetime",
    "archived_at": "datetime",
    "archive_ref": "text",
}


def wanted_for(
    complaint_table: str,
    write_back: Mapping[str, str | None],
    status_values: Mapping[str, Any] | None,
    task_table: str,
    key_column: str,
) -> list[Wanted]:
    """crmsync's columns: each write-back column (``write_back``: role -> column, a role
    without a column left out), the status choice's options from ``status_values`` (role
    -> number; required, Dataverse choices are numbers), the follow-up key column and its
    alternate key."""
    options: dict[int, str] = {}
    for status, value in (status_values or {}).items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise CrmError(
                f"write_back.status_values.{status}: a Dataverse choice value is a whole "
                f"number, not {value!r}"
            )
        options[value] = status
    if not options:
        raise CrmError("write_back.status_values: Dataverse needs the status choice's numbers")
    wanted = [
        Wanted(
            complaint_table,
            column,
            _KINDS[role],
            _LABELS[role],
            options if role == "status" else {},
        )
        for role, column in write_back.items()
        if column
    ]
    wanted.append(Wanted(task_table, key_column, "text", "crmsync key"))
    wanted.append(Wanted(task_table, key_column, "text", "crmsync key", key=True))
    return wanted
