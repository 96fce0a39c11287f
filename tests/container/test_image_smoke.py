"""What the image does, without Docker: build the wheel, install it into a fresh virtual
environment, run `crmsync run` on the local CRM, probe the endpoints, stop it with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_wheel_installs_and_the_worker_serves_probes_and_stops_cleanly(tmp_path: Path) -> None:
    """The built wheel runs `crmsync run`: a cycle, /healthz, /readyz, /metrics, exit 0."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = dist.glob("crmsync-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    app = tmp_path / "app"  # the image's WORKDIR: the mappings beside it, nothing else
    app.mkdir()
    (app / "mappings").symlink_to(ROOT / "mappings")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")},
        "CRMSYNC_DATA_DIR": str(tmp_path / "data"),
        "CRMSYNC_HTTP_PORT": str(port),
        "CRMSYNC_SYNC_INTERVAL": "2",
        "CRMSYNC_LOG_FORMAT": "json",
    }
    crmsync = str(venv / "bin" / "crmsync")
    seeded = subprocess.run(
        [crmsync, "demo", "--count", "50"],
        check=False,
        cwd=app,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr.decode()[-2000:]
    # as the demo prints it: its data directory and its profile
    env["CRMSYNC_DATA_DIR"] = str(tmp_path / "data" / "demo-aston")
    env["CRMSYNC_PROFILE"] = "demo-aston"
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen([crmsync, "run"], cwd=app, env=env, stderr=handle)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if '"cycle_finished"' in log.read_text(errors="replace"):
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail("no cycle finished within 120 s:\n" + log.read_text()[-3000:])
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/healthz") == (200, b'{"alive": true}\n')
        status, body = _get(base + "/readyz")
        assert status == 200, body
        assert json.loads(body)["ready"] is True
        status, metrics = _get(base + "/metrics")
        assert status == 200
        assert b'crmsync_cycles_total{profile="demo-aston",status="ok"}' in metrics
        for name in (
            b"crmsync_cycle_duration_seconds",
            b"crmsync_records_read_total",
            b"crmsync_flags_written_total",
            b"crmsync_tasks_created_total",
            b"crmsync_crm_api_calls_total",
            b"crmsync_errors_total",
            b"crmsync_archive_entries_total",
        ):
            assert name in metrics
        assert b'crmsync_clocks{charter="aston",clock="level1-resolution"' in metrics
        probe = subprocess.run(
            [crmsync, "healthcheck"], check=False, cwd=app, env=env, capture_output=True, timeout=60
        )
        assert probe.returncode == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
    assert code == 0, log.read_text()[-3000:]
    assert '"worker_stopped"' in log.read_text()
