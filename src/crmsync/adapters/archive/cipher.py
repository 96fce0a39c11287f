"""Encryption at rest of archive entry bodies with AES-256-GCM (the ``ArchiveCipher`` port).

Each sealed body is the canonical JSON of the plaintext body, encrypted with a random
96-bit nonce and the header's link fields as associated data (so a sealed body moved
under another header fails authentication); hashes stay over the plaintext. Each sealed
body names its key's id (``key_id_of``: 16 hex digits of a SHA-256 of the key, never the
key). Keys rotate: new entries use the current key (``CRMSYNC_ARCHIVE_KEY``), older ones
open with the key they name from the old keys given (``CRMSYNC_ARCHIVE_KEYS``); entries
are never re-encrypted (they are append-only). Keys are never stored, printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crmsync.domain.archive_entry import ArchiveEntry, EntryHeader, canonical_json, sha256_hex
from crmsync.errors import ArchiveError, ConfigError, WrongArchiveKeyError

KEY_BYTES = 32


def key_id_of(key: bytes) -> str:
    """The id an entry sealed with ``key`` carries: 16 hex digits of a SHA-256 of the key
    (never the key)."""
    return sha256_hex(b"crmsync-archive-key:" + key)[:16]


def _decode_key(text: str, name: str) -> bytes:
    """A base64 32-byte key; ``ConfigError`` naming the setting (never quoting the value)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:  # its message names no character of the key
        raise ConfigError(f"{name} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{name} must decode to {KEY_BYTES} bytes, not {len(key)} "
            "(make one with: openssl rand -base64 32)"
        )
    return key


class AesGcmCipher:
    """AES-256-GCM sealing of entry bodies: new entries with one 32-byte key, reading with
    that key or any of ``old_keys`` (the keys used before a rotation).

    ``key_id`` (``key_id_of``) is stored with each sealed body, so that an entry names the
    key it was sealed with and the right key is picked to open it, and a missing key is
    told apart from an altered body. With no ``key`` (only old keys) the cipher reads but
    does not seal. ``ConfigError`` for a key that is not 32 bytes.
    """

    ALGORITHM = "AES-256-GCM"

    def __init__(self, key: bytes | None, *, old_keys: Sequence[bytes] = ()) -> None:
        self._readers: dict[str, AESGCM] = {}
        self._aead: AESGCM | None = None
        self.key_id: str | None = None
        if key is not None:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"CRMSYNC_ARCHIVE_KEY must be {KEY_BYTES} bytes, got {len(key)}")
            self._aead = AESGCM(key)
            self.key_id = key_id_of(key)
            self._readers[self.key_id] = self._aead
        for n, old in enumerate(old_keys, 1):
            if len(old) != KEY_BYTES:
                raise ConfigError(
                    f"CRMSYNC_ARCHIVE_KEYS: key {n} must be {KEY_BYTES} bytes, got {len(old)}"
                )
            self._readers.setdefault(key_id_of(old), AESGCM(old))

    def __repr__(self) -> str:
        return f"AesGcmCipher(key_id={self.key_id!r}, reads={sorted(self._readers)!r})"

    @property
    def key_ids(self) -> list[str]:
        """The ids of every key this cipher can open entries with."""
        return sorted(self._readers)

    @classmethod
    def from_base64(cls, text: str | None, old: str | None = None) -> AesGcmCipher:
        """The cipher of ``CRMSYNC_ARCHIVE_KEY`` (a base64 key, or None/empty: read only)
        and ``CRMSYNC_ARCHIVE_KEYS`` (base64 keys separated by commas, spaces or lines);
        ``ConfigError`` naming the setting and the key's position, never its value."""
        key = _decode_key(text, "CRMSYNC_ARCHIVE_KEY") if text and text.strip() else None
        parts = (old or "").replace(",", " ").split()
        olds = [_decode_key(p, f"CRMSYNC_ARCHIVE_KEYS: key {n}") for n, p in enumerate(parts, 1)]
        if key is None and not olds:
            raise ConfigError("CRMSYNC_ARCHIVE_KEY is empty")
        return cls(key, old_keys=olds)

    def seal(self, header: EntryHeader, body: Mapping[str, Any]) -> ArchiveEntry:
        """The entry with ``body`` encrypted with the current key (bound to the header's
        link fields); ``ConfigError`` when only old keys were given."""
        if self._aead is None or self.key_id is None:
            raise ConfigError(
                "CRMSYNC_ARCHIVE_KEYS holds keys to read old entries with, but "
                "CRMSYNC_ARCHIVE_KEY (the key new entries are sealed with) is not set"
            )
        nonce = os.urandom(12)
        ciphertext = self._aead.encrypt(
            nonce, canonical_json(body), canonical_json(header.link_fields())
        )
        return ArchiveEntry(
            header,
            sealed={
                "alg": self.ALGORITHM,
                "key_id": self.key_id,
                "nonce": base64.b64encode(nonce).decode("ascii"),
                "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
            },
        )

    def open(self, entry: ArchiveEntry) -> dict[str, Any]:
        """The plaintext body of a sealed entry, opened with the key it names;
        ``WrongArchiveKeyError`` when no key given has that id, ``ArchiveError`` for a body
        that fails authentication (altered) or is not sealed by this algorithm."""
        sealed = entry.sealed or {}
        if sealed.get("alg") != self.ALGORITHM:
            raise ArchiveError(f"entry {entry.ref}: unknown encryption {sealed.get('alg')!r}")
        aead = self._readers.get(str(sealed.get("key_id")))
        if aead is None:
            olds = [k for k in self.key_ids if k != self.key_id]
            raise WrongArchiveKeyError(
                f"entry {entry.ref} was sealed with key {sealed.get('key_id')}, but "
                f"CRMSYNC_ARCHIVE_KEY is key {self.key_id or '(none)'}"
                + (f" and CRMSYNC_ARCHIVE_KEYS holds {', '.join(olds)}" if olds else "")
                + ": wrong key (after a rotation, put the old key in CRMSYNC_ARCHIVE_KEYS)"
            )
        altered = f"entry {entry.ref}: the encrypted body fails authentication (altered)"
        try:
            nonce = base64.b64decode(sealed.get("nonce", ""), validate=True)
            ciphertext = base64.b64decode(sealed.get("ciphertext", ""), validate=True)
            plain = aead.decrypt(nonce, ciphertext, canonical_json(entry.header.link_fields()))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ArchiveError(altered) from exc
        try:
            body = json.loads(plain.decode("utf-8"))
        except ValueError:
            body = None
        if body is None:
            # no cause, no context (raised past the except block): a UTF-8 or JSON error
            # holds the decrypted body the key protects
            raise ArchiveError(altered) from None
        if not isinstance(body, dict):
            raise ArchiveError(f"entry {entry.ref}: the decrypted body is not a JSON object")
        return body
