"""``crmsync salesforce metadata``: the org's custom fields and permissions, made from the
mapping (never kept by hand).

``custom_fields`` derives, for every custom field (``__c``) the mapping reads or writes,
what the org must hold: its Metadata API type from the field's role (events and write-back
instants ``DateTime``; number attributes ``Number``; picklist attributes ``Picklist`` with
the mapped values, unrestricted because staff fill them; the status the worker writes a
restricted ``Picklist`` of the charter statuses; id attributes a ``Lookup``; other text
``Text(255)``), overridden by the mapping's ``fields:`` section (type, length, description,
labels). The follow-up key is a unique, case-sensitive external id. Custom fields of Task
live on ``Activity`` in the Metadata API.

Two layouts of the same components:

* ``source_files``: a complete Salesforce DX project that ``sf project deploy start``
  accepts from its own folder: ``sfdx-project.json``, the source under
  ``force-app/main/default/`` (``objects/<Object>/fields/<Field>.field-meta.xml``,
  ``permissionsets/CrmSync_Integration.permissionset-meta.xml``) and
  ``manifest/package.xml``; committed under ``salesforce/`` for the bundled mapping;
* ``deploy_zip``: the Metadata API's deploy format (``objects/<Object>.object`` holding the
  fields, ``permissionsets/<name>.permissionset``, ``package.xml``).

Elements are written in the Metadata API's schema order (alphabetical, ``fullName``
first), so the files deploy as they are and never change unless the mapping does.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from crmsync.domain.flag_status import FLAG_VALUES
from crmsync.mapping.field_mapping import AttributeSpec, FieldMapping, FieldSpec
from crmsync.private_file import PrivateFile

NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
API_VERSION = "62.0"
PERMISSION_SET = "CrmSync_Integration"
#: what the worker writes into the status field (the order staff see in the picklist)
CHARTER_STATUSES = FLAG_VALUES
#: objects whose custom fields the Metadata API keeps on ``Activity``
ACTIVITY_OBJECTS = frozenset({"Task", "Event"})

_KIND_TO_TYPE = {
    "text": "Text",
    "long_text": "LongTextArea",
    "number": "Number",
    "date": "Date",
    "datetime": "DateTime",
    "boolean": "Checkbox",
    "picklist": "Picklist",
    "lookup": "Lookup",
}
_TEXT_LENGTH = 255
_LONG_TEXT_LENGTH = 32768


@dataclass(frozen=True)
class CustomFieldDef:
    """One custom field the org must hold, as the Metadata API describes it."""

    object: str  # the object the mapping names (Case, Task)
    name: str  # API name, ``..__c``
    type: str  # Metadata API type: Text, LongTextArea, Number, Date, DateTime, ...
    label: str
    description: str
    length: int | None = None
    values: tuple[str, ...] = ()
    restricted: bool = False
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    reference_to: str | None = None
    roles: tuple[str, ...] = field(default=())

    @property
    def metadata_object(self) -> str:
        """Where the Metadata API keeps it (``Activity`` for Task and Event fields)."""
        return "Activity" if self.object in ACTIVITY_OBJECTS else self.object

    @property
    def full_name(self) -> str:
        """``Object.Field`` as ``package.xml`` names it."""
        return f"{self.metadata_object}.{self.name}"

    @property
    def permission_name(self) -> str:
        """``Object.Field`` as a permission set names it (Task fields as ``Task.``)."""
        return f"{self.object}.{self.name}"


@dataclass
class _Draft:
    object: str
    name: str
    kind: str = "text"
    values: list[str] = field(default_factory=list)
    restricted: bool = False
    key: bool = False
    roles: list[str] = field(default_factory=list)

    def role(self, text: str, kind: str | None = None) -> None:
        if text not in self.roles:
            self.roles.append(text)
        if kind is not None:
            self.kind = kind


def _is_custom(name: str) -> bool:
    return name.endswith("__c")


def _default_label(name: str) -> str:
    """``Charter_Next_Due__c`` -> ``Charter Next Due``."""
    return re.sub(r"__c$", "", name).replace("_", " ")


def custom_fields(mapping: FieldMapping) -> list[CustomFieldDef]:
    """Every custom field the mapping reads or writes, sorted by object and name."""
    drafts: dict[tuple[str, str], _Draft] = {}

    def at(obj: str, name: str) -> _Draft | None:
        if not _is_custom(name):
            return None
        return drafts.setdefault((obj, name), _Draft(obj, name))

    c = mapping.spec.complaints
    for event, name in c.events.items():
        if (d := at(c.object, name)) is not None:
            d.role(f"event '{event}' (read)", "datetime")
    for event, rel in c.related_events.items():
        if (d := at(rel.object, rel.field)) is not None:
            d.role(f"event '{event}' (read)", "datetime")
        if (d := at(rel.object, rel.parent_field)) is not None:
            d.role(f"parent of '{event}' (read)", "lookup")
        for f in rel.where:
            if (d := at(rel.object, f.field)) is not None:
                d.role("filter (read)")
    for f in c.where:
        if (d := at(c.object, f.field)) is not None:
            d.role("complaint filter (read)")
    for attribute, given in c.attributes.items():
        attr = given if isinstance(given, AttributeSpec) else AttributeSpec(field=given)
        d = at(c.object, attr.field)
        if d is None:
            continue
        kind = {"id": "lookup", "picklist": "picklist"}.get(attr.type, attr.type)
        if attr.values is not None:
            kind = "picklist"
            d.values.extend(v for v in attr.values if v not in d.values)
        d.role(f"attribute '{attribute}' (read)", kind)
    wb = mapping.spec.write_back
    written: dict[str, tuple[str | None, str]] = {
        "status": (wb.status, "picklist"),
        "breaches": (wb.breaches, "text"),
        "next_due": (wb.next_due, "datetime"),
        "checked_at": (wb.checked_at, "datetime"),
        "archived_at": (wb.archived_at, "datetime"),
        "archive_ref": (wb.archive_ref, "text"),
    }
    for what, (written_name, kind) in written.items():
        if written_name is None or (d := at(c.object, written_name)) is None:
            continue
        d.role(f"write-back '{what}' (written)", kind)
        if what == "status":
            d.values = list(CHARTER_STATUSES)
            d.restricted = True
    fu = mapping.spec.follow_ups
    task_texts = {
        "subject": fu.subject,
        "description": fu.description,
        "owner": fu.owner,
        "parent": fu.parent,
        "due date": fu.due_date,
        "status": fu.status,
        "priority": fu.priority,
    }
    for what, name in task_texts.items():
        if (d := at(fu.object, name)) is not None:
            kind = {"owner": "lookup", "due date": "date"}.get(what, "text")
            d.role(f"follow-up {what} (written)", kind)
            if what == "status":
                d.kind, d.restricted = "picklist", True
                d.values = list(dict.fromkeys([str(fu.open_status), str(fu.completed_status)]))
            if what == "priority":
                d.kind, d.restricted = "picklist", True
                d.values = list(dict.fromkeys(str(p) for p in fu.priorities.values()))
    for name, value in fu.extra.items():
        if (d := at(fu.object, name)) is not None:
            d.role("follow-up constant (written)", "picklist" if isinstance(value, str) else None)
            if isinstance(value, str):
                d.values, d.restricted = [value], True
    if (d := at(fu.object, fu.key_field)) is not None:
        d.role("follow-up key (written)", "text")
        d.key = True
    return [_finish(mapping, d) for _key, d in sorted(drafts.items())]


def _finish(mapping: FieldMapping, d: _Draft) -> CustomFieldDef:
    spec: FieldSpec = mapping.field_spec(d.object, d.name)
    kind: str = spec.type or d.kind
    sf_type = _KIND_TO_TYPE[kind]
    length = None
    if sf_type == "Text":
        length = spec.length or _TEXT_LENGTH
    elif sf_type == "LongTextArea":
        length = spec.length or _LONG_TEXT_LENGTH
    values = tuple(d.values) if sf_type == "Picklist" else ()
    roles = ", ".join(d.roles)
    description = spec.description or f"crmsync: {roles}."
    return CustomFieldDef(
        object=d.object,
        name=d.name,
        type=sf_type,
        label=spec.labels.get("en") or _default_label(d.name),
        description=description,
        length=length,
        values=values,
        restricted=d.restricted and sf_type == "Picklist",
        external_id=d.key,
        unique=d.key,
        case_sensitive=d.key,
        reference_to=spec.reference_to if sf_type == "Lookup" else None,
        roles=tuple(d.roles),
    )


def touched_objects(mapping: FieldMapping) -> dict[str, tuple[bool, bool]]:
    """Object -> (the worker creates records of it, it edits records of it)."""
    c = mapping.spec.complaints
    fu = mapping.spec.follow_ups
    out: dict[str, tuple[bool, bool]] = {c.object: (False, True)}
    for rel in c.related_events.values():
        out.setdefault(rel.object, (False, False))
    out[fu.object] = (True, True)
    return out


# ----------------------------------------------------------------------------- XML


def _element(tag: str, value: str | int | bool) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _field_body(f: CustomFieldDef, indent: str) -> list[str]:
    """The CustomField's elements in schema order (``fullName`` first, then alphabetical)."""
    elements: list[tuple[str, str]] = []
    if f.case_sensitive:
        elements.append(("caseSensitive", _element("caseSensitive", True)))
    if f.type == "Checkbox":
        elements.append(("defaultValue", _element("defaultValue", False)))
    if f.type == "Lookup":
        elements.append(("deleteConstraint", _element("deleteConstraint", "SetNull")))
    elements.append(("description", _element("description", f.description)))
    elements.append(("externalId", _element("externalId", f.external_id)))
    elements.append(("label", _element("label", f.label)))
    if f.length is not None:
        elements.append(("length", _element("length", f.length)))
    if f.type == "Number":
        elements.append(("precision", _element("precision", 18)))
    if f.reference_to is not None:
        elements.append(("referenceTo", _element("referenceTo", f.reference_to)))
        relation = re.sub(r"__c$", "", f.name) + "_" + f.metadata_object + "s"
        elements.append(("relationshipName", _element("relationshipName", relation)))
    if f.type not in ("Checkbox",):
        elements.append(("required", _element("required", False)))
    if f.type == "Number":
        elements.append(("scale", _element("scale", 0)))
    elements.append(("type", _element("type", f.type)))
    if f.unique:
        elements.append(("unique", _element("unique", True)))
    lines = [indent + text for _tag, text in elements]
    if f.values:
        lines += [f"{indent}<valueSet>", f"{indent}    {_element('restricted', f.restricted)}"]
        lines.append(f"{indent}    <valueSetDefinition>")
        lines.append(f"{indent}        {_element('sorted', False)}")
        for value in f.values:
            lines += [
                f"{indent}        <value>",
                f"{indent}            {_element('fullName', value)}",
                f"{indent}            {_element('default', False)}",
                f"{indent}            {_element('label', value)}",
                f"{indent}        </value>",
            ]
        lines += [
            f"{indent}    </valueSetDefinition>",
            f"{indent}</valueSet>",
        ]
    if f.type == "LongTextArea":
        lines.append(indent + _element("visibleLines", 3))
    return lines


