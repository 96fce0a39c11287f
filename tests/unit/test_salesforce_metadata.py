"""``crmsync salesforce metadata``: the org's fields and permission set made from the mapping,
in the Metadata API's shape, committed under ``salesforce/`` and never drifting from it."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from crmsync import private_file
from crmsync.adapters.crm.salesforce_metadata import deploy_zip, source_files
from crmsync.cli import app
from crmsync.errors import CharterFileError
from crmsync.mapping.field_mapping import load_mapping, load_mapping_text

ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILE = ROOT / "mappings" / "salesforce.yaml"
MAPPING = load_mapping(MAPPING_FILE)
NS = "{http://soap.sforce.com/2006/04/metadata}"
SRC = "force-app/main/default/"

# A small XSD-like model of the Metadata API types written here: for each type, its
# elements in the schema's sequence order, and the ones that are required.
SHAPES: dict[str, tuple[list[str], set[str]]] = {
    "CustomField": (
        [
            "fullName",
            "caseSensitive",
            "defaultValue",
            "deleteConstraint",
            "description",
            "externalId",
            "inlineHelpText",
            "label",
            "length",
            "precision",
            "referenceTo",
            "relationshipLabel",
            "relationshipName",
            "required",
            "scale",
            "type",
            "unique",
            "valueSet",
            "visibleLines",
        ],
        {"fullName", "label", "type"},
    ),
    "valueSet": (["controllingField", "restricted", "valueSetDefinition"], set()),
    "valueSetDefinition": (["sorted", "value"], {"value"}),
    "value": (["fullName", "color", "default", "description", "isActive", "label"], {"fullName"}),
    "PermissionSet": (
        [
            "description",
            "fieldPermissions",
            "hasActivationRequired",
            "label",
            "license",
            "objectPermissions",
            "userPermissions",
        ],
        {"label"},
    ),
    "fieldPermissions": (["editable", "field", "readable"], {"editable", "field"}),
    "objectPermissions": (
        [
            "allowCreate",
            "allowDelete",
            "allowEdit",
            "allowRead",
            "modifyAllRecords",
            "object",
            "viewAllFields",
            "viewAllRecords",
        ],
        {"allowCreate", "allowDelete", "allowEdit", "allowRead", "modifyAllRecords", "object"},
    ),
    "userPermissions": (["enabled", "name"], {"enabled", "name"}),
    "Package": (["fullName", "types", "version"], {"version"}),
    "types": (["members", "name"], {"members", "name"}),
    "CustomObject": (["fields"], set()),
    "fields": ([], set()),  # a CustomField inside a CustomObject: checked as CustomField
}
FIELD_TYPES = {
    "Text",
    "LongTextArea",
    "Number",
    "Date",
    "DateTime",
    "Checkbox",
    "Picklist",
    "Lookup",
}
BOOLEAN_ELEMENTS = {
    "caseSensitive",
    "externalId",
    "required",
    "unique",
    "restricted",
    "sorted",
    "default",
    "editable",
    "readable",
    "enabled",
    "hasActivationRequired",
    "allowCreate",
    "allowDelete",
    "allowEdit",
    "allowRead",
    "modifyAllRecords",
    "viewAllRecords",
}


def check_shape(element: ET.Element, where: str, type_name: str | None = None) -> None:
    """Assert ``element`` follows SHAPES: known children, in sequence order, required present,
    booleans spelt true/false; recursing into the complex children."""
    assert element.tag.startswith(NS), f"{where}: {element.tag} is outside the metadata namespace"
    name = type_name or element.tag.removeprefix(NS)
    if name == "fields":
        name = "CustomField"
    order, required = SHAPES[name]
    tags = [child.tag.removeprefix(NS) for child in element]
    unknown = [t for t in tags if t not in order]
    assert not unknown, f"{where}: {name} has unknown elements {unknown}"
    positions = [order.index(t) for t in tags]
    assert positions == sorted(positions), f"{where}: {name} elements out of order: {tags}"
    assert required <= set(tags), f"{where}: {name} lacks {sorted(required - set(tags))}"
    for child in element:
        tag = child.tag.removeprefix(NS)
        if tag in SHAPES:
            check_shape(child, where, tag)
        elif tag in BOOLEAN_ELEMENTS:
            assert child.text in ("true", "false"), f"{where}: {tag} is {child.text!r}"
        else:
            assert len(child) == 0 and (child.text or "").strip(), f"{where}: {tag} is empty"
    if name == "CustomField":
        check_field(element, where)


def check_field(field: ET.Element, where: str) -> None:
    """The type-specific rules of a CustomField."""
    kind = field.findtext(f"{NS}type")
    assert kind in FIELD_TYPES, f"{where}: type {kind}"
    name = field.findtext(f"{NS}fullName") or ""
    assert name.endswith("__c") and len(name.removesuffix("__c")) <= 40, where
    assert len(field.findtext(f"{NS}label") or "") <= 40, f"{where}: label over 40 characters"
    assert len(field.findtext(f"{NS}description") or "") <= 1000, f"{where}: description"
    if kind in ("Text", "LongTextArea"):
        length = int(field.findtext(f"{NS}length") or 0)
        assert 1 <= length <= (255 if kind == "Text" else 131072), f"{where}: length {length}"
    if kind == "LongTextArea":
        assert field.findtext(f"{NS}visibleLines"), f"{where}: no visibleLines"
    if kind == "Number":
        assert field.findtext(f"{NS}precision") and field.findtext(f"{NS}scale")
    if kind == "Picklist":
        assert field.findall(f"{NS}valueSet/{NS}valueSetDefinition/{NS}value"), where
    if kind == "Lookup":
        assert field.findtext(f"{NS}referenceTo") and field.findtext(f"{NS}relationshipName")
    if field.findtext(f"{NS}unique") == "true" and kind == "Text":
        assert field.findtext(f"{NS}caseSensitive") in ("true", "false"), where


def test_the_committed_salesforce_folder_is_what_the_mapping_makes() -> None:
    """salesforce/ holds exactly the files `crmsync salesforce metadata` writes for the bundled
    mapping (regenerate with `crmsync salesforce metadata --out salesforce`)."""
    folder = ROOT / "salesforce"
    committed = {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in folder.rglob("*")
        if p.is_file()
    }
    made = source_files(MAPPING)
    hint = "salesforce/ drifted from the mapping: run crmsync salesforce metadata --out salesforce"
    assert sorted(committed) == sorted(made), hint
    for path, text in made.items():
        assert committed[path] == text, f"{hint} ({path})"


@pytest.mark.parametrize("path", sorted(p for p in source_files(MAPPING) if p.endswith(".xml")))
def test_every_file_has_the_metadata_api_shape(path: str) -> None:
    """Each generated file parses and follows the Metadata API type it declares."""
    root = ET.fromstring(source_files(MAPPING)[path])
    check_shape(root, path)
    if path.endswith(".field-meta.xml"):
        assert root.tag == f"{NS}CustomField"
        assert root.findtext(f"{NS}fullName") == Path(path).name.removesuffix(".field-meta.xml")


def test_the_follow_up_key_is_a_unique_case_sensitive_external_id_on_activity() -> None:
    """Task custom fields live on Activity; the key is external id, unique, case-sensitive."""
    text = source_files(MAPPING)[f"{SRC}objects/Activity/fields/CrmSync_Key__c.field-meta.xml"]
    key = ET.fromstring(text)
    assert [key.findtext(f"{NS}{t}") for t in ("externalId", "unique", "caseSensitive")] == [
        "true",
        "true",
        "true",
    ]
    assert key.findtext(f"{NS}type") == "Text"
    assert key.findtext(f"{NS}length") == "255"


def picklist(path: str) -> tuple[str | None, list[str | None]]:
    root = ET.fromstring(source_files(MAPPING)[path])
    values = root.findall(f"{NS}valueSet/{NS}valueSetDefinition/{NS}value/{NS}fullName")
    return root.findtext(f"{NS}valueSet/{NS}restricted"), [v.text for v in values]


def test_picklists_are_restricted_where_the_worker_writes_them() -> None:
    """The status the worker writes is a restricted picklist of the charter statuses; a
    picklist staff fill holds the mapped values, unrestricted."""
    assert picklist(f"{SRC}objects/Case/fields/Charter_Status__c.field-meta.xml") == (
        "true",
        ["on_track", "at_risk", "breached", "met", "paused"],
    )
    assert picklist(f"{SRC}objects/Case/fields/Preferred_Language__c.field-meta.xml") == (
        "false",
        ["English", "Irish", "Gaeilge", "Dutch", "Nederlands"],
    )


def test_types_lengths_and_descriptions_come_from_the_mapping() -> None:
    """Events are DateTime, numbers Number, a `fields:` long_text a LongTextArea of 32768, an
    id attribute a lookup to User; descriptions and English labels are the mapping's."""
    files = source_files(MAPPING)

    def field(name: str) -> ET.Element:
        return ET.fromstring(files[f"{SRC}objects/Case/fields/{name}.field-meta.xml"])

    assert field("Acknowledged_At__c").findtext(f"{NS}type") == "DateTime"
    assert field("Complaint_Level__c").findtext(f"{NS}type") == "Number"
    root_cause = field("Root_Cause__c")
    assert (root_cause.findtext(f"{NS}type"), root_cause.findtext(f"{NS}length")) == (
        "LongTextArea",
        "32768",
    )
    assert root_cause.findtext(f"{NS}label") == "Root cause"
    assert root_cause.findtext(f"{NS}description") == "The root cause found for the complaint."
    assert field("Complaint_Manager__c").findtext(f"{NS}referenceTo") == "User"
    assert field("Charter_Breaches__c").findtext(f"{NS}length") == "255"


