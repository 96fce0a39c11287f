"""Several profiles in one `crmsync run`: each works on its own; a broken one stops no other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.cli import app
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from state_views import count_complaints

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _events(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_profiles_run_side_by_side_and_a_broken_one_stops_no_other(tmp_path: Path) -> None:
    """aston and kilkenny both cycle in their own data dirs; 'broken' (no such charter) is
    reported as unavailable; SIGTERM stops the process with status 0."""
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    for name in ("aston", "kilkenny"):
        crm = LocalCrm(tmp_path / "data" / name / "local-crm.sqlite3")
        seed_local_crm(
            crm,
            mapping,
            name,
            count=40,
            seed=3,
            start=now - timedelta(days=30),
            span_days=28,
            now=now,
        )
        crm.close()
    config = tmp_path / "crmsync.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "sync_interval = 2\n"
        "http_port = 0\n"
        '[profiles.aston]\ncharter = "mappings/charters/aston.yaml"\n'
        '[profiles.kilkenny]\ncharter = "mappings/charters/kilkenny.yaml"\n'
        '[profiles.broken]\ncharter = "mappings/charters/no-such-charter.yaml"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({"CRMSYNC_CONFIG": str(config), "CRMSYNC_LOG_FORMAT": "json"})
    log = tmp_path / "run.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=env, stderr=handle
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = {e.get("profile") for e in _events(log) if e.get("event") == "cycle_finished"}
            if {"aston", "kilkenny"} <= done:
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail("both profiles did not cycle:\n" + log.read_text()[-3000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0
    events = _events(log)
    unavailable = [e for e in events if e.get("event") == "profile_unavailable"]
    assert [e.get("profile") for e in unavailable] == ["broken"]
    # each profile's state is its own: watermarks in its own data dir, under its own name
    for name in ("aston", "kilkenny"):
        store = SqliteStateStore(tmp_path / "data" / name / "state.sqlite3")
        store.migrate()
        assert store.get_watermark(name, "complaints") is not None
        assert count_complaints(store, name) == 40
        store.close()


def test_single_profile_commands_work_on_the_profile_crmsync_profile_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With profiles configured, ``sync --once`` and ``archive verify`` work on the profile
    CRMSYNC_PROFILE names (its own data folder and namespace); naming none is refused
    with the list of profiles instead of quietly working on the base settings."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    crm = LocalCrm(tmp_path / "data" / "kilkenny" / "local-crm.sqlite3")
    seed_local_crm(
        crm,
        mapping,
        "kilkenny",
        count=20,
        seed=5,
        start=now - timedelta(days=20),
        span_days=18,
        now=now,
    )
    crm.close()
    config = tmp_path / "crmsync.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[profiles.aston]\ncharter = "{ROOT / "mappings/charters/aston.yaml"}"\n'
        f'[profiles.kilkenny]\ncharter = "{ROOT / "mappings/charters/kilkenny.yaml"}"\n'
    )
    env = {"CRMSYNC_CONFIG": str(config), "CRMSYNC_LOG_FORMAT": "json"}
    runner = CliRunner()
    refused = runner.invoke(app, ["sync", "--once"], env=env)
    assert refused.exit_code == 2
    assert "configures the profiles aston, kilkenny" in refused.stderr
    assert "CRMSYNC_PROFILE" in refused.stderr
    done = runner.invoke(
        app, ["sync", "--once", "--json"], env={**env, "CRMSYNC_PROFILE": "kilkenny"}
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["complaints_evaluated"] == 20
    store = SqliteStateStore(tmp_path / "data" / "kilkenny" / "state.sqlite3")
    store.migrate()
    assert count_complaints(store, "kilkenny") == 20
    store.close()
    assert not (tmp_path / "data" / "state.sqlite3").exists()
    verified = runner.invoke(
        app, ["archive", "verify", "--json"], env={**env, "CRMSYNC_PROFILE": "kilkenny"}
    )
    assert verified.exit_code == 0, verified.stderr
    assert json.loads(verified.stdout)["profile"] == "kilkenny"
