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
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql

from crmsync.errors import CrmSyncError
from crmsync.redaction import redact_text, redact_url, url_secrets

T = TypeVar("T")

_log = structlog.get_logger(__name__)


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
        try:
            return psycopg.connect(
                self._url,
                autocommit=False,
                connect_timeout=self._connect_timeout,
                application_name=self._application_name,
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

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.close()
        if self._conn is conn:
            self._conn = None

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
                        self._discard(conn)
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
