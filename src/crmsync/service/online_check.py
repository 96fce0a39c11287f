"""``crmsync check --online``: does the org hold the fields the mapping names, with usable
types and the access the worker needs?

``expectations`` turns a mapping into what each CRM field must be; ``compare`` checks them
against what ``CrmPort.describe`` reported (pure: FieldInfo dicts in, problems out), so the
same check runs against the local CRM and a real org. Every problem is reported, none
stops the others.

Rules: datetime events (and related-event instants, the modstamp, ``checked_at``,
``next_due``, ``archived_at``) must be ``datetime`` (events may also be ``date``); number
attributes ``double``/``int``/``percent``/``currency``; date attributes ``date`` or
``datetime``; id attributes and parent links ``id``/``reference``; boolean attributes
``boolean``. Case write-back fields must be updateable; Task fields the worker sets on a
follow-up must be createable (the status also updateable, to complete it); the follow-up
key field must be a unique external id.

What fixes a problem is the CRM adapter's to say (``OnlineRemedies``: a deploy, a set-up
command, a privilege); ``FIXED_SCHEMA``, for a CRM whose schema cannot be changed (the
local CRM), says the mapping is what to change.

Picklists (``picklists``): every picklist map is held against the org's active values
(org values the mapping does not map, unless the attribute says ``unmapped`` explicitly;
mapped values the org does not have), and so is every value the worker writes into or
filters on a picklist (the status flag, the follow-up's status, priority and constants,
the complaint and related-event filters; text or a whole number, a choice's value).

Access (``access_needs``): what the worker does to each object's records (read the
complaints and update them, read the related records, read, create, update and link
follow-ups to their complaints and owners), asked of a CRM adapter that can say more than
``describe`` does (``AccessCheck``: the security role a CRM grants its API user).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crmsync.domain.flag_status import FLAG_VALUES
from crmsync.errors import CrmError
from crmsync.mapping.field_mapping import AttributeSpec, FieldMapping, iter_fields
from crmsync.ports import Access, AccessCheck, ChoiceOptions, CrmPort, FieldInfo, OnlineRemedies


class _FixedSchema:
    """The remedies of a CRM whose schema is fixed: a field it lacks is a mapping mistake."""

    def missing(self, field: str, roles: str) -> str:
        return f"missing (used as {roles}): the CRM has no such field"

    def not_writable(self, field: str) -> str:
        return "the CRM does not let it be written"

    def not_a_choice(self, field: str) -> str:
        return "add it to the org's picklist values"


FIXED_SCHEMA: OnlineRemedies = _FixedSchema()

DATETIME = frozenset({"datetime"})
EVENT = frozenset({"datetime", "date"})
NUMBER = frozenset({"double", "int", "long", "percent", "currency"})
DATE = frozenset({"date", "datetime"})
ID = frozenset({"id", "reference"})
BOOLEAN = frozenset({"boolean"})
TEXT = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "email", "phone", "url", "combobox"}
)
PICKLIST = frozenset({"picklist", "string", "combobox"})
_ATTRIBUTE_TYPES: dict[str, frozenset[str] | None] = {
    "number": NUMBER,
    "date": DATE,
    "datetime": DATETIME,
    "boolean": BOOLEAN,
    "id": ID,
    "picklist": None,  # a mapped picklist may be any text-like or number type
    "text": None,
}


@dataclass
class Expectation:
    """What one CRM field must be, merged over every role the mapping gives it."""

    object: str
    field: str
    roles: list[str] = dataclasses.field(default_factory=list)
    types: frozenset[str] | None = None  # None: any type will do
    createable: bool = False
    updateable: bool = False
    unique_external_id: bool = False

    def need(
        self,
        role: str,
        types: frozenset[str] | None = None,
        *,
        createable: bool = False,
        updateable: bool = False,
        unique_external_id: bool = False,
    ) -> None:
        if role not in self.roles:
            self.roles.append(role)
        if types is not None:
            self.types = types if self.types is None else self.types & types
        self.createable |= createable
        self.updateable |= updateable
        self.unique_external_id |= unique_external_id


@dataclass(frozen=True, slots=True)
class OnlineProblem:
    """One field (or object) that does not fit the mapping."""

    object: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.object if self.field is None else f"{self.object}.{self.field}"
        return f"{where}: {self.message}"


def expectations(mapping: FieldMapping) -> dict[tuple[str, str], Expectation]:
    """Every field the mapping names, with its type and access needs."""
    out: dict[tuple[str, str], Expectation] = {}

    def at(object: str, name: str) -> Expectation:
        return out.setdefault((object, name), Expectation(object, name))

    for object, name, role in iter_fields(mapping):  # existence of every named field
        at(object, name).need(role)
    c = mapping.spec.complaints
    at(c.object, c.id).need("id", ID)
    at(c.object, c.modstamp).need("incremental sync", DATETIME)
    for event, name in c.events.items():
        at(c.object, name).need(f"event {event}", EVENT)
    for event, rel in c.related_events.items():
        at(rel.object, rel.field).need(f"event {event}", EVENT)
        at(rel.object, rel.parent_field).need(f"parent of {event}", ID)
    for attribute, spec in c.attributes.items():
        attr = spec if isinstance(spec, AttributeSpec) else AttributeSpec(field=spec)
        at(c.object, attr.field).need(f"attribute {attribute}", _ATTRIBUTE_TYPES[attr.type])
    wb = mapping.spec.write_back
    written: dict[str, tuple[str | None, frozenset[str]]] = {
        "status": (wb.status, PICKLIST),
        "breaches": (wb.breaches, frozenset({"string", "textarea"})),
        "next_due": (wb.next_due, DATETIME),
        "checked_at": (wb.checked_at, DATETIME),
        "archived_at": (wb.archived_at, DATETIME),
        "archive_ref": (wb.archive_ref, frozenset({"string", "textarea"})),
    }
    for what, (optional, types) in written.items():
        if optional:
            at(c.object, optional).need(f"write-back {what}", types, updateable=True)
    fu = mapping.spec.follow_ups
    tasks = {
        "subject": (fu.subject, frozenset({"string", "textarea"})),
        "description": (fu.description, frozenset({"string", "textarea"})),
        "due date": (fu.due_date, DATE),
        "owner": (fu.owner, ID),
        "parent": (fu.parent, ID),
        "priority": (fu.priority, PICKLIST),
    }
    for what, (name, types) in tasks.items():
        at(fu.object, name).need(f"follow-up {what}", types, createable=True)
    at(fu.object, fu.status).need("follow-up status", PICKLIST, createable=True, updateable=True)
    for name in fu.extra:
        at(fu.object, name).need("follow-up constant", createable=True)
    at(fu.object, fu.key_field).need(
        "follow-up key", TEXT, createable=True, unique_external_id=True
    )
    return out


def compare(
    wanted: Iterable[Expectation],
    described: Mapping[str, Mapping[str, FieldInfo] | None],
    *,
    remedies: OnlineRemedies = FIXED_SCHEMA,
) -> list[OnlineProblem]:
    """Every way the described objects fail the expectations (an object described as None
    could not be described at all); ``remedies`` (the CRM adapter's) names each fix."""
    problems: list[OnlineProblem] = []
    reported_objects: set[str] = set()
    for exp in wanted:
        fields = described.get(exp.object)
        roles = ", ".join(exp.roles)
        if fields is None:
            if exp.object not in reported_objects:
                reported_objects.add(exp.object)
                problems.append(OnlineProblem(exp.object, None, "object not found in the CRM"))
            continue
        info = fields.get(exp.field)
        if info is None:
            problems.append(
                OnlineProblem(exp.object, exp.field, remedies.missing(exp.field, roles))
            )
            continue
        access = remedies.not_writable(exp.field)
        if exp.types is not None and info.type not in exp.types:
            problems.append(
                OnlineProblem(
                    exp.object,
                    exp.field,
                    f"type {info.type} does not fit {roles} "
                    f"(expected {' or '.join(sorted(exp.types)) or 'no single type: roles clash'})",
                )
            )
        if exp.createable and not info.createable:
            problems.append(
                OnlineProblem(
                    exp.object,
                    exp.field,
                    f"not createable (the worker sets it: {roles}): {access}",
                )
            )
        if exp.updateable and not info.updateable:
            problems.append(
                OnlineProblem(
                    exp.object,
                    exp.field,
                    f"not updateable (the worker writes it: {roles}): {access}",
                )
            )
        if exp.unique_external_id and not (info.external_id and info.unique):
            missing = [
                n
                for n, ok in (("external id", info.external_id), ("unique", info.unique))
                if not ok
            ]
            problems.append(
                OnlineProblem(
                    exp.object,
                    exp.field,
                    f"must be a unique external id ({roles}); "
                    f"it is not {' and not '.join(missing)}",
                )
            )
    return problems


def picklists(
    mapping: FieldMapping,
    described: Mapping[str, Mapping[str, FieldInfo] | None],
    *,
    remedies: OnlineRemedies = FIXED_SCHEMA,
) -> list[OnlineProblem]:
    """Every picklist map and every value the worker writes or filters on, against the
    org's active picklist values (fields described as picklists only); ``remedies`` (the
    CRM adapter's) names the fix for a value the worker needs."""
    problems: list[OnlineProblem] = []

    def org_values(obj: str, field: str) -> tuple[str, ...] | None:
        info = (described.get(obj) or {}).get(field)
        return None if info is None else info.picklist_values

    c = mapping.spec.complaints
    for attribute, given in c.attributes.items():
        attr = given if isinstance(given, AttributeSpec) else AttributeSpec(field=given)
        values = org_values(c.object, attr.field)
        if attr.values is None or values is None:
            continue
        where = f"attributes.{attribute}.values"
        for value in attr.values:
            if value not in values:
                problems.append(
                    OnlineProblem(
                        c.object,
                        attr.field,
                        f"mapped value '{value}' ({where}) is not a value of the org's "
                        f"picklist (it has: {', '.join(values)})",
                    )
                )
        if "unmapped" in attr.model_fields_set and attr.unmapped != "error":
            continue  # the mapping says what to do with the values it does not map
        for value in values:
            if value not in attr.values:
                problems.append(
                    OnlineProblem(
                        c.object,
                        attr.field,
                        f"the org's picklist value '{value}' is not mapped: add it to {where} "
                        "(or say `unmapped: keep`/`drop` for the attribute)",
                    )
                )
    wb = mapping.spec.write_back
    fu = mapping.spec.follow_ups
    used: list[tuple[str, str, str, str]] = [  # object, field, value, what uses it
        *(
            (c.object, wb.status, str(wb.status_value(v)), "written as the status flag")
            for v in FLAG_VALUES
        ),
        (fu.object, fu.status, str(fu.open_status), "a follow-up's status"),
        (fu.object, fu.status, str(fu.completed_status), "a completed follow-up's status"),
        *(
            (fu.object, fu.priority, str(p), "a follow-up's priority")
            for p in fu.priorities.values()
        ),
        *(
            (fu.object, name, str(v), "a follow-up constant")
            for name, v in fu.extra.items()
            if isinstance(v, str)
        ),
    ]
    filters = [(c.object, f) for f in c.where] + [
        (rel.object, f) for rel in c.related_events.values() for f in rel.where
    ]
    for obj, f in filters:
        for v in [f.equals, f.not_equals, *(f.one_of or [])]:
            if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
                used.append((obj, f.field, str(v), "a filter value"))
    for obj, field, value, what in dict.fromkeys(used):
        values = org_values(obj, field)
        if values is None or value in values:
            continue
        fix = remedies.not_a_choice(field)
        problems.append(
            OnlineProblem(
                obj, field, f"'{value}' ({what}) is not a value of the org's picklist: {fix}"
            )
        )
    return problems


def access_needs(mapping: FieldMapping) -> dict[str, frozenset[Access]]:
    """Object -> what the worker does to its records: reads and updates the complaints
    (and links follow-ups to them), reads the related records, reads, creates, updates
    (completes) follow-ups, links each to its complaint and gives it to its owner."""
    needs: dict[str, set[Access]] = {}
    c = mapping.spec.complaints
    fu = mapping.spec.follow_ups
    needs.setdefault(c.object, set()).update(("read", "update", "linked_to"))
    for rel in c.related_events.values():
        needs.setdefault(rel.object, set()).add("read")
    needs.setdefault(fu.object, set()).update(("read", "create", "update", "link", "assign"))
    return {obj: frozenset(access) for obj, access in needs.items()}


def describe_all(
    crm: CrmPort, objects: Iterable[str]
) -> tuple[dict[str, dict[str, FieldInfo] | None], list[OnlineProblem]]:
    """Describe each object once (with its choice fields' values, from a CRM that gives them
    apart: ``ChoiceOptions``); an object the CRM refuses maps to None, with why."""
    described: dict[str, dict[str, FieldInfo] | None] = {}
    problems: list[OnlineProblem] = []
    for object in dict.fromkeys(objects):
        try:
            fields = crm.describe(object)
            if isinstance(crm, ChoiceOptions):
                for name, values in crm.choice_values(object).items():
                    if name in fields:
                        fields[name] = dataclasses.replace(fields[name], picklist_values=values)
            described[object] = fields
        except CrmError as exc:
            described[object] = None
            problems.append(OnlineProblem(object, None, f"cannot be described: {exc}"))
    return described, problems


def check_online(
    crm: CrmPort, mapping: FieldMapping, *, remedies: OnlineRemedies = FIXED_SCHEMA
) -> list[OnlineProblem]:
    """Describe every object the mapping names and report every problem at once, each
    with the fix ``remedies`` (the CRM adapter's) names."""
    wanted = expectations(mapping)
    described, problems = describe_all(crm, (obj for obj, _field in wanted))
    failed = {p.object for p in problems}
    found = (
        problems
        + [
            p
            for p in compare(wanted.values(), described, remedies=remedies)
            if not (p.field is None and p.object in failed)
        ]
        + picklists(mapping, described, remedies=remedies)
    )
    if isinstance(crm, AccessCheck):
        needs = {o: a for o, a in access_needs(mapping).items() if described.get(o) is not None}
        try:
            lacking = crm.access_problems(needs)
        except CrmError as exc:
            lacking = [(mapping.complaint_object, f"access could not be checked: {exc}")]
        found += [OnlineProblem(obj, None, message) for obj, message in lacking]
    return found