def test_the_permission_set_grants_every_field_and_the_objects() -> None:
    """CrmSync_Integration reads and edits every generated field (Task ones as Task.),
    reads and edits Case, and may edit tasks."""
    files = source_files(MAPPING)
    perm = ET.fromstring(files[f"{SRC}permissionsets/CrmSync_Integration.permissionset-meta.xml"])
    granted = {
        fp.findtext(f"{NS}field"): (fp.findtext(f"{NS}readable"), fp.findtext(f"{NS}editable"))
        for fp in perm.findall(f"{NS}fieldPermissions")
    }
    expected = {
        f"{'Task' if p.startswith(SRC + 'objects/Activity/') else 'Case'}."
        + Path(p).name.removesuffix(".field-meta.xml")
        for p in files
        if p.endswith(".field-meta.xml")
    }
    assert set(granted) == expected
    assert set(granted.values()) == {("true", "true")}
    case = perm.find(f"{NS}objectPermissions")
    assert case is not None and case.findtext(f"{NS}object") == "Case"
    assert (case.findtext(f"{NS}allowRead"), case.findtext(f"{NS}allowEdit")) == ("true", "true")
    users = {u.findtext(f"{NS}name") for u in perm.findall(f"{NS}userPermissions")}
    assert users == {"ApiEnabled", "EditTask"}


