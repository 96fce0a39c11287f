"""A profile whose state store is down when ``crmsync run`` starts: a real worker process,
the real PostgreSQL behind a TCP relay that comes up seconds later.

The worker is pointed at a port where nothing listens yet; the test then starts relaying
that port to the PostgreSQL server, as a database coming back would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from worker_processes import POSTGRES_URL, Relay, http_get, log_events, postgres_relay, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def relay() -> Iterator[Relay]:
    started = postgres_relay()
    yield started
    started.close()


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
        [started] = wait_for(
            lambda: [e for e in log_events(log) if e.get("event") == "http_started"],
            60,
            "the HTTP port",
        )
        port = int(started["port"])
        down = [e for e in log_events(log) if e.get("event") == "profile_unavailable"]
        assert down and down[0]["profile"] == profile
        assert down[0]["kind"] == "StateStoreError"
        status, body = http_get(port, "/readyz")
        assert status == 503
        assert json.loads(body)["unavailable"] == {profile: "StateStoreError"}
        _status, metrics = http_get(port, "/metrics")
        assert f'crmsync_profile_unavailable{{profile="{profile}"}} 1.0' in metrics
        time.sleep(3)  # a retry or two fails while the database is still away
        assert worker.poll() is None, log.read_text()[-3000:]
        retried = [e for e in log_events(log) if e.get("event") == "profile_unavailable"]
        assert len(retried) >= 2 and retried[-1]["retried"] is True

        relay.start()
        wait_for(
            lambda: any(
                e.get("event") == "cycle_finished" and e.get("profile") == profile
                for e in log_events(log)
            ),
            60,
            "the profile's first cycle",
        )
        assert any(e.get("event") == "profile_opened" for e in log_events(log))
        status, body = http_get(port, "/readyz")
        assert status == 200, body
        assert "unavailable" not in json.loads(body)
        _status, metrics = http_get(port, "/metrics")
        assert f'crmsync_profile_unavailable{{profile="{profile}"}} 0.0' in metrics
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert "Traceback" not in log.read_text(errors="replace")
