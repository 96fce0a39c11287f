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
removing, inserting or reordering entries, breaks a hash or a link that
``ChainVerifier`` reports; entries cut off the end are found by comparing the walk with
the store's recorded head. A chain holds one entry per (complaint id, version): a second
one is reported as a duplicate.

Canonical JSON: keys sorted, no whitespace, UTF-8 (not ASCII-escaped), no NaN/Infinity.
Instants in headers and bodies are ``YYYY-MM-DDTHH:MM:SSZ`` text, so text order is time
order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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


class ChainConflictError(ArchiveError):
    """An append whose ``seq``/``prev_hash`` no longer follow the chain's head (someone
    else appended first): re-read the head and try again."""


class DuplicateEntryError(ChainConflictError):
    """An append of a complaint version the chain holds already: look it up and use it."""


class ArchiveIndexError(ArchiveError):
    """A store's index (what search answers from) disagrees with its entries: nothing is
    answered from it until it is rebuilt from the entries (``crmsync archive reindex``)."""


class EntryNotFoundError(ArchiveError, LookupError):
    """No entry has this reference."""


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes; ``ArchiveError`` if it is not plain JSON data."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ArchiveError(f"not storable as canonical JSON: {exc}") from None


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
        raise ArchiveError(f"{where}: {exc}") from None


def entry_from_bytes(data: bytes, where: str) -> ArchiveEntry:
    """Parse the bytes of ``to_bytes``; ``ArchiveError`` naming ``where`` when they are not."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{where}: not JSON ({exc})") from None
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


# ----------------------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong at one slot of a chain (slot 0: the chain as a whole)."""

    slot: int
    ref: str
    problem: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.problem}"


@dataclass
class ChainReport:
    """The outcome of walking a chain.

    ``first_broken`` is the first slot from which the chain can no longer be trusted;
    ``bad`` every finding, in order; ``index_bad`` every way the store's index (what
    search answers from) disagrees with the entries; ``unchecked_bodies`` counts
    encrypted bodies whose content hash could not be checked (no key given); ``witness``
    the head recorded apart from the archive that the chain was held against (None: none
    was given).
    """

    profile: str
    entries: int = 0
    head: ChainHead | None = None
    witness: ChainHead | None = None
    first_broken: Finding | None = None
    bad: list[Finding] = field(default_factory=list)
    unchecked_bodies: int = 0
    index_bad: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.index_bad

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "ok": self.ok,
            "entries": self.entries,
            "head": None if self.head is None else self.head.seq,
            "witness": None if self.witness is None else self.witness.seq,
            "first_broken": None if self.first_broken is None else str(self.first_broken),
            "bad": [str(f) for f in self.bad],
            "index_bad": [str(f) for f in self.index_bad],
            "unchecked_bodies": self.unchecked_bodies,
        }


