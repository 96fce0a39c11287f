"""The composition root wires the worker: which profile lock goes with a state URL, which
profiles a fleet opens, and when the monthly report opens the archive."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from pydantic import SecretStr
from structlog.testing import capture_logs

from crmsync.adapters.profile_lock import FileProfileLock, PostgresProfileLock
from crmsync.bootstrap import Runtime, build_fleet, build_profile_lock
from crmsync.ports import ArchiveStore
from crmsync.service.report_monthly import last_month, write_missing_monthly_report
from fakes.local_settings import local_settings

MARCH_FIRST = 1772337600  # 2026-03-01T04:00:00Z


def test_the_profile_lock_follows_the_state_url(tmp_path: Path) -> None:
    """PostgreSQL state: advisory locks on that server (nothing connects yet); SQLite state,
    wherever its file is: file locks in the data folder's ``locks``."""
    settings = local_settings(tmp_path)
    on_postgres = settings.model_copy(
        update={"state_url": SecretStr("postgres://crm:hunter22@db.example/crm")}
    )
    assert isinstance(build_profile_lock(on_postgres), PostgresProfileLock)
    elsewhere = settings.model_copy(
        update={"state_url": SecretStr(f"sqlite:///{tmp_path}/x/state.db")}
    )
    for chosen in (settings, elsewhere):
        lock = build_profile_lock(chosen, command="crmsync test")
        try:
            assert isinstance(lock, FileProfileLock)
            assert lock.try_acquire("default")
            assert (tmp_path / "locks" / "default.lock").is_file()
        finally:
            lock.close()


def test_a_fleet_leaves_out_a_profile_that_cannot_open_and_serves_the_others(
    tmp_path: Path,
) -> None:
    """Two profiles, one naming a charter that does not exist: the fleet opens the other,
    logs ``profile_unavailable`` for the broken one, and its bound server answers
    ``/healthz`` once started; closing it closes the profile."""
    base = local_settings(tmp_path).model_copy(
        update={
            "http_port": 0,
            "profiles": {"good": {}, "broken": {"charter": str(tmp_path / "missing.yaml")}},
        }
    )
    with capture_logs() as logs:
        fleet = build_fleet(base)
    with fleet:
        assert [r.settings.profile for r in fleet.runtimes] == ["good"]
        fleet.server.start()
        url = f"http://127.0.0.1:{fleet.server.port}/healthz"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert json.loads(answer.read()) == {"alive": True}
    [unavailable] = [e for e in logs if e["event"] == "profile_unavailable"]
    assert unavailable["profile"] == "broken"


class NoArchive:
    """An archive factory that records being asked (and refuses: it must not be needed)."""

    def __init__(self) -> None:
        self.opened = 0

    def __call__(self) -> ArchiveStore:
        self.opened += 1
        raise AssertionError("the archive was opened although the report was written")


def test_a_written_monthly_report_is_left_alone_without_opening_the_archive(
    runtime: Runtime, tmp_path: Path
) -> None:
    """With both of last month's files in the folder nothing is written and the archive
    factory is never called."""
    folder = tmp_path / "reports"
    folder.mkdir()
    first, _ = last_month(runtime.charter, MARCH_FIRST)
    for suffix in ("json", "html"):
        (folder / f"default-{first:%Y-%m}.{suffix}").write_text("kept", encoding="utf-8")
    factory = NoArchive()
    written = write_missing_monthly_report(
        runtime.charter,
        runtime.state,
        factory,
        profile="default",
        now=MARCH_FIRST,
        folder=folder,
    )
    assert written == []
    assert factory.opened == 0
    assert (folder / "default-2026-02.json").read_text(encoding="utf-8") == "kept"
