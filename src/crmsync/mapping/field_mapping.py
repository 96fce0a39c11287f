"""Field mappings (``mappings/*.yaml``): CRM records <-> canonical complaints.

The only place CRM field names exist is the mapping file; this module reads it, validates
it (file, line, what is wrong) and offers the conversions the services need:

* ``to_canonical``: a complaint record (+ its related records) -> canonical complaint;
* ``to_record``: a canonical complaint -> record fields (demo seeding, tests);
* ``flag_fields`` / ``task_fields``: write-back values in the CRM's own field names.

The mapping deals in neutral values: it reads any ISO-8601 date-time with an offset, and
writes instants through the CRM adapter's datetime text (``instant_text_of``), never a
format of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crmsync.domain.action_planning import FollowUp
from crmsync.domain.charter import Charter
from crmsync.domain.complaint import Complaint
from crmsync.errors import CharterFileError, MappingError, Problem
from crmsync.mapping.staff_text import format_local
from crmsync.mapping.validation_problems import problems_from_validation
from crmsync.mapping.yaml_source import YamlDocument, load_yaml, parse_yaml
from crmsync.ports import FieldFilter, Record, ValueFormats

FieldName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")]
CanonicalName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterSpec(_Strict):
    """``field`` equals (or is one of, or is not) a value."""

    field: FieldName
    equals: Scalar | None = None
    one_of: list[Scalar] | None = None
    not_equals: Scalar | None = None

    @model_validator(mode="after")
    def _one(self) -> FilterSpec:
        given = [x for x in (self.equals, self.one_of, self.not_equals) if x is not None]
        if len(given) != 1:
            raise ValueError("a filter needs exactly one of 'equals', 'one_of', 'not_equals'")
        return self

    def to_filter(self) -> FieldFilter:
        if self.equals is not None:
            return FieldFilter(self.field, "=", self.equals)
        if self.one_of is not None:
            return FieldFilter(self.field, "in", tuple(self.one_of))
        return FieldFilter(self.field, "!=", self.not_equals)


class AttributeSpec(_Strict):
    """A CRM field read as an attribute, with an optional picklist value map."""

    field: FieldName
    type: Literal["text", "number", "date", "datetime", "boolean", "picklist", "id"] = "text"
    values: dict[str, Scalar] | None = Field(
        default=None, description="CRM picklist value -> canonical value"
    )
    unmapped: Literal["error", "keep", "drop"] = Field(
        default="error",
        description="a CRM picklist value not in 'values': 'error' (the default) reports the "
        "record as an error naming the field and writes nothing for it; 'keep' passes the CRM "
        "value through unchanged; 'drop' treats the field as empty",
    )

    def crm_value(self, canonical: Any) -> Any:
        """What the CRM stores for the canonical picklist value ``canonical`` (the inverse
        of ``values``; an unknown value is given back unchanged). A choice mapped by its
        numbers (every key a whole number, quoted because YAML keys are text) is written as
        that number, as a CRM that keeps choices by number wants it. Of two keys for one
        canonical value, the last is written."""
        if self.values is None:
            return canonical
        reverse = {value: key for key, value in self.values.items()}
        if canonical not in reverse:
            return canonical
        key = reverse[canonical]
        return int(key) if _by_number(self.values) else key


_WHOLE_NUMBER = re.compile(r"-?[0-9]+\Z")


def _by_number(values: Mapping[str, Any]) -> bool:
    """Whether a picklist's CRM values are whole numbers (a choice kept by its number)."""
    return all(_WHOLE_NUMBER.match(key) for key in values)


class RelatedEventSpec(_Strict):
    """A many-valued event read from related records (e.g. customer updates from Tasks)."""

    object: FieldName
    parent_field: FieldName
    field: FieldName
    where: list[FilterSpec] = Field(default_factory=list)


