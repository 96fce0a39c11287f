"""The ArchiveStore contract: the local folder, PostgreSQL and S3 (moto over HTTP) behave alike.

Each backend comes with test-only *tamper* tools that go around the store (edit a byte,
delete, swap, cut off the end) to show that ``verify_archive`` finds what was done. The
PostgreSQL variant needs the server at ``CRMSYNC_TEST_POSTGRES_URL`` (a fresh schema per
test) and is skipped, saying so, when none answers; the S3 variant runs moto's server on
127.0.0.1 in this process and talks to it over real HTTP.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError
from psycopg import sql

from crmsync.adapters.archive.local import INDEX, LocalArchiveStore, entry_path
from crmsync.adapters.archive.postgres import PostgresArchiveStore
from crmsync.adapters.archive.s3 import S3ArchiveStore
from crmsync.domain.archive_entry import (
    FORMAT,
    GENESIS,
    ArchiveEntry,
    EntryHeader,
    canonical_json,
    new_header,
)
from crmsync.errors import (
    ArchiveError,
    ArchiveIndexError,
    ChainConflictError,
    DuplicateEntryError,
    EntryNotFoundError,
)
from crmsync.ports import ArchiveStore
from crmsync.service.archive_reading import verify_archive

P = "aston"


def body(
    n: int, *, complaint: str | None = None, closed: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A small archive body: entry ``n`` of complaint ``C-n`` closed on 2026-03-0n."""
    closed_at = closed or f"2026-03-{n:02d}T10:00:00Z"
    return {
        "format": FORMAT,
        "profile": extra.pop("profile", P),
        "complaint_id": complaint or f"C-{n}",
        "version": closed_at,
        "closed_at": closed_at,
        "archived_at": "2026-04-30T02:00:00Z",
        "charter": {"name": extra.pop("charter", "aston")},
        "note": f"entry {n}: réclamation",
        **extra,
    }


def append_chain(store: ArchiveStore, bodies: list[dict[str, Any]]) -> list[EntryHeader]:
    """Append bodies one after the other, each after the store's head."""
    headers = []
    for b in bodies:
        head = store.head(b["profile"])
        header = new_header(b, seq=head.seq + 1, prev_hash=head.entry_hash)
        store.append(ArchiveEntry(header, b))
        headers.append(header)
    return headers


# ----------------------------------------------------------------------------- backends


@dataclass
class Tamper:
    """Ways around the store: each takes entry numbers of profile ``P``."""

    edit: Callable[[int, str, str], None]  # replace text in an entry's stored form
    delete: Callable[[int], None]
    swap: Callable[[int, int], None]
    force: Callable[[ArchiveEntry], None]  # store an entry after the head, no checks


@dataclass
class ArchiveBackend:
    kind: str
    store: ArchiveStore
    open_another: Callable[[], ArchiveStore]
    tamper: Tamper


def _local(tmp_path: Path, stack: ExitStack) -> ArchiveBackend:
    root = tmp_path / "archive"

    def open_another() -> ArchiveStore:
        other = LocalArchiveStore(root)
        stack.callback(other.close)
        return other

    def edit(seq: int, old: str, new: str) -> None:
        path = entry_path(root, P, seq)
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def swap(a: int, b: int) -> None:
        pa, pb = entry_path(root, P, a), entry_path(root, P, b)
        tmp = pa.with_name("swap")
        pa.rename(tmp)
        pb.rename(pa)
        tmp.rename(pb)

    def force(entry: ArchiveEntry) -> None:
        path = entry_path(root, P, entry.header.seq)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.to_bytes())
        with (root / P / INDEX).open("ab") as index:
            index.write(canonical_json(entry.header.as_dict()) + b"\n")

    return ArchiveBackend(
        "local",
        open_another(),
        open_another,
        Tamper(edit, lambda seq: entry_path(root, P, seq).unlink(), swap, force),
    )


