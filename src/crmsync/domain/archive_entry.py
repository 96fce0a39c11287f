"""Archive entries: canonical JSON, content hashes and the hash chain (pure, stdlib only).

An entry is a *body* (what was archived: a JSON object) and a *header* (where it sits in
its profile's chain)::

    content_hash = sha256(canonical_json(body))            # over the plaintext body
    entry_hash   = sha256(canonical_json(header minus entry_hash))
    header       = profile, seq, complaint_id, version, closed_at, archived_at, charter,
                   content_hash, prev_hash, entry_hash

``seq`` counts from 1 per profile; ``prev_hash`` is the ``entry_hash`` of entry ``seq - 1``
(``GENESIS`` for the first). The header's descriptive fields are copies of the body's, so
a header that no longer matches its body is found too. Changing any byte of an entry, or
removing, inserting or reordering entries, breaks a hash or a link that the chain
verifier (``crmsync.domain.archive_chain``) reports. A chain holds one entry per
(complaint id, version).

Canonical JSON: keys sorted, no whitespace, UTF-8 (not ASCII-escaped), no NaN/Infinity.
Instants in headers and bodies are ``YYYY-MM-DDTHH:MM:SSZ`` text, so text order is time
order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from crmsync.errors import ArchiveError

FORMAT = "crmsync-archive/1"
"""The body format; bodies carry it as ``format``."""
GENESIS = "0" * 64
"""The ``prev_hash`` of a chain's first entry (and the hash of an empty chain's head)."""

_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_TEXT_FIELDS = ("profile", "complaint_id", "version", "closed_at", "archived_at", "charter")
_HASH_FIELDS = ("content_hash", "prev_hash", "entry_hash")


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes; ``ArchiveError`` if it is not plain JSON data."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ArchiveError(f"not storable as canonical JSON: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def content_hash(body: Mapping[str, Any]) -> str:
    """The hash of a body: SHA-256 of its canonical JSON."""
    return sha256_hex(canonical_json(body))


def check_profile(profile: str) -> str:
    """A profile name usable in refs, file names and keys; ``ArchiveError`` otherwise."""
    if not isinstance(profile, str) or not _PROFILE.fullmatch(profile):
        raise ArchiveError(
            f"profile {profile!r}: an archive profile is 1-100 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return profile


def make_ref(profile: str, seq: int) -> str:
    """The reference of entry ``seq`` of ``profile``: ``profile/seq``."""
    return f"{profile}/{seq}"


def parse_ref(ref: str) -> tuple[str, int]:
    """``(profile, seq)`` of a reference such as ``default/42``; ``ArchiveError`` if malformed."""
    profile, _, number = str(ref).strip().rpartition("/")
    if not profile or not number.isdigit() or int(number) < 1:
        raise ArchiveError(f"'{ref}' is not an archive reference (write PROFILE/NUMBER)")
    return check_profile(profile), int(number)


@dataclass(frozen=True, slots=True)
class EntryHeader:
    """Where an entry sits in its chain, and what it is about (copied from its body)."""

    profile: str
    seq: int
    complaint_id: str
    version: str
    closed_at: str
    archived_at: str
    charter: str
    content_hash: str
    prev_hash: str
    entry_hash: str

    @property
    def ref(self) -> str:
        return make_ref(self.profile, self.seq)

    def link_fields(self) -> dict[str, Any]:
        """Every field but ``entry_hash``: what ``entry_hash`` is the hash of."""
        return {
            "profile": self.profile,
            "seq": self.seq,
            "complaint_id": self.complaint_id,
            "version": self.version,
            "closed_at": self.closed_at,
            "archived_at": self.archived_at,
            "charter": self.charter,
            "content_hash": self.content_hash,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        """The ``entry_hash`` these fields should carry."""
        return sha256_hex(canonical_json(self.link_fields()))

    def as_dict(self) -> dict[str, Any]:
        return {**self.link_fields(), "entry_hash": self.entry_hash}


def header_from_dict(data: object, where: str) -> EntryHeader:
    """Read a header written by ``as_dict``; ``ArchiveError`` naming ``where`` and the field."""
    if not isinstance(data, Mapping):
        raise ArchiveError(f"{where}: the header is not a JSON object")
    for name in _TEXT_FIELDS + _HASH_FIELDS:
        if not isinstance(data.get(name), str):
            raise ArchiveError(f"{where}: header field '{name}' is missing or not text")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ArchiveError(f"{where}: header field 'seq' is not a whole number >= 1")
    return EntryHeader(
        profile=data["profile"],
        seq=seq,
        complaint_id=data["complaint_id"],
        version=data["version"],
        closed_at=data["closed_at"],
        archived_at=data["archived_at"],
        charter=data["charter"],
        content_hash=data["content_hash"],
        prev_hash=data["prev_hash"],
        entry_hash=data["entry_hash"],
    )


def _described(body: Mapping[str, Any]) -> dict[str, str]:
    """The header fields a body describes: complaint id, version, instants, charter name."""
    charter = body.get("charter")
    name = charter.get("name") if isinstance(charter, Mapping) else None
    found = {
        "profile": body.get("profile"),
        "complaint_id": body.get("complaint_id"),
        "version": body.get("version"),
        "closed_at": body.get("closed_at"),
        "archived_at": body.get("archived_at"),
        "charter": name,
    }
    for key, value in found.items():
        if not isinstance(value, str) or not value:
            raise ArchiveError(f"the body has no text '{key}'")
    for key in ("closed_at", "archived_at"):
        if not _INSTANT.fullmatch(found[key] or ""):
            raise ArchiveError(f"the body's '{key}' is not YYYY-MM-DDTHH:MM:SSZ")
    return {k: str(v) for k, v in found.items()}


def new_header(body: Mapping[str, Any], *, seq: int, prev_hash: str) -> EntryHeader:
    """The header of ``body`` as entry ``seq`` after an entry whose hash is ``prev_hash``.

    The body must hold ``profile``, ``complaint_id``, ``version``, ``closed_at``,
    ``archived_at`` (instants as ``YYYY-MM-DDTHH:MM:SSZ``) and ``charter.name``.
    """
    described = _described(body)
    check_profile(described["profile"])
    if seq < 1 or not _HEX64.fullmatch(prev_hash):
        raise ArchiveError(f"entry {seq}: seq must be >= 1 and prev_hash 64 hex digits")
    header = EntryHeader(
        profile=described["profile"],
        seq=seq,
        complaint_id=described["complaint_id"],
        version=described["version"],
        closed_at=described["closed_at"],
        archived_at=described["archived_at"],
        charter=described["charter"],
        content_hash=content_hash(body),
        prev_hash=prev_hash,
        entry_hash="",
    )
    return replace(header, entry_hash=header.computed_hash())


def body_problems(header: EntryHeader, body: Mapping[str, Any]) -> list[str]:
    """What is wrong between a header and its (plaintext) body; empty when they agree."""
    problems: list[str] = []
    try:
        if content_hash(body) != header.content_hash:
            problems.append("content altered: its hash does not match the header's content_hash")
        described = _described(body)
    except ArchiveError as exc:
        return [*problems, f"body unreadable: {exc}"]
    for key, value in described.items():
        if getattr(header, key) != value:
            problems.append(f"header field '{key}' does not match the body")
    return problems


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A header and its body as stored: plaintext ``body``, or ``sealed`` (encrypted)."""

    header: EntryHeader
    body: Mapping[str, Any] | None = None
    sealed: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.body is None) == (self.sealed is None):
            raise ArchiveError(f"entry {self.header.ref}: needs exactly one of body or sealed")

    @property
    def ref(self) -> str:
        return self.header.ref

    def to_document(self) -> dict[str, Any]:
        """The JSON document a file or object store keeps."""
        doc: dict[str, Any] = {"format": FORMAT, "header": self.header.as_dict()}
        if self.body is not None:
            doc["body"] = self.body
        else:
            doc["sealed"] = self.sealed
        return doc

    def to_bytes(self) -> bytes:
        """``to_document`` as canonical JSON plus a final newline."""
        return canonical_json(self.to_document()) + b"\n"