class ChainVerifier:
    """Walks one profile's chain slot by slot (keeping one small record per complaint
    version, to find a version archived twice).

    Feed every ``StoredEntry`` in store order with its opened body (None when it cannot
    be checked, ``body_problem`` saying why it could not be opened), then ``finish`` with
    the store's recorded head. With a ``witness`` (a head recorded outside the archive
    when it was seen) the chain must still reach it and hold the same entry there: that
    finds a chain cut at its end together with its head, which the walk alone cannot.
    """

    def __init__(self, profile: str, witness: ChainHead | None = None) -> None:
        self.report = ChainReport(profile, witness=witness)
        self._expected = 1
        self._prev: str | None = GENESIS
        self._witness = witness
        self._versions: dict[tuple[str, str], int] = {}  # (complaint, version) -> first slot

    def _bad(self, slot: int, problem: str) -> None:
        finding = Finding(slot, make_ref(self.report.profile, slot) if slot else "chain", problem)
        self.report.bad.append(finding)
        if self.report.first_broken is None:
            self.report.first_broken = finding

    def add(
        self,
        stored: StoredEntry,
        body: Mapping[str, Any] | None = None,
        body_problem: str | None = None,
    ) -> None:
        """Check one slot: its place, its header hash, its link and its body."""
        slot = stored.slot
        self.report.entries += 1
        if slot > self._expected:
            gap = (
                f"entry {self._expected} is missing"
                if slot == self._expected + 1
                else f"entries {self._expected}..{slot - 1} are missing"
            )
            self._bad(slot, f"{gap} before this one")
        elif slot < self._expected:
            self._bad(slot, f"slot {slot} appears again after slot {self._expected - 1}")
        self._expected = slot + 1
        if stored.entry is None:
            self._bad(slot, f"unreadable: {stored.problem or 'no entry'}")
            self._prev = None
            return
        header = stored.entry.header
        problems: list[str] = []
        if header.profile != self.report.profile:
            problems.append(f"belongs to profile '{header.profile}'")
        if header.seq != slot:
            problems.append(f"holds entry {header.seq} (entries moved or reordered)")
        if header.computed_hash() != header.entry_hash:
            problems.append("header altered: its entry_hash does not match its fields")
        first = self._versions.setdefault((header.complaint_id, header.version), slot)
        if first != slot:
            problems.append(
                f"duplicate: complaint {header.complaint_id} version {header.version} is "
                f"archived already as entry {make_ref(self.report.profile, first)}"
            )
        if self._prev is not None and header.prev_hash != self._prev:
            problems.append("broken link: prev_hash is not the hash of the entry before")
        if body_problem is not None:
            problems.append(body_problem)
        elif body is not None:
            problems.extend(body_problems(header, body))
        else:
            self.report.unchecked_bodies += 1
        w = self._witness
        if w is not None and w.seq == slot and header.entry_hash != w.entry_hash:
            problems.append(
                f"differs from the entry {slot} witnessed outside the archive "
                f"(hash {w.entry_hash[:16]}...): the chain was rewritten from here or before"
            )
        for problem in problems:
            self._bad(slot, problem)
        self._prev = header.entry_hash

    def finish(self, head: ChainHead) -> ChainReport:
        """Compare the walk's end with the recorded head (and the witness) and return the
        report."""
        self.report.head = head
        last = self._expected - 1
        w = self._witness
        if w is not None and w.seq > max(head.seq, last):
            self._bad(
                0,
                f"entry {w.seq} was witnessed outside the archive but the chain ends at "
                f"{max(head.seq, last)}: entries {max(head.seq, last) + 1}..{w.seq} were removed "
                "together with the head",
            )
        if head.seq > last:
            missing = f"{last + 1}" if head.seq == last + 1 else f"{last + 1}..{head.seq}"
            self._bad(
                0,
                f"the head records entry {head.seq} but the chain ends at {last}: "
                f"entries {missing} were removed",
            )
        elif head.seq < last:
            self._bad(0, f"the chain goes on to entry {last} past its recorded head {head.seq}")
        elif head.seq and self._prev is not None and head.entry_hash != self._prev:
            self._bad(0, f"the head's hash does not match entry {last}")
        return self.report


def compare_index(
    lines: Iterable[tuple[int, EntryHeader | None, str | None]],
    entries: Iterable[tuple[int, EntryHeader | None]],
    header_of: Callable[[int], EntryHeader],
    profile: str,
) -> list[Finding]:
    """Hold an index (``(line number, header or None, why not)`` in file order) against the
    entries (``(slot, header or None when unreadable)`` in slot order): a line that is not
    a header, a line that differs from its entry, a line for no entry (extra), an entry
    with no line (missing), a line out of order. ``header_of(seq)`` reads one entry's
    header for a line out of order (``EntryNotFoundError`` when there is none). Findings
    are at the entry's slot (0 when there is none) and name the line."""
    findings: list[Finding] = []
    missing: dict[int, Finding] = {}
    walk = iter(entries)
    current: tuple[int, EntryHeader | None] | None = next(walk, None)
    last = 0

    def ref(seq: int) -> str:
        return make_ref(profile, seq)

    def differs(line: int, header: EntryHeader, entry: EntryHeader) -> Finding | None:
        if header == entry:
            return None
        fields = [k for k, v in header.as_dict().items() if entry.as_dict().get(k) != v]
        return Finding(
            header.seq,
            ref(header.seq),
            f"index line {line} differs from the entry in {', '.join(fields)}",
        )

    for number, header, problem in lines:
        if header is None:
            findings.append(Finding(0, "index", f"line {number} is not a header ({problem})"))
            continue
        seq = header.seq
        if seq <= last:
            what = (
                f"index line {number} lists entry {seq} out of order (after entry {last})"
                if missing.pop(seq, None) is not None
                else f"index line {number} repeats entry {seq}"
            )
            findings.append(Finding(seq, ref(seq), what))
            try:
                found = differs(number, header, header_of(seq))
            except EntryNotFoundError:
                found = Finding(0, ref(seq), f"index line {number} lists no entry (extra line)")
            if found is not None:
                findings.append(found)
            continue
        while current is not None and current[0] < seq:
            if current[0] > last:
                missing[current[0]] = Finding(
                    current[0], ref(current[0]), "the entry has no index line (missing)"
                )
            current = next(walk, None)
        if current is None or current[0] != seq:
            findings.append(
                Finding(0, ref(seq), f"index line {number} lists no entry (extra line)")
            )
        elif current[1] is not None:
            found = differs(number, header, current[1])
            if found is not None:
                findings.append(found)
        last = seq
    while current is not None:
        if current[0] > last:
            missing[current[0]] = Finding(
                current[0], ref(current[0]), "the entry has no index line (missing)"
            )
        current = next(walk, None)
    return sorted([*findings, *missing.values()], key=lambda f: f.slot or 1 << 62)


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
