"""A profile whose state store is down when ``crmsync run`` starts: a real worker process,
the real PostgreSQL behind a TCP relay that comes up seconds later.

The worker is pointed at a port where nothing listens yet; the test then starts relaying
that port to the PostgreSQL server, as a database coming back would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
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

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Relay:
    """A TCP relay from a local port to the PostgreSQL server, started on demand."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()  # nothing listens on the port until start()
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._open: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        server.settimeout(0.2)
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for s in self._open:
            s.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {exc}")
    parts = urlsplit(POSTGRES_URL)
    started = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield started
    started.close()


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_profile_whose_state_is_down_at_start_opens_when_it_comes_back(
    tmp_path: Path, relay: Relay
) -> None:
    """``crmsync run`` starts while the state store's port is closed: it keeps running,
    ``/readyz`` answers 503 naming the profile and ``crmsync_profile_unavailable`` is 1;
    seconds after the relay comes up the profile opens, cycles, is ready and the gauge
    drops to 0; SIGTERM exits 0."""
    now = datetime.now(UTC)
    with LocalCrm(tmp_path / LOCAL_CRM_FILE) as crm:
        seed_local_crm(
            crm,
            load_mapping(ROOT / "mappings" / "salesforce.yaml"),
            "aston",
            count=10,
            seed=3,
            start=now - timedelta(days=20),
            span_days=15,
            now=now,
        )
    parts = urlsplit(POSTGRES_URL)
    url = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{relay.port}").geturl()
    profile = f"late-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update(
        {
            "CRMSYNC_DATA_DIR": str(tmp_path),
            "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
            "CRMSYNC_SECRETS_DIR": str(tmp_path / "no-secrets"),
            "CRMSYNC_LOG_FORMAT": "json",
            "CRMSYNC_HTTP_PORT": "0",
            "CRMSYNC_SYNC_INTERVAL": "2",
            "CRMSYNC_STATE_URL": url,
            "CRMSYNC_PROFILE": profile,
        }
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run", "--new-profile"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    try:
        [started] = _wait_for(
            lambda: [e for e in _events(log) if e.get("event") == "http_started"],
            60,
            "the HTTP port",
        )
        port = int(started["port"])
        down = [e for e in _events(log) if e.get("event") == "profile_unavailable"]
        assert down and down[0]["profile"] == profile
        assert down[0]["kind"] == "StateStoreError"
        status, body = _get(port, "/readyz")
        assert status == 503
        assert json.loads(body)["unavailable"] == {profile: "StateStoreError"}
        _status, metrics = _get(port, "/metrics")
        assert f'crmsync_profile_unavailable{{profile="{profile}"}} 1.0' in metrics
        time.sleep(3)  # a retry or two fails while the database is still away
        assert worker.poll() is None, log.read_text()[-3000:]
        retried = [e for e in _events(log) if e.get("event") == "profile_unavailable"]
        assert len(retried) >= 2 and retried[-1]["retried"] is True

        relay.start()
        _wait_for(
            lambda: any(
                e.get("event") == "cycle_finished" and e.get("profile") == profile
                for e in _events(log)
            ),
            60,
            "the profile's first cycle",
        )
        assert any(e.get("event") == "profile_opened" for e in _events(log))
        status, body = _get(port, "/readyz")
        assert status == 200, body
        assert "unavailable" not in json.loads(body)
        _status, metrics = _get(port, "/metrics")
        assert f'crmsync_profile_unavailable{{profile="{profile}"}} 0.0' in metrics
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert "Traceback" not in log.read_text(errors="replace")
