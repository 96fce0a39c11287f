"""The ArchiveCipher contract: the AES-256-GCM adapter and the in-memory fake behave the same.

Each test gets ``ciphers``, a factory ``(current key, old keys) -> ArchiveCipher`` over
key labels, and checks what ``crmsync.ports.ArchiveCipher`` promises: sealed bodies hold
no plaintext and name their key's id, open with that key (also after a rotation), refuse
another key with ``WrongArchiveKeyError`` naming ids only, and fail authentication when
altered or moved under another header.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from crmsync.adapters.archive.cipher import AesGcmCipher
from crmsync.domain.archive_entry import (
    FORMAT,
    GENESIS,
    ArchiveEntry,
    EntryHeader,
    content_hash,
    new_header,
)
from crmsync.errors import ArchiveError, ConfigError, WrongArchiveKeyError
from crmsync.ports import ArchiveCipher
from crmsync.service.archive_reading import entry_problems, open_body
from fakes.archive_cipher import FakeArchiveCipher, Vault


@dataclass
class Ciphers:
    """Builds ciphers of one kind from key labels; ``material`` is how a key could leak
    (its base64 and hex text, or the fake's key text)."""

    make: Callable[[str | None, Sequence[str]], ArchiveCipher]
    material: Callable[[str], list[str]]


def _aes_key(label: str) -> bytes:
    return hashlib.sha256(f"contract key {label}".encode()).digest()


def _aes() -> Ciphers:
    return Ciphers(
        make=lambda key, old: AesGcmCipher(
            None if key is None else _aes_key(key), old_keys=[_aes_key(k) for k in old]
        ),
        material=lambda label: [
            base64.b64encode(_aes_key(label)).decode(),
            _aes_key(label).hex(),
        ],
    )


def _fake() -> Ciphers:
    vault: Vault = {}
    return Ciphers(
        make=lambda key, old: FakeArchiveCipher(
            None if key is None else f"fake secret {key}",
            old_keys=[f"fake secret {k}" for k in old],
            vault=vault,
        ),
        material=lambda label: [f"fake secret {label}"],
    )


@pytest.fixture(params=[_aes, _fake], ids=["aes-gcm", "fake"])
def ciphers(request: pytest.FixtureRequest) -> Ciphers:
    factory: Callable[[], Ciphers] = request.param
    return factory()


def body(n: int = 1, note: str = "") -> dict[str, Any]:
    return {
        "format": FORMAT,
        "profile": "p",
        "complaint_id": f"C-{n}",
        "version": f"2026-03-0{n}T10:00:00Z",
        "closed_at": f"2026-03-0{n}T10:00:00Z",
        "archived_at": "2026-04-30T02:00:00Z",
        "charter": {"name": "aston"},
        "note": note,
    }


def header(n: int = 1, note: str = "") -> EntryHeader:
    return new_header(body(n, note), seq=n, prev_hash=GENESIS)


def test_a_sealed_body_opens_with_its_key_and_holds_no_plaintext(ciphers: Ciphers) -> None:
    """Sealing keeps the header (hashes over the plaintext), stores no plaintext, names the
    key's id, and the same key opens it to the very body."""
    cipher = ciphers.make("k1", [])
    plain = body(1, note="secret complaint text")
    sealed = cipher.seal(header(1, "secret complaint text"), plain)
    assert sealed.body is None and sealed.sealed is not None
    assert sealed.header == header(1, "secret complaint text")
    assert sealed.header.content_hash == content_hash(plain)
    assert sealed.sealed["key_id"] == cipher.key_id
    assert b"secret complaint text" not in sealed.to_bytes()
    assert cipher.open(sealed) == plain
    assert ciphers.make("k1", []).open(sealed) == plain  # another cipher of the same key


def test_another_key_is_a_wrong_key_naming_ids_never_keys(ciphers: Ciphers) -> None:
    """A cipher without the entry's key raises WrongArchiveKeyError naming both key ids and
    quoting no key material."""
    entry = ciphers.make("k1", []).seal(header(), body())
    other = ciphers.make("k2", ["k3"])
    with pytest.raises(WrongArchiveKeyError, match="wrong key") as wrong:
        other.open(entry)
    message = str(wrong.value)
    assert (entry.sealed or {})["key_id"] in message
    assert all(key_id in message for key_id in other.key_ids)
    assert not any(m in message for label in ("k1", "k2", "k3") for m in ciphers.material(label))


def test_after_a_rotation_old_and_new_entries_open(ciphers: Ciphers) -> None:
    """With the new key current and the old one among the old keys, entries sealed before
    and after the rotation both open; new ones name the new key; key_ids lists both."""
    before = ciphers.make("k1", [])
    after = ciphers.make("k2", ["k1"])
    old_entry = before.seal(header(), body())
    new_entry = after.seal(header(), body())
    assert (new_entry.sealed or {})["key_id"] == after.key_id != before.key_id
    assert after.key_ids == sorted([before.key_id or "", after.key_id or ""])
    assert after.open(old_entry) == body() == after.open(new_entry)


def test_a_cipher_of_old_keys_only_reads_and_never_seals(ciphers: Ciphers) -> None:
    """Without a current key the cipher opens entries of its old keys, has no key_id, and
    sealing is a ConfigError."""
    entry = ciphers.make("k1", []).seal(header(), body())
    reader = ciphers.make(None, ["k2", "k1"])
    assert reader.key_id is None
    assert reader.open(entry) == body()
    with pytest.raises(ConfigError):
        reader.seal(header(), body())


@pytest.mark.parametrize("position", [0, -1])
def test_an_altered_sealed_body_fails_authentication(ciphers: Ciphers, position: int) -> None:
    """Changing any stored field but the algorithm and key id (first or last character) is
    reported as altered, not as a wrong key."""
    cipher = ciphers.make("k1", [])
    entry = cipher.seal(header(), body())
    stored = dict(entry.sealed or {})
    fields = [name for name in stored if name not in ("alg", "key_id")]
    assert fields
    for name in fields:
        value = list(stored[name])
        value[position] = "B" if value[position] == "A" else "A"
        altered = ArchiveEntry(entry.header, sealed={**stored, name: "".join(value)})
        with pytest.raises(ArchiveError, match="fails authentication") as exc:
            cipher.open(altered)
        assert not isinstance(exc.value, WrongArchiveKeyError)


def test_a_sealed_body_moved_under_another_header_fails_authentication(
    ciphers: Ciphers,
) -> None:
    """The header is bound to the sealed body: the same sealed form under a header with
    another number does not open."""
    cipher = ciphers.make("k1", [])
    entry = cipher.seal(header(), body())
    moved = ArchiveEntry(replace(entry.header, seq=2), sealed=entry.sealed)
    with pytest.raises(ArchiveError, match="fails authentication"):
        cipher.open(moved)


def test_another_kind_of_sealing_is_refused(ciphers: Ciphers) -> None:
    """An entry naming an algorithm the cipher does not implement is an ArchiveError naming
    it, not a wrong key."""
    cipher = ciphers.make("k1", [])
    entry = cipher.seal(header(), body())
    foreign = ArchiveEntry(entry.header, sealed={**(entry.sealed or {}), "alg": "ROT13"})
    with pytest.raises(ArchiveError, match="ROT13") as exc:
        cipher.open(foreign)
    assert not isinstance(exc.value, WrongArchiveKeyError)


def test_the_cipher_shows_key_ids_never_keys(ciphers: Ciphers) -> None:
    """Its repr names key ids and no key material."""
    cipher = ciphers.make("k1", ["k2"])
    shown = repr(cipher)
    assert all(key_id in shown for key_id in cipher.key_ids)
    assert not any(m in shown for label in ("k1", "k2") for m in ciphers.material(label))


def test_the_reading_service_checks_sealed_entries_through_the_port(ciphers: Ciphers) -> None:
    """``open_body`` and ``entry_problems`` work with any cipher: an intact sealed entry has
    no problems, an altered header is found after opening its body."""
    cipher = ciphers.make("k1", [])
    entry = cipher.seal(header(), body())
    assert open_body(entry, cipher) == body()
    assert entry_problems(entry, cipher) == []
    tampered = ArchiveEntry(replace(entry.header, complaint_id="C-9"), sealed=entry.sealed)
    problems = entry_problems(tampered, cipher)
    assert problems and problems[0].startswith("header altered")
