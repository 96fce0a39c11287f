"""The YAML reader's limits: what a hostile charter or mapping file cannot do to us."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.errors import CharterFileError
from crmsync.mapping.yaml_source import MAX_ALIAS_VALUES, MAX_FILE_BYTES, load_yaml, parse_yaml


def problems(exc: pytest.ExceptionInfo[CharterFileError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_anchors_and_aliases_within_the_limit_are_expanded() -> None:
    """A shared block reused by alias reads as the same values in both places."""
    doc = parse_yaml("hours: &h {mon: 9-17, tue: 9-17}\nagain: *h\n", "f.yaml")
    assert doc.data == {
        "hours": {"mon": "9-17", "tue": "9-17"},
        "again": {"mon": "9-17", "tue": "9-17"},
    }


def test_aliases_adding_just_over_the_limit_are_refused() -> None:
    """An anchored list of 1,000 items aliased 101 times adds 101,101 values: refused."""
    items = ", ".join(["x"] * 999)
    text = f"a: &a [{items}]\nb: [{', '.join(['*a'] * 101)}]\n"
    with pytest.raises(CharterFileError) as exc:
        parse_yaml(text, "f.yaml")
    assert problems(exc) == [
        f"f.yaml: aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?): "
        "not read"
    ]


def test_aliases_adding_just_under_the_limit_are_read() -> None:
    """99 aliases of a 1,000-value list add 99,000 values: read."""
    items = ", ".join(["x"] * 999)
    doc = parse_yaml(f"a: &a [{items}]\nb: [{', '.join(['*a'] * 99)}]\n", "f.yaml")
    assert len(doc.data["b"]) == 99
    assert doc.data["b"][98] == ["x"] * 999


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: &a\n  b: *a\n", 1), ("top:\n  list: &l [1, [2, *l]]\n", 2)],
)
def test_a_recursive_alias_is_named_with_its_anchor_line(text: str, line: int) -> None:
    """An alias inside the value it names is an error at the anchor's line, not a RecursionError."""
    with pytest.raises(CharterFileError) as exc:
        parse_yaml(text, "f.yaml")
    assert problems(exc) == [
        f"f.yaml:{line}: recursive alias: the value anchored here holds an alias to itself"
    ]


def test_nesting_deeper_than_the_parser_allows_is_an_error() -> None:
    """50,000 nested flow sequences are refused with a message, not a RecursionError."""
    with pytest.raises(CharterFileError) as exc:
        parse_yaml("x: " + "[" * 50_000 + "]" * 50_000, "f.yaml")
    assert problems(exc) == ["f.yaml: YAML nested too deeply to read"]


def test_a_file_larger_than_the_limit_is_not_read(tmp_path: Path) -> None:
    """One byte over 1 MiB is refused by name; exactly 1 MiB is read."""
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n#" + b"x" * (MAX_FILE_BYTES - 7) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_yaml(path).data == {"a": 1}
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(CharterFileError) as exc:
        load_yaml(path)
    assert problems(exc) == [
        f"{path}: larger than 1 MiB: not read (a charter or mapping is a few kilobytes)"
    ]


def test_an_endless_device_is_not_read_to_its_end() -> None:
    """/dev/zero as a file: refused after 1 MiB, not read until memory runs out."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(CharterFileError) as exc:
        load_yaml(Path("/dev/zero"))
    assert "larger than 1 MiB" in problems(exc)[0]


def test_a_latin1_file_is_named_with_line_and_column(tmp_path: Path) -> None:
    """A Latin-1 byte on line 2 is reported at that line and column with the byte."""
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"charter: x\ntitle: Caf\xe9\n")
    with pytest.raises(CharterFileError) as exc:
        load_yaml(path)
    assert problems(exc) == [f"{path}:2: not UTF-8 text (byte 0xe9 at column 11); save it as UTF-8"]


def test_a_directory_is_named_as_unreadable(tmp_path: Path) -> None:
    """A directory given as a charter says it cannot be read, and why."""
    with pytest.raises(CharterFileError) as exc:
        load_yaml(tmp_path)
    assert problems(exc) == [f"{tmp_path}: cannot read: Is a directory"]
