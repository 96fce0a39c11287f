"""``ArchiveStore`` in a local directory (the default): ``CRMSYNC_DATA_DIR/archive/<profile>/``.

Layout of one profile::

    entries/000000/000000000001.json   one file per entry (canonical JSON + newline),
    entries/000000/000000000002.json   10,000 per shard folder, never rewritten
    index.jsonl                        one header per line, in chain order (derived data:
                                       what search answers from; ``reindex`` rebuilds it)
    .lock                              taken (flock) by appends and repairs

An entry file is written to a temporary file, flushed to disk (fsync), then hard-linked to
its final name, which fails if that name exists: an entry appears whole or not at all, and
never over another one. The folder is synced, then the header line is appended to the
index (fsync again). A crash between the two leaves an entry the index does not list yet;
the next use repairs the index from the entry files (under the lock), and drops a torn last
index line. Files and folders are created readable by their owner only (0600/0700): the
archive is for the staff who handle complaints.

The index is trusted only while it agrees with the entry files: its lines form a hash
chain of their own (each line's ``entry_hash`` is the hash of its fields and its
``prev_hash`` the line before's), checked as they are read, and its last line is held
against the last entry file; a line that does not fit makes ``search`` and ``append``
refuse (``ArchiveIndexError``) until ``reindex`` rebuilds the index from the entry files.
``index_problems`` (run by ``verify``) holds every line against its entry file. ``verify``
walks the entry files; the index gives the recorded head, so entry files removed from the
end are found while the index still lists them. Someone able
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

from crmsync.domain.archive_chain import Finding, compare_index
from crmsync.domain.archive_entry import (
    GENESIS,
    ArchiveEntry,
    ChainHead,
    EntryHeader,
    StoredEntry,
    canonical_json,
    check_profile,
    entry_from_bytes,
    header_from_dict,
    header_matches,
    make_ref,
    parse_ref,
)
from crmsync.errors import (
    ArchiveError,
    ArchiveIndexError,
    ChainConflictError,
    DuplicateEntryError,
    EntryNotFoundError,
)

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
    """The parsed index of one profile, read incrementally (other processes append).

    ``problem`` says why the index cannot be trusted (a line that is not a header, out of
    order, altered or not linked to the line before it, or a last line that is not the
    last entry file); it stays until ``reindex``.
    """

    headers: list[EntryHeader] = field(default_factory=list)
    by_complaint: dict[str, list[int]] = field(default_factory=dict)
    offset: int = 0  # bytes of complete lines read
    torn: bool = False  # the file ends with an incomplete line
    problem: str | None = None
    checked: int = 0  # the offset up to which the last line was held against its entry file
    last: EntryHeader | None = None  # when not trusted: the line of the highest entry

    def add(self, header: EntryHeader) -> None:
        self.headers.append(header)
        self.by_complaint.setdefault(header.complaint_id, []).append(len(self.headers) - 1)

    def line_problem(self, header: EntryHeader) -> str | None:
        """What is wrong with ``header`` as the next line (None: it follows the last one)."""
        line = len(self.headers) + 1
        prev = self.headers[-1].entry_hash if self.headers else GENESIS
        if header.seq != line:
            return f"line {line} lists entry {header.seq} (out of order)"
        if header.computed_hash() != header.entry_hash:
            return f"line {line} was altered (its entry_hash does not match its fields)"
        if header.prev_hash != prev:
            return f"line {line} does not link to the line before it (a line removed or changed)"
        return None


def _index_lines(data: bytes) -> Iterator[tuple[int, EntryHeader | None, str | None]]:
    for number, line in enumerate(data.splitlines(), 1):
        try:
            yield number, header_from_dict(json.loads(line), f"line {number}"), None
        except (ValueError, ArchiveError) as exc:
            yield number, None, str(exc)


def _readable_headers(data: bytes) -> Iterator[EntryHeader]:
    """The headers of the lines of ``data`` that hold one."""
    for line in data.splitlines():
        try:
            yield header_from_dict(json.loads(line), "index")
        except (ValueError, ArchiveError):
            continue


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
            raise ArchiveError(f"archive {self.root}: cannot create ({exc.strerror})") from exc

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
                raise self._fail(f"profile {profile}: cannot lock", exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield folder
            finally:
                os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ index

    def _refresh(self, profile: str, folder: Path) -> _Index:
        """Read index lines appended since the last read, each checked against the line
        before it (a chain of its own); the first that does not fit sets ``problem``."""
        index = self._indexes.setdefault(profile, _Index())
        if index.problem is not None:
            return index
        path = f"{folder}/{INDEX}"
        try:
            with open(path, "rb") as f:
                f.seek(index.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise self._fail(f"{path}: cannot read", exc) from exc
        end = data.rfind(b"\n") + 1  # a torn last line is left for the repair
        index.torn = len(data) > end
        for line in data[:end].splitlines():
            where = f"line {len(index.headers) + 1}"
            try:
                header = header_from_dict(json.loads(line), where)
                problem = index.line_problem(header)
                if header.profile != profile:
                    problem = f"{where} belongs to profile '{header.profile}'"
            except (ValueError, ArchiveError) as exc:
                problem = f"{where} is not a header ({exc})"
            if problem is not None:
                index.problem = problem
                log.warning("archive_index_disagrees", file=path, reason=problem)
                index.last = max(
                    [*index.headers[-1:], *_readable_headers(data[:end])],
                    key=lambda h: h.seq,
                    default=None,
                )
                return index
            index.add(header)
        index.offset += end
        return index

    def reindex(self, profile: str) -> int:
        """Write the index anew from the entry files (atomically, under the lock): one line
        per readable entry file in the order of its number. Returns the lines written."""
        with self._locked(profile) as folder:
            lines: list[bytes] = []
            for stored in self.iterate(profile):
                if stored.entry is not None and stored.entry.header.seq == stored.slot:
                    lines.append(canonical_json(stored.entry.header.as_dict()) + b"\n")
            self._replace_file(folder / INDEX, b"".join(lines))
            self._indexes[profile] = _Index()
            log.info("archive_reindexed", profile=profile, lines=len(lines))
            return len(lines)

    def index_problems(self, profile: str) -> list[Finding]:
        """Every line of ``index.jsonl`` held against its entry file: lines changed, lines
        missing for an entry file, extra lines for no entry file, lines out of order."""
        path = self._dir(profile) / INDEX
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise self._fail(f"{path}: cannot read", exc) from exc
        data = data[: data.rfind(b"\n") + 1]  # a torn last line is crash residue
        # entries past the index's end are appended now or left by a crash (the next use
        # indexes them): not missing lines
        end = max((h.seq for h in _readable_headers(data)), default=0)
        return compare_index(
            _index_lines(data),
            ((slot, h) for slot, h in self._headers(profile) if slot <= end),
            lambda seq: self.get(make_ref(profile, seq)).header,
            profile,
        )

    def _trusted(self, profile: str, index: _Index) -> _Index:
        """The index, if it agrees with the entries; ``ArchiveIndexError`` otherwise.

        Its lines form a hash chain checked line by line as they are read, so holding its
        last line against the last entry file (once per change) shows that every line is
        the header of its entry file."""
        if index.problem is None and index.checked != index.offset and index.headers:
            last = index.headers[-1]
            try:
                stored = self._read(Path(self._file(profile, last.seq)), profile, last.seq)
                if stored.header != last:
                    index.problem = f"line {last.seq} differs from entry file {last.seq}"
            except EntryNotFoundError:
                index.problem = f"line {last.seq} lists entry {last.seq}, which has no file"
            except ArchiveError as exc:
                index.problem = f"entry file {last.seq} cannot be read ({exc})"
            if index.problem is not None:
                log.warning("archive_index_disagrees", profile=profile, reason=index.problem)
        if index.problem is not None:
            raise ArchiveIndexError(
                f"the archive index of profile '{profile}' ({self.root / profile / INDEX}) "
                f"disagrees with its entries: {index.problem}. Run 'crmsync archive verify' "
                "to see what differs, then 'crmsync archive reindex' to rebuild it from the "
                "entries"
            )
        index.checked = index.offset
        return index

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
            raise self._fail(f"{path}: cannot write", exc) from exc

    def _append_index(self, folder: Path, header: EntryHeader) -> int:
        """Append the header's line; return its length in bytes."""
        path = f"{folder}/{INDEX}"
        line = canonical_json(header.as_dict()) + b"\n"
        try:
            self._write_fd(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, line)
        except OSError as exc:
            raise self._fail(f"{path}: cannot append", exc) from exc
        return len(line)

    def _repair(self, profile: str, folder: Path) -> _Index:
        """Under the lock: drop a torn index line, list entry files the index lacks, remove
        temporary files a crashed append left behind."""
        path = folder / INDEX
        index = self._refresh(profile, folder)
        if index.problem is not None:  # never add to an index that disagrees with the entries
            return index
        if index.torn:  # a crash cut the last line short: drop it
            try:
                with path.open("r+b") as f:
                    f.truncate(index.offset)
            except OSError as exc:
                raise self._fail(f"{path}: cannot repair", exc) from exc
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
        except FileNotFoundError as exc:
            raise EntryNotFoundError(f"no archive entry {profile}/{seq}") from exc
        except OSError as exc:
            raise self._fail(f"{path}: cannot read", exc) from exc
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
            index = self._trusted(header.profile, self._repair(header.profile, folder))
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
                except FileExistsError as exc:
                    raise ChainConflictError(
                        f"archive {self.root}: entry {entry.ref} exists already"
                    ) from exc
                finally:
                    os.unlink(tmp)
                self._fsync_dir(shard)
            except OSError as exc:
                raise self._fail(f"{path}: cannot write", exc) from exc
            written = self._append_index(folder, header)
            index.add(header)  # what was just written, under the lock: no need to re-read
            index.offset += written
            index.checked = index.offset

    @staticmethod
    def _head(profile: str, index: _Index) -> ChainHead:
        last = index.last if index.problem is not None else None
        if last is None and index.headers:
            last = index.headers[-1]
        return ChainHead(profile) if last is None else ChainHead(profile, last.seq, last.entry_hash)

    def head(self, profile: str) -> ChainHead:
        """The recorded head: the index's last line, after repair (when the index disagrees
        with the entries, its line of the highest entry, so that verify walks them all)."""
        with self._locked(profile) as folder:
            return self._head(profile, self._repair(profile, folder))

    def get(self, ref: str) -> ArchiveEntry:
        """The entry ``profile/seq`` (``EntryNotFoundError`` if none)."""
        profile, seq = parse_ref(ref)
        return self._read(entry_path(self.root, profile, seq), profile, seq)

    def _slots(self, profile: str) -> Iterator[tuple[int, Path]]:
        """Every entry file's number and path, in order of the number."""
        base = self._dir(profile) / "entries"
        try:
            shards = sorted(p for p in base.iterdir() if p.is_dir() and p.name.isdigit())
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail(f"{base}: cannot list", exc) from exc
        for shard in shards:
            names = sorted(
                p.name
                for p in shard.iterdir()
                if p.name.endswith(".json") and p.name[:-5].isdigit()
            )
            for name in names:
                yield int(name[:-5]), shard / name

    def iterate(self, profile: str) -> Iterator[StoredEntry]:
        """Every entry file in order of its number, damaged ones included."""
        for slot, path in self._slots(profile):
            try:
                entry = entry_from_bytes(path.read_bytes(), str(path))
            except (ArchiveError, OSError) as exc:
                yield StoredEntry(slot, None, str(exc))
                continue
            yield StoredEntry(slot, entry)

    def _headers(self, profile: str) -> Iterator[tuple[int, EntryHeader | None]]:
        """Every entry file's number and header (None when unreadable), parsing only the
        header: canonical JSON puts it after the body, and the sealed form after it holds
        no object, so it is the last ``"header":`` of the file."""
        decoder = json.JSONDecoder()
        for slot, path in self._slots(profile):
            try:
                text = path.read_bytes().decode("utf-8")
                at = text.rfind('"header":{')
                data, _end = decoder.raw_decode(text, at + len('"header":'))
                yield slot, header_from_dict(data, str(path))
            except (ArchiveError, OSError, ValueError):
                try:  # anything unusual: read the whole document
                    yield slot, entry_from_bytes(path.read_bytes(), str(path)).header
                except (ArchiveError, OSError):
                    yield slot, None

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
        """Matching headers from the index, in chain order; ``ArchiveIndexError`` when the
        index disagrees with the entry files."""
        with self._locked(profile) as folder:
            index = self._trusted(profile, self._repair(profile, folder))
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
