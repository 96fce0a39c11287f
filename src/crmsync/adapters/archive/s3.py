"""``ArchiveStore`` on S3-compatible object storage (boto3), with Object Lock where offered.

Keys under ``<prefix><profile>/``::

    entries/000000000001.json              the entry (canonical JSON), written once
    index/complaint/<id>/000000000001.json its header, to search by complaint id
    index/closed/<closed_at>/000000000001.json  its header, to search by closing instant
    head.json                              {"seq": n, "entry_hash": ...}: the recorded head

An entry is put with ``If-None-Match: *``, so it is created once and never over another
one (two writers racing for the same number: one gets ``ChainConflictError``). When the
bucket has Object Lock enabled, each entry is put with a retention (``COMPLIANCE`` by
default, or ``GOVERNANCE``) until its ``archived_at`` plus ``retain_days`` (default 100
years): nobody, root included, can delete or overwrite that version before then. On a
bucket without Object Lock the store works the same and logs once that entries are not
locked. Index objects and the head are derived: a crash after an entry was put and before
they were is repaired by the next ``head`` (which probes for entries past the recorded
head). ``search`` refuses (``ArchiveIndexError``) an index object that is not where its
header puts it or differs from its entry (one read of the entry per answer); an index
object removed is found by ``verify`` (which checks every one) and ``reindex`` writes them
all anew. Errors become ``ArchiveError``; credentials come from boto3's usual chain and never
appear in messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from crmsync.domain.archive_chain import Finding
from crmsync.domain.archive_entry import (
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    StoredEntry,
    canonical_json,
    check_profile,
    entry_from_bytes,
    header_from_dict,
    header_matches,
    parse_ref,
)
from crmsync.errors import (
    ArchiveError,
    ArchiveIndexError,
    ChainConflictError,
    ConfigError,
    DuplicateEntryError,
    EntryNotFoundError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = structlog.get_logger("crmsync.archive")

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
DEFAULT_RETAIN_DAYS = 36_525  # about 100 years: "kept indefinitely"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ArchiveStore:
    """The archive in ``bucket`` under ``prefix`` (``''`` or ending in ``/``).

    ``client`` is a boto3 S3 client (default: one from boto3's configuration, with
    ``endpoint_url`` if given). ``lock_mode`` None never asks for retention.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        lock_mode: LockMode | None = "COMPLIANCE",
        retain_days: int = DEFAULT_RETAIN_DAYS,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.retain_days = retain_days
        self._where = f"archive s3://{bucket}/{prefix}"
        try:
            self._s3: S3Client = client or boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
            self.lock_mode = lock_mode if lock_mode and self._lock_enabled() else None
            reason = None
        except ClientError as exc:
            raise ArchiveError(f"{self._where}: cannot open the bucket: {exc}") from exc
        except BotoCoreError as exc:
            reason = str(exc)
        if reason is not None:
            # no cause, no context (raised past the except block): botocore's HTTP errors hold
            # the signed request (its session token)
            raise ArchiveError(f"{self._where}: cannot open the bucket: {reason}") from None
        if lock_mode and self.lock_mode is None:
            log.warning(
                "archive_object_lock_unavailable",
                bucket=bucket,
                reason="the bucket has no Object Lock: entries are kept but not locked",
            )

    @classmethod
    def from_url(cls, url: str) -> S3ArchiveStore:
        """``s3://bucket/prefix?lock=COMPLIANCE|GOVERNANCE|none&retain_days=N`` (the endpoint
        comes from ``AWS_ENDPOINT_URL`` or ``?endpoint=``); ``ConfigError`` if malformed."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError("CRMSYNC_ARCHIVE_URL: write s3://bucket/prefix for S3")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"lock", "retain_days", "endpoint"})
        if unknown:
            raise ConfigError(f"CRMSYNC_ARCHIVE_URL: unknown option(s) {', '.join(unknown)}")
        lock = query.get("lock", "COMPLIANCE").upper()
        if lock not in ("COMPLIANCE", "GOVERNANCE", "NONE"):
            raise ConfigError("CRMSYNC_ARCHIVE_URL: lock= must be COMPLIANCE, GOVERNANCE or none")
        days = query.get("retain_days", str(DEFAULT_RETAIN_DAYS))
        if not days.isdigit() or int(days) < 1:
            raise ConfigError("CRMSYNC_ARCHIVE_URL: retain_days= must be a whole number >= 1")
        mode: LockMode | None = None
        if lock == "COMPLIANCE":
            mode = "COMPLIANCE"
        elif lock == "GOVERNANCE":
            mode = "GOVERNANCE"
        return cls(
            parts.netloc,
            prefix=parts.path.lstrip("/"),
            endpoint_url=query.get("endpoint"),
            lock_mode=mode,
            retain_days=int(days),
        )

    def __repr__(self) -> str:
        return f"S3ArchiveStore({self._where!r})"

    # ------------------------------------------------------------------ plumbing

    def _lock_enabled(self) -> bool:
        try:
            config = self._s3.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("ObjectLockConfigurationNotFoundError", "NotImplemented"):
                return False
            raise
        return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def _base(self, profile: str) -> str:
        return f"{self.prefix}{check_profile(profile)}/"

    def _entry_key(self, profile: str, seq: int) -> str:
        return f"{self._base(profile)}entries/{seq:012d}.json"

    def _fail(self, what: str, exc: Exception | str) -> ArchiveError:
        return ArchiveError(f"{self._where}: {what}: {exc}")

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, or None if there is no such key."""
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._fail(f"cannot read {key}", exc) from exc
        except BotoCoreError as exc:
            reason = str(exc)
        # no cause, no context (raised past the except block): botocore's HTTP errors hold
        # the signed request (its session token)
        raise self._fail(f"cannot read {key}", reason) from None

    def _put(self, key: str, data: bytes, **extra: Any) -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                **extra,
            )
            return
        except ClientError as exc:
            raise self._fail(f"cannot write {key}", exc) from exc
        except BotoCoreError as exc:
            reason = str(exc)
        # no cause, no context (raised past the except block): botocore's HTTP errors hold
        # the signed request (its session token)
        raise self._fail(f"cannot write {key}", reason) from None

    def _keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, StartAfter=start_after
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]
            return
        except ClientError as exc:
            raise self._fail(f"cannot list {prefix}", exc) from exc
        except BotoCoreError as exc:
            reason = str(exc)
        # no cause, no context (raised past the except block): botocore's HTTP errors hold
        # the signed request (its session token)
        raise self._fail(f"cannot list {prefix}", reason) from None

    def _write_index(self, header: EntryHeader) -> None:
        data = canonical_json(header.as_dict())
        for key in self._index_keys(header):
            self._put(key, data)

    def _read_entry(self, profile: str, seq: int) -> ArchiveEntry | None:
        key = self._entry_key(profile, seq)
        data = self._get(key)
        if data is None:
            return None
        entry = entry_from_bytes(data, f"s3://{self.bucket}/{key}")
        if entry.header.seq != seq or entry.header.profile != profile:
            raise ArchiveError(f"s3://{self.bucket}/{key}: holds entry {entry.ref}")
        return entry

    # ------------------------------------------------------------------ the port

    def head(self, profile: str) -> ChainHead:
        """The recorded head, moved past entries a crashed append left unrecorded."""
        key = f"{self._base(profile)}head.json"
        data = self._get(key)
        head = ChainHead(profile)
        if data is not None:
            try:
                found = json.loads(data)
                head = ChainHead(profile, int(found["seq"]), str(found["entry_hash"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ArchiveError(f"s3://{self.bucket}/{key}: unreadable ({exc})") from exc
        moved = False
        while (nxt := self._read_entry(profile, head.seq + 1)) is not None:
            self._write_index(nxt.header)
            head = ChainHead(profile, nxt.header.seq, nxt.header.entry_hash)
            moved = True
            log.info("archive_head_repaired", profile=profile, seq=head.seq)
        if moved:
            self._put(key, canonical_json({"seq": head.seq, "entry_hash": head.entry_hash}))
        return head

    def append(self, entry: ArchiveEntry) -> None:
        """Put the entry once (``If-None-Match``), locked when the bucket allows, then its
        index objects and the head."""
        h = entry.header
        head = self.head(h.profile)
        if h.seq != head.seq + 1 or h.prev_hash != head.entry_hash:
            raise ChainConflictError(
                f"{self._where}: entry {entry.ref} does not follow the head {h.profile}/{head.seq}"
            )
        same = self.search(h.profile, complaint_id=h.complaint_id, version=h.version)
        if same:  # not atomic: the profile lock keeps a second writer away (verify finds one)
            raise DuplicateEntryError(
                f"{self._where}: complaint {h.complaint_id} version {h.version} is archived "
                f"already as {same[0].ref}"
            )
        extra: dict[str, Any] = {"IfNoneMatch": "*", "ChecksumAlgorithm": "SHA256"}
        if self.lock_mode is not None:
            archived = datetime.strptime(h.archived_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            extra["ObjectLockMode"] = self.lock_mode
            extra["ObjectLockRetainUntilDate"] = archived + timedelta(days=self.retain_days)
        key = self._entry_key(h.profile, h.seq)
        reason = None
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=entry.to_bytes(),
                ContentType="application/json",
                **extra,
            )
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ChainConflictError(
                    f"{self._where}: entry {entry.ref} exists already"
                ) from exc
            raise self._fail(f"cannot write {key}", exc) from exc
        except BotoCoreError as exc:
            reason = str(exc)
        if reason is not None:
            # no cause, no context (raised past the except block): botocore's HTTP errors
            # hold the signed request (its session token)
            raise self._fail(f"cannot write {key}", reason) from None
        self._write_index(h)
        self._put(
            f"{self._base(h.profile)}head.json",
            canonical_json({"seq": h.seq, "entry_hash": h.entry_hash}),
        )

    def get(self, ref: str) -> ArchiveEntry:
        """The entry ``profile/seq`` (``EntryNotFoundError`` if none)."""
        profile, seq = parse_ref(ref)
        entry = self._read_entry(profile, seq)
        if entry is None:
            raise EntryNotFoundError(f"no archive entry {profile}/{seq}")
        return entry

    def iterate(self, profile: str) -> Iterator[StoredEntry]:
        """Every entry object in key order (= number order), damaged ones included."""
        base = f"{self._base(profile)}entries/"
        for key in self._keys(base):
            name = key[len(base) :]
            if not (name.endswith(".json") and name[:-5].isdigit()):
                continue
            slot = int(name[:-5])
            data = self._get(key)
            if data is None:
                yield StoredEntry(slot, None, "the object vanished while being read")
                continue
            try:
                yield StoredEntry(slot, entry_from_bytes(data, f"s3://{self.bucket}/{key}"))
            except ArchiveError as exc:
                yield StoredEntry(slot, None, str(exc))

    def search(
        self,
        profile: str,
        *,
        complaint_id: str | None = None,
        version: str | None = None,
        closed_from: str | None = None,
        closed_before: str | None = None,
        charter: str | None = None,
    ) -> list[EntryHeader]:
        """Matching headers by number, read from the index objects (complaint id: one
        listing; a closing range: a key range of the listing)."""
        base = self._base(profile)
        self.head(profile)  # repairs index objects a crash left out
        if complaint_id is not None:
            keys = list(self._keys(f"{base}index/complaint/{quote(complaint_id, safe='')}/"))
        else:
            prefix = f"{base}index/closed/"
            start = f"{prefix}{closed_from}" if closed_from else ""
            keys = []
            for key in self._keys(prefix, start):
                if closed_before is not None and key[len(prefix) :].split("/")[0] >= closed_before:
                    break
                keys.append(key)
        found: dict[int, EntryHeader] = {}
        for key in keys:
            data = self._get(key)
            if data is None:
                continue
            try:
                header = header_from_dict(json.loads(data), f"s3://{self.bucket}/{key}")
            except ValueError as exc:
                raise ArchiveError(f"s3://{self.bucket}/{key}: unreadable ({exc})") from exc
            if key not in self._index_keys(header):
                raise self._disagrees(key, "it is not where its header puts it")
            if header_matches(
                header,
                complaint_id=complaint_id,
                version=version,
                closed_from=closed_from,
                closed_before=closed_before,
                charter=charter,
            ):
                found[header.seq] = header
        for seq, header in found.items():  # one read per answer: never a stale index object
            entry = self._read_entry(profile, seq)
            if entry is None or entry.header != header:
                raise self._disagrees(self._index_keys(header)[0], "it differs from its entry")
        return [found[seq] for seq in sorted(found)]

    def _index_keys(self, header: EntryHeader) -> tuple[str, str]:
        """Where ``header``'s two index objects belong (by complaint, by closing instant)."""
        base = self._base(header.profile)
        name = f"{header.seq:012d}.json"
        return (
            f"{base}index/complaint/{quote(header.complaint_id, safe='')}/{name}",
            f"{base}index/closed/{header.closed_at}/{name}",
        )

    def _disagrees(self, key: str, why: str) -> ArchiveIndexError:
        return ArchiveIndexError(
            f"s3://{self.bucket}/{key}: the index object disagrees with the entries ({why}); "
            "nothing is answered from it. Run 'crmsync archive verify', then "
            "'crmsync archive reindex' to rebuild the index from the entries"
        )

    def index_problems(self, profile: str) -> list[Finding]:
        """Every index object held against its entry: changed, missing, extra (an object
        for no entry, or not where its entry's header puts it)."""
        findings: list[Finding] = []
        expected: dict[str, EntryHeader] = {}
        for stored in self.iterate(profile):
            if stored.entry is not None:
                for key in self._index_keys(stored.entry.header):
                    expected[key] = stored.entry.header
        seen: set[str] = set()
        last = max((h.seq for h in expected.values()), default=0)
        for key in self._keys(f"{self._base(profile)}index/"):
            header = expected.get(key)
            name = key.rsplit("/", 1)[-1][:-5]
            if header is None and name.isdigit() and int(name) > last:
                entry = self._read_entry(profile, int(name))  # appended during this check?
                if entry is not None and key in self._index_keys(entry.header):
                    header = expected[key] = entry.header
            if header is None:
                findings.append(Finding(0, key, "an index object for no entry (extra)"))
                continue
            seen.add(key)
            data = self._get(key)
            if data != canonical_json(header.as_dict()):
                findings.append(Finding(header.seq, key, "the index object differs from its entry"))
        for key, header in expected.items():
            if key not in seen:
                findings.append(Finding(header.seq, key, "the entry's index object is missing"))
        return sorted(findings, key=lambda f: f.slot or 1 << 62)

    def reindex(self, profile: str) -> int:
        """Write both index objects of every readable entry anew and remove index objects
        for no entry (entries are never touched); returns the entries indexed."""
        expected: set[str] = set()
        count = 0
        for stored in self.iterate(profile):
            if stored.entry is None or stored.entry.header.seq != stored.slot:
                continue
            self._write_index(stored.entry.header)
            expected.update(self._index_keys(stored.entry.header))
            count += 1
        for key in list(self._keys(f"{self._base(profile)}index/")):
            if key not in expected:
                reason = None
                try:
                    self._s3.delete_object(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    raise self._fail(f"cannot remove {key}", exc) from exc
                except BotoCoreError as exc:
                    reason = str(exc)
                if reason is not None:
                    # no cause, no context (raised past the except block): botocore's
                    # HTTP errors hold the signed request (its session token)
                    raise self._fail(f"cannot remove {key}", reason) from None
        log.info("archive_reindexed", profile=profile, entries=count)
        return count

    def close(self) -> None:
        """Close the client's connections."""
        self._s3.close()
