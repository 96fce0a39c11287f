"""``CrmPort.write_page`` made of three calls: for an adapter whose API takes each kind of
write in a request of its own (creates, updates of other records), or where packing them
together saves nothing. Each part goes through the adapter's own method (a subclass's too),
in the order follow-ups created, follow-ups completed, records updated; an empty part makes
no call."""

from __future__ import annotations

from crmsync.ports import CrmPort, PageResults, PageWrites


def write_in_parts(crm: CrmPort, writes: PageWrites) -> PageResults:
    """``writes`` through ``create_if_absent``, ``complete_tasks`` and ``update_records``."""
    creates = (
        crm.create_if_absent(writes.follow_up_object, writes.key_field, writes.creates)
        if writes.creates
        else []
    )
    completes = (
        crm.complete_tasks(writes.follow_up_object, writes.completes, writes.completion)
        if writes.completes
        else []
    )
    updates = crm.update_records(writes.record_object, writes.updates) if writes.updates else []
    return PageResults(creates, completes, updates)