def entry_from_document(data: object, where: str) -> ArchiveEntry:
    """Read a document written by ``to_document``; ``ArchiveError`` naming ``where``."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ArchiveError(f"{where}: not a {FORMAT} entry")
    header = header_from_dict(data.get("header"), where)
    body = data.get("body")
    sealed = data.get("sealed")
    if body is not None and not isinstance(body, Mapping):
        raise ArchiveError(f"{where}: 'body' is not a JSON object")
    if sealed is not None and (
        not isinstance(sealed, Mapping) or not all(isinstance(v, str) for v in sealed.values())
    ):
        raise ArchiveError(f"{where}: 'sealed' is not an object of text values")
    try:
        return ArchiveEntry(header, body, sealed)
    except ArchiveError as exc:
        raise ArchiveError(f"{where}: {exc}") from exc


def entry_from_bytes(data: bytes, where: str) -> ArchiveEntry:
    """Parse the bytes of ``to_bytes``; ``ArchiveError`` naming ``where`` when they are not."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{where}: not JSON ({exc})") from exc
    return entry_from_document(document, where)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry of a profile's chain: ``seq`` 0 and ``GENESIS`` when empty."""

    profile: str
    seq: int = 0
    entry_hash: str = GENESIS


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One slot of a store, in chain order: the entry there, or why it cannot be read.

    ``slot`` is the position the store keeps it at (file name, object key, row number);
    an intact chain has ``entry.header.seq == slot`` and no gaps.
    """

    slot: int
    entry: ArchiveEntry | None
    problem: str | None = None


def header_matches(
    header: EntryHeader,
    *,
    complaint_id: str | None = None,
    version: str | None = None,
    closed_from: str | None = None,
    closed_before: str | None = None,
    charter: str | None = None,
) -> bool:
    """Whether a header meets every search criterion given (``ArchiveStore.search``)."""
    return (
        (complaint_id is None or header.complaint_id == complaint_id)
        and (version is None or header.version == version)
        and (closed_from is None or header.closed_at >= closed_from)
        and (closed_before is None or header.closed_at < closed_before)
        and (charter is None or header.charter == charter)
    )
