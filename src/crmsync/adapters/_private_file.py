"""Files that hold complaint data are created readable by their owner only (0600)."""

from __future__ import annotations

import os
from pathlib import Path

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
