"""The ops port (``/healthz``, ``/readyz``, ``/metrics``) over real sockets, with clients
that disconnect early: a reset before the answer, a half-sent request, a connection that
says nothing. No traceback reaches standard error; each is at most one JSON line at debug
level; the server goes on answering; the listen backlog holds a burst of connections."""

from __future__ import annotations

import socket
import struct
import time
import urllib.request
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from crmsync.worker.ops_http import LISTEN_BACKLOG, Metrics, OpsServer, Readiness


@pytest.fixture
def server() -> Iterator[OpsServer]:
    ops = OpsServer(0, Metrics(), Readiness(60, lambda: 0.0, lambda: True), host="127.0.0.1")
    ops.start()
    yield ops
    ops.stop()


def reset_after(port: int, data: bytes) -> None:
    """Connect, send ``data`` and close with a TCP reset (SO_LINGER 0) at once."""
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if data:
        client.sendall(data)
    client.close()


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        return bool(answer.status == 200)


def test_clients_that_reset_early_leave_no_traceback(
    server: OpsServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """Forty clients send a request (whole or half) and reset before the answer: standard
    error holds no traceback and no raw exception text; the log holds debug lines naming
    the client and the error only; the server still answers."""
    with capture_logs() as logs:
        for i in range(40):
            request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" if i % 2 else b"GET /rea"
            reset_after(server.port, request)
        time.sleep(0.5)  # the handler threads meet the resets
        assert healthy(server.port)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "ConnectionResetError" not in err and "BrokenPipeError" not in err
    gone = [e for e in logs if e["event"] == "http_client_gone"]
    assert gone, logs  # the resets were met (the test would prove nothing otherwise)
    assert all(e["log_level"] == "debug" for e in gone)
    assert {e["error"] for e in gone} <= {"ConnectionResetError", "BrokenPipeError"}
    assert [e for e in logs if e["event"] != "http_client_gone"] == []


def test_a_burst_of_connections_waits_in_the_backlog(server: OpsServer) -> None:
    """Far more connections than the standard library's backlog of 5 are accepted; each
    then gets its answer."""
    assert LISTEN_BACKLOG >= 128
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(60)]
    try:
        for client in clients:
            client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answers = [client.recv(64) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert all(a.startswith(b"HTTP/1.0 200") for a in answers)


def test_a_request_failing_otherwise_is_one_warning_line(
    server: OpsServer, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while answering (the metrics cannot be rendered) is one warning
    event with the error's type, never a traceback on standard error."""

    def broken() -> bytes:
        raise RuntimeError("registry gone")

    monkeypatch.setattr(server.metrics, "render", broken)
    with capture_logs() as logs:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        client.recv(64)
        client.close()
        time.sleep(0.3)
    assert "Traceback" not in capfd.readouterr().err
    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [
        ("http_request_failed", "warning", "RuntimeError")
    ]
    structlog.reset_defaults()
