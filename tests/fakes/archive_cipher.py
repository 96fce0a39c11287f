"""An in-memory ``ArchiveCipher`` for tests: no cryptography, the same contract as AES-GCM.

Sealing keeps the body in a vault in memory and stores only a random ticket with the
key's id, so the stored entry holds no plaintext; opening looks the ticket up and checks
that the key id and the header it was sealed under are the ones presented. Ciphers that
share a vault (by default every one in the process) open each other's entries when they
hold the key, as real ones do across processes. Not for production: nothing is encrypted
and nothing survives the process.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.domain.archive_entry import ArchiveEntry, EntryHeader, canonical_json
from crmsync.errors import ArchiveError, ConfigError, WrongArchiveKeyError

Vault = dict[str, tuple[str, bytes, bytes]]
"""ticket -> (key id, canonical header link fields, canonical body)."""

_SHARED: Vault = {}


def fake_key_id(key: str) -> str:
    """The id a fake key is known by (a hash: the key itself is never shown)."""
    return "fake-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:11]


class FakeArchiveCipher:
    """Seals with ``key`` (None: reads only), opens with it or any of ``old_keys``."""

    ALGORITHM = "fake-vault"

    def __init__(
        self, key: str | None, *, old_keys: Sequence[str] = (), vault: Vault | None = None
    ) -> None:
        self.key_id = None if key is None else fake_key_id(key)
        self._ids = {fake_key_id(k) for k in [*([key] if key is not None else []), *old_keys]}
        self._vault = _SHARED if vault is None else vault

    def __repr__(self) -> str:
        return f"FakeArchiveCipher(key_id={self.key_id!r}, reads={self.key_ids!r})"

    @property
    def key_ids(self) -> list[str]:
        """The ids of every key this cipher opens entries with."""
        return sorted(self._ids)

    def seal(self, header: EntryHeader, body: Mapping[str, Any]) -> ArchiveEntry:
        """The entry with its body kept in the vault; ``ConfigError`` without a current key."""
        if self.key_id is None:
            raise ConfigError("the fake cipher holds only old keys: it cannot seal")
        ticket = uuid.uuid4().hex
        self._vault[ticket] = (
            self.key_id,
            canonical_json(header.link_fields()),
            canonical_json(body),
        )
        return ArchiveEntry(
            header, sealed={"alg": self.ALGORITHM, "key_id": self.key_id, "ticket": ticket}
        )

    def open(self, entry: ArchiveEntry) -> dict[str, Any]:
        """The body the entry's ticket names; errors as ``ArchiveCipher.open`` says."""
        sealed = entry.sealed or {}
        if sealed.get("alg") != self.ALGORITHM:
            raise ArchiveError(f"entry {entry.ref}: unknown encryption {sealed.get('alg')!r}")
        key_id = str(sealed.get("key_id"))
        if key_id not in self._ids:
            raise WrongArchiveKeyError(
                f"entry {entry.ref} was sealed with key {key_id}, but this cipher holds "
                f"{', '.join(self.key_ids)}: wrong key"
            )
        kept = self._vault.get(str(sealed.get("ticket")))
        if kept is None or kept[:2] != (key_id, canonical_json(entry.header.link_fields())):
            raise ArchiveError(
                f"entry {entry.ref}: the encrypted body fails authentication (altered)"
            )
        body = json.loads(kept[2])
        assert isinstance(body, dict)
        return body