def _postgres(url: str, stack: ExitStack) -> ArchiveBackend:
    schema = f"crmsync_archive_test_{uuid.uuid4().hex[:12]}"

    def admin(statement: str, *params: Any) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off: an attacker
            conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)), params)

    stack.callback(admin, "DROP SCHEMA IF EXISTS {s} CASCADE")

    def open_another() -> ArchiveStore:
        other = PostgresArchiveStore(url, schema=schema)
        stack.callback(other.close)
        return other

    def edit(seq: int, old: str, new: str) -> None:
        admin(
            "UPDATE {s}.archive_entries SET document = replace(document, %s, %s) "
            "WHERE profile = %s AND seq = %s",
            old,
            new,
            P,
            seq,
        )

    def swap(a: int, b: int) -> None:
        move = "UPDATE {s}.archive_entries SET seq = %s WHERE profile = %s AND seq = %s"
        admin(move, -1, P, a)  # the primary key is checked row by row: go through -1
        admin(move, a, P, b)
        admin(move, b, P, -1)

    def force(entry: ArchiveEntry) -> None:
        h = entry.header
        admin(
            "INSERT INTO {s}.archive_entries (profile, seq, complaint_id, version, closed_at, "
            "charter, entry_hash, document) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            h.profile,
            h.seq,
            h.complaint_id,
            h.version,
            h.closed_at,
            h.charter,
            h.entry_hash,
            entry.to_bytes().decode().rstrip("\n"),
        )
        admin(
            "UPDATE {s}.archive_heads SET seq = %s, entry_hash = %s WHERE profile = %s",
            h.seq,
            h.entry_hash,
            h.profile,
        )

    return ArchiveBackend(
        "postgres",
        open_another(),
        open_another,
        Tamper(
            edit,
            lambda seq: admin(
                "DELETE FROM {s}.archive_entries WHERE profile = %s AND seq = %s", P, seq
            ),
            swap,
            force,
        ),
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port), for this module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 client for moto (made-up credentials; moto takes any)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _s3(endpoint: str, stack: ExitStack, *, locked: bool = False) -> ArchiveBackend:
    client = s3_client(endpoint)
    stack.callback(client.close)
    bucket = f"archive-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)
    prefix = "crmsync/"

    def open_another() -> ArchiveStore:
        other = S3ArchiveStore(bucket, prefix=prefix, client=s3_client(endpoint))
        stack.callback(other.close)
        return other

    def key(seq: int) -> str:
        return f"{prefix}{P}/entries/{seq:012d}.json"

    def read(seq: int) -> bytes:
        data: bytes = client.get_object(Bucket=bucket, Key=key(seq))["Body"].read()
        return data

    def edit(seq: int, old: str, new: str) -> None:
        text = read(seq).decode("utf-8")
        assert old in text
        client.put_object(Bucket=bucket, Key=key(seq), Body=text.replace(old, new, 1).encode())

    def swap(a: int, b: int) -> None:
        da, db = read(a), read(b)
        client.put_object(Bucket=bucket, Key=key(a), Body=db)
        client.put_object(Bucket=bucket, Key=key(b), Body=da)

    def force(entry: ArchiveEntry) -> None:
        h = entry.header
        client.put_object(Bucket=bucket, Key=key(h.seq), Body=entry.to_bytes())
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}{P}/head.json",
            Body=canonical_json({"seq": h.seq, "entry_hash": h.entry_hash}),
        )

    return ArchiveBackend(
        "s3",
        open_another(),
        open_another,
        Tamper(edit, lambda seq: client.delete_object(Bucket=bucket, Key=key(seq)), swap, force),
    )


BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("s3", id="s3"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArchiveBackend]:
    """Each archive store in turn, on fresh storage."""
    with ExitStack() as stack:
        if request.param == "local":
            yield _local(tmp_path, stack)
        elif request.param == "postgres":
            yield _postgres(request.getfixturevalue("postgres_url"), stack)
        else:
            yield _s3(request.getfixturevalue("s3_endpoint"), stack)


@pytest.fixture
def store(backend: ArchiveBackend) -> ArchiveStore:
    return backend.store


# ----------------------------------------------------------------------------- the contract


def test_an_empty_chain_has_head_zero_and_nothing_in_it(store: ArchiveStore) -> None:
    """A new profile's head is entry 0 with the genesis hash; nothing to walk or find."""
    head = store.head(P)
    assert (head.seq, head.entry_hash) == (0, GENESIS)
    assert list(store.iterate(P)) == []
    assert store.search(P) == []
    with pytest.raises(EntryNotFoundError):
        store.get(f"{P}/1")


