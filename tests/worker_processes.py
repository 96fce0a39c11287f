"""What the tests that run crmsync as a real process share: a clean environment, `crmsync
run` started with its log to a file, a fresh PostgreSQL schema, waiting for a condition,
reading its JSON log lines, asking its ops port, and a TCP relay to PostgreSQL that a test
starts, stops or restarts to take the server away and give it back."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url

POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ROOT = Path(__file__).resolve().parents[1]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``CRMSYNC_*`` variable, plus each of
    ``settings`` as ``CRMSYNC_<NAME>`` (``data_dir="x"`` sets ``CRMSYNC_DATA_DIR=x``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({f"CRMSYNC_{name.upper()}": value for name, value in settings.items()})
    return env


def start_run(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m crmsync run ARGS`` started from the project root with exactly ``env``;
    its stdout dropped, its stderr written to ``log``."""
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )


def seed_profile(data_dir: Path, seed: int) -> None:
    """Make ``data_dir`` a profile's folder with a local CRM of 10 Aston complaints received
    over the last 20 days (``seed`` picks which)."""
    data_dir.mkdir()
    now = datetime.now(UTC)
    with LocalCrm(data_dir / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(ROOT / "mappings" / "salesforce.yaml"),
            "aston",
            count=10,
            seed=seed,
            start=now - timedelta(days=20),
            span_days=18,
            now=now,
        )


def require_postgres() -> None:
    """Skips the test when no PostgreSQL server answers at ``POSTGRES_URL``."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {exc}")


def fresh_schema() -> Iterator[str]:
    """For a fixture: a new schema name in the test PostgreSQL, dropped with all it holds
    after the test; skips the test when no server answers."""
    require_postgres()
    name = f"q_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Kills ``proc`` if it still runs (a test's cleanup after a failure) and waits for it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """``predicate()``'s first truthy answer, asked every 0.2 s; fails the test naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def events_named(log: Path, event: str, profile: str | None = None) -> list[dict[str, Any]]:
    """The JSON events called ``event`` in ``log`` so far (of ``profile`` when given)."""
    return [
        e
        for e in log_events(log)
        if e.get("event") == event and (profile is None or e.get("profile") == profile)
    ]


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines written to ``log`` so far (other lines, and a last line still
    being written, are passed over)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of GET ``path`` on the local ops port ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Relay:
    """A TCP relay from a local port to the PostgreSQL server, started on demand.

    ``close`` is a server that goes away: every relayed connection is shut down on both
    sides (the server ends those sessions, releasing their locks) and new ones are
    refused. ``cut`` is a network that breaks between the two: the clients' side is
    reset, but the server's side is left open and silent, so the server keeps those
    sessions (and their advisory locks) as a real server does until it notices.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()  # nothing listens on the port until start()
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._silent: list[socket.socket] = []
        """Server-side sockets of cut connections: open, never read nor written."""
        self._mutex = threading.Lock()
        self._accepting: threading.Thread | None = None

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        server.settimeout(0.2)
        self._server = server
        self._accepting = threading.Thread(target=self._accept, args=(self._stop,), daemon=True)
        self._accepting.start()

    def _accept(self, stop: threading.Event) -> None:
        assert self._server is not None
        server = self._server
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if stop.is_set():  # taken just as the relay stopped: refused
                client.close()
                return
            upstream = socket.create_connection(self.target)
            pair = (client, upstream)
            with self._mutex:
                self._pairs.append(pair)
            threading.Thread(target=self._pipe, args=(client, upstream, pair), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, pair), daemon=True).start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, ...]
    ) -> None:
        try:
            while data := source.recv(65536):
                if self._is_cut(pair):
                    return
                sink.sendall(data)
        except OSError:
            pass
        if not self._is_cut(pair):  # one side ended: so does the other
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _is_cut(self, pair: tuple[socket.socket, ...]) -> bool:
        """Cut: nothing more passes either way, the server's side stays open."""
        with self._mutex:
            return any(s in self._silent for s in pair)

    def _stop_listening(self) -> None:
        """No new connection; returns once the port is free to listen on again."""
        self._stop.set()
        if self._accepting is not None:
            self._accepting.join()
            self._accepting = None
        if self._server is not None:
            self._server.close()
            self._server = None

    def close(self) -> None:
        """The server goes away: both sides of every connection shut down, none taken."""
        self._stop_listening()
        with self._mutex:
            pairs, self._pairs = self._pairs, []
            silent, self._silent = self._silent, []
        for s in [s for pair in pairs for s in pair] + silent:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        """The network breaks: the clients see their connections reset and new ones
        refused; the server's side of each stays open and silent (its sessions live on)."""
        self._stop_listening()
        with self._mutex:
            pairs, self._pairs = self._pairs, []
            self._silent += [upstream for _client, upstream in pairs]
        for client, _upstream in pairs:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def restart(self) -> None:
        """Listen again on the same port after ``close`` or ``cut``."""
        self._stop = threading.Event()
        self.start()


def postgres_relay() -> Relay:
    """A relay (not yet started) to the test PostgreSQL; skips the test when no server
    answers there."""
    require_postgres()
    parts = urlsplit(POSTGRES_URL)
    return Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
