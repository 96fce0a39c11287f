"""The fleet takes in the profile files as they are now while it runs: a changed file's
profile is opened anew and its old worker retired, a removed file's profile is retired
(lock given back, runtime closed, metrics and readiness dropped), a file that became bad
is named once and its profile runs on as it was; the other profiles are left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crmsync.bootstrap import WorkerFleet, build_fleet, build_profile_lock
from fakes.local_settings import local_settings


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "profiles"
    made.mkdir()
    (made / "a.toml").write_text("sync_interval = 60\n")
    (made / "b.toml").write_text("sync_interval = 60\n")
    return made


@pytest.fixture
def fleet(tmp_path: Path, folder: Path) -> Iterator[WorkerFleet]:
    base = local_settings(tmp_path).model_copy(update={"http_port": 0, "profiles_dir": folder})
    with build_fleet(base) as made:
        for worker in made.open_workers():
            assert worker.owns_profile()  # each profile's lock is held, as while it runs
            made.readiness.record_success(worker.profile, 1.0)
        yield made


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


def test_a_changed_file_reopens_its_profile_and_leaves_the_others(
    fleet: WorkerFleet, folder: Path
) -> None:
    a_runtime, a_worker, b_worker = fleet.runtimes[0], fleet.workers["a"], fleet.workers["b"]
    (folder / "b.toml").write_text("sync_interval = 30\n")
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == {"b"}
    [opened] = changes.opened
    assert (opened.profile, opened.interval) == ("b", 30)
    assert b_worker.retired and fleet.workers["b"] is opened
    assert [e["profile"] for e in events(logs, "profile_file_changed")] == ["b"]
    assert fleet.runtimes[0] is a_runtime and fleet.workers["a"] is a_worker
    assert not a_worker.retired
    assert opened.owns_profile()  # the old worker gave the profile back
    assert fleet.read_profiles().opened == []  # taken in: nothing changes again


def test_a_removed_file_retires_its_profile_and_drops_its_series(
    fleet: WorkerFleet, folder: Path, tmp_path: Path
) -> None:
    b_settings = next(r.settings for r in fleet.runtimes if r.settings.profile == "b")
    assert fleet.metrics.registry.get_sample_value("crmsync_profile_owned", {"profile": "b"}) == 1
    (folder / "b.toml").unlink()
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == {"b"} and changes.opened == []
    assert [e["profile"] for e in events(logs, "profile_file_removed")] == ["b"]
    assert [r.settings.profile for r in fleet.runtimes] == ["a"]
    assert set(fleet.workers) == {"a"} and set(fleet.locks) == {"a"}
    owned = fleet.metrics.registry.get_sample_value
    assert owned("crmsync_profile_owned", {"profile": "b"}) is None
    assert owned("crmsync_profile_owned", {"profile": "a"}) == 1
    assert set(fleet.readiness.last_success) == {"a"}
    assert "b" not in fleet.readiness.owned()
    other = build_profile_lock(b_settings, command="another process")
    try:
        assert other.try_acquire("b")  # its lock was given back
    finally:
        other.close()


def test_a_file_that_became_bad_is_named_once_and_its_profile_runs_on(
    fleet: WorkerFleet, folder: Path
) -> None:
    a_worker = fleet.workers["a"]
    (folder / "a.toml").write_text("sync_intervall = 5\n")
    with capture_logs() as logs:
        first, second = fleet.read_profiles(), fleet.read_profiles()
    assert first.retired == second.retired == frozenset()
    [invalid] = events(logs, "profile_file_invalid")
    assert "a.toml" in str(invalid["error"]) and "sync_intervall" in str(invalid["error"])
    assert fleet.workers["a"] is a_worker and not a_worker.retired
    assert next(r for r in fleet.runtimes if r.settings.profile == "a").settings.sync_interval == 60


def test_a_changed_profile_that_cannot_open_is_named_once_and_runs_on_as_it_was(
    fleet: WorkerFleet, folder: Path, tmp_path: Path
) -> None:
    b_worker = fleet.workers["b"]
    (folder / "b.toml").write_text(f"charter = '{tmp_path / 'missing.yaml'}'\n")
    with capture_logs() as logs:
        first, second = fleet.read_profiles(), fleet.read_profiles()
    assert first.retired == second.retired == frozenset()
    [refused] = events(logs, "profile_file_changed")
    assert refused["log_level"] == "error"
    assert "b.toml" in str(refused["error"]) and "missing.yaml" in str(refused["error"])
    assert fleet.workers["b"] is b_worker and not b_worker.retired
    (folder / "b.toml").write_text("sync_interval = 45\n")  # fixed: taken in
    assert [w.interval for w in fleet.read_profiles().opened] == [45]
