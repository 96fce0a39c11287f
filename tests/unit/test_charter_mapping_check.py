"""`crmsync check` offline: charters against mappings, duplicate keys, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.errors import CharterFileError, Problem
from crmsync.mapping.charter_mapping_check import check_charter_against_mapping
from crmsync.mapping.field_mapping import load_mapping, load_mapping_text
from crmsync.mapping.offline_check import check_files
from crmsync.mapping.yaml_source import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILE = ROOT / "mappings" / "salesforce.yaml"
MAPPING = load_mapping(MAPPING_FILE)
CHARTERS = sorted((ROOT / "mappings" / "charters").glob("*.yaml"))

HEAD = """\
charter: t
title: T
calendar:
  timezone: Europe/London
  hours:
    mon: ["09:00-17:00"]
clocks:
"""  # the first clock starts on line 8


def found(text: str, mapping_text: str | None = None) -> list[tuple[int | None, int | None, str]]:
    """(line, column, message) of every cross-check problem of ``text`` against a mapping."""
    mapping = MAPPING if mapping_text is None else load_mapping_text(mapping_text, "m.yaml")
    problems = check_charter_against_mapping(parse_yaml(HEAD + text, "c.yaml"), mapping)
    assert all(p.file == "c.yaml" for p in problems)
    return [(p.line, p.column, p.message) for p in problems]


@pytest.mark.parametrize("charter", CHARTERS, ids=lambda p: p.stem)
def test_every_bundled_charter_fits_the_bundled_mapping(charter: Path) -> None:
    """The shipped charters name only events, attributes and values the mapping defines."""
    doc = parse_yaml(charter.read_text(encoding="utf-8"), str(charter))
    assert check_charter_against_mapping(doc, MAPPING) == []


def test_unknown_events_are_named_with_line_column_and_suggestion() -> None:
    """start, each stop, reset and a notice's on: every unknown event, at its own value."""
    text = (
        "  - id: a\n"  # 8
        "    start: recieved\n"  # 9
        "    stop: [decision, decison]\n"  # 10
        "    target: 2 days\n"
        "  - id: b\n"
        "    every: 14 days\n"
        "    start: received\n"
        "    reset: [customer_updates]\n"  # 15
        "notices:\n"
        "  - id: n\n"
        "    on: escalatd_l2\n"  # 18
    )
    source = MAPPING.source
    assert found(text) == [
        (9, 12, f"event 'recieved' is not in the mapping {source} (did you mean 'received'?)"),
        (10, 22, f"event 'decison' is not in the mapping {source} (did you mean 'decision'?)"),
        (
            15,
            13,
            f"event 'customer_updates' is not in the mapping {source} "
            "(did you mean 'customer_update'?)",
        ),
        (
            18,
            9,
            f"event 'escalatd_l2' is not in the mapping {source} (did you mean 'escalated_l2'?)",
        ),
    ]


def test_an_extension_event_must_be_mapped() -> None:
    """extend's `on` names an event like start and stop do."""
    text = (
        "  - id: a\n"
        "    start: received\n"
        "    stop: decision\n"
        "    target: 8 weeks\n"
        "    extend: {on: extention_notified, by: 10 business_days}\n"  # 12
    )
    assert found(text) == [
        (12, 18, f"event 'extention_notified' is not in the mapping {MAPPING.source}"),
    ]


def test_require_and_target_field_attributes_must_be_mapped() -> None:
    """`require: [foo]` and a misspelt target_field are errors with suggestions."""
    text = (
        "  - id: a\n"
        "    require: [root_cause, foo, soluton]\n"  # 9
        "    start: closed\n"
        "    target: 1 days\n"
        "  - id: b\n"
        "    start: received\n"
        "    stop: decision\n"
        "    target_field: expected_decison\n"  # 15
    )
    source = MAPPING.source
    assert found(text) == [
        (9, 27, f"attribute 'foo' is not in the mapping {source}"),
        (9, 32, f"attribute 'soluton' is not in the mapping {source} (did you mean 'solution'?)"),
        (
            15,
            19,
            f"attribute 'expected_decison' is not in the mapping {source} "
            "(did you mean 'expected_decision'?)",
        ),
    ]


def test_a_when_on_a_misspelt_attribute_is_an_error() -> None:
    """A `when` on an attribute the mapping lacks would disable the clock: reported at the key."""
    text = (
        "  - id: a\n"
        "    when: {chanel: email}\n"  # 9
        "    start: received\n"
        "    stop: decision\n"
        "    target: 2 days\n"
    )
    assert found(text) == [
        (
            9,
            12,
            f"attribute 'chanel' is not in the mapping {MAPPING.source} (did you mean 'channel'?)",
        )
    ]


def test_when_values_outside_the_mapped_picklist_values_are_errors() -> None:
    """`channel: emial` (and one bad item of a list) can never hold: named at the value."""
    text = (
        "  - id: a\n"
        "    when: {channel: emial}\n"  # 9
        "    start: received\n"
        "    stop: decision\n"
        "    target: 2 days\n"
        "  - id: b\n"
        "    when:\n"
        "      channel: [phone, Letter]\n"  # 15
        "      level: [2, '3', three]\n"  # 16
        "    start: received\n"
        "    stop: decision\n"
        "    target: 2 days\n"
    )
    mapped = "email, phone, web, letter, in_person"
    assert found(text) == [
        (
            9,
            21,
            "'emial' is not a value of 'channel': no CRM value of Origin maps to it "
            f"(mapped: {mapped}) (did you mean 'email'?)",
        ),
        (
            15,
            24,
            "'Letter' is not a value of 'channel': no CRM value of Origin maps to it "
            f"(mapped: {mapped}) (did you mean 'letter'?)",
        ),
        (16, 23, "'three' is not a number, and 'level' (Complaint_Level__c) is read as a number"),
    ]


