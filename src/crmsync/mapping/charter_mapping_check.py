"""Does a charter fit a field mapping? Every name and ``when`` value checked, with lines.

A charter names canonical events and attributes; only the mapping defines them. A name the
mapping does not define, or a ``when`` value no CRM value can produce, silently disables a
clock, so ``crmsync check`` reports each one with the charter's file, line and column and,
where one is close, the name that was likely meant.

The check reads the charter's raw YAML document (not the validated model), so it runs beside
the schema's own problems. The keys that name events are the ``event_paths()`` of the
domain's clock kinds and notices (the file's keys are the model's names), so a new one needs
no change here; a new key naming an attribute is one more entry in ``ATTRIBUTE_KEYS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmsync.domain.charter import Condition, Notice, clock_event_paths
from crmsync.errors import Problem, did_you_mean
from crmsync.mapping.field_mapping import AttributeSpec, FieldMapping
from crmsync.mapping.yaml_source import Loc, YamlDocument, dotted

# (section, path inside one item) of every charter key whose value is an event name or a
# list of them, and of every key whose value is an attribute name or a list of them.
EVENT_KEYS: tuple[tuple[str, Loc], ...] = (
    *(("clocks", path) for path in clock_event_paths()),
    *(("notices", path) for path in Notice.event_paths()),
)
ATTRIBUTE_KEYS: tuple[tuple[str, Loc], ...] = (
    ("clocks", ("target_field",)),
    ("clocks", ("require",)),
)
WHEN_SECTIONS = ("clocks", "notices")  # items whose ``when`` names attributes and values


def check_charter_against_mapping(doc: YamlDocument, mapping: FieldMapping) -> list[Problem]:
    """Every event, attribute and ``when`` value of the charter ``doc`` that ``mapping``
    cannot produce, in file order; empty when the charter fits the mapping."""
    events = mapping.event_names()
    attributes = mapping.attribute_specs()
    problems: list[Problem] = []
    for section, path in EVENT_KEYS:
        for loc, name in _names_at(doc.data, section, path):
            if name not in events:
                problems.append(
                    _problem(
                        doc,
                        loc,
                        f"event '{name}' is not in the mapping {mapping.source}"
                        + did_you_mean(name, events),
                        value=True,
                    )
                )
    for section, path in ATTRIBUTE_KEYS:
        for loc, name in _names_at(doc.data, section, path):
            if name not in attributes:
                problems.append(_unknown_attribute(doc, loc, name, mapping, value=True))
    for section in WHEN_SECTIONS:
        for loc, when in _items_at(doc.data, section, ("when",)):
            if not isinstance(when, dict):
                continue  # the schema reports it
            for name, allowed in when.items():
                key_loc = (*loc, name)
                if name not in attributes:
                    problems.append(_unknown_attribute(doc, key_loc, str(name), mapping))
                    continue
                values = (
                    list(enumerate(allowed)) if isinstance(allowed, list) else [(None, allowed)]
                )
                for i, value in values:
                    value_loc = key_loc if i is None else (*key_loc, i)
                    why = _unreachable(str(name), value, attributes[str(name)])
                    if why:
                        problems.append(_problem(doc, value_loc, why, value=True))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))


def _unknown_attribute(
    doc: YamlDocument, loc: Loc, name: str, mapping: FieldMapping, *, value: bool = False
) -> Problem:
    known = mapping.attribute_specs()
    return _problem(
        doc,
        loc,
        f"attribute '{name}' is not in the mapping {mapping.source}" + did_you_mean(name, known),
        value=value,
    )


def _unreachable(name: str, value: Any, spec: AttributeSpec) -> str | None:
    """Why ``when: {name: value}`` can never hold for values read through ``spec``, or None."""
    if isinstance(value, dict | list) or value is None:
        return None  # not a scalar: the schema reports it
    if spec.values is not None:
        mapped = list(dict.fromkeys(spec.values.values()))
        if any(Condition(name, (value,)).holds({name: m}) for m in mapped):
            return None
        return (
            f"'{value}' is not a value of '{name}': no CRM value of {spec.field} maps to it "
            f"(mapped: {', '.join(map(str, mapped))})"
            + did_you_mean(str(value), [str(m) for m in mapped])
        )
    if spec.type == "number" and not Condition(name, (value,)).holds({name: _as_number(value)}):
        return f"'{value}' is not a number, and '{name}' ({spec.field}) is read as a number"
    return None


def _as_number(value: Any) -> float:
    """``value`` as the number it would equal, or NaN (equal to nothing)."""
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _problem(doc: YamlDocument, loc: Loc, message: str, *, value: bool = False) -> Problem:
    if value:
        line, column = doc.value_position(loc)
    else:
        line, column = doc.line_of(loc), doc.column_of(loc)
    return Problem(doc.file, line, dotted(loc), message, column)


def _items_at(data: Any, section: str, path: Loc) -> Iterator[tuple[Loc, Any]]:
    """(location, value) of ``path`` inside each item of the list ``data[section]``."""
    items = data.get(section) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        node: Any = item
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            yield (section, i, *path), node


def _names_at(data: Any, section: str, path: Loc) -> Iterator[tuple[Loc, str]]:
    """(location, name) of each name at ``path``: one name, or a list of names."""
    for loc, value in _items_at(data, section, path):
        if isinstance(value, str):
            yield loc, value
        elif isinstance(value, list):
            for j, item in enumerate(value):
                if isinstance(item, str):
                    yield (*loc, j), item