class ComplaintsSpec(_Strict):
    object: FieldName
    where: list[FilterSpec] = Field(default_factory=list)
    id: FieldName = Field(description="the field holding a record's id (each CRM names its own)")
    modstamp: FieldName = Field(
        description="the field the CRM updates on every change of a record (its "
        "modification stamp): the incremental pull reads by it"
    )
    events: dict[CanonicalName, FieldName]
    related_events: dict[CanonicalName, RelatedEventSpec] = Field(default_factory=dict)
    attributes: dict[CanonicalName, FieldName | AttributeSpec] = Field(default_factory=dict)


class WriteBackSpec(_Strict):
    """The only complaint fields the worker ever writes."""

    status: FieldName
    status_values: dict[CanonicalName, Scalar] | None = Field(
        default=None,
        description="status flag -> the value the CRM stores for it (a choice's number); "
        "default: the flag's own name",
    )
    breaches: FieldName
    next_due: FieldName
    checked_at: FieldName
    archived_at: FieldName | None = None
    archive_ref: FieldName | None = None

    def status_value(self, status: str) -> Scalar:
        """What the CRM stores for the status flag ``status``."""
        return status if self.status_values is None else self.status_values.get(status, status)

    def status_of(self, stored: Any) -> Any:
        """The status flag a stored value stands for (the stored value when unknown)."""
        if self.status_values is None or stored is None:
            return stored
        for status, value in self.status_values.items():
            if value == stored or str(value) == str(stored):
                return status
        return stored


class TemplateText(_Strict):
    subject: str
    description: str


class LanguageTemplates(_Strict):
    """Texts for one language: per follow-up state, and per notice id."""

    at_risk: TemplateText
    breached: TemplateText
    missed_cycle: TemplateText
    incomplete: TemplateText
    notices: dict[str, TemplateText] = Field(default_factory=dict)
    clock_names: dict[str, str] = Field(default_factory=dict)


class FollowUpSpec(_Strict):
    """Follow-up tasks: target object, field names, values and texts by language."""

    object: FieldName
    key_field: FieldName
    subject: FieldName
    description: FieldName
    due_date: FieldName
    due_as: Literal["date", "instant"] = Field(
        default="date",
        description="what the due field holds: 'date', the due day in the charter's time zone"
        " (a date field), or 'instant', the due date and time itself (a date-time column)",
    )
    owner: FieldName
    parent: FieldName
    status: FieldName
    priority: FieldName
    extra: dict[FieldName, Scalar] = Field(default_factory=dict, description="constant fields")
    open_status: Scalar
    completed_status: Scalar
    priorities: dict[Literal["at_risk", "breached", "notice"], Scalar]
    language_attribute: CanonicalName = "language"
    default_language: str = "en"
    templates: dict[str, LanguageTemplates]

    @model_validator(mode="after")
    def _languages(self) -> FollowUpSpec:
        if self.default_language not in self.templates:
            raise ValueError(f"no templates for the default language '{self.default_language}'")
        return self


class FieldSpec(_Strict):
    """How one CRM field is made in the org (by the CRM's set-up command) and named to
    staff; every key is optional (the type and length follow from the field's role)."""

    type: (
        Literal["text", "long_text", "number", "date", "datetime", "boolean", "picklist", "lookup"]
        | None
    ) = Field(default=None, description="the field type to create (default: from its role)")
    length: Annotated[int, Field(ge=1, le=131072)] | None = Field(
        default=None, description="characters of a text field (default 255; long text 32768)"
    )
    reference_to: FieldName = Field(default="User", description="the object a lookup points at")
    description: Annotated[str, Field(max_length=1000)] | None = Field(
        default=None, description="what the field holds (the org's field description)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="language -> the field's name as staff read it (follow-up texts; the "
        "'en' label is the org's field label)",
    )