def test_a_renamed_picklist_value_leaves_the_charters_when_unreachable() -> None:
    """`Email: e-mail` in the mapping: Aston's `when: {channel: email}` is flagged."""
    renamed = MAPPING_FILE.read_text(encoding="utf-8").replace("{Email: email", "{Email: e-mail")
    aston = ROOT / "mappings" / "charters" / "aston.yaml"
    doc = parse_yaml(aston.read_text(encoding="utf-8"), "aston.yaml")
    problems = check_charter_against_mapping(doc, load_mapping_text(renamed, "m.yaml"))
    line = 1 + aston.read_text(encoding="utf-8").splitlines().index("    when: {channel: email}")
    assert [(p.line, p.path, p.message) for p in problems] == [
        (
            line,
            "clocks[0].when.channel",
            "'email' is not a value of 'channel': no CRM value of Origin maps to it "
            "(mapped: e-mail, phone, web, letter, in_person) (did you mean 'e-mail'?)",
        )
    ]


def test_duplicate_mapping_keys_are_reported_beside_schema_problems() -> None:
    """A repeated key no longer hides the file's other problems."""
    text = MAPPING_FILE.read_text(encoding="utf-8")
    text = text.replace("    received: CreatedDate\n", "    received: CreatedDate\n    closed: X\n")
    text = text.replace("  id: Id\n", "  id: Id\n  idd: Id\n")
    with pytest.raises(CharterFileError) as caught:
        load_mapping_text(text, "m.yaml")
    lines = text.splitlines()
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == [
        (1 + lines.index("  idd: Id"), 3, "unknown key 'idd' (did you mean 'id'?)"),
        (
            1 + lines.index("    closed: ClosedDate"),
            5,
            f"duplicate key 'closed' (first at line {1 + lines.index('    closed: X')})",
        ),
    ]


def test_check_files_reports_every_problem_of_every_file_in_one_run(tmp_path: Path) -> None:
    """Schema problems, duplicate keys and cross-check problems of charter and mapping at
    once; a mapping whose only fault is a duplicate key still cross-checks the charters."""
    mapping = tmp_path / "m.yaml"
    text = MAPPING_FILE.read_text(encoding="utf-8")
    mapping.write_text(
        text.replace(
            "    complainant_name: SuppliedName\n",
            "    complainant_name: SuppliedName\n    level: {field: Other__c, type: number}\n",
        ),
        encoding="utf-8",
    )
    charter = tmp_path / "c.yaml"
    charter.write_text(
        HEAD
        + "  - id: a\n"
        + "    when: {channel: emial}\n"  # 9
        + "    start: received\n"
        + "    stop: decision\n"
        + "    stop: feedback\n"  # 12
        + "    target: 2 dayz\n",  # 13
        encoding="utf-8",
    )
    checks = check_files([charter], [mapping], [(charter, mapping)])
    assert [(c.path, c.kind) for c in checks] == [(mapping, "mapping"), (charter, "charter")]
    dup_line = 1 + text.splitlines().index("    complainant_name: SuppliedName")
    assert [(p.file, p.line, p.column) for p in checks[0].problems] == [
        (str(mapping), dup_line + 1, 5)
    ]
    first = 1 + text.splitlines().index("    level: {field: Complaint_Level__c, type: number}")
    assert checks[0].problems[0].message == f"duplicate key 'level' (first at line {first})"
    assert [(p.line, p.column, p.path) for p in checks[1].problems] == [
        (9, 21, "clocks[0].when.channel"),
        (12, 5, "clocks[0].stop"),
        (13, 5, "clocks[0].target"),
    ]
    assert all(p.file == str(charter) for p in checks[1].problems)
    assert "did you mean 'email'?" in checks[1].problems[0].message
    assert "duplicate key 'stop'" in checks[1].problems[1].message
    assert "unknown unit 'dayz'" in checks[1].problems[2].message
    assert checks[1].fits == [str(mapping)]


def test_a_problem_prints_as_file_line_column() -> None:
    """`file:line:column (path): message`; the column only when it is known."""
    assert str(Problem("c.yaml", 9, "clocks[0].start", "bad", 12)) == (
        "c.yaml:9:12 (clocks[0].start): bad"
    )
    assert str(Problem("c.yaml", 9, "", "bad")) == "c.yaml:9: bad"


def test_a_valid_extension_charter_is_cross_checked_too(tmp_path: Path) -> None:
    """A bundled charter with `extend`, its event misspelt: valid schema, one cross-check
    problem at the `on` value."""
    source = ROOT / "mappings" / "charters" / "housing-ombudsman.yaml"
    text = source.read_text(encoding="utf-8")
    charter = tmp_path / "ho.yaml"
    charter.write_text(
        text.replace("extend: {on: escalation_extended,", "extend: {on: escalation_extnded,"),
        encoding="utf-8",
    )
    line = 1 + text.splitlines().index(
        "    extend: {on: escalation_extended, by: 20 business_days, max: 1}"
    )
    [mapping_check, charter_check] = check_files(
        [charter], [MAPPING_FILE], [(charter, MAPPING_FILE)]
    )
    assert mapping_check.problems == []
    assert charter_check.charter is not None
    assert [(p.line, p.column, p.path, p.message) for p in charter_check.problems] == [
        (
            line,
            18,
            "clocks[3].extend.on",
            f"event 'escalation_extnded' is not in the mapping {MAPPING_FILE} "
            "(did you mean 'escalation_extended'?)",
        )
    ]