def test_appended_entries_come_back_exactly_in_order(store: ArchiveStore) -> None:
    """get and iterate return each entry as appended, in chain order, and head is the last."""
    headers = append_chain(store, [body(1), body(2), body(3)])
    head = store.head(P)
    assert (head.seq, head.entry_hash) == (3, headers[2].entry_hash)
    for h, b in zip(headers, [body(1), body(2), body(3)], strict=True):
        got = store.get(h.ref)
        assert got.header == h
        assert got.body == b
    walked = list(store.iterate(P))
    assert [s.slot for s in walked] == [1, 2, 3]
    assert [s.entry.header if s.entry else None for s in walked] == headers


def test_an_append_that_does_not_follow_the_head_is_refused(store: ArchiveStore) -> None:
    """A wrong number or a wrong previous hash raises ChainConflictError and stores nothing."""
    (first,) = append_chain(store, [body(1)])
    skipping = new_header(body(2), seq=3, prev_hash=first.entry_hash)
    forking = new_header(body(2), seq=2, prev_hash=GENESIS)
    replacing = new_header(body(9), seq=1, prev_hash=GENESIS)
    for header in (skipping, forking, replacing):
        with pytest.raises(ChainConflictError):
            store.append(ArchiveEntry(header, body(2) if header.seq != 1 else body(9)))
    assert store.head(P).seq == 1
    assert [s.slot for s in store.iterate(P)] == [1]
    assert store.get(f"{P}/1").header == first


def test_a_second_client_with_a_stale_head_gets_a_conflict(backend: ArchiveBackend) -> None:
    """Two clients of one storage: the one that appends on an old head is refused."""
    other = backend.open_another()
    stale = other.head(P)
    append_chain(backend.store, [body(1)])
    late = new_header(body(2), seq=stale.seq + 1, prev_hash=stale.entry_hash)
    with pytest.raises(ChainConflictError):
        other.append(ArchiveEntry(late, body(2)))
    assert other.head(P).seq == 1
    append_chain(other, [body(2)])
    assert backend.store.head(P).seq == 2


def test_a_second_entry_of_one_complaint_version_is_refused(backend: ArchiveBackend) -> None:
    """Appending a complaint version the chain holds (from any client) raises
    DuplicateEntryError and stores nothing; another version of that complaint is taken."""
    append_chain(backend.store, [body(1, complaint="A", closed="2026-03-01T10:00:00Z")])
    other = backend.open_another()
    again = body(2, complaint="A", closed="2026-03-01T10:00:00Z")
    head = other.head(P)
    with pytest.raises(DuplicateEntryError, match=r"archived already as aston/1"):
        other.append(ArchiveEntry(new_header(again, seq=2, prev_hash=head.entry_hash), again))
    assert backend.store.head(P).seq == 1
    append_chain(other, [body(2, complaint="A", closed="2026-03-09T10:00:00Z")])
    assert [h.seq for h in backend.store.search(P, complaint_id="A")] == [1, 2]


def test_verify_reports_a_duplicate_stored_around_the_store(backend: ArchiveBackend) -> None:
    """A complaint version stored twice (written around the store's check) is reported at
    the second entry, naming the first."""
    second = append_chain(backend.store, [body(1), body(2)])[1]
    dup = body(3, complaint="C-2", closed=second.version)
    backend.tamper.force(ArchiveEntry(new_header(dup, seq=3, prev_hash=second.entry_hash), dup))
    report = verify_archive(backend.store, P, None)
    first = "entry aston/2"
    assert [(f.slot, f.problem) for f in report.bad] == [
        (3, f"duplicate: complaint C-2 version {second.version} is archived already as {first}")
    ]


def test_entries_survive_a_new_client(backend: ArchiveBackend) -> None:
    """What one client appended, another client opened later reads identically."""
    headers = append_chain(backend.store, [body(1), body(2)])
    backend.store.close()
    other = backend.open_another()
    assert other.head(P).entry_hash == headers[-1].entry_hash
    assert other.get(headers[0].ref).body == body(1)