def _document(root: str, body: Iterable[str]) -> str:
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<{root} xmlns="{NAMESPACE}">',
            *body,
            f"</{root}>",
            "",
        ]
    )


def field_xml(f: CustomFieldDef) -> str:
    """``<Field>.field-meta.xml``: one CustomField (source format)."""
    return _document(
        "CustomField", [f"    {_element('fullName', f.name)}", *_field_body(f, "    ")]
    )


def permission_set_xml(mapping: FieldMapping, fields: list[CustomFieldDef]) -> str:
    """The ``CrmSync_Integration`` permission set: read and edit on every custom field, read
    and edit on the objects the worker touches (Task access by the Edit Tasks permission),
    API access."""
    body = [
        "    "
        + _element(
            "description",
            "crmsync integration user: reads complaints, writes the charter flags and creates "
            f"follow-ups (generated from the mapping '{mapping.spec.mapping}').",
        )
    ]
    for f in sorted(fields, key=lambda f: f.permission_name):
        body += [
            "    <fieldPermissions>",
            f"        {_element('editable', True)}",
            f"        {_element('field', f.permission_name)}",
            f"        {_element('readable', True)}",
            "    </fieldPermissions>",
        ]
    body += [
        f"    {_element('hasActivationRequired', False)}",
        f"    {_element('label', 'crmsync integration')}",
    ]
    user_permissions = {"ApiEnabled"}
    for obj, (_create, edit) in sorted(touched_objects(mapping).items()):
        if obj in ACTIVITY_OBJECTS:
            user_permissions.add("EditTask" if obj == "Task" else "EditEvent")
            continue
        if obj.endswith("History"):
            continue  # field history (CaseHistory): readable with its parent record
        body += [
            "    <objectPermissions>",
            f"        {_element('allowCreate', False)}",
            f"        {_element('allowDelete', False)}",
            f"        {_element('allowEdit', edit)}",
            f"        {_element('allowRead', True)}",
            f"        {_element('modifyAllRecords', False)}",
            f"        {_element('object', obj)}",
            f"        {_element('viewAllRecords', True)}",
            "    </objectPermissions>",
        ]
    for name in sorted(user_permissions):
        body += [
            "    <userPermissions>",
            f"        {_element('enabled', True)}",
            f"        {_element('name', name)}",
            "    </userPermissions>",
        ]
    return _document("PermissionSet", body)


