"""Which process may work a profile: at most one at a time, taken over on death.

Every command that changes a profile's state, CRM records or archive takes the same lock:
the worker (``crmsync run``, for as long as it runs), ``sync --once``, ``archive run``,
``archive reindex`` and ``state prune``.

* ``PostgresProfileLock``: a session-level PostgreSQL advisory lock per profile, held on a
  connection of its own for as long as this process works the profile. When the process
  dies its connection closes, the server releases the lock, and another replica takes
  the profile over at its next attempt (within one interval). The connection's
  ``application_name`` says who holds it (command, pid, host), read back from
  ``pg_stat_activity`` by a process that finds the profile taken.
* ``FileProfileLock``: the same for the embedded SQLite state: an ``flock`` on
  ``<data_dir>/locks/<profile>.lock`` beside the profile's state (released by the kernel
  when the process dies). The holder writes who it is (command, pid, host, since) into
  the file after taking it.

Both answer ``held()`` honestly: a lost connection means the lock is gone. A lost
connection may leave its server session behind, still holding the lock (a network cut
that the server does not notice: it sees no reset, only silence). The server probes the
lock's connection (``_postgres_session.SERVER_PROBES``: about a minute), and the process
that lost it ends its own orphaned session when it takes the profile again: only that
session, known by its server pid and start, never another process's.
``acquire_profile`` waits a bounded time for a lock another process holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from crmsync.adapters._postgres_session import ServerSession, connection_parameters, end_orphan
from crmsync.errors import ProfileBusyError, ProfileLostError, StateStoreError
from crmsync.redaction import redact_url

log = structlog.get_logger("crmsync.lock")

UNKNOWN_HOLDER = "another process (who is not recorded)"


class ProfileLock(Protocol):
    """Exclusive, crash-released ownership of profiles."""

    def try_acquire(self, profile: str) -> bool:
        """Take the profile if no other process holds it; True when this process holds it."""
        ...

    def held(self, profile: str) -> bool:
        """True while this process still holds the profile."""
        ...

    def holder(self, profile: str) -> str:
        """Who holds the profile, for people (``UNKNOWN_HOLDER`` when it cannot be told)."""
        ...

    def release(self, profile: str) -> None: ...

    def close(self) -> None:
        """Release every profile."""
        ...


def lock_key(profile: str) -> int:
    """A stable signed 64-bit advisory lock key for a profile name."""
    digest = hashlib.sha256(f"crmsync-profile:{profile}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _me(command: str) -> dict[str, Any]:
    return {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def describe_holder(info: dict[str, Any]) -> str:
    """``'crmsync archive run' (pid 42 on host web1, since 2026-...Z)`` from a holder record."""
    since = f", since {info['since']}" if info.get("since") else ""
    pid, host = info.get("pid", "?"), info.get("host", "?")
    return f"'{info.get('command', '?')}' (pid {pid} on host {host}{since})"


class PostgresProfileLock:
    """Advisory locks on the state store's PostgreSQL server, one connection per profile."""

    def __init__(self, url: str, *, command: str = "crmsync run") -> None:
        self._url = url
        self._command = command
        self._conns: dict[str, Any] = {}
        self._sessions: dict[str, ServerSession] = {}
        """The server session holding each profile's lock (or that held it when lost)."""
        self._mutex = threading.Lock()

    def _application_name(self) -> str:
        me = _me(self._command)
        return f"{me['command']} pid={me['pid']} host={me['host']}"[:63]

    def try_acquire(self, profile: str) -> bool:
        import psycopg  # noqa: PLC0415 - only replicas on PostgreSQL need it

        with self._mutex:
            if self._alive(profile):
                return True
            try:
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=self._application_name(),
                    **connection_parameters(self._url),
                )
                row = self._take(conn, profile)
            except psycopg.Error as exc:
                failure = type(exc).__name__
            else:
                failure = ""
            if failure:
                # no cause, no context (raised past the except block): the driver's error
                # may quote the connection string with its password
                raise StateStoreError(
                    f"profile lock on {redact_url(self._url)}: {failure}"
                ) from None
            if row is not None and row[0]:
                self._conns[profile] = conn
                self._sessions[profile] = ServerSession(int(row[1]), row[2])
                log.info("profile_acquired", profile=profile, pid=os.getpid())
                return True
            conn.close()
            return False

    def _take(self, conn: Any, profile: str) -> Any:
        """``(taken, server pid, session start)`` of one try on ``conn``; when the lock is
        held by this process's own orphaned session (its connection was lost), that
        session is ended first and the lock tried once more."""
        query = (
            "SELECT pg_try_advisory_lock(%s), pg_backend_pid(), "
            "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())"
        )
        row = conn.execute(query, (lock_key(profile),)).fetchone()
        orphan = self._sessions.get(profile)
        if row is None or row[0] or orphan is None or profile in self._conns:
            return row
        ended = end_orphan(conn, orphan)
        self._sessions.pop(profile, None)  # ended, or gone already: never tried twice
        if not ended:
            return row
        log.warning("profile_orphan_ended", profile=profile, server_pid=orphan.pid)
        return conn.execute(query, (lock_key(profile),)).fetchone()

    def holder(self, profile: str) -> str:
        """The holding session's ``application_name`` and start (from ``pg_stat_activity``)."""
        import psycopg  # noqa: PLC0415 - psycopg costs a third of a second to import

        key = lock_key(profile)
        try:
            with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT a.application_name, a.pid, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
                    ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
                ).fetchone()
        except psycopg.Error:
            return UNKNOWN_HOLDER
        if row is None or not row[0]:
            return UNKNOWN_HOLDER
        since = row[2].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if row[2] else "?"
        return f"'{row[0]}' (server session {row[1]}, connected since {since})"

    def _alive(self, profile: str) -> bool:
        conn = self._conns.get(profile)
        if conn is None:
            return False
        try:
            conn.execute("SELECT 1")
        except Exception:  # any failure means the session, and with it the lock, is gone
            self._conns.pop(profile, None)
            _close_quietly(conn)
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
                self._sessions.pop(profile, None)
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(profile),))
        except Exception as exc:  # a dead session: the server released the lock with it
            log.warning("profile_release_lost", profile=profile, reason=type(exc).__name__)
        finally:
            _close_quietly(conn)

    def close(self) -> None:
        for profile in list(self._conns):
            self.release(profile)


