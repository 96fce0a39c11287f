"""Which worker process may work a profile: at most one at a time, taken over on death.

* ``PostgresProfileLock``: a session-level PostgreSQL advisory lock per profile, held on a
  connection of its own for as long as this process works the profile. When the process
  dies its connection closes, the server releases the lock, and another replica takes
  the profile over at its next attempt (within one interval).
* ``FileProfileLock``: the same for the embedded SQLite state: an ``flock`` on a file
  per profile in the data directory (released by the kernel when the process dies).

Both answer ``held()`` honestly: a lost connection means the lock is gone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import IO, Any, Protocol

import structlog

from crmsync.errors import StateStoreError
from crmsync.settings import redact_url

log = structlog.get_logger("crmsync.lock")


class ProfileLock(Protocol):
    """Exclusive, crash-released ownership of profiles."""

    def try_acquire(self, profile: str) -> bool:
        """Take the profile if no other process holds it; True when this process holds it."""
        ...

    def held(self, profile: str) -> bool:
        """True while this process still holds the profile."""
        ...

    def release(self, profile: str) -> None: ...

    def close(self) -> None:
        """Release every profile."""
        ...


def lock_key(profile: str) -> int:
    """A stable signed 64-bit advisory lock key for a profile name."""
    digest = hashlib.sha256(f"crmsync-profile:{profile}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresProfileLock:
    """Advisory locks on the state store's PostgreSQL server, one connection per profile."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conns: dict[str, Any] = {}
        self._mutex = threading.Lock()

    def try_acquire(self, profile: str) -> bool:
        import psycopg  # noqa: PLC0415 - only replicas on PostgreSQL need it

        with self._mutex:
            if self._alive(profile):
                return True
            try:
                conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (lock_key(profile),)
                ).fetchone()
            except psycopg.Error as exc:
                raise StateStoreError(
                    f"profile lock on {redact_url(self._url)}: {type(exc).__name__}"
                ) from None
            if row is not None and row[0]:
                self._conns[profile] = conn
                log.info("profile_acquired", profile=profile, pid=os.getpid())
                return True
            conn.close()
            return False

    def _alive(self, profile: str) -> bool:
        conn = self._conns.get(profile)
        if conn is None:
            return False
        try:
            conn.execute("SELECT 1")
        except Exception:  # any failure means the session, and with it the lock, is gone
            self._conns.pop(profile, None)
            log.warning("profile_lost", profile=profile)
            return False
        return True

    def held(self, profile: str) -> bool:
        with self._mutex:
            return self._alive(profile)

    def release(self, profile: str) -> None:
        with self._mutex:
            conn = self._conns.pop(profile, None)
        if conn is not None:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(profile),))
            finally:
                conn.close()

    def close(self) -> None:
        for profile in list(self._conns):
            self.release(profile)


class FileProfileLock:
    """``flock`` on ``<dir>/<profile>.lock``: for replicas sharing one data directory."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._files: dict[str, IO[str]] = {}
        self._mutex = threading.Lock()

    def try_acquire(self, profile: str) -> bool:
        with self._mutex:
            if profile in self._files:
                return True
            self._dir.mkdir(parents=True, exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in profile)
            handle = open(self._dir / f"{safe}.lock", "a+", encoding="utf-8")  # noqa: SIM115
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._files[profile] = handle
            log.info("profile_acquired", profile=profile, pid=os.getpid())
            return True

    def held(self, profile: str) -> bool:
        with self._mutex:
            return profile in self._files

    def release(self, profile: str) -> None:
        with self._mutex:
            handle = self._files.pop(profile, None)
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def close(self) -> None:
        for profile in list(self._files):
            self.release(profile)


def open_profile_lock(state_url: str | None, data_dir: Path) -> ProfileLock:
    """Advisory locks when the state is on PostgreSQL, file locks otherwise."""
    if state_url and state_url.split("://", 1)[0].lower() in {"postgresql", "postgres"}:
        return PostgresProfileLock(state_url)
    return FileProfileLock(data_dir / "locks")
