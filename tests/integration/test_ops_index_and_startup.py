"""The ops port's index (``/`` lists its endpoints) and the worker's one start-up line
naming what it works: profiles, charters, CRM, state store, data directory, port."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crmsync.bootstrap import build_fleet, load_settings
from crmsync.worker.ops_http import Metrics, OpsServer, Readiness

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[OpsServer]:
    ops = OpsServer(0, Metrics(), Readiness(60, lambda: 0.0, lambda: True), host="127.0.0.1")
    ops.start()
    yield ops
    ops.stop()


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_index_lists_every_endpoint_and_each_answers(server: OpsServer) -> None:
    status, body = _get(server.port, "/")
    assert status == 200
    endpoints = json.loads(body)["endpoints"]
    assert set(endpoints) == {"/healthz", "/readyz", "/metrics"}
    for path in endpoints:
        assert _get(server.port, path)[0] in (200, 503), path  # served, not 404
    assert _get(server.port, "/nothing")[0] == 404


def test_the_worker_logs_one_start_up_line_with_what_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))
    charter = REPO / "mappings" / "charters" / "aston.yaml"
    settings = load_settings(
        data_dir=tmp_path / "data",
        charter=charter,
        mapping=REPO / "mappings" / "salesforce.yaml",
        http_port=0,
        profile="p01",
        state_url="postgresql://crmsync:s3cret@db.example/crmsync",
    )
    # the PostgreSQL store is not reachable: the profile starts pending, and is named too
    with capture_logs() as logs, build_fleet(settings) as fleet:
        fleet.stop_requested.set()  # start, log, stop at once
        fleet.run()
    [started] = [e for e in logs if e["event"] == "crmsync_started"]
    assert started["log_level"] == "info"
    assert started["port"] == fleet.server.port
    [profile] = started["profiles"] + started["pending"]
    assert profile == {
        "profile": "p01",
        "charter": str(charter),
        "mapping": str(REPO / "mappings" / "salesforce.yaml"),
        "crm": "local",
        "state_store": "postgresql://crmsync:***@db.example/crmsync",
        "data_dir": str(tmp_path / "data"),
    }
    assert "s3cret" not in json.dumps(started)
