"""``CRMSYNC_PROFILES_DIR``: one TOML file per profile, read again while ``crmsync run``
runs; a bad file is reported by name while the others go on (issue 22)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.crm.local import LocalCrm
from crmsync.bootstrap import LOCAL_CRM_FILE
from crmsync.demo.seeding import seed_local_crm
from crmsync.mapping.field_mapping import load_mapping
from crmsync.settings import redact_url
from worker_processes import log_events, wait_for

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def schema() -> Iterator[str]:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {redact_url(POSTGRES_URL)}: {exc}")
    name = f"q_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _synced(schema: str) -> set[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'runs'",
            (schema,),
        ).fetchone():
            return set()
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT profile FROM {}.runs WHERE kind = 'sync' AND status = 'succeeded'"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_profile_files_are_read_again_and_a_bad_one_is_named(tmp_path: Path, schema: str) -> None:
    tag = uuid.uuid4().hex[:6]
    first, late, bad = f"dir-{tag}-a", f"dir-{tag}-b", f"dir-{tag}-bad"
    mapping = load_mapping(ROOT / "mappings" / "salesforce.yaml")
    now = datetime.now(UTC)
    for i, name in enumerate((first, late)):
        (tmp_path / name).mkdir()
        with LocalCrm(tmp_path / name / LOCAL_CRM_FILE) as crm:
            seed_local_crm(
                crm,
                mapping,
                "aston",
                count=10,
                seed=i,
                start=now - timedelta(days=20),
                span_days=18,
                now=now,
            )
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / f"{first}.toml").write_text("sync_interval = 2\n")
    (folder / f"{bad}.toml").write_text("sync_intervall = 2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update(
        {
            "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
            "CRMSYNC_PROFILES_DIR": str(folder),
            "CRMSYNC_DATA_DIR": str(tmp_path),
            "CRMSYNC_STATE_URL": POSTGRES_URL,
            "CRMSYNC_QUEUE_SCHEMA": schema,
            "CRMSYNC_SYNC_INTERVAL": "2",
            "CRMSYNC_HTTP_PORT": "0",
            "CRMSYNC_LOG_FORMAT": "json",
        }
    )
    log = tmp_path / "replica.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    try:
        wait_for(lambda: first in _synced(schema), 60, "the first profile's cycle")
        invalid = [e for e in log_events(log) if e.get("event") == "profile_file_invalid"]
        assert len(invalid) == 1
        assert f"{bad}.toml" in invalid[0]["error"]
        assert "sync_intervall" in invalid[0]["error"]
        assert "sync_interval" in invalid[0]["error"].replace("sync_intervall", "")  # the hint

        (folder / f"{late}.toml").write_text("")  # a new profile while it runs
        wait_for(lambda: late in _synced(schema), 30, "the new profile's cycle")
        assert proc.poll() is None
        assert bad not in _synced(schema)
        # the bad file is named once, not at every reading
        assert len([e for e in log_events(log) if e.get("event") == "profile_file_invalid"]) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text(errors="replace")
