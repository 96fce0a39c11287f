"""One complaint read from the CRM through the mapping (for ``crmsync explain --id``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from crmsync.mapping.field_mapping import FieldMapping
from crmsync.ports import CrmPort, Record


def read_complaint(crm: CrmPort, mapping: FieldMapping, record_id: str) -> dict[str, Any] | None:
    """The canonical complaint of CRM record ``record_id``, or None when there is no such
    record or it is not a complaint (the mapping's filters).

    One read of the record by id, plus one read per related object the mapping's related
    events are kept in (e.g. customer updates kept as Tasks). Raises ``MappingError``
    naming the field.
    """
    fields = [*mapping.complaint_fields, *(f.field for f in mapping.complaint_filters)]
    found = crm.records_by_id(mapping.complaint_object, [record_id], list(dict.fromkeys(fields)))
    record = next((r for r in found if r.id == record_id), None)
    if record is None or not all(f.matches(record.fields) for f in mapping.complaint_filters):
        return None
    related: dict[str, list[Record]] = defaultdict(list)
    for read in mapping.related_reads():
        for child in crm.related_records(
            read.object,
            read.fields,
            parent_field=read.parent_field,
            parent_ids=[record_id],
            where=read.where,
        ):
            for name in read.events_of(child):
                related[name].append(child)
    return mapping.to_canonical(record, related)
