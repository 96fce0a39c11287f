"""``ArchiveStore`` in a local directory (the default): ``CRMSYNC_DATA_DIR/archive/<profile>/``.

Layout of one profile::

    entries/000000/000000000001.json   one file per entry (canonical JSON + newline),
    entries/000000/000000000002.json   10,000 per shard folder, never rewritten
    index.jsonl                        one header per line, in chain order (derived data)
    .lock                              taken (flock) by appends and repairs

An entry file is written to a temporary file, flushed to disk (fsync), then hard-linked to
its final name, which fails if that name exists: an entry appears whole or not at all, and
never over another one. The folder is synced, then the header line is appended to the
index (fsync again). A crash between the two leaves an entry the index does not list yet;
the next use repairs the index from the entry files (under the lock), and drops a torn last
index line. Files and folders are created readable by their owner only (0600/0700): the
archive is for the staff who handle complaints.

``verify`` walks the entry files, not the index; the index gives the recorded head, so
entry files removed from the end are found while the index still lists them. Someone able
to rewrite both files and index can cut the chain's end unseen by the archive alone; the
head witnessed in the state store after every archive run finds it (``archive verify``
holds the chain against it, and the next run refuses to append), unless the state store
is rewritten too: use the S3 store with Object Lock (or the PostgreSQL store's
append-only table) where that matters.

``durable=False`` skips the fsyncs: only for building large test archives quickly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from crmsync.domain.archive_entry import (
    ArchiveEntry,
    ChainConflictError,
    ChainHead,
    DuplicateEntryError,
    EntryHeader,
    EntryNotFoundError,
    StoredEntry,
    canonical_json,
    check_profile,
    entry_from_bytes,
    header_from_dict,
    header_matches,
    parse_ref,
)
from crmsync.errors import ArchiveError

log = structlog.get_logger("crmsync.archive")

SHARD = 10_000  # entry files per shard folder
INDEX = "index.jsonl"
LOCK = ".lock"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def entry_path(root: Path, profile: str, seq: int) -> Path:
    """Where entry ``seq`` of ``profile`` lives under the store's ``root``."""
    return root / profile / "entries" / f"{seq // SHARD:06d}" / f"{seq:012d}.json"


@dataclass
class _Index:
    """The parsed index of one profile, read incrementally (other processes append)."""

    headers: list[EntryHeader] = field(default_factory=list)
    by_complaint: dict[str, list[int]] = field(default_factory=dict)
    offset: int = 0  # bytes of complete lines read
    torn: bool = False  # the file ends with an incomplete line

    def add(self, header: EntryHeader) -> None:
        self.headers.append(header)
        self.by_complaint.setdefault(header.complaint_id, []).append(len(self.headers) - 1)


