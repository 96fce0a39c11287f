"""A YAML reader that keeps the line of every value, for error messages that point at it.

Scalars are resolved as in YAML 1.2's core schema: only ``true/false``, ``null``/``~``,
integers and floats are typed; everything else (``NO``, ``on``, ``08:30``, dates) stays a
string, so country codes, times and picklist values are read as written. Duplicate keys
are an error, not a silent overwrite.

Hostile files are refused before they cost memory or time: a file larger than
``MAX_FILE_BYTES`` is not read, aliases may add at most ``MAX_ALIAS_VALUES`` values
("billion laughs"), an alias inside its own anchor is an error, and so is nesting deeper
than the parser's recursion allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmsync.errors import CharterFileError, Problem

Loc = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20
"""Largest charter or mapping file read (1 MiB; the bundled ones are under 16 KB)."""
MAX_ALIAS_VALUES = 100_000
"""How many values aliases (``*name``) may add to a document when expanded."""

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


@dataclass
class YamlDocument:
    """Parsed YAML data plus the 1-based line of every mapping key and sequence item.

    ``columns`` holds the 1-based column of the same nodes (the key of a mapping entry);
    ``value_marks`` the (line, column) of every value node, for problems about a value.
    """

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    columns: dict[Loc, int] = field(default_factory=dict)
    value_marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Duplicate or non-text keys found while parsing with ``keep_going`` (first value kept)."""

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest known parent."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def column_of(self, loc: Loc) -> int | None:
        """The column of ``loc``'s own key or item; ``None`` when only a parent is known."""
        return self.columns.get(tuple(loc))

    def value_position(self, loc: Loc) -> tuple[int | None, int | None]:
        """(line, column) of the value at ``loc``, else of its key or nearest parent."""
        mark = self.value_marks.get(tuple(loc))
        if mark is not None:
            return mark
        return self.line_of(loc), self.column_of(loc)


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style in ("'", '"', "|", ">"):
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _convert(node: yaml.Node, loc: Loc, doc: YamlDocument, problems: list[Problem]) -> Any:
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    doc.columns.setdefault(loc, node.start_mark.column + 1)
    doc.value_marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), doc, problems) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int):
                problems.append(
                    Problem(
                        doc.file,
                        key_node.start_mark.line + 1,
                        _dotted(loc),
                        "keys must be text",
                        key_node.start_mark.column + 1,
                    )
                )
                continue
            if key in result:
                problems.append(
                    Problem(
                        doc.file,
                        key_node.start_mark.line + 1,
                        _dotted((*loc, key)),
                        f"duplicate key '{key}' (first at line {doc.lines[(*loc, key)]})",
                        key_node.start_mark.column + 1,
                    )
                )
                continue
            doc.lines[(*loc, key)] = key_node.start_mark.line + 1
            doc.columns[(*loc, key)] = key_node.start_mark.column + 1
            result[key] = _convert(value_node, (*loc, key), doc, problems)
        return result
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - composer yields 3 kinds


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def dotted(loc: Loc) -> str:
    """``('clocks', 2, 'target')`` -> ``clocks[2].target``."""
    return _dotted(loc)


def parse_yaml(text: str, file: str, *, keep_going: bool = False) -> YamlDocument:
    """Parse one YAML document; raise ``CharterFileError`` for syntax errors or duplicate keys.

    With ``keep_going`` a duplicate (or non-text) key is not raised but kept in
    ``doc.problems`` (the first value wins), so a validator can report it beside its own
    problems. A syntax error or an empty file is always raised.
    """
    doc = YamlDocument(file=file, data=None)
    if len(text) > MAX_FILE_BYTES:
        raise CharterFileError(file, [_too_large(file)])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context
        if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context += f" started at line {exc.context_mark.line + 1}"
        what = ", ".join(p for p in (context, exc.problem) if p)
        raise CharterFileError(file, [Problem(file, line, "", f"YAML syntax: {what}")]) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (e.g. NUL)
        line = text[: exc.position].count("\n") + 1
        raise CharterFileError(
            file, [Problem(file, line, "", f"YAML syntax: unacceptable character: {exc.reason}")]
        ) from exc
    except RecursionError as exc:
        raise CharterFileError(
            file, [Problem(file, None, "", "YAML nested too deeply to read")]
        ) from exc
    if node is None:
        raise CharterFileError(file, [Problem(file, 1, "", "the file is empty")])
    alias_problem = _alias_problem(node, file)
    if alias_problem is not None:
        raise CharterFileError(file, [alias_problem])
    problems: list[Problem] = []
    doc.data = _convert(node, (), doc, problems)
    if problems and not keep_going:
        raise CharterFileError(file, problems)
    doc.problems = problems
    return doc


def load_yaml(path: Path, *, keep_going: bool = False) -> YamlDocument:
    """Read and parse ``path`` (see ``parse_yaml``); an unreadable file, one larger than
    ``MAX_FILE_BYTES`` (``/dev/zero`` too) or one that is not UTF-8 is an error too."""
    file = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CharterFileError(file, [Problem(file, None, "", f"cannot read: {reason}")]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise CharterFileError(file, [_too_large(file)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        what = f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); save it as UTF-8"
        raise CharterFileError(file, [Problem(file, line, "", what)]) from exc
    return parse_yaml(text, file, keep_going=keep_going)


def _too_large(file: str) -> Problem:
    return Problem(
        file,
        None,
        "",
        f"larger than {MAX_FILE_BYTES >> 20} MiB: not read (a charter or mapping is a few "
        "kilobytes)",
    )


def _alias_problem(root: yaml.Node, file: str) -> Problem | None:
    """An alias that contains itself, or aliases that expand the document by more than
    ``MAX_ALIAS_VALUES`` values; None when neither. Walks each node once (no recursion)."""
    sizes: dict[int, int] = {}  # node id -> values it expands to (capped: no huge integers)
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(1 << 62, 1 + sum(sizes[id(c)] for c in children))
            continue
        if key in sizes:
            continue  # an alias of a node already walked: its size is known
        if key in open_nodes:
            line = node.start_mark.line + 1
            return Problem(file, line, "", _RECURSIVE)
        distinct += 1
        if not children:
            sizes[key] = 1
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return Problem(file, child.start_mark.line + 1, "", _RECURSIVE)
            stack.append((child, False))
    if sizes[id(root)] - distinct > MAX_ALIAS_VALUES:
        return Problem(
            file,
            None,
            "",
            f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?): not read",
        )
    return None


_RECURSIVE = "recursive alias: the value anchored here holds an alias to itself"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
