"""``crmsync check`` without the CRM: every charter and mapping file, and every pairing.

Each file is read once and validated with every problem kept (duplicate YAML keys beside
schema problems); each (charter, mapping) pair is then cross-checked (events, attributes,
``when`` values; see ``charter_mapping_check``). A charter with schema problems is still
cross-checked, so one run lists all problems of all files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from crmsync.domain.charter import Charter
from crmsync.errors import CharterFileError, Problem
from crmsync.mapping.charter_file import charter_from_document
from crmsync.mapping.charter_mapping_check import check_charter_against_mapping
from crmsync.mapping.field_mapping import FieldMapping, mapping_from_document
from crmsync.mapping.yaml_source import YamlDocument, load_yaml


@dataclass
class FileCheck:
    """The outcome for one file: its problems (empty: it is fine) and, when valid, what
    was loaded from it."""

    path: Path
    kind: str  # "charter" or "mapping"
    problems: list[Problem] = field(default_factory=list)
    charter: Charter | None = None
    mapping: FieldMapping | None = None
    fits: list[str] = field(default_factory=list)
    """Charters: the mappings it was cross-checked against."""
    unchecked: list[str] = field(default_factory=list)
    """Charters: the mappings too broken to cross-check it against (their problems say why)."""


def check_files(
    charters: Sequence[Path], mappings: Sequence[Path], pairs: Iterable[tuple[Path, Path]]
) -> list[FileCheck]:
    """Validate ``mappings`` then ``charters`` and cross-check each (charter, mapping) of
    ``pairs`` (files named only in a pair are validated too). One ``FileCheck`` per
    distinct file, mappings first, in the order given."""
    pairs = list(pairs)
    mapping_paths = list(dict.fromkeys([*mappings, *(m for _, m in pairs)]))
    charter_paths = list(dict.fromkeys([*charters, *(c for c, _ in pairs)]))
    by_mapping: dict[Path, FileCheck] = {}
    for path in mapping_paths:
        check = FileCheck(path, "mapping")
        doc = _read(path, check)
        if doc is not None:
            try:
                check.mapping = mapping_from_document(doc, "")
            except CharterFileError as exc:
                check.problems += exc.problems
                usable = _without_duplicates(doc)
                if usable is not None:
                    check.mapping = usable
        by_mapping[path] = check
    out = list(by_mapping.values())
    for path in charter_paths:
        check = FileCheck(path, "charter")
        doc = _read(path, check)
        if doc is not None:
            try:
                check.charter = charter_from_document(doc, "")
            except CharterFileError as exc:
                check.problems += exc.problems
            for mapping_path in dict.fromkeys(m for c, m in pairs if c == path):
                mapping = by_mapping[mapping_path].mapping
                if mapping is not None:
                    check.problems += check_charter_against_mapping(doc, mapping)
                    check.fits.append(str(mapping_path))
                else:
                    check.unchecked.append(str(mapping_path))
        check.problems.sort(key=lambda p: (p.line or 0, p.column or 0, p.path))
        out.append(check)
    return out


def _without_duplicates(doc: YamlDocument) -> FieldMapping | None:
    """The mapping as read with each duplicate key's first value (the parse keeps it), so
    charters are still cross-checked; None when it has problems besides duplicate keys."""
    if not doc.problems:
        return None
    try:
        return mapping_from_document(replace(doc, problems=[]), "")
    except CharterFileError:
        return None


def _read(path: Path, check: FileCheck) -> YamlDocument | None:
    try:
        return load_yaml(path, keep_going=True)
    except CharterFileError as exc:
        check.problems += exc.problems
        return None