class LocalArchiveStore:
    """The archive under ``root`` (created on first use). Safe for several threads and
    processes on one machine (appends are serialised by a file lock)."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        self.durable = durable
        self._lock = threading.Lock()
        self._indexes: dict[str, _Index] = {}
        self._cleaned: set[str] = set()
        self._dirs: set[Path | str] = set()  # folders known to exist
        self._folders: dict[str, Path] = {}
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        except OSError as exc:
            raise ArchiveError(f"archive {self.root}: cannot create ({exc.strerror})") from None

    def __repr__(self) -> str:
        return f"LocalArchiveStore({str(self.root)!r})"

    # ------------------------------------------------------------------ helpers

    def _dir(self, profile: str) -> Path:
        return self.root / check_profile(profile)

    def _file(self, profile: str, seq: int) -> str:
        """``entry_path`` as text (pathlib is slow on the append path)."""
        return f"{self._root}/{profile}/entries/{seq // SHARD:06d}/{seq:012d}.json"

    def _fail(self, what: str, exc: OSError) -> ArchiveError:
        return ArchiveError(f"archive {self.root}: {what}: {exc.strerror or exc}")

    def _fsync_dir(self, path: Path | str) -> None:
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _mkdirs(self, folder: Path | str) -> None:
        """Create ``folder`` and missing parents, syncing each parent that gained a folder."""
        if folder in self._dirs:
            return
        path = Path(folder)
        missing: list[Path] = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for made in reversed(missing):
            with contextlib.suppress(FileExistsError):
                made.mkdir(mode=_DIR_MODE)
            self._fsync_dir(made.parent)
        self._dirs.add(folder)

    @contextlib.contextmanager
    def _locked(self, profile: str) -> Iterator[Path]:
        """Hold the profile's file lock (and this object's thread lock)."""
        folder = self._folders.get(profile)
        if folder is None:
            folder = self._folders[profile] = self._dir(profile)
        with self._lock:
            try:
                self._mkdirs(folder)
                fd = os.open(f"{folder}/{LOCK}", os.O_RDWR | os.O_CREAT, _FILE_MODE)
            except OSError as exc:
                raise self._fail(f"profile {profile}: cannot lock", exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield folder
            finally:
                os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ index

    def _refresh(self, profile: str, folder: Path) -> _Index:
        """Read index lines appended since the last read; a damaged index is rebuilt."""
        index = self._indexes.setdefault(profile, _Index())
        path = f"{folder}/{INDEX}"
        try:
            with open(path, "rb") as f:
                f.seek(index.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise self._fail(f"{path}: cannot read", exc) from None
        end = data.rfind(b"\n") + 1  # a torn last line is left for the repair
        index.torn = len(data) > end
        for line in data[:end].splitlines():
            where = f"{path} line {len(index.headers) + 1}"
            try:
                header = header_from_dict(json.loads(line), where)
            except (ValueError, ArchiveError) as exc:
                log.warning("archive_index_damaged", file=str(path), reason=str(exc))
                return self._rebuild(profile, folder)
            if header.seq != len(index.headers) + 1 or header.profile != profile:
                log.warning(
                    "archive_index_damaged", file=str(path), reason=f"{where}: out of order"
                )
                return self._rebuild(profile, folder)
            index.add(header)
        index.offset += end
        return index

    def _rebuild(self, profile: str, folder: Path) -> _Index:
        """Write the index anew from the readable entry files (atomically) and reload it."""
        lines: list[bytes] = []
        for stored in self.iterate(profile):
            if stored.entry is None or stored.entry.header.seq != len(lines) + 1:
                break
            lines.append(canonical_json(stored.entry.header.as_dict()) + b"\n")
        self._replace_file(folder / INDEX, b"".join(lines))
        self._indexes[profile] = _Index()
        return self._refresh(profile, folder)

    def _write_fd(self, path: str | Path, flags: int, data: bytes) -> None:
        """Open ``path`` with ``flags``, write all of ``data`` (``os.write`` may write less
        than asked), fsync when durable, close. Raises ``OSError``."""
        fd = os.open(path, flags, _FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _replace_file(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            self._write_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, data)
            tmp.replace(path)
            self._fsync_dir(path.parent)
        except OSError as exc:
            raise self._fail(f"{path}: cannot write", exc) from None

    def _append_index(self, folder: Path, header: EntryHeader) -> int:
        """Append the header's line; return its length in bytes."""
        path = f"{folder}/{INDEX}"
        line = canonical_json(header.as_dict()) + b"\n"
        try:
            self._write_fd(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, line)
        except OSError as exc:
            raise self._fail(f"{path}: cannot append", exc) from None
        return len(line)

    def _repair(self, profile: str, folder: Path) -> _Index:
        """Under the lock: drop a torn index line, list entry files the index lacks, remove
        temporary files a crashed append left behind."""
        path = folder / INDEX
        index = self._refresh(profile, folder)
        if index.torn:  # a crash cut the last line short: drop it
            try:
                with path.open("r+b") as f:
                    f.truncate(index.offset)
            except OSError as exc:
                raise self._fail(f"{path}: cannot repair", exc) from None
            index.torn = False
        seq = len(index.headers) + 1
        while os.path.exists(nxt := self._file(profile, seq)):
            header = self._read(Path(nxt), profile, seq).header
            self._append_index(folder, header)
            log.info("archive_index_repaired", profile=profile, seq=seq)
            seq += 1
        if seq > len(index.headers) + 1:
            index = self._refresh(profile, folder)
        if profile not in self._cleaned:  # once per store object: listing a shard is slow
            self._cleaned.add(profile)
            shard = entry_path(self.root, profile, seq).parent
            if shard.exists():
                for leftover in shard.glob(".*.tmp"):
                    leftover.unlink(missing_ok=True)
        return index

    def _read(self, path: Path, profile: str, seq: int) -> ArchiveEntry:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise EntryNotFoundError(f"no archive entry {profile}/{seq}") from None
        except OSError as exc:
            raise self._fail(f"{path}: cannot read", exc) from None
        entry = entry_from_bytes(data, str(path))
        if entry.header.seq != seq or entry.header.profile != profile:
            raise ArchiveError(f"{path}: holds entry {entry.ref}, not {profile}/{seq}")
        return entry

    # ------------------------------------------------------------------ the port

    def append(self, entry: ArchiveEntry) -> None:
        """Store the entry after the head (``ChainConflictError`` if it does not follow)."""
        header = entry.header
        data = entry.to_bytes()
        with self._locked(header.profile) as folder:
            index = self._repair(header.profile, folder)
            head = self._head(header.profile, index)
            if header.seq != head.seq + 1 or header.prev_hash != head.entry_hash:
                raise ChainConflictError(
                    f"archive {self.root}: entry {entry.ref} does not follow the head "
                    f"{header.profile}/{head.seq}"
                )
            for i in index.by_complaint.get(header.complaint_id, ()):
                if index.headers[i].version == header.version:
                    raise DuplicateEntryError(
                        f"archive {self.root}: complaint {header.complaint_id} version "
                        f"{header.version} is archived already as {index.headers[i].ref}"
                    )
            path = self._file(header.profile, header.seq)
            shard, name = os.path.split(path)
            try:
                self._mkdirs(shard)
                tmp = f"{shard}/.{name}.{uuid.uuid4().hex}.tmp"
                self._write_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, data)
                try:
                    os.link(tmp, path)  # fails if the name exists: never over another entry
                except FileExistsError:
                    raise ChainConflictError(
                        f"archive {self.root}: entry {entry.ref} exists already"
                    ) from None
                finally:
                    os.unlink(tmp)
                self._fsync_dir(shard)
            except OSError as exc:
                raise self._fail(f"{path}: cannot write", exc) from None
            written = self._append_index(folder, header)
            index.add(header)  # what was just written, under the lock: no need to re-read
            index.offset += written

    @staticmethod
    def _head(profile: str, index: _Index) -> ChainHead:
        if not index.headers:
            return ChainHead(profile)
        last = index.headers[-1]
        return ChainHead(profile, last.seq, last.entry_hash)

    def head(self, profile: str) -> ChainHead:
        """The recorded head (the index's last line, after repair)."""
        with self._locked(profile) as folder:
            return self._head(profile, self._repair(profile, folder))

    def get(self, ref: str) -> ArchiveEntry:
        """The entry ``profile/seq`` (``EntryNotFoundError`` if none)."""
        profile, seq = parse_ref(ref)
        return self._read(entry_path(self.root, profile, seq), profile, seq)

    def iterate(self, profile: str) -> Iterator[StoredEntry]:
        """Every entry file in order of its number, damaged ones included."""
        base = self._dir(profile) / "entries"
        try:
            shards = sorted(p for p in base.iterdir() if p.is_dir() and p.name.isdigit())
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail(f"{base}: cannot list", exc) from None
        for shard in shards:
            names = sorted(
                p.name
                for p in shard.iterdir()
                if p.name.endswith(".json") and p.name[:-5].isdigit()
            )
            for name in names:
                slot = int(name[:-5])
                path = shard / name
                try:
                    entry = entry_from_bytes(path.read_bytes(), str(path))
                except (ArchiveError, OSError) as exc:
                    yield StoredEntry(slot, None, str(exc))
                    continue
                yield StoredEntry(slot, entry)

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
        """Matching headers from the index, in chain order."""
        with self._locked(profile) as folder:
            index = self._repair(profile, folder)
        if complaint_id is not None:
            candidates = [index.headers[i] for i in index.by_complaint.get(complaint_id, ())]
        else:
            candidates = index.headers
        return [
            h
            for h in candidates
            if header_matches(
                h,
                complaint_id=complaint_id,
                version=version,
                closed_from=closed_from,
                closed_before=closed_before,
                charter=charter,
            )
        ]

    def close(self) -> None:
        """Nothing to release (files are opened per call)."""
        self._indexes.clear()
        self._cleaned.clear()
