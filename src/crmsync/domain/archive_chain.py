"""Verifying an archive chain and a store's index against its entries (pure, stdlib only).

``ChainVerifier`` walks one profile's chain slot by slot (``StoredEntry`` values in store
order, see ``crmsync.domain.archive_entry`` for the format): changing any byte of an
entry, or removing, inserting or reordering entries, breaks a hash or a link it reports;
entries cut off the end are found by comparing the walk with the store's recorded head
(and with a head witnessed outside the archive). A chain holds one entry per (complaint
id, version): a second one is reported as a duplicate. ``compare_index`` holds a store's
index against the entries. Both report ``Finding`` values; nothing here reads a store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmsync.domain.archive_entry import (
    GENESIS,
    ChainHead,
    EntryHeader,
    StoredEntry,
    body_problems,
    make_ref,
)
from crmsync.errors import EntryNotFoundError


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