class MappingSpec(_Strict):
    """A mapping file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "crmsync field mapping", "$id": "crmsync-mapping.schema.json"},
    )

    mapping: str
    description: str | None = None
    complaints: ComplaintsSpec
    write_back: WriteBackSpec
    follow_ups: FollowUpSpec
    fields: dict[FieldName, dict[FieldName, FieldSpec]] = Field(
        default_factory=dict,
        description="object -> field -> how it is made and labelled (fields the mapping uses)",
    )


PLACEHOLDERS = frozenset(
    {
        "complaint_id",
        "clock",
        "clock_name",
        "state",
        "occurrence",
        "due",
        "due_at",
        "charter",
        "charter_title",
        "cycle",
        "missing",
        "notice",
    }
)


def _placeholders(doc: YamlDocument, spec: MappingSpec) -> list[Problem]:
    problems: list[Problem] = []
    formatter = string.Formatter()
    for lang, texts in spec.follow_ups.templates.items():
        items: list[tuple[tuple[str | int, ...], str]] = []
        for state in ("at_risk", "breached", "missed_cycle", "incomplete"):
            text: TemplateText = getattr(texts, state)
            items.append((("follow_ups", "templates", lang, state, "subject"), text.subject))
            items.append(
                (("follow_ups", "templates", lang, state, "description"), text.description)
            )
        for notice, text in texts.notices.items():
            base = ("follow_ups", "templates", lang, "notices", notice)
            items += [
                ((*base, "subject"), text.subject),
                ((*base, "description"), text.description),
            ]
        for loc, text_value in items:
            try:
                names = {n for _, n, _, _ in formatter.parse(text_value) if n is not None}
            except ValueError as exc:
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of(loc),
                        ".".join(map(str, loc)),
                        str(exc),
                        doc.column_of(loc),
                    )
                )
                continue
            unknown = sorted(names - PLACEHOLDERS)
            if unknown:
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of(loc),
                        ".".join(map(str, loc)),
                        f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)} "
                        f"(known: {', '.join(sorted(PLACEHOLDERS))})",
                        doc.column_of(loc),
                    )
                )
    return problems


# One encoder for every source hash: ``json.dumps`` with options builds one per call.
_HASH_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def _utc_text(moment: datetime, suffix: str) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of an aware datetime in UTC, then ``suffix``: the text of
    ``strftime("%Y-%m-%dT%H:%M:%S")`` (which pads no year below 1000) at half its cost."""
    u = moment.astimezone(UTC)
    if u.year < 1000:
        return u.strftime("%Y-%m-%dT%H:%M:%S") + suffix
    return f"{u.year}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}{suffix}"


def _is_millisecond_utc(text: str) -> bool:
    """Whether ``text`` (parsed already) is UTC text with milliseconds and ``+0000``,
    ``2026-03-02T09:15:00.000+0000``, with a four-digit year and an hour below 24: its UTC
    text is then its first 19 characters."""
    return (
        len(text) == 28
        and text[19] == "."
        and text[23:] == "+0000"
        and text[0] != "0"
        and text[11:13] != "24"
    )


InstantText = Callable[[int], str]
"""How a CRM writes an instant (whole seconds since 1970) as datetime text."""


def iso_instant_text(instant: int) -> str:
    """ISO-8601 UTC text of an instant: ``2026-03-02T09:15:00Z`` (a CRM adapter without
    datetime text of its own, ``ValueFormats``, is written this)."""
    return _utc_text(datetime.fromtimestamp(instant, UTC), "Z")


def instant_text_of(crm: object) -> InstantText:
    """The CRM adapter's own datetime text (``ValueFormats``), else ISO-8601 UTC text."""
    return crm.instant_text if isinstance(crm, ValueFormats) else iso_instant_text


def _iso(value: Any, record_id: str, field: str) -> str:
    """A CRM datetime value -> canonical ISO text with offset."""
    if not isinstance(value, str):
        raise MappingError(record_id, field, f"{value!r} is not a date-time")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MappingError(record_id, field, f"'{value}' is not a date-time") from exc
    if parsed.tzinfo is None:
        raise MappingError(record_id, field, f"'{value}' has no UTC offset")
    if _is_millisecond_utc(text):
        return text[:19] + "Z"
    return _utc_text(parsed, "Z")


