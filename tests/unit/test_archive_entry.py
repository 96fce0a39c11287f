"""Archive entries: canonical JSON, hashes, the chain verifier, and sealing with AES-GCM."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from crmsync.adapters.archive.cipher import AesGcmCipher
from crmsync.domain.archive_chain import ChainVerifier
from crmsync.domain.archive_entry import (
    FORMAT,
    GENESIS,
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    StoredEntry,
    body_problems,
    canonical_json,
    content_hash,
    entry_from_bytes,
    new_header,
    parse_ref,
)
from crmsync.errors import ArchiveError, ConfigError, WrongArchiveKeyError
from crmsync.service.archive_reading import open_body


def body(n: int, note: str = "") -> dict[str, Any]:
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


def chain(n: int) -> list[ArchiveEntry]:
    """``n`` linked entries built by hand from ``new_header``."""
    entries: list[ArchiveEntry] = []
    prev = GENESIS
    for i in range(1, n + 1):
        header = new_header(body(i), seq=i, prev_hash=prev)
        entries.append(ArchiveEntry(header, body(i)))
        prev = header.entry_hash
    return entries


def walk(
    entries: list[tuple[int, ArchiveEntry | None]],
    head: int,
    head_hash: str = "",
    witness: ChainHead | None = None,
) -> list[str]:
    verifier = ChainVerifier("p", witness)
    for slot, entry in entries:
        verifier.add(
            StoredEntry(slot, entry, None if entry else "gone"), entry.body if entry else None
        )
    report = verifier.finish(ChainHead("p", head, head_hash or GENESIS))
    return [f"{f.slot}: {f.problem}" for f in report.bad]


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_utf8() -> None:
    """Keys sorted at every level, no whitespace, non-ASCII kept as UTF-8 bytes."""
    value = {"b": [True, None, 1.5], "a": {"z": 1, "é": "ü"}}
    assert canonical_json(value) == '{"a":{"z":1,"é":"ü"},"b":[true,null,1.5]}'.encode()


def test_canonical_json_refuses_what_json_cannot_say() -> None:
    """NaN and non-JSON objects are an ArchiveError, not a silent approximation."""
    with pytest.raises(ArchiveError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ArchiveError):
        canonical_json({"x": {1, 2}})


def test_content_hash_is_sha256_of_the_canonical_text() -> None:
    """The content hash is SHA-256 of exactly the canonical bytes written by hand."""
    expected = hashlib.sha256(b'{"a":1,"b":"x"}').hexdigest()
    assert content_hash({"b": "x", "a": 1}) == expected


def test_entry_hash_covers_every_header_field_but_itself() -> None:
    """entry_hash is SHA-256 of the canonical header without entry_hash."""
    header = new_header(body(1), seq=1, prev_hash=GENESIS)
    fields = {
        "archived_at": "2026-04-30T02:00:00Z",
        "charter": "aston",
        "closed_at": "2026-03-01T10:00:00Z",
        "complaint_id": "C-1",
        "content_hash": content_hash(body(1)),
        "prev_hash": GENESIS,
        "profile": "p",
        "seq": 1,
        "version": "2026-03-01T10:00:00Z",
    }
    text = ",".join(
        f'"{k}":{v}' if isinstance(v, int) else f'"{k}":"{v}"' for k, v in sorted(fields.items())
    )
    assert header.entry_hash == hashlib.sha256(("{" + text + "}").encode()).hexdigest()


def test_a_header_must_match_its_body() -> None:
    """A body whose content or described fields differ from the header is reported."""
    header = new_header(body(1), seq=1, prev_hash=GENESIS)
    assert body_problems(header, body(1)) == []
    assert body_problems(header, body(1, note="changed")) == [
        "content altered: its hash does not match the header's content_hash"
    ]
    assert "header field 'complaint_id' does not match the body" in body_problems(
        header, {**body(1), "complaint_id": "C-9"}
    )


def test_a_body_without_its_described_fields_cannot_get_a_header() -> None:
    """new_header refuses a body without a charter name or with a malformed instant."""
    with pytest.raises(ArchiveError, match="charter"):
        new_header({**body(1), "charter": {}}, seq=1, prev_hash=GENESIS)
    with pytest.raises(ArchiveError, match="closed_at"):
        new_header({**body(1), "closed_at": "2026-03-01"}, seq=1, prev_hash=GENESIS)


def test_refs_are_profile_slash_number() -> None:
    """A ref names its profile and number; anything else is refused with the ref quoted."""
    assert parse_ref("kilkenny/12") == ("kilkenny", 12)
    for bad in ("kilkenny", "kilkenny/0", "kilkenny/x", "/3"):
        with pytest.raises(ArchiveError, match="not an archive reference"):
            parse_ref(bad)


def test_an_entry_round_trips_through_its_bytes() -> None:
    """to_bytes then entry_from_bytes gives the same header and body."""
    entry = chain(1)[0]
    again = entry_from_bytes(entry.to_bytes(), "mem")
    assert again == entry
    with pytest.raises(ArchiveError, match="mem: not JSON"):
        entry_from_bytes(b"{broken", "mem")


def test_the_verifier_accepts_an_intact_chain() -> None:
    """Three linked entries ending at the recorded head give no finding."""
    entries = chain(3)
    assert walk(list(enumerate(entries, 1)), 3, entries[2].header.entry_hash) == []


def test_the_verifier_reports_a_removed_middle_entry_once() -> None:
    """A gap is reported at the entry after it, with the broken link, and nothing after."""
    e = chain(4)
    found = walk([(1, e[0]), (3, e[2]), (4, e[3])], 4, e[3].header.entry_hash)
    assert found == [
        "3: entry 2 is missing before this one",
        "3: broken link: prev_hash is not the hash of the entry before",
    ]


def test_the_verifier_reports_reordered_entries() -> None:
    """Two entries in each other's slots are both out of place, links broken from the first."""
    e = chain(3)
    found = walk([(1, e[0]), (2, e[2]), (3, e[1])], 3, e[2].header.entry_hash)
    assert found[0] == "2: holds entry 3 (entries moved or reordered)"
    assert "3: holds entry 2 (entries moved or reordered)" in found


