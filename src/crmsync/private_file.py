"""Files that hold complaint data: created readable by their owner only (0600), and written
whole or not at all.

``create_private_file`` makes an empty database file 0600 before SQLite opens it.
``PrivateFile`` writes a file people are handed (a report, an evaluation, an export): the
text goes to a temporary file beside the target (0600, same folder, so the rename stays on
one file system); on success it is flushed, fsynced and renamed over the target, and the
folder fsynced; on any failure (a full disk, an interrupted run) the temporary file is
removed and the previous file, if any, is left exactly as it was. No reader ever sees a
truncated file that looks finished.

A target that exists and is not a regular file (``/dev/stdout``, a FIFO, ``/dev/full``)
cannot be replaced: it is written in place.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import TextIO

PRIVATE_FILE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; an existing file keeps its
    mode. An empty file is a new SQLite database, and SQLite creates the database's
    ``-wal``, ``-shm`` and ``-journal`` files with the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


class PrivateFile:
    """One private file being written atomically; use ``open`` then ``with``.

    ``PrivateFile.open(path)`` raises ``OSError`` when the file cannot be made (a folder
    that does not exist, no permission): a bad argument. Inside ``with`` the text is
    written to ``handle``; leaving the block normally commits (``OSError`` from a full
    disk shows there too, the temporary file removed), leaving it with an exception
    discards. Either way nothing half-written is left at ``path``."""

    def __init__(self, path: Path, handle: TextIO, temporary: Path | None) -> None:
        self.path = path
        self.handle = handle
        self._temporary = temporary

    @classmethod
    def open(cls, path: Path, *, newline: str | None = None) -> PrivateFile:
        """Start writing ``path`` (UTF-8 text; ``newline`` as for ``open``)."""
        target = Path(os.path.realpath(path))
        try:
            in_place = not stat.S_ISREG(target.stat().st_mode)
        except FileNotFoundError:
            in_place = False
        if in_place:
            handle = open(target, "w", encoding="utf-8", newline=newline)  # noqa: SIM115 - caller closes it
            return cls(target, handle, None)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            handle = open(fd, "w", encoding="utf-8", newline=newline)  # noqa: SIM115 - caller closes it
        except BaseException:
            os.close(fd)
            os.unlink(name)
            raise
        return cls(target, handle, Path(name))

    def __enter__(self) -> TextIO:
        return self.handle

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Flush, fsync and rename over the target; ``OSError`` (after discarding) if any
        step fails."""
        try:
            self.handle.flush()
            if self._temporary is not None:
                os.fsync(self.handle.fileno())
            self.handle.close()
            if self._temporary is not None:
                os.replace(self._temporary, self.path)
                self._temporary = None
                _fsync_folder(self.path.parent)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove the temporary file; the target stays as it was."""
        with suppress(OSError):  # the write that failed is the error to report
            self.handle.close()
        if self._temporary is not None:
            with suppress(FileNotFoundError):
                self._temporary.unlink()
            self._temporary = None


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
