"""What a demo cycle made, read back from the CRM: the follow-up tasks created and a
complaint worth explaining. The CLI prints it; nothing here prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crmsync.mapping.field_mapping import FieldMapping
from crmsync.ports import CrmPort


@dataclass(frozen=True)
class CreatedTask:
    """One follow-up task as the CRM holds it (its mapped fields, as stored)."""

    subject: object
    owner: object
    due: object
    priority: object


@dataclass(frozen=True)
class DemoSummary:
    """The follow-up tasks in the CRM, and the id of a complaint worth explaining: one
    that got a follow-up, else the first complaint; None when the CRM holds none."""

    tasks: list[CreatedTask]
    example: str | None


def demo_summary(crm: CrmPort, mapping: FieldMapping, until: datetime) -> DemoSummary:
    """Read back what the cycle left in ``crm``: every follow-up task (a record carrying
    the follow-up key) changed before ``until`` (an instant after the cycle)."""
    fu = mapping.spec.follow_ups
    records = crm.changed_records(
        fu.object,
        [fu.subject, fu.owner, fu.due_date, fu.priority, fu.key_field, fu.parent],
        since=None,
        until=until,
    )
    created = [r for r in records if r.fields.get(fu.key_field)]
    tasks = [
        CreatedTask(
            r.fields.get(fu.subject),
            r.fields.get(fu.owner),
            r.fields.get(fu.due_date),
            r.fields.get(fu.priority),
        )
        for r in created
    ]
    if created:
        return DemoSummary(tasks, str(created[0].fields.get(fu.parent)))
    complaints = mapping.spec.complaints
    for record in crm.changed_records(complaints.object, [complaints.id], since=None, until=until):
        return DemoSummary(tasks, record.id)
    return DemoSummary(tasks, None)