def test_search_by_complaint_version_closing_range_and_charter(store: ArchiveStore) -> None:
    """search matches every criterion given; the closing range includes from, excludes before."""
    append_chain(
        store,
        [
            body(1, complaint="A", closed="2026-03-01T10:00:00Z"),
            body(2, complaint="B", closed="2026-03-02T10:00:00Z", charter="kilkenny"),
            body(3, complaint="A", closed="2026-03-03T10:00:00Z"),
            body(4, complaint="C", closed="2026-03-04T00:00:00Z"),
        ],
    )

    def seqs(**criteria: Any) -> list[int]:
        return [h.seq for h in store.search(P, **criteria)]

    assert seqs(complaint_id="A") == [1, 3]
    assert seqs(complaint_id="A", version="2026-03-03T10:00:00Z") == [3]
    assert seqs(complaint_id="A", version="2026-03-02T10:00:00Z") == []
    assert seqs(complaint_id="nobody") == []
    assert seqs(closed_from="2026-03-02T10:00:00Z", closed_before="2026-03-04T00:00:00Z") == [2, 3]
    assert seqs(closed_from="2026-03-03T10:00:01Z") == [4]
    assert seqs(closed_before="2026-03-01T10:00:01Z") == [1]
    assert seqs(charter="kilkenny") == [2]
    assert seqs(charter="kilkenny", complaint_id="A") == []
    assert seqs() == [1, 2, 3, 4]


def test_profiles_keep_separate_chains(store: ArchiveStore) -> None:
    """Each profile has its own numbering, head and search results."""
    append_chain(store, [body(1), body(2)])
    (other,) = append_chain(store, [body(1, profile="kilkenny-cc")])
    assert other.seq == 1 and other.prev_hash == GENESIS
    assert store.head(P).seq == 2
    assert [h.profile for h in store.search("kilkenny-cc")] == ["kilkenny-cc"]
    assert store.get("kilkenny-cc/1").header == other


def test_sealed_entries_are_kept_as_given(store: ArchiveStore) -> None:
    """An entry with an encrypted body is stored and returned byte for byte (no body)."""
    header = new_header(body(1), seq=1, prev_hash=GENESIS)
    sealed = {
        "alg": "AES-256-GCM",
        "key_id": "0123456789abcdef",
        "nonce": "bm9uY2U=",
        "ciphertext": "eA==",
    }
    store.append(ArchiveEntry(header, sealed=sealed))
    got = store.get(header.ref)
    assert got.body is None
    assert dict(got.sealed or {}) == sealed


def test_a_malformed_profile_or_reference_is_refused(store: ArchiveStore) -> None:
    """A profile that cannot be a folder or key name, or a malformed ref, is an ArchiveError."""
    with pytest.raises(ArchiveError, match="profile"):
        store.head("../etc")
    with pytest.raises(ArchiveError, match="not an archive reference"):
        store.get("aston-12")


def test_the_store_has_no_way_to_change_or_remove_an_entry(store: ArchiveStore) -> None:
    """No public method of a store deletes, updates or truncates (append-only by design)."""
    public = {name for name in dir(store) if not name.startswith("_")}
    words = ("delete", "remove", "update", "truncate", "clear", "drop", "purge", "replace", "put")
    assert sorted(n for n in public if any(w in n.lower() for w in words)) == []


def test_verify_finds_an_intact_chain_intact(store: ArchiveStore) -> None:
    """Five entries appended in order verify with no finding and the head at 5."""
    append_chain(store, [body(n) for n in range(1, 6)])
    report = verify_archive(store, P, None)
    assert report.ok, report.bad
    assert report.entries == 5
    assert report.head is not None and report.head.seq == 5


def test_verify_finds_an_edited_byte(backend: ArchiveBackend) -> None:
    """Changing one character of an entry's body is reported at that entry, and only there."""
    append_chain(backend.store, [body(n) for n in range(1, 5)])
    backend.tamper.edit(2, "entry 2: r", "entry 2: R")
    report = verify_archive(backend.store, P, None)
    assert not report.ok
    assert report.first_broken is not None and report.first_broken.slot == 2
    assert [f.slot for f in report.bad] == [2]
    assert "content altered" in report.bad[0].problem


