"""One psycopg connection shared by a PostgreSQL-backed store (state store, archive).

Every ``run`` is one transaction, committed at its end and rolled back on any error. If
the connection turns out to be dropped (server restart, idle kill, network cut) the
session reconnects once and runs the work again, so the store's writes must be
idempotent. Errors become the store's own error class; the URL's password never appears
in a message or log line.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql

from crmsync.errors import CrmSyncError
from crmsync.redaction import redact_text, redact_url, url_secrets

T = TypeVar("T")

_log = structlog.get_logger(__name__)


IDLE_TRANSACTION_LIMIT = "-c idle_in_transaction_session_timeout=120s"
"""A store's transaction never waits on its client for long; one left open by a client
that is gone (a cut network) ends after two minutes, with the row locks it holds."""

SERVER_PROBES = "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
"""The server probes a silent client: a session left behind by a cut network ends (with
its locks) about a minute after the client went silent, not after the server's default
two hours."""

CLIENT_PROBES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
"""And this side notices a silent server within the same time."""


def connection_parameters(url: str, *, options: str = "") -> dict[str, Any]:
    """The libpq parameters every crmsync connection adds to ``url``: the probes both ways
    and ``options`` (server settings), after any ``options`` the URL gives itself."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415 - psycopg loads late

    try:
        own = str(conninfo_to_dict(url).get("options") or "")
    except psycopg.Error:
        own = ""  # a malformed URL: connecting names the error
    merged = " ".join(part for part in (own, SERVER_PROBES, options) if part)
    return {**CLIENT_PROBES, "options": merged}


@dataclass(frozen=True, slots=True)
class ServerSession:
    """A server session by its pid and start (a pid alone may be reused)."""

    pid: int
    started: datetime


SESSION_QUERY = (
    "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
)
"""This connection's ``(pid, start)`` on the server."""

ORPHAN_WAIT_MS = 5_000
"""How long ending an orphaned session may wait for it to be gone."""


def end_orphan(conn: psycopg.Connection[Any], orphan: ServerSession) -> bool:
    """End ``orphan``, a session this process lost its connection to but which the server
    keeps (a cut network: the server saw no reset), so that the locks it holds are
    released now rather than when the server notices; True when it was ended. Only that
    session is touched: one with the same pid but another start is someone else's."""
    which = "FROM pg_stat_activity WHERE pid = %s AND backend_start = %s"
    if conn.info.server_version >= 140000:  # waits until it is gone
        row = conn.execute(
            f"SELECT pg_terminate_backend(pid, %s) {which}",
            (ORPHAN_WAIT_MS, orphan.pid, orphan.started),
        ).fetchone()
        return bool(row and row[0])
    row = conn.execute(
        f"SELECT pg_terminate_backend(pid) {which}",
        (orphan.pid, orphan.started),
    ).fetchone()
    deadline = time.monotonic() + ORPHAN_WAIT_MS / 1000
    while row and row[0] and time.monotonic() < deadline:
        if conn.execute(f"SELECT 1 {which}", (orphan.pid, orphan.started)).fetchone() is None:
            return True
        time.sleep(0.05)
    return False


