"""Filling a CRM with realistic complaints for ``crmsync demo`` and the sync benchmark.

Complaints come from ``sample_complaints`` for the charter given (loaded, or a bundled
name or a file path, see ``bundled_charters``) in canonical form and are written through the
mapping's inverse (``FieldMapping.to_record``) in the CRM's own datetime text, with ids the
CRM makes (``RecordSeeder.demo_record_id``), so the demo exercises exactly the field names
an admin maintains in ``mappings/``. Events later than ``now`` are left out: the
CRM shows the present, not the future.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from crmsync.demo.bundled_charters import demo_charter
from crmsync.demo.sample_complaints import RecordIds, generate_complaints, serial_ids
from crmsync.domain.charter import Charter
from crmsync.errors import CrmError
from crmsync.mapping.field_mapping import (
    FieldMapping,
    InstantText,
    instant_text_of,
    iso_instant_text,
)
from crmsync.ports import WriteResult


class RecordSeeder(Protocol):
    """What seeding needs from a CRM: ids of its own kind, inserting records with the ids
    and dates given."""

    def demo_record_id(self, kind: str, serial: int) -> str:
        """The id of a ``complaint`` or a ``user`` numbered ``serial`` (below 62**12)."""
        ...

    def insert_records(self, object: str, rows: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Insert rows keeping their ``Id`` (and dates); one result per row."""
        ...


@dataclass(frozen=True)
class SeedResult:
    cases: int
    tasks: int
    """Related records created (every related object's: tasks in the bundled mapping)."""


def _until_now(complaint: dict[str, Any], now: datetime) -> dict[str, Any]:
    events: dict[str, Any] = {}
    for name, value in complaint.get("events", {}).items():
        values = value if isinstance(value, list) else [value]
        kept = [v for v in values if datetime.fromisoformat(v) <= now]
        if kept:
            events[name] = kept if isinstance(value, list) else kept[0]
    return {**complaint, "events": events}


def seed_rows(
    mapping: FieldMapping,
    charter: Charter | str,
    *,
    count: int,
    seed: int,
    start: datetime,
    span_days: int,
    now: datetime,
    ids: RecordIds = serial_ids,
    instant_text: InstantText = iso_instant_text,
) -> Iterator[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]]:
    """``(case fields, related rows by object)`` for each generated complaint received
    before ``now``: each related event's rows go to that event's own object; ids made by
    ``ids``, instants written by ``instant_text``. ``charter`` is loaded, or a bundled name
    or file path (``ConfigError`` if unusable)."""
    loaded = demo_charter(charter) if isinstance(charter, str) else charter
    for complaint in generate_complaints(
        loaded, count, seed=seed, start=start, span_days=span_days, ids=ids
    ):
        present = _until_now(complaint, now)
        if "received" not in present["events"]:
            continue
        fields, related = mapping.to_record(present, instant_text)
        fields[mapping.spec.complaints.id] = complaint["id"]
        rows: dict[str, list[dict[str, Any]]] = {}
        for name, children in related.items():
            rel = mapping.spec.complaints.related_events[name]
            rows.setdefault(rel.object, []).extend(
                {**child, rel.parent_field: complaint["id"]} for child in children
            )
        yield fields, rows


def seed_local_crm(
    crm: Any,
    mapping: FieldMapping,
    charter: Charter | str,
    *,
    count: int,
    seed: int,
    start: datetime,
    span_days: int,
    now: datetime,
    batch: int = 5000,
) -> SeedResult:
    """Insert generated complaints (and their related records) into ``crm``."""
    seeder: RecordSeeder = crm
    cases: list[dict[str, Any]] = []
    related: dict[str, list[dict[str, Any]]] = {}
    n_cases = n_related = 0

    def insert(object: str, rows: list[dict[str, Any]]) -> int:
        results = seeder.insert_records(object, rows)
        bad = [r for r in results if not r.ok]
        if bad:
            raise CrmError(
                f"seeding {object}: {len(bad)} row(s) refused, first {bad[0].ref}: "
                f"{bad[0].error_code} {bad[0].message}"
            )
        return len(results)

    def flush() -> None:
        nonlocal cases, n_cases, n_related
        if cases:
            n_cases += insert(mapping.complaint_object, cases)
        for object, rows in related.items():
            if rows:
                n_related += insert(object, rows)
        cases = []
        related.clear()

    for fields, rows in seed_rows(
        mapping,
        charter,
        count=count,
        seed=seed,
        start=start,
        span_days=span_days,
        now=now,
        ids=seeder.demo_record_id,
        instant_text=instant_text_of(crm),
    ):
        cases.append(fields)
        for object, children in rows.items():
            related.setdefault(object, []).extend(children)
        if len(cases) >= batch:
            flush()
    flush()
    return SeedResult(n_cases, n_related)
