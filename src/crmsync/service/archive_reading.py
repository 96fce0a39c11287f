"""Reading and verifying the archive: opening entry bodies, checking entries and whole
chains, and the reader people use (``crmsync archive show/search/export/verify``).

An entry's body is checked before it is shown: its header hash, its content hash and the
header fields copied from it. A sealed body is opened through the ``ArchiveCipher`` port;
without the right key reading fails with ``ArchiveKeyMissingError`` or
``WrongArchiveKeyError`` naming key ids (never a key). Every entry read for a person is
logged (``archive_read``) with who read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog

from crmsync.domain.archive_chain import ChainReport, ChainVerifier
from crmsync.domain.archive_entry import (
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    body_problems,
    check_profile,
)
from crmsync.errors import ArchiveError, ArchiveKeyMissingError, WrongArchiveKeyError
from crmsync.ports import ArchiveCipher, ArchiveStore

log = structlog.get_logger("crmsync.archive")


def open_body(entry: ArchiveEntry, cipher: ArchiveCipher | None) -> dict[str, Any]:
    """The plaintext body of an entry; ``ArchiveKeyMissingError`` if it is sealed and there
    is no key (see ``ArchiveCipher.open`` for the other errors)."""
    if entry.body is not None:
        return dict(entry.body)
    if cipher is None:
        raise ArchiveKeyMissingError(
            f"entry {entry.ref} is encrypted: set CRMSYNC_ARCHIVE_KEY to read it (or "
            "CRMSYNC_ARCHIVE_KEYS for a key used before a rotation)"
        )
    return cipher.open(entry)


def entry_problems(entry: ArchiveEntry, cipher: ArchiveCipher | None) -> list[str]:
    """What is wrong with one entry on its own (header hash, body); raises like
    ``open_body`` when the body cannot be opened for want of the right key."""
    problems = []
    if entry.header.computed_hash() != entry.header.entry_hash:
        problems.append("header altered: its entry_hash does not match its fields")
    try:
        body = open_body(entry, cipher)
    except (ArchiveKeyMissingError, WrongArchiveKeyError):
        raise
    except ArchiveError as exc:
        return [*problems, str(exc)]
    return problems + body_problems(entry.header, body)


def verify_archive(
    archive: ArchiveStore,
    profile: str,
    cipher: ArchiveCipher | None,
    witness: ChainHead | None = None,
) -> ChainReport:
    """Walk the profile's whole chain and check every entry and link (and, given the
    ``witness`` the state store recorded, that the chain still reaches it unchanged); then
    hold the store's index against the entries (``ChainReport.index_bad``).

    The head is read first and entries appended during the walk are left out. Bodies
    sealed with no key given are counted as unchecked (links and header hashes are still
    checked). A wrong key raises ``WrongArchiveKeyError`` unless an earlier sealed entry
    opened with it (then that entry is reported as bad).
    """
    head = archive.head(profile)
    verifier = ChainVerifier(profile, witness)
    key_worked = False
    for stored in archive.iterate(profile):
        if stored.slot > head.seq:
            break
        body: dict[str, Any] | None = None
        problem: str | None = None
        if stored.entry is not None:
            try:
                body = open_body(stored.entry, cipher)
                key_worked = key_worked or stored.entry.sealed is not None
            except ArchiveKeyMissingError:
                body = None
            except WrongArchiveKeyError as exc:
                if not key_worked:
                    raise
                problem = str(exc)
            except ArchiveError as exc:
                problem = str(exc)
        verifier.add(stored, body, problem)
    report = verifier.finish(head)
    report.index_bad = archive.index_problems(profile)
    return report


class ArchiveReader:
    """Reads the archive for people; every entry read is logged (``archive_read``) with
    ``actor``, who ran it. Entries that fail their own checks are refused, not shown."""

    def __init__(
        self,
        archive: ArchiveStore,
        *,
        profile: str,
        actor: str,
        cipher: ArchiveCipher | None = None,
        witness: ChainHead | None = None,
    ) -> None:
        self.archive = archive
        self.profile = check_profile(profile)
        self.actor = actor
        self.cipher = cipher
        self.witness = witness

    def _open(self, entry: ArchiveEntry, purpose: str | None) -> dict[str, Any]:
        """The checked, decrypted body; logged as ``archive_read`` unless ``purpose`` is
        None (the caller logs the read itself)."""
        problems = entry_problems(entry, self.cipher)
        if problems:
            raise ArchiveError(
                f"entry {entry.ref} fails its check ({'; '.join(problems)}): "
                "run 'crmsync archive verify'"
            )
        body = open_body(entry, self.cipher)
        if purpose is not None:
            log.info(
                "archive_read",
                ref=entry.ref,
                complaint_id=entry.header.complaint_id,
                actor=self.actor,
                purpose=purpose,
            )
        return body

    def read(self, ref: str) -> tuple[EntryHeader, dict[str, Any]]:
        """One entry's header and body (``EntryNotFoundError`` if none)."""
        entry = self.archive.get(ref)
        return entry.header, self._open(entry, "show")

    def versions(self, complaint_id: str) -> list[tuple[EntryHeader, dict[str, Any]]]:
        """Every archived version of a complaint, oldest first."""
        return [
            self.read(h.ref) for h in self.archive.search(self.profile, complaint_id=complaint_id)
        ]

    def search(
        self,
        *,
        complaint_id: str | None = None,
        closed_from: str | None = None,
        closed_before: str | None = None,
        charter: str | None = None,
    ) -> list[EntryHeader]:
        """Matching headers (no body is read); logged as ``archive_search``."""
        found = self.archive.search(
            self.profile,
            complaint_id=complaint_id,
            closed_from=closed_from,
            closed_before=closed_before,
            charter=charter,
        )
        log.info(
            "archive_search",
            actor=self.actor,
            complaint_id=complaint_id,
            closed_from=closed_from,
            closed_before=closed_before,
            charter=charter,
            results=len(found),
        )
        return found

    def export(self) -> Iterator[tuple[EntryHeader, dict[str, Any]]]:
        """Every entry in chain order; a damaged one stops the export with ``ArchiveError``.

        Logged once, when the export ends or stops, as ``archive_exported`` with the
        references of every entry read (``complete`` false when it stopped early)."""
        refs: list[str] = []
        complete = False
        try:
            for stored in self.archive.iterate(self.profile):
                if stored.entry is None:
                    raise ArchiveError(
                        f"entry {self.profile}/{stored.slot} is unreadable ({stored.problem}): "
                        "run 'crmsync archive verify'"
                    )
                body = self._open(stored.entry, None)
                refs.append(stored.entry.ref)
                yield stored.entry.header, body
            complete = True
        finally:
            log.info(
                "archive_exported",
                actor=self.actor,
                entries=len(refs),
                refs=refs,
                complete=complete,
            )

    def verify(self) -> ChainReport:
        """``verify_archive`` on the profile (held against the witness when there is one),
        logged as ``archive_verified``: at level error when the chain is broken."""
        report = verify_archive(self.archive, self.profile, self.cipher, self.witness)
        (log.info if report.ok else log.error)(
            "archive_verified",
            actor=self.actor,
            ok=report.ok,
            entries=report.entries,
            bad=len(report.bad),
            unchecked_bodies=report.unchecked_bodies,
        )
        return report
