"""What ``crmsync check --online`` asks a Dataverse org beyond a table's columns: each choice
column's options, and whether the application user's security role grants what crmsync
does to each table.

Choices: ``EntityDefinitions(LogicalName='t')/Attributes/Microsoft.Dynamics.CRM.
PicklistAttributeMetadata`` with its ``OptionSet`` (a local choice) and ``GlobalOptionSet``
(a choice shared between tables), one request a table; a choice's values are its options'
numbers as text.

Privileges: ``WhoAmI`` names the application user, its function
``systemusers(id)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`` lists every privilege
its roles (and its teams') grant, by name and depth. A table's privilege is ``prv`` + the
access (``Read``, ``Create``, ``Write``, ``Append``, ``AppendTo``, ``Assign``) + the
table's schema name, or ``Activity`` for an activity table such as ``task``. Reading and
updating must reach beyond the user's own rows (depth ``Local``, ``Deep`` or ``Global``:
Business Unit or wider in the role editor); the others may be held at any depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crmsync.errors import CrmError
from crmsync.ports import Access

GetJson = Callable[[str, str], Any]
"""``(url, operation)`` -> the JSON object the Web API answers (``CrmError`` otherwise)."""

_PRIVILEGE: dict[Access, tuple[str, str]] = {  # access -> (privilege verb, what it allows)
    "read": ("Read", "read its rows"),
    "create": ("Create", "create rows"),
    "update": ("Write", "update its rows"),
    "link": ("Append", "link its rows to a case"),
    "linked_to": ("AppendTo", "have follow-ups linked to its rows"),
    "assign": ("Assign", "give its rows to their owner"),
}
_ROLE_NAMES = {"AppendTo": "Append To"}  # how the role editor names a privilege
_BEYOND_ITS_OWN: frozenset[Access] = frozenset({"read", "update"})
_DEPTHS = {0: "Basic", 1: "Local", 2: "Deep", 3: "Global"}
_WIDE = frozenset({"Local", "Deep", "Global"})
_LEVELS = {"Basic": "User"}


def choice_values(get_json: GetJson, base: str, table: str) -> dict[str, tuple[str, ...]]:
    """Each choice column of ``table`` (a checked logical name) -> its options' values."""
    body = get_json(
        f"{base}EntityDefinitions(LogicalName='{table}')/Attributes/"
        "Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName"
        "&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)",
        f"choices of {table}",
    )
    out: dict[str, tuple[str, ...]] = {}
    for column in body.get("value") or []:
        if not isinstance(column, dict) or not isinstance(column.get("LogicalName"), str):
            continue
        local, shared = column.get("OptionSet"), column.get("GlobalOptionSet")
        options = (local or {}).get("Options") or (shared or {}).get("Options") or []
        out[column["LogicalName"]] = tuple(
            str(o["Value"]) for o in options if isinstance(o, dict) and "Value" in o
        )
    return out


def access_problems(
    get_json: GetJson, base: str, needs: Mapping[str, frozenset[Access]]
) -> list[tuple[str, str]]:
    """``(table, problem and its fix)`` for each privilege the application user lacks, or
    holds below the depth crmsync needs; tables are checked logical names."""
    user = get_json(f"{base}WhoAmI", "who am I").get("UserId")
    if not isinstance(user, str):
        raise CrmError("who am I: Dataverse named no user")
    answer = get_json(
        f"{base}systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
        "the application user's privileges",
    )
    held: dict[str, str] = {}
    for privilege in answer.get("RolePrivileges") or []:
        if isinstance(privilege, dict) and isinstance(privilege.get("PrivilegeName"), str):
            depth = privilege.get("Depth")
            named = _DEPTHS.get(depth, depth) if isinstance(depth, int) else depth
            held[privilege["PrivilegeName"].lower()] = str(named)
    problems: list[tuple[str, str]] = []
    for table, accesses in needs.items():
        definition = get_json(
            f"{base}EntityDefinitions(LogicalName='{table}')?$select=SchemaName,IsActivity",
            f"describe {table}",
        )
        entity = "Activity" if definition.get("IsActivity") else definition.get("SchemaName")
        if not isinstance(entity, str):
            raise CrmError(f"describe {table}: Dataverse named no schema name")
        for access in (a for a in _PRIVILEGE if a in accesses):
            verb, allows = _PRIVILEGE[access]
            name = f"prv{verb}{entity}"
            depth = held.get(name.lower())
            shown = _ROLE_NAMES.get(verb, verb)
            if depth is None:
                level = "Business Unit or Organization" if access in _BEYOND_ITS_OWN else "any"
                problems.append(
                    (
                        table,
                        f"the application user may not {allows} (no {name}): grant "
                        f"{shown} on {entity} at {level} level in its security role",
                    )
                )
            elif access in _BEYOND_ITS_OWN and depth not in _WIDE:
                problems.append(
                    (
                        table,
                        f"the application user may {allows} only at {_LEVELS.get(depth, depth)}"
                        f" level ({name}): set {shown} on {entity} to Business Unit or "
                        "Organization in its security role",
                    )
                )
    return problems