def package_xml(fields: list[CustomFieldDef], api_version: str = API_VERSION) -> str:
    """``package.xml``: every custom field and the permission set."""
    body = ["    <types>"]
    body += [f"        {_element('members', f.full_name)}" for f in fields]
    body += [f"        {_element('name', 'CustomField')}", "    </types>", "    <types>"]
    body += [
        f"        {_element('members', PERMISSION_SET)}",
        f"        {_element('name', 'PermissionSet')}",
        "    </types>",
        f"    {_element('version', api_version)}",
    ]
    return _document("Package", body)


SOURCE_DIR = "force-app/main/default"
"""Where the metadata source lives inside the project (the Salesforce CLI's convention)."""


def sfdx_project_json(api_version: str = API_VERSION) -> str:
    """``sfdx-project.json``: one package directory, ``force-app``, at ``api_version``."""
    project = {
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": "crmsync",
        "sourceApiVersion": api_version,
    }
    return json.dumps(project, indent=2) + "\n"


def source_files(mapping: FieldMapping, api_version: str = API_VERSION) -> dict[str, str]:
    """Relative path -> text of the Salesforce DX project for ``mapping``."""
    fields = custom_fields(mapping)
    files = {
        f"{SOURCE_DIR}/objects/{f.metadata_object}/fields/{f.name}.field-meta.xml": field_xml(f)
        for f in fields
    }
    files[f"{SOURCE_DIR}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"] = (
        permission_set_xml(mapping, fields)
    )
    files["manifest/package.xml"] = package_xml(fields, api_version)
    files["sfdx-project.json"] = sfdx_project_json(api_version)
    return dict(sorted(files.items()))