def _close_quietly(conn: Any) -> None:
    """Close a lock's connection, which may be dead already (nothing to report then)."""
    try:
        conn.close()
    except Exception as exc:  # a broken connection may fail to close: it is gone anyway
        log.debug("profile_connection_close_failed", reason=type(exc).__name__)


def profile_guard(lock: ProfileLock, profile: str) -> Callable[[], None]:
    """A check for the work of ``profile`` to call before it writes: raises
    ``ProfileLostError`` once this process no longer holds the profile."""

    def still_held() -> None:
        if not lock.held(profile):
            raise ProfileLostError(profile)

    return still_held


class FileProfileLock:
    """``flock`` on ``<dir>/<profile>.lock``: for processes sharing one data directory."""

    def __init__(self, directory: Path, *, command: str = "crmsync run") -> None:
        self._dir = directory
        self._command = command
        self._fds: dict[str, int] = {}
        self._mutex = threading.Lock()

    def _path(self, profile: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in profile)
        return self._dir / f"{safe}.lock"

    def try_acquire(self, profile: str) -> bool:
        with self._mutex:
            if profile in self._fds:
                return True
            try:
                self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self._path(profile), os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StateStoreError(
                    f"profile lock {self._path(profile)}: {exc.strerror or exc}"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:  # who holds it, for the process that finds it taken
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(_me(self._command)).encode() + b"\n", 0)
            except OSError as exc:
                log.warning("profile_holder_unrecorded", profile=profile, reason=exc.strerror)
            self._fds[profile] = fd
            log.info("profile_acquired", profile=profile, pid=os.getpid())
            return True

    def holder(self, profile: str) -> str:
        """What the holder wrote into the lock file."""
        try:
            info = json.loads(self._path(profile).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return UNKNOWN_HOLDER
        return describe_holder(info) if isinstance(info, dict) else UNKNOWN_HOLDER

    def held(self, profile: str) -> bool:
        with self._mutex:
            return profile in self._fds

    def release(self, profile: str) -> None:
        with self._mutex:
            fd = self._fds.pop(profile, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def close(self) -> None:
        for profile in list(self._fds):
            self.release(profile)


def acquire_profile(
    lock: ProfileLock,
    profile: str,
    *,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Take ``profile``, waiting up to ``wait`` seconds for the process holding it.

    ``on_wait(holder)`` is called once when the first attempt finds it taken and there is
    time to wait. Raises ``ProfileBusyError`` naming the holder when the time is up.
    """
    deadline = clock() + max(0.0, wait)
    told = False
    while not lock.try_acquire(profile):
        holder = lock.holder(profile)
        remaining = deadline - clock()
        if remaining <= 0:
            log.warning("profile_busy", profile=profile, holder=holder)
            raise ProfileBusyError(profile, holder)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        sleep(min(poll, remaining))