@dataclass(frozen=True, slots=True)
class RelatedRead:
    """One read of a related object serving every related event kept in it (one per
    ``(object, parent_field)``): the filters all those events share go to the CRM, each
    event's own are applied to the rows read (``events_of``). ``fields`` holds the parent
    field, the events' fields and the fields their own filters test."""

    object: str
    parent_field: str
    fields: tuple[str, ...]
    where: tuple[FieldFilter, ...]
    events: tuple[tuple[str, tuple[FieldFilter, ...]], ...]

    def events_of(self, record: Record) -> list[str]:
        """The related events (names) ``record`` is a row of."""
        return [name for name, own in self.events if all(f.matches(record.fields) for f in own)]


def _related_reads(specs: Mapping[str, RelatedEventSpec]) -> tuple[RelatedRead, ...]:
    groups: dict[tuple[str, str], dict[str, tuple[FieldFilter, ...]]] = {}
    for name, rel in specs.items():
        groups.setdefault((rel.object, rel.parent_field), {})[name] = tuple(
            f.to_filter() for f in rel.where
        )
    reads = []
    for (object, parent_field), events in groups.items():
        first, *others = events.values()
        shared = tuple(f for f in first if all(f in other for other in others))
        own = {name: tuple(f for f in where if f not in shared) for name, where in events.items()}
        fields = [parent_field, *(specs[name].field for name in events)]
        fields += [f.field for where in own.values() for f in where]
        reads.append(
            RelatedRead(
                object, parent_field, tuple(dict.fromkeys(fields)), shared, tuple(own.items())
            )
        )
    return tuple(reads)


