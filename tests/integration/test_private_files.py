"""The embedded state store and local CRM are created readable by their owner only (0600),
like the local archive, with their SQLite side files (-wal, -shm)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.sqlite import SqliteStateStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _lenient_umask() -> object:
    """A umask that would leave new files readable by everyone (0644), as on many hosts."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_sqlite_state_store_and_its_side_files_are_0600(tmp_path: Path) -> None:
    """state.sqlite3 and its -wal and -shm files are created 0600 under umask 022."""
    path = tmp_path / "data" / "state.sqlite3"
    store = SqliteStateStore(path)
    try:
        store.migrate()
        store.set_watermark("p", "complaints", datetime(2026, 3, 2, tzinfo=UTC))
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["state.sqlite3", "state.sqlite3-shm", "state.sqlite3-wal"]
        assert {name: mode(path.parent / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        store.close()


def test_the_local_crm_and_its_side_files_are_0600(tmp_path: Path) -> None:
    """local-crm.sqlite3 and its -wal and -shm files are created 0600 under umask 022."""
    path = tmp_path / "data" / "local-crm.sqlite3"
    crm = LocalCrm(path, clock=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    try:
        crm.insert_records("Case", [{"Subject": "a complaint"}])
        files = sorted(p.name for p in path.parent.iterdir())
        assert "local-crm.sqlite3-wal" in files
        assert {name: mode(path.parent / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        crm.close()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """A state file an admin made group-readable on purpose is opened as it is."""
    path = tmp_path / "state.sqlite3"
    SqliteStateStore(path).close()
    path.chmod(0o640)
    store = SqliteStateStore(path)
    store.migrate()
    store.close()
    assert mode(path) == 0o640