def test_verify_finds_an_edited_header(backend: ArchiveBackend) -> None:
    """Changing a header field (the complaint id) breaks its entry hash and its body match."""
    append_chain(backend.store, [body(n) for n in range(1, 4)])
    backend.tamper.edit(
        3, '"complaint_id":"C-3","content_hash"', '"complaint_id":"C-8","content_hash"'
    )
    report = verify_archive(backend.store, P, None)
    problems = [f.problem for f in report.bad if f.slot == 3]
    assert any("header altered" in p for p in problems)
    assert any("'complaint_id' does not match the body" in p for p in problems)


def test_verify_finds_a_deleted_entry(backend: ArchiveBackend) -> None:
    """Removing entry 2 of 4 is reported at the next one: a gap and a broken link."""
    append_chain(backend.store, [body(n) for n in range(1, 5)])
    backend.tamper.delete(2)
    report = verify_archive(backend.store, P, None)
    assert report.first_broken is not None and report.first_broken.slot == 3
    problems = [f.problem for f in report.bad]
    assert any("entry 2 is missing" in p for p in problems)
    assert any("broken link" in p for p in problems)
    assert all(f.slot == 3 for f in report.bad)


def test_verify_finds_two_swapped_entries(backend: ArchiveBackend) -> None:
    """Entries 2 and 3 exchanged: both are out of place and the links break at 2."""
    append_chain(backend.store, [body(n) for n in range(1, 5)])
    backend.tamper.swap(2, 3)
    report = verify_archive(backend.store, P, None)
    assert report.first_broken is not None and report.first_broken.slot == 2
    moved = {f.slot: f.problem for f in report.bad if "holds entry" in f.problem}
    assert moved == {
        2: "holds entry 3 (entries moved or reordered)",
        3: "holds entry 2 (entries moved or reordered)",
    }


def test_verify_finds_entries_cut_off_the_end(backend: ArchiveBackend) -> None:
    """Removing the last two of five entries leaves a chain that ends before its head."""
    append_chain(backend.store, [body(n) for n in range(1, 6)])
    backend.tamper.delete(5)
    backend.tamper.delete(4)
    report = verify_archive(backend.store, P, None)
    assert [f.slot for f in report.bad] == [0]
    assert "entries 4..5 were removed" in report.bad[0].problem


# ----------------------------------------------------------------------------- local only


@pytest.fixture
def local(tmp_path: Path) -> LocalArchiveStore:
    return LocalArchiveStore(tmp_path / "archive")


def test_local_files_are_readable_by_their_owner_only(local: LocalArchiveStore) -> None:
    """Entry files are 0600 and folders 0700: only complaint staff's account reads them."""
    append_chain(local, [body(1)])
    path = entry_path(local.root, P, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((local.root / P / INDEX).stat().st_mode) == 0o600


def test_local_index_is_repaired_after_a_crash_before_its_line(local: LocalArchiveStore) -> None:
    """An entry file whose index line was never written (or was torn) is indexed on next use."""
    headers = append_chain(local, [body(1), body(2)])
    index = local.root / P / INDEX
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(lines[0] + lines[1][:20])  # line 2 torn mid-write
    (local.root / P / "entries" / "000000" / ".000000000003.json.x.tmp").write_text("partial")
    fresh = LocalArchiveStore(local.root)
    assert fresh.head(P).entry_hash == headers[1].entry_hash
    assert [h.seq for h in fresh.search(P, complaint_id="C-2")] == [2]
    assert index.read_bytes().count(b"\n") == 2
    assert not list((local.root / P / "entries" / "000000").glob(".*.tmp"))
    append_chain(fresh, [body(3)])
    assert verify_archive(fresh, P, None).ok


def test_local_verify_finds_a_truncated_file(local: LocalArchiveStore) -> None:
    """An entry file cut in half is reported unreadable, and the link after it is not trusted."""
    append_chain(local, [body(1), body(2), body(3)])
    path = entry_path(local.root, P, 2)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    report = verify_archive(local, P, None)
    assert report.first_broken is not None and report.first_broken.slot == 2
    assert "unreadable" in report.first_broken.problem
    assert [f.slot for f in report.bad] == [2]


def test_local_verify_finds_a_flipped_first_byte(local: LocalArchiveStore) -> None:
    """Any byte changed, even one that breaks the JSON, is a finding at that entry."""
    append_chain(local, [body(1), body(2)])
    path = entry_path(local.root, P, 1)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_archive(local, P, None)
    assert [f.slot for f in report.bad] == [1]


# ----------------------------------------------------------------------------- postgres only


@pytest.mark.postgres
def test_postgres_refuses_to_change_or_delete_entries(postgres_url: str, tmp_path: Path) -> None:
    """UPDATE, DELETE and TRUNCATE of entries, and moving a head back, fail in the database."""
    with ExitStack() as stack:
        backend = _postgres(postgres_url, stack)
        append_chain(backend.store, [body(1), body(2)])
        schema = backend.store._schema  # type: ignore[attr-defined]
        statements = [
            "UPDATE {s}.archive_entries SET document = 'x'",
            "DELETE FROM {s}.archive_entries",
            "TRUNCATE {s}.archive_entries",
            "UPDATE {s}.archive_heads SET seq = 1",
            "DELETE FROM {s}.archive_heads",
        ]
        for statement in statements:
            with (
                psycopg.connect(postgres_url, autocommit=True) as conn,
                pytest.raises(psycopg.Error),
            ):
                conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))
        assert verify_archive(backend.store, P, None).ok


