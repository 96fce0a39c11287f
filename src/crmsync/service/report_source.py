"""A profile's own complaints for a report: the state store's and the archive's.

No CRM call: the state store holds the complaints the worker follows (open, and closed
ones until retention forgets them); the archive holds every closed complaint ever
archived. A complaint in both is taken from the state store (its newest canonical form);
of a complaint archived more than once, the newest version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from crmsync.domain.complaint import Complaint, complaint_from_json
from crmsync.errors import ArchiveError, BadComplaintError
from crmsync.ports import ArchiveCipher, ArchiveStore, PopulationReader
from crmsync.service.archive_reading import open_body
from crmsync.service.evaluate_stream import located

PAGE = 1000
"""Stored complaints read per state-store call."""


def stored_canonicals(
    state: PopulationReader,
    archive: ArchiveStore | None,
    profile: str,
    cipher: ArchiveCipher | None = None,
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(ref, canonical complaint)`` of every complaint of ``profile``: the state store's
    page by page, then the newest archived version of each complaint it does not hold.

    Memory holds a page and the ids (not the complaints). An archived entry that cannot
    be read raises ``ArchiveError`` naming it.
    """
    held: set[str] = set()
    after = ""
    while page := state.complaints_page(profile, after, PAGE):
        for stored in page:
            held.add(stored.id)
            yield f"state store {stored.id}", stored.canonical
        after = page[-1].id
    if archive is None:
        return
    newest: dict[str, tuple[str, int]] = {}
    for header in archive.search(profile):
        if header.complaint_id in held:
            continue
        known = newest.get(header.complaint_id)
        if known is None or (header.version, header.seq) > known:
            newest[header.complaint_id] = (header.version, header.seq)
    wanted = {seq for _, seq in newest.values()}
    del newest
    for slot in archive.iterate(profile):
        if slot.slot not in wanted:
            continue
        if slot.entry is None:
            raise ArchiveError(f"archive entry {profile}/{slot.slot}: {slot.problem}")
        body = open_body(slot.entry, cipher)
        canonical = body.get("canonical")
        if isinstance(canonical, Mapping):
            yield f"archive {slot.entry.ref}", canonical


def stored_complaints(
    canonicals: Iterator[tuple[str, Mapping[str, Any]]],
    zone: ZoneInfo,
    errors: list[BadComplaintError],
) -> Iterator[tuple[str, Complaint]]:
    """The complaints of ``canonicals``; one that does not read is added to ``errors``."""
    for ref, data in canonicals:
        try:
            yield ref, complaint_from_json(dict(data), zone, ref)
        except BadComplaintError as exc:
            errors.append(located(exc, ref))