class PostgresSession:
    """The connection, the schema and the transaction runner of one store."""

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        kind: str,
        error: type[CrmSyncError],
        connect_timeout: int = 10,
        application_name: str = "crmsync",
        hint: Callable[[BaseException], str] = lambda _exc: "",
    ) -> None:
        """``kind`` names the store in messages ("state store", "archive"); ``hint`` adds
        advice for some errors (e.g. "was migrate() run?")."""
        if not isinstance(schema, str) or not schema or "\x00" in schema:
            raise error(f"{kind} schema name {schema!r} is not valid")
        self._url = url
        self._secrets = url_secrets(url)
        self._error = error
        self._kind = kind
        self._hint = hint
        self.where = f"{kind} {redact_url(url)} (schema {schema})"
        self.schema = schema
        self.ident = sql.Identifier(schema)
        self._connect_timeout = connect_timeout
        self._application_name = application_name
        self._lock = threading.Lock()
        self.closed = False
        self._queries: dict[str, sql.Composed] = {}
        self._server: ServerSession | None = None
        """The server session of the open connection."""
        self._orphan: ServerSession | None = None
        """The session of a connection lost since: the next connection ends it."""
        self._conn: psycopg.Connection[Any] | None = self._connect()

    def redact(self, exc: BaseException) -> str:
        """The error in one line (the server's message and detail), password removed."""
        text = " ".join(str(exc).split())
        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            text = exc.diag.message_primary
            if exc.diag.message_detail:
                text += f" ({exc.diag.message_detail})"
        return redact_text(text + self._hint(exc), self._secrets)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self._open()
        try:
            row = conn.execute(SESSION_QUERY).fetchone()
            orphan, self._orphan = self._orphan, None
            if orphan is not None and end_orphan(conn, orphan):
                _log.warning(
                    f"{self._kind.replace(' ', '_')}.orphan_ended",
                    store=self.where,
                    server_pid=orphan.pid,
                )
            conn.commit()
        except psycopg.Error as exc:  # not ours to end, or the server went again
            self._rollback(conn)
            _log.debug("orphan_not_ended", store=self.where, error=self.redact(exc))
            row = None
        self._server = None if row is None else ServerSession(int(row[0]), row[1])
        return conn

    def _open(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url,
                autocommit=False,
                connect_timeout=self._connect_timeout,
                application_name=self._application_name,
                **connection_parameters(self._url, options=IDLE_TRANSACTION_LIMIT),
            )
        except (psycopg.Error, ValueError) as exc:
            reason = self.redact(exc)
        # no cause, no context (raised past the except block): the driver's error may
        # quote the connection string with its password
        raise self._error(f"{self.where}: cannot connect: {reason}") from None

    def q(self, text: str) -> sql.Composed:
        """``text`` with ``{s}`` bound to the schema identifier (cached)."""
        query = self._queries.get(text)
        if query is None:
            query = self._queries[text] = sql.SQL(text).format(s=self.ident)
        return query

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        if conn.closed:
            return
        with contextlib.suppress(psycopg.Error):
            conn.rollback()

    def _discard(self, conn: psycopg.Connection[Any], *, lost: bool = False) -> None:
        """Close ``conn``; a ``lost`` one's server session may live on, to be ended by
        the next connection."""
        with contextlib.suppress(psycopg.Error):
            conn.close()
        if self._conn is conn:
            self._conn = None
            if lost:
                self._orphan = self._server
            self._server = None

    def check_open(self, what: str) -> None:
        """Raise the store's error if the session was closed."""
        if self.closed:
            raise self._error(f"{self.where}: {what}: the store is closed")

    def run(self, what: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` as one transaction; reconnect and repeat once if the connection
        was dropped."""
        with self._lock:
            self.check_open(what)
            for attempt in (1, 2):
                conn = self._conn
                if conn is None or conn.closed:
                    conn = self._conn = self._connect()
                try:
                    result = work(conn)
                    conn.commit()
                    return result
                except psycopg.Error as exc:
                    lost = conn.closed or conn.broken
                    if not lost:
                        self._rollback(conn)
                    else:
                        self._discard(conn, lost=True)
                        if attempt == 1:
                            _log.warning(
                                f"{self._kind.replace(' ', '_')}.reconnect",
                                store=self.where,
                                operation=what,
                                error=self.redact(exc),
                            )
                            continue
                    reason = ("connection lost: " if lost else "") + self.redact(exc)
                except BaseException:
                    self._rollback(conn)
                    raise
                # no cause, no context (raised past the except block): the driver's error
                # may quote the connection string with its password
                raise self._error(f"{self.where}: {what} failed: {reason}") from None
            raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection; later runs raise the store's error. Idempotent."""
        with self._lock:
            self.closed = True
            if self._conn is not None:
                self._discard(self._conn)