# ----------------------------------------------------------------------------- s3 only


def test_s3_entries_are_locked_in_a_bucket_with_object_lock(s3_endpoint: str) -> None:
    """In a lock-enabled bucket each entry carries COMPLIANCE retention and cannot be deleted."""
    with ExitStack() as stack:
        backend = _s3(s3_endpoint, stack, locked=True)
        store = backend.store
        assert isinstance(store, S3ArchiveStore)
        assert store.lock_mode == "COMPLIANCE"
        append_chain(store, [body(1)])
        client = s3_client(s3_endpoint)
        key = f"crmsync/{P}/entries/000000000001.json"
        head = client.head_object(Bucket=store.bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        # archived 2026-04-30T02:00:00Z + 36,525 days (the default). 2026-04-30 -> 2126-04-30 is
        # 100 x 365 days + 24 leap days (2028..2124 every 4 years is 25, less 2100) = 36,524
        # days, so one day more is 2126-05-01.
        assert head["ObjectLockRetainUntilDate"].date().isoformat() == "2126-05-01"
        with pytest.raises(ClientError):
            client.delete_object(Bucket=store.bucket, Key=key, VersionId=head["VersionId"])
        client.close()
        assert store.get(f"{P}/1").body == body(1)


def test_s3_head_and_index_are_repaired_after_a_crash(s3_endpoint: str) -> None:
    """An entry put by a process that died before its index and head is found on next use."""
    with ExitStack() as stack:
        backend = _s3(s3_endpoint, stack)
        store = backend.store
        assert isinstance(store, S3ArchiveStore)
        (first,) = append_chain(store, [body(1)])
        second = new_header(body(2), seq=2, prev_hash=first.entry_hash)
        client = s3_client(s3_endpoint)
        client.put_object(
            Bucket=store.bucket,
            Key=f"crmsync/{P}/entries/000000000002.json",
            Body=ArchiveEntry(second, body(2)).to_bytes(),
        )
        client.close()
        other = backend.open_another()
        assert other.search(P, complaint_id="C-2") == [second]
        assert other.head(P).entry_hash == second.entry_hash
        assert verify_archive(other, P, None).ok


def test_s3_store_from_url_reads_lock_options(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s3://bucket/prefix?lock=none asks for no retention; an unknown option is refused."""
    from crmsync.errors import ConfigError

    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="from-url-bucket")
    client.close()
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    store = S3ArchiveStore.from_url("s3://from-url-bucket/archive?lock=none")
    try:
        assert (store.bucket, store.prefix, store.lock_mode) == (
            "from-url-bucket",
            "archive/",
            None,
        )
        append_chain(store, [body(1)])
        assert store.head(P).seq == 1
    finally:
        store.close()
    with pytest.raises(ConfigError, match="unknown option"):
        S3ArchiveStore.from_url("s3://from-url-bucket/archive?retention=1")


def test_documents_are_canonical_json_on_disk(local: LocalArchiveStore) -> None:
    """An entry file is one line of canonical JSON (sorted keys, no spaces, UTF-8)."""
    append_chain(local, [body(1)])
    raw = entry_path(local.root, P, 1).read_bytes()
    document = json.loads(raw)
    assert raw == (
        json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )
    assert "réclamation".encode() in raw
    assert os.linesep.encode() not in raw[:-1]


# ----------------------------------------------------------------------------- the index


def _index_lines(local: LocalArchiveStore) -> list[bytes]:
    return (local.root / P / INDEX).read_bytes().splitlines(keepends=True)


def _write_index(local: LocalArchiveStore, lines: list[bytes]) -> None:
    (local.root / P / INDEX).write_bytes(b"".join(lines))


LOCAL_INDEX_TAMPERING = {
    "a complaint id changed": (
        lambda lines: [*lines[:1], lines[1].replace(b'"C-2"', b'"C-9"'), *lines[2:]],
        ["aston/2: index line 2 differs from the entry in complaint_id"],
    ),
    "a line removed": (
        lambda lines: [lines[0], *lines[2:]],
        ["aston/2: the entry has no index line (missing)"],
    ),
    "two lines swapped": (
        lambda lines: [lines[0], lines[2], lines[1], lines[3]],
        ["aston/2: index line 3 lists entry 2 out of order (after entry 3)"],
    ),
    "a line repeated": (
        lambda lines: [*lines, lines[1]],
        ["aston/2: index line 5 repeats entry 2"],
    ),
    "a line for no entry": (
        lambda lines: [*lines, lines[3].replace(b'"seq":4', b'"seq":5')],
        ["aston/5: index line 5 lists no entry (extra line)"],
    ),
    "a line that is not a header": (
        lambda lines: [lines[0], b"{}\n", *lines[2:]],
        [
            "aston/2: the entry has no index line (missing)",
            "index: line 2 is not a header (line 2: header field 'profile' is missing or not text)",
        ],
    ),
}


CHAIN_FINDINGS = {  # the index's last line is the recorded head the chain is held against
    "a line for no entry": [
        "chain: the head records entry 5 but the chain ends at 4: entries 5 were removed"
    ],
}


@pytest.mark.parametrize("case", list(LOCAL_INDEX_TAMPERING))
def test_local_index_that_disagrees_is_reported_refused_and_rebuilt(
    local: LocalArchiveStore, case: str
) -> None:
    """Each way index.jsonl can disagree with the entry files is reported by verify (naming
    line and entry), search refuses to answer from it, and reindex rebuilds it."""
    tamper, expected = LOCAL_INDEX_TAMPERING[case]
    append_chain(local, [body(n) for n in range(1, 5)])
    _write_index(local, tamper(_index_lines(local)))
    fresh = LocalArchiveStore(local.root)
    report = verify_archive(fresh, P, None)
    assert [str(f) for f in report.index_bad] == expected
    assert not report.ok
    assert [str(f) for f in report.bad] == CHAIN_FINDINGS.get(case, [])
    with pytest.raises(ArchiveIndexError, match=r"archive reindex"):
        fresh.search(P, complaint_id="C-2")
    with pytest.raises(ArchiveIndexError):
        append_chain(fresh, [body(5)])
    assert fresh.reindex(P) == 4
    assert [h.seq for h in fresh.search(P, complaint_id="C-2")] == [2]
    assert verify_archive(fresh, P, None).ok
    append_chain(fresh, [body(5)])
    assert verify_archive(LocalArchiveStore(local.root), P, None).ok


def test_local_index_rewritten_whole_is_caught_at_its_end(local: LocalArchiveStore) -> None:
    """An index whose lines were rewritten consistently (hashes recomputed, links kept) no
    longer ends at the last entry file: search refuses, verify names the changed lines."""
    headers = append_chain(local, [body(n) for n in range(1, 4)])
    prev = headers[0].entry_hash
    lines = [_index_lines(local)[0]]
    for h in headers[1:]:
        forged = new_header(
            {**body(h.seq), "complaint_id": f"X-{h.seq}"}, seq=h.seq, prev_hash=prev
        )
        lines.append(canonical_json(forged.as_dict()) + b"\n")
        prev = forged.entry_hash
    _write_index(local, lines)
    fresh = LocalArchiveStore(local.root)
    with pytest.raises(ArchiveIndexError, match=r"line 3 differs from entry file 3"):
        fresh.search(P, complaint_id="X-2")
    report = verify_archive(fresh, P, None)
    assert [f.slot for f in report.index_bad] == [2, 3]


def test_postgres_columns_that_disagree_are_reported_and_refused(postgres_url: str) -> None:
    """A row whose complaint_id column was changed (triggers bypassed): verify reports it,
    a search that returns it refuses, and reindex says why it cannot rewrite it."""
    with ExitStack() as stack:
        backend = _postgres(postgres_url, stack)
        store = backend.store
        append_chain(store, [body(1), body(2)])
        schema = store._schema  # type: ignore[attr-defined]
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                sql.SQL("UPDATE {s}.archive_entries SET complaint_id = 'C-9' WHERE seq = 2").format(
                    s=sql.Identifier(schema)
                )
            )
        report = verify_archive(store, P, None)
        assert [str(f) for f in report.index_bad] == [
            "aston/2: the row's complaint_id column(s) differ from the entry"
        ]
        with pytest.raises(ArchiveIndexError, match=r"complaint_id column"):
            store.search(P, complaint_id="C-9")
        with pytest.raises(ArchiveError, match=r"refuses UPDATE"):
            store.reindex(P)
        assert [h.seq for h in store.search(P, complaint_id="C-1")] == [1]