class FieldMapping:
    """A validated mapping file with the conversions between CRM records and complaints."""

    def __init__(self, spec: MappingSpec, source: str, content_hash: str) -> None:
        self.spec = spec
        self.source = source
        self.content_hash = content_hash
        c = spec.complaints
        self.complaint_object = c.object
        self.complaint_filters = tuple(f.to_filter() for f in c.where)
        self._attributes = {
            name: a if isinstance(a, AttributeSpec) else AttributeSpec(field=a)
            for name, a in c.attributes.items()
        }
        wb = spec.write_back
        self.flag_field_names = (wb.status, wb.breaches, wb.next_due, wb.checked_at)
        self.complaint_fields: tuple[str, ...] = tuple(
            dict.fromkeys(
                [
                    *c.events.values(),
                    *(a.field for a in self._attributes.values()),
                    *self.flag_field_names,
                    *(x for x in (wb.archived_at, wb.archive_ref) if x),
                ]
            )
        )
        self._related_reads = _related_reads(c.related_events)
        written = {*self.flag_field_names, wb.archived_at, wb.archive_ref}
        self._hashed_fields = tuple(k for k in self.complaint_fields if k not in written)

    # ------------------------------------------------------------------ reading
    def attribute_specs(self) -> dict[str, AttributeSpec]:
        """Canonical attribute name -> its spec (a bare field name is a text attribute)."""
        return dict(self._attributes)

    def event_names(self) -> frozenset[str]:
        """Every canonical event the mapping defines (fields and related records)."""
        c = self.spec.complaints
        return frozenset(c.events) | frozenset(c.related_events)

    def related_specs(self) -> dict[str, RelatedEventSpec]:
        return dict(self.spec.complaints.related_events)

    def related_reads(self) -> tuple[RelatedRead, ...]:
        """The related events grouped into one read per related object and parent field."""
        return self._related_reads

    def source_hash(self, record: Record) -> str:
        """A hash of the fields a complaint is built from (fields the worker writes left out)."""
        get = record.fields.get
        fields = {k: get(k) for k in self._hashed_fields}
        return hashlib.sha256(_HASH_ENCODER.encode(fields).encode()).hexdigest()

    def current_flags(self, record: Record) -> dict[str, Any]:
        """The write-back values as the record holds them now (canonical flag names)."""
        wb = self.spec.write_back
        return {
            "status": wb.status_of(record.fields.get(wb.status)),
            "breaches": record.fields.get(wb.breaches) or "",
            "next_due": _normal_datetime(record.fields.get(wb.next_due)),
        }

    def to_canonical(
        self, record: Record, related: Mapping[str, Sequence[Record]] | None = None
    ) -> dict[str, Any]:
        """The canonical complaint of ``record``; ``related`` maps related-event name ->
        that complaint's related records. Raises ``MappingError`` naming the field."""
        c = self.spec.complaints
        events: dict[str, Any] = {}
        for name, field in c.events.items():
            value = record.fields.get(field)
            if value not in (None, ""):
                events[name] = _iso(value, record.id, field)
        for name, rel in c.related_events.items():
            instants = []
            for child in (related or {}).get(name, ()):
                value = child.fields.get(rel.field)
                if value not in (None, ""):
                    instants.append(_iso(value, child.id, f"{rel.object}.{rel.field}"))
            if instants:
                events[name] = sorted(instants)
        attributes: dict[str, Any] = {}
        for name, attr in self._attributes.items():
            value = record.fields.get(attr.field)
            if value in (None, ""):
                continue
            converted = self._attribute(record.id, attr, value)
            if converted is not None:
                attributes[name] = converted
        return {
            "id": str(record.fields.get(c.id) or record.id),
            "events": events,
            "attributes": attributes,
        }

    def _attribute(self, record_id: str, attr: AttributeSpec, value: Any) -> Any:
        if attr.values is not None:
            key = str(value)
            if key in attr.values:
                return attr.values[key]
            if attr.unmapped == "error":
                raise MappingError(
                    record_id,
                    attr.field,
                    f"picklist value '{value}' is not mapped (known: {', '.join(attr.values)})",
                )
            return None if attr.unmapped == "drop" else value
        if attr.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise MappingError(record_id, attr.field, f"{value!r} is not a number")
            try:
                number = float(value)
            except ValueError as exc:
                raise MappingError(record_id, attr.field, f"'{value}' is not a number") from exc
            return int(number) if number.is_integer() else number
        if attr.type == "datetime":
            return _iso(value, record_id, attr.field)
        if attr.type == "date":
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError as exc:
                raise MappingError(record_id, attr.field, f"'{value}' is not a date") from exc
        return value

    # ------------------------------------------------------------------ writing
    def to_record(
        self, complaint: Mapping[str, Any], instant_text: InstantText
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Record fields for a canonical complaint, and related records by event name.

        The inverse of ``to_canonical`` (demo seeding, tests): picklists are mapped back,
        instants written as ``instant_text`` writes them (whole seconds; a date alone is its
        midnight UTC), the complaint filter's values set.
        """
        c = self.spec.complaints
        fields: dict[str, Any] = {}
        for f in c.where:
            if f.equals is not None:
                fields[f.field] = f.equals
        events = complaint.get("events", {})
        for name, field in c.events.items():
            if name in events:
                value = events[name]
                first = min(value) if isinstance(value, list) else value
                fields[field] = instant_text(_instant_of(first))
        for name, attr in self._attributes.items():
            if name not in complaint.get("attributes", {}):
                continue
            value = complaint["attributes"][name]
            if attr.values is not None:
                value = attr.crm_value(value)
            elif attr.type == "datetime":
                value = instant_text(_instant_of(value))
            fields[attr.field] = value
        related: dict[str, list[dict[str, Any]]] = {}
        for name, rel in c.related_events.items():
            values = events.get(name)
            if values is None:
                continue
            rows = []
            for value in values if isinstance(values, list) else [values]:
                row: dict[str, Any] = {rel.field: instant_text(_instant_of(value))}
                for f in rel.where:
                    if f.equals is not None:
                        row[f.field] = f.equals
                rows.append(row)
            related[name] = rows
        return fields, related

    def flag_fields(
        self, flags: Mapping[str, Any], checked_at: int, instant_text: InstantText
    ) -> dict[str, Any]:
        """Write-back field values for ``flags`` (canonical names) checked at ``checked_at``,
        instants written as ``instant_text`` writes them."""
        wb = self.spec.write_back
        next_due = flags.get("next_due")
        return {
            wb.status: wb.status_value(flags["status"]),
            wb.breaches: flags["breaches"],
            wb.next_due: None if next_due is None else instant_text(_instant_of(next_due)),
            wb.checked_at: instant_text(checked_at),
        }

    # ------------------------------------------------------------------ follow-ups
    def language_of(self, complaint: Complaint, charter: Charter) -> str:
        """The complaint's language if templates exist for it, else the charter's, else the
        mapping's default."""
        fu = self.spec.follow_ups
        wanted = complaint.attributes.get(fu.language_attribute)
        for candidate in (wanted, charter.language, fu.default_language):
            if isinstance(candidate, str) and candidate in fu.templates:
                return candidate
        return fu.default_language

    def task_fields(
        self,
        follow_up: FollowUp,
        complaint: Complaint,
        charter: Charter,
        instant_text: InstantText,
    ) -> dict[str, Any]:
        """The Task fields of a follow-up: texts in the complaint's language (``{due}`` as
        local date and time written the language's way, ``{due_at}`` as ``instant_text``
        writes the due instant, ``{missing}`` as the attributes' labels in that language),
        owner by rule (manager falls back to owner), the due field as the local due
        day or, with ``due_as: instant``, as ``instant_text`` writes the due instant; the
        idempotency key."""
        fu = self.spec.follow_ups
        lang = self.language_of(complaint, charter)
        texts = fu.templates[lang]
        default = fu.templates[fu.default_language]
        if follow_up.reason == "notice":
            template = texts.notices.get(follow_up.clock) or default.notices.get(follow_up.clock)
            if template is None:
                template = TemplateText(
                    subject="Complaint {complaint_id}: {notice}",
                    description="The {charter_title} charter asks for '{notice}' here.",
                )
        else:
            template = getattr(texts, follow_up.reason)
        zone = charter.calendar.zone
        due_local = "" if follow_up.due_at is None else format_local(follow_up.due_at, zone, lang)
        clock_name = (
            texts.clock_names.get(follow_up.clock)
            or default.clock_names.get(follow_up.clock)
            or follow_up.clock
        )
        values = {
            "complaint_id": complaint.id,
            "clock": follow_up.clock,
            "clock_name": clock_name,
            "state": follow_up.state,
            "occurrence": str(follow_up.occurrence),
            "cycle": str(follow_up.occurrence + 1),
            "due": due_local,
            "due_at": "" if follow_up.due_at is None else instant_text(follow_up.due_at),
            "charter": charter.name,
            "charter_title": charter.title,
            "missing": ", ".join(self.attribute_label(n, lang) for n in follow_up.missing),
            "notice": follow_up.clock,
        }
        owner = complaint.attributes.get("owner")
        manager = complaint.attributes.get("manager")
        recipient = manager if follow_up.to == "manager" and manager else owner
        due_date: str | None = None
        if follow_up.due_at is not None:
            due_date = (
                instant_text(follow_up.due_at)
                if fu.due_as == "instant"
                else datetime.fromtimestamp(max(follow_up.due_at, 0), zone).date().isoformat()
            )
        priority_key: Literal["at_risk", "breached", "notice"] = "breached"
        if follow_up.reason == "notice":
            priority_key = "notice"
        elif follow_up.state == "at_risk":
            priority_key = "at_risk"
        fields: dict[str, Any] = dict(fu.extra)
        fields.update(
            {
                fu.key_field: follow_up.key,
                fu.subject: template.subject.format_map(values)[:255],
                fu.description: template.description.format_map(values),
                fu.due_date: due_date,
                fu.parent: complaint.id,
                fu.status: fu.open_status,
                fu.priority: fu.priorities.get(priority_key, "Normal"),
            }
        )
        if recipient:
            fields[fu.owner] = recipient
        return fields

    def field_spec(self, object: str, field: str) -> FieldSpec:
        """What the ``fields:`` section says about ``object.field`` (defaults when nothing)."""
        return self.spec.fields.get(object, {}).get(field) or FieldSpec()

    def attribute_label(self, attribute: str, language: str) -> str:
        """An attribute's name as staff read it in ``language``: its field's label in that
        language, else its English label, else the attribute's own name."""
        attr = self._attributes.get(attribute)
        if attr is None:
            return attribute
        labels = self.field_spec(self.complaint_object, attr.field).labels
        return labels.get(language) or labels.get("en") or attribute

    def completion_fields(self) -> dict[str, Any]:
        """What marks a follow-up done: ``{status field: completed value}``."""
        fu = self.spec.follow_ups
        return {fu.status: fu.completed_status}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _instant_of(value: str) -> int:
    """Whole seconds since 1970 (floored) of canonical ISO text; a date alone is its
    midnight UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:  # a date alone
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _SECOND


def _normal_datetime(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        return str(value)
    return _utc_text(parsed, "Z")


def mapping_from_document(doc: YamlDocument, content_hash: str) -> FieldMapping:
    """Validate a parsed mapping document; ``CharterFileError`` lists every problem.

    Problems kept by a ``keep_going`` parse (duplicate YAML keys) are reported beside the
    schema's own problems.
    """
    problems = list(doc.problems)
    try:
        spec = MappingSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from_validation(doc, exc, MappingSpec)
        raise CharterFileError(doc.file, _in_order(problems)) from exc
    problems += _placeholders(doc, spec)
    if problems:
        raise CharterFileError(doc.file, _in_order(problems))
    mapping = FieldMapping(spec, doc.file, content_hash)
    problems = _unused_field_specs(doc, mapping)
    if problems:
        raise CharterFileError(doc.file, problems)
    return mapping


def _unused_field_specs(doc: YamlDocument, mapping: FieldMapping) -> list[Problem]:
    """A ``fields:`` entry for a field the mapping does not use (a rename done on one side
    only) is a problem naming its line."""
    used = {(obj, name) for obj, name, _role in iter_fields(mapping)}
    problems = []
    for obj, specs in mapping.spec.fields.items():
        for name in specs:
            if (obj, name) not in used:
                loc = ("fields", obj, name)
                problems.append(
                    Problem(
                        doc.file,
                        doc.line_of(loc),
                        ".".join(loc),
                        f"{obj}.{name} is not a field this mapping reads or writes",
                        doc.column_of(loc),
                    )
                )
    return problems


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))


def load_mapping(path: Path | str) -> FieldMapping:
    """Load and validate a mapping file; ``CharterFileError`` names file and lines."""
    path = Path(path)
    doc = load_yaml(path, keep_going=True)
    return mapping_from_document(doc, hashlib.sha256(path.read_bytes()).hexdigest())


def load_mapping_text(text: str, file: str = "<text>") -> FieldMapping:
    """Validate mapping YAML given as text (tests)."""
    doc = parse_yaml(text, file, keep_going=True)
    return mapping_from_document(doc, hashlib.sha256(text.encode()).hexdigest())


def mapping_json_schema() -> dict[str, Any]:
    """The JSON Schema shipped as ``mappings/mapping.schema.json``."""
    return MappingSpec.model_json_schema()


def iter_fields(mapping: FieldMapping) -> Iterable[tuple[str, str, str]]:
    """``(object, field, role)`` for every CRM field the mapping names (for online checks)."""
    c = mapping.spec.complaints
    for field in c.events.values():
        yield c.object, field, "read"
    for attr in mapping.attribute_specs().values():
        yield c.object, attr.field, "read"
    for f in c.where:
        yield c.object, f.field, "read"
    for name in mapping.flag_field_names:
        yield c.object, name, "write"
    wb = mapping.spec.write_back
    for optional in (wb.archived_at, wb.archive_ref):
        if optional:
            yield c.object, optional, "write"
    for rel in c.related_events.values():
        yield rel.object, rel.field, "read"
        yield rel.object, rel.parent_field, "read"
    fu = mapping.spec.follow_ups
    for name in (
        fu.subject,
        fu.description,
        fu.due_date,
        fu.owner,
        fu.parent,
        fu.status,
        fu.priority,
        *fu.extra,
    ):
        yield fu.object, name, "write"
    yield fu.object, fu.key_field, "external_id"
