"""Archive errors keep their cause (``raise ... from exc``) unless the cause may hold a secret.

Where the cause could carry one (a decrypted body, botocore's signed request) the error
is raised past the ``except`` block, with neither cause nor context, and its message
still says what failed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crmsync.adapters.archive.cipher import AesGcmCipher
from crmsync.adapters.archive.local import LocalArchiveStore
from crmsync.adapters.archive.s3 import S3ArchiveStore
from crmsync.domain.archive_entry import (
    FORMAT,
    GENESIS,
    ArchiveEntry,
    canonical_json,
    entry_from_bytes,
    new_header,
)
from crmsync.errors import ArchiveError, EntryNotFoundError

KEY = bytes(range(32))


def body() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "profile": "p",
        "complaint_id": "C-1",
        "version": "2026-03-01T10:00:00Z",
        "closed_at": "2026-03-01T10:00:00Z",
        "archived_at": "2026-04-30T02:00:00Z",
        "charter": {"name": "aston"},
    }


def test_a_missing_local_entry_keeps_the_file_error_as_its_cause(tmp_path: Path) -> None:
    """``get`` of an entry with no file raises EntryNotFoundError caused by the missing file."""
    store = LocalArchiveStore(tmp_path / "archive")
    with pytest.raises(EntryNotFoundError) as missing:
        store.get("p/1")
    assert isinstance(missing.value.__cause__, FileNotFoundError)


def test_a_local_archive_that_cannot_be_created_keeps_the_os_error(tmp_path: Path) -> None:
    """An archive folder under a regular file is an ArchiveError caused by the OS error."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ArchiveError, match="cannot create") as failed:
        LocalArchiveStore(tmp_path / "file" / "archive")
    assert isinstance(failed.value.__cause__, OSError)


def test_stored_bytes_that_are_not_json_keep_the_decoder_error() -> None:
    """An entry file that is not JSON names the file and keeps the decoder's error."""
    with pytest.raises(ArchiveError, match=r"entry\.json: not JSON") as bad:
        entry_from_bytes(b"{not json", "entry.json")
    assert isinstance(bad.value.__cause__, ValueError)


def test_an_altered_ciphertext_keeps_the_authentication_failure() -> None:
    """A ciphertext that fails authentication is reported as altered, caused by InvalidTag."""
    cipher = AesGcmCipher(KEY)
    entry = cipher.seal(new_header(body(), seq=1, prev_hash=GENESIS), body())
    sealed = dict(entry.sealed or {})
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[-1] ^= 0x01
    sealed["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ArchiveError, match="fails authentication") as altered:
        cipher.open(ArchiveEntry(entry.header, sealed=sealed))
    assert isinstance(altered.value.__cause__, InvalidTag)


def test_a_decrypted_body_is_never_chained_into_the_error() -> None:
    """A body that decrypts but is not JSON fails with neither cause nor context: the
    decoder's error would carry the decrypted text."""
    header = new_header(body(), seq=1, prev_hash=GENESIS)
    nonce = bytes(12)
    secret = b"\xffsecret complaint text, not JSON"
    ciphertext = AESGCM(KEY).encrypt(nonce, secret, canonical_json(header.link_fields()))
    cipher = AesGcmCipher(KEY)
    sealed = {
        "alg": AesGcmCipher.ALGORITHM,
        "key_id": cipher.key_id or "",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    with pytest.raises(ArchiveError, match="fails authentication") as failed:
        cipher.open(ArchiveEntry(header, sealed=sealed))
    assert failed.value.__cause__ is None and failed.value.__context__ is None
    assert "secret complaint text" not in str(failed.value)


class _FailingS3:
    """An S3 client whose ``get_object`` raises the error it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_object(self, **_kwargs: Any) -> Any:
        raise self.error


def _store(error: Exception) -> S3ArchiveStore:
    return S3ArchiveStore("bucket", client=_FailingS3(error), lock_mode=None)  # type: ignore[arg-type]


def test_an_s3_refusal_keeps_the_client_error() -> None:
    """An error answered by S3 (no secret in it) is the cause of the ArchiveError."""
    refusal = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"
    )
    with pytest.raises(ArchiveError, match="AccessDenied") as failed:
        _store(refusal).get("p/1")
    assert failed.value.__cause__ is refusal


def test_an_s3_connection_error_is_not_chained() -> None:
    """botocore's connection errors hold the signed request: the ArchiveError says what
    failed and carries neither cause nor context."""
    error = EndpointConnectionError(endpoint_url="https://s3.example.invalid")
    with pytest.raises(ArchiveError, match="cannot read") as failed:
        _store(error).get("p/1")
    assert failed.value.__cause__ is None and failed.value.__context__ is None
    assert "s3://bucket/" in str(failed.value) and "\n" not in str(failed.value)