def component_count(mapping: FieldMapping) -> int:
    """How many components a deploy of ``mapping``'s project holds: its custom fields and
    the permission set (what the org and ``sf`` count)."""
    return len(custom_fields(mapping)) + 1


def write_source(mapping: FieldMapping, out: Path, api_version: str = API_VERSION) -> list[Path]:
    """Write the project under ``out``; field files of an earlier run that the mapping no
    longer makes (a renamed field) are removed. Each file is written whole or not at all
    (``PrivateFile``): a failed write (a full disk) raises ``OSError`` and leaves that file
    as it was. Returns the paths written."""
    files = source_files(mapping, api_version)
    for old in sorted(out.glob(f"{SOURCE_DIR}/objects/*/fields/*.field-meta.xml")):
        if old.relative_to(out).as_posix() not in files:
            old.unlink()
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # beside and renamed: a full disk leaves the previous file, never a truncated one
        with PrivateFile.open(path) as handle:
            handle.write(text)
        written.append(path)
    return written


def deploy_zip(mapping: FieldMapping, api_version: str = API_VERSION) -> bytes:
    """The Metadata API deploy zip (metadata format): ``objects/<Object>.object`` with its
    fields, the permission set and ``package.xml``."""
    fields = custom_fields(mapping)
    by_object: dict[str, list[CustomFieldDef]] = {}
    for f in fields:
        by_object.setdefault(f.metadata_object, []).append(f)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for obj, members in sorted(by_object.items()):
            body = []
            for f in members:
                body += ["    <fields>", f"        {_element('fullName', f.name)}"]
                body += _field_body(f, "        ")
                body.append("    </fields>")
            archive.writestr(f"objects/{obj}.object", _document("CustomObject", body))
        archive.writestr(
            f"permissionsets/{PERMISSION_SET}.permissionset", permission_set_xml(mapping, fields)
        )
        archive.writestr("package.xml", package_xml(fields, api_version))
    return buffer.getvalue()