def test_the_verifier_reports_a_cut_off_end() -> None:
    """A walk that stops before the recorded head names the removed entries."""
    e = chain(3)
    found = walk([(1, e[0])], 3, e[2].header.entry_hash)
    assert found == [
        "0: the head records entry 3 but the chain ends at 1: entries 2..3 were removed"
    ]


def test_the_verifier_reports_a_header_rewritten_with_a_new_hash() -> None:
    """Rewriting a header and recomputing its own hash still breaks the next link."""
    e = chain(3)
    forged_header = new_header(body(2, note="forged"), seq=2, prev_hash=e[0].header.entry_hash)
    forged = ArchiveEntry(forged_header, body(2, note="forged"))
    found = walk([(1, e[0]), (2, forged), (3, e[2])], 3, e[2].header.entry_hash)
    assert found == ["3: broken link: prev_hash is not the hash of the entry before"]


def test_a_chain_cut_together_with_its_head_is_found_by_the_witness() -> None:
    """Entries 3 and 4 removed and the head rewritten to 2: the walk alone finds nothing,
    the head witnessed at 4 outside the archive names what was removed."""
    e = chain(4)
    cut = [(1, e[0]), (2, e[1])]
    assert walk(cut, 2, e[1].header.entry_hash) == []
    witness = ChainHead("p", 4, e[3].header.entry_hash)
    assert walk(cut, 2, e[1].header.entry_hash, witness) == [
        "0: entry 4 was witnessed outside the archive but the chain ends at 2: "
        "entries 3..4 were removed together with the head"
    ]


def test_a_chain_end_rewritten_is_found_by_the_witness() -> None:
    """Entry 3 replaced by another well-formed, well-linked entry 3 (and the head with it):
    only the witnessed hash of entry 3 tells them apart."""
    e = chain(3)
    other_header = new_header(body(3, note="other"), seq=3, prev_hash=e[1].header.entry_hash)
    other = ArchiveEntry(other_header, body(3, note="other"))
    found = walk(
        [(1, e[0]), (2, e[1]), (3, other)],
        3,
        other_header.entry_hash,
        ChainHead("p", 3, e[2].header.entry_hash),
    )
    assert len(found) == 1
    assert found[0].startswith("3: differs from the entry 3 witnessed outside the archive")


def test_a_chain_that_grew_past_its_witness_is_intact() -> None:
    """The witness lags behind (the last run's entries): a longer intact chain is fine."""
    e = chain(3)
    witness = ChainHead("p", 2, e[1].header.entry_hash)
    assert walk(list(enumerate(e, 1)), 3, e[2].header.entry_hash, witness) == []


# ----------------------------------------------------------------------------- sealing

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(1, 33))).decode()


def test_a_sealed_body_opens_with_its_key_and_hides_its_text() -> None:
    """Sealing keeps the plaintext hash in the header and no plaintext in the stored form."""
    cipher = AesGcmCipher.from_base64(KEY)
    header = new_header(body(1, note="secret complaint text"), seq=1, prev_hash=GENESIS)
    sealed = cipher.seal(header, body(1, note="secret complaint text"))
    assert sealed.body is None
    assert b"secret complaint text" not in sealed.to_bytes()
    assert open_body(sealed, cipher) == body(1, note="secret complaint text")
    assert sealed.header.content_hash == content_hash(body(1, note="secret complaint text"))