def test_package_xml_lists_every_component() -> None:
    """package.xml names each custom field (Task ones on Activity) and the permission set."""
    files = source_files(MAPPING)
    package = ET.fromstring(files["manifest/package.xml"])
    listed = {
        t.findtext(f"{NS}name"): sorted(m.text or "" for m in t.findall(f"{NS}members"))
        for t in package.findall(f"{NS}types")
    }
    fields = sorted(
        f"{p.removeprefix(SRC).split('/')[1]}.{Path(p).name.removesuffix('.field-meta.xml')}"
        for p in files
        if p.endswith(".field-meta.xml")
    )
    assert listed == {"CustomField": fields, "PermissionSet": ["CrmSync_Integration"]}
    assert package.findtext(f"{NS}version") == "62.0"


def test_the_deploy_zip_holds_the_same_components_in_metadata_format() -> None:
    """The deploy zip has objects/Case.object and objects/Activity.object holding the same
    fields as the source folder, the permission set and package.xml, each in shape."""
    archive = zipfile.ZipFile(io.BytesIO(deploy_zip(MAPPING)))
    names = sorted(archive.namelist())
    assert names == [
        "objects/Activity.object",
        "objects/Case.object",
        "package.xml",
        "permissionsets/CrmSync_Integration.permissionset",
    ]
    source = source_files(MAPPING)
    for name in names:
        check_shape(ET.fromstring(archive.read(name)), name)
    case = ET.fromstring(archive.read("objects/Case.object"))
    in_zip = sorted(f.findtext(f"{NS}fullName") or "" for f in case.findall(f"{NS}fields"))
    in_source = sorted(
        Path(p).name.removesuffix(".field-meta.xml")
        for p in source
        if p.startswith(f"{SRC}objects/Case/")
    )
    assert in_zip == in_source