def test_s3_index_objects_that_disagree_are_reported_refused_and_rebuilt(
    s3_endpoint: str,
) -> None:
    """An index object edited, one removed and one added for no entry: verify reports each,
    search refuses the edited one, reindex writes them anew and removes the stray one."""
    with ExitStack() as stack:
        backend = _s3(s3_endpoint, stack)
        store = backend.store
        assert isinstance(store, S3ArchiveStore)
        append_chain(store, [body(1), body(2), body(3)])
        client = s3_client(s3_endpoint)
        stack.callback(client.close)
        base = f"crmsync/{P}/index"
        edited = f"{base}/complaint/C-2/000000000002.json"
        text = client.get_object(Bucket=store.bucket, Key=edited)["Body"].read()
        client.put_object(Bucket=store.bucket, Key=edited, Body=text.replace(b'"C-2"', b'"C-9"'))
        client.delete_object(Bucket=store.bucket, Key=f"{base}/complaint/C-3/000000000003.json")
        stray = f"{base}/complaint/C-7/000000000007.json"
        client.put_object(Bucket=store.bucket, Key=stray, Body=text)
        report = verify_archive(store, P, None)
        assert [str(f) for f in report.index_bad] == [
            f"{edited}: the index object differs from its entry",
            f"{base}/complaint/C-3/000000000003.json: the entry's index object is missing",
            f"{stray}: an index object for no entry (extra)",
        ]
        with pytest.raises(ArchiveIndexError, match=r"archive reindex"):
            store.search(P, complaint_id="C-2")
        assert store.reindex(P) == 3
        assert [h.seq for h in store.search(P, complaint_id="C-3")] == [3]
        assert [h.seq for h in store.search(P, complaint_id="C-2")] == [2]
        assert verify_archive(store, P, None).ok


def test_local_entry_appended_past_the_index_end_is_not_a_missing_line(
    local: LocalArchiveStore,
) -> None:
    """An entry file whose line is not written yet (an append in progress, or a crash the
    next use repairs) is not reported as a missing index line."""
    (first,) = append_chain(local, [body(1)])
    second = new_header(body(2), seq=2, prev_hash=first.entry_hash)
    path = entry_path(local.root, P, 2)
    path.write_bytes(ArchiveEntry(second, body(2)).to_bytes())
    assert local.index_problems(P) == []
    assert LocalArchiveStore(local.root).head(P).seq == 2  # the next use indexes it
    assert len(_index_lines(local)) == 2
    assert local.index_problems(P) == []