def test_a_wrong_key_is_a_clear_error_and_a_missing_key_too() -> None:
    """Another key names both key ids; no key asks for CRMSYNC_ARCHIVE_KEY; no key is shown."""
    cipher = AesGcmCipher.from_base64(KEY)
    other = AesGcmCipher.from_base64(OTHER)
    entry = cipher.seal(chain(1)[0].header, body(1))
    with pytest.raises(WrongArchiveKeyError, match="wrong key") as wrong:
        open_body(entry, other)
    assert cipher.key_id in str(wrong.value) and other.key_id in str(wrong.value)
    assert KEY not in str(wrong.value) and OTHER not in str(wrong.value)
    with pytest.raises(ArchiveError, match="set CRMSYNC_ARCHIVE_KEY"):
        open_body(entry, None)


def test_after_a_rotation_old_entries_open_with_the_key_they_name() -> None:
    """With the new key current and the old one among the old keys, an entry sealed before
    the rotation and one sealed after both open; new entries name the new key's id."""
    before = AesGcmCipher.from_base64(KEY)
    after = AesGcmCipher.from_base64(OTHER, f"  {KEY}\n")
    old_entry = before.seal(chain(1)[0].header, body(1))
    new_entry = after.seal(chain(1)[0].header, body(1))
    assert (old_entry.sealed or {})["key_id"] == before.key_id
    assert (new_entry.sealed or {})["key_id"] == after.key_id != before.key_id
    assert after.key_ids == sorted([before.key_id or "", after.key_id or ""])
    assert open_body(old_entry, after) == body(1) == open_body(new_entry, after)
    reader = AesGcmCipher.from_base64("", f"{OTHER}, {KEY}")  # old keys only: reads, never seals
    assert open_body(old_entry, reader) == body(1)
    with pytest.raises(ConfigError, match=r"CRMSYNC_ARCHIVE_KEY .* is not set"):
        reader.seal(chain(1)[0].header, body(1))


def test_an_entry_whose_key_is_not_given_names_the_key_ids_only() -> None:
    """Rotated without keeping the old key: the error names the entry's key id and the ids
    given, says where the old key goes, and quotes no key."""
    old_entry = AesGcmCipher.from_base64(KEY).seal(chain(1)[0].header, body(1))
    third = base64.b64encode(bytes(range(2, 34))).decode()
    cipher = AesGcmCipher.from_base64(OTHER, third)
    with pytest.raises(WrongArchiveKeyError, match="CRMSYNC_ARCHIVE_KEYS") as wrong:
        open_body(old_entry, cipher)
    message = str(wrong.value)
    assert (old_entry.sealed or {})["key_id"] in message
    assert all(k in message for k in cipher.key_ids)
    assert KEY not in message and OTHER not in message and third not in message


def test_a_malformed_old_key_is_named_by_its_position_not_its_value() -> None:
    """CRMSYNC_ARCHIVE_KEYS with a bad second key: ConfigError naming key 2, not quoting it."""
    with pytest.raises(
        ConfigError, match=r"CRMSYNC_ARCHIVE_KEYS: key 2 is not valid base64"
    ) as bad:
        AesGcmCipher.from_base64(KEY, f"{OTHER},not*base64")
    assert "not*base64" not in str(bad.value)
    with pytest.raises(ConfigError, match=r"CRMSYNC_ARCHIVE_KEYS: key 1 must decode to 32 bytes"):
        AesGcmCipher.from_base64(KEY, "c2hvcnQ=")


def test_an_altered_ciphertext_fails_authentication() -> None:
    """Changing one byte of the ciphertext is reported as altered, not as a wrong key."""
    cipher = AesGcmCipher.from_base64(KEY)
    entry = cipher.seal(chain(1)[0].header, body(1))
    sealed = dict(entry.sealed or {})
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 0x01
    sealed["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ArchiveError, match="fails authentication"):
        open_body(ArchiveEntry(entry.header, sealed=sealed), cipher)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    """A key that is not base64 of 32 bytes is a ConfigError that does not quote it."""
    for bad in ("not base64!!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="CRMSYNC_ARCHIVE_KEY") as exc:
            AesGcmCipher.from_base64(bad)
        assert bad not in str(exc.value)


def test_a_sealed_header_cannot_be_moved_to_another_body() -> None:
    """The header is the associated data: a sealed body under another header fails."""
    cipher = AesGcmCipher.from_base64(KEY)
    first, second = chain(2)
    sealed = cipher.seal(first.header, body(1))
    moved = ArchiveEntry(EntryHeader(**{**first.header.as_dict(), "seq": 2}), sealed=sealed.sealed)
    with pytest.raises(ArchiveError, match="fails authentication"):
        open_body(moved, cipher)
    assert second.header.seq == 2