def test_a_fields_entry_for_a_field_the_mapping_does_not_use_is_an_error() -> None:
    """A `fields:` entry left behind by a rename is reported with its line."""
    text = MAPPING_FILE.read_text(encoding="utf-8") + "    Renamed_Long_Ago__c: {length: 80}\n"
    with pytest.raises(CharterFileError) as caught:
        load_mapping_text(text, "m.yaml")
    line = len(text.splitlines())
    assert f"m.yaml:{line}" in str(caught.value)
    assert "Task.Renamed_Long_Ago__c is not a field this mapping reads or writes" in str(
        caught.value
    )


def test_the_command_writes_the_folder_and_drops_files_of_renamed_fields(tmp_path: Path) -> None:
    """`crmsync salesforce metadata --out DIR` writes the folder; a field file the mapping no
    longer makes is removed."""
    stale = tmp_path / SRC / "objects" / "Case" / "fields" / "Old_Name__c.field-meta.xml"
    stale.parent.mkdir(parents=True)
    stale.write_text("<old/>")
    result = CliRunner().invoke(
        app, ["salesforce", "metadata", "--mapping", str(MAPPING_FILE), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(source_files(MAPPING))
    assert "custom fields" in result.output


def test_a_full_disk_leaves_the_previous_project_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while `salesforce metadata --out DIR` rewrites a project written before: exit 1
    naming the folder; every file is the previous one, byte for byte (never a truncated XML
    file that looks finished), and no temporary file is left beside them."""
    args = ["salesforce", "metadata", "--mapping", str(MAPPING_FILE), "--out", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def full_disk(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(private_file.os, "fsync", full_disk)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"cannot write {tmp_path}: No space left on device" in result.output
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_the_folder_is_a_complete_sfdx_project() -> None:
    """sfdx-project.json names force-app as the one default package directory at the API
    version of package.xml; every source file lies under it and the manifest beside it."""
    files = source_files(MAPPING)
    project = json.loads(files["sfdx-project.json"])
    assert project["packageDirectories"] == [{"path": "force-app", "default": True}]
    assert project["sourceApiVersion"] == "62.0"
    others = sorted(set(files) - {"sfdx-project.json", "manifest/package.xml"})
    assert others and all(p.startswith(SRC) for p in others)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sf") is None, reason="the Salesforce CLI (sf) is not installed")
def test_the_salesforce_cli_accepts_the_written_project(tmp_path: Path) -> None:
    """`sf project convert source`, run inside the written folder with no other project
    around it, turns its source into the same 35 Metadata API components as package.xml."""
    project = tmp_path / "kit"
    result = CliRunner().invoke(
        app, ["salesforce", "metadata", "--mapping", str(MAPPING_FILE), "-o", str(project)]
    )
    assert result.exit_code == 0, result.output
    converted = tmp_path / "converted"
    run = subprocess.run(
        [
            "sf",
            "project",
            "convert",
            "source",
            "--source-dir",
            "force-app",
            "--output-dir",
            str(converted),
        ],
        cwd=project,
        env={
            **os.environ,
            "SF_DISABLE_TELEMETRY": "true",
            "SF_AUTOUPDATE_DISABLE": "true",
            "SF_SKIP_NEW_VERSION_CHECK": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    package = ET.fromstring((converted / "package.xml").read_text(encoding="utf-8"))
    members = [m.text for t in package.findall(f"{NS}types") for m in t.findall(f"{NS}members")]
    assert len(members) == 35
