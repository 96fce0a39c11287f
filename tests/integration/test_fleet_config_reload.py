"""``crmsync run`` takes in its ``[profiles.NAME]`` tables of crmsync.toml while it runs, as
it does the profile files: a table added, changed or removed opens, reopens or retires
its profile; a table that became bad, or a file that cannot be read, is named and the
profiles run on as they were; settings only a restart applies are reported, not applied.
An edited charter or mapping file opens its profile anew (a broken one is named once and
the profile runs on with the charter it has)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crmsync.bootstrap import WorkerFleet, build_fleet, load_settings
from fakes.local_settings import REPO

ASTON = REPO / "mappings" / "charters" / "aston.yaml"


def write_config(path: Path, data_dir: Path, tables: str, *, port: int = 0) -> None:
    path.write_text(
        f"data_dir = '{data_dir}'\n"
        f"mapping = '{REPO / 'mappings' / 'salesforce.yaml'}'\n"
        f"http_port = {port}\n"
        "sync_interval = 60\n" + tables
    )
    stat = path.stat()  # a new modification time even within the same clock tick
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("CRMSYNC_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "crmsync.toml"
    monkeypatch.setenv("CRMSYNC_CONFIG", str(path))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))
    charter = tmp_path / "charter.yaml"
    charter.write_bytes(ASTON.read_bytes())
    write_config(
        path,
        tmp_path / "data",
        f"[profiles.a]\ncharter = '{charter}'\n[profiles.b]\ncharter = '{ASTON}'\n",
    )
    return path


@pytest.fixture
def fleet(config: Path) -> Iterator[WorkerFleet]:
    with build_fleet(load_settings(), reload=load_settings) as made:
        for worker in made.open_workers():
            assert worker.owns_profile()
        yield made


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


def test_tables_added_changed_and_removed_are_taken_in(
    fleet: WorkerFleet, config: Path, tmp_path: Path
) -> None:
    a_worker = fleet.workers["a"]
    charter = tmp_path / "charter.yaml"
    write_config(
        config,
        tmp_path / "data",
        f"[profiles.a]\ncharter = '{charter}'\n"  # as it was
        f"[profiles.c]\ncharter = '{ASTON}'\n"  # new
        f"[profiles.b]\ncharter = '{ASTON}'\nsync_interval = 30\n",  # changed
    )
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == {"b"}
    assert [(w.profile, w.interval) for w in changes.opened] == [("b", 30)]
    assert [e["profile"] for e in events(logs, "profile_file_added")] == ["c"]
    assert fleet.workers["a"] is a_worker and not a_worker.retired
    assert [w.profile for w in fleet.open_pending()] == ["c"]

    write_config(config, tmp_path / "data", f"[profiles.c]\ncharter = '{ASTON}'\n")
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == {"a", "b"} and changes.opened == []
    assert sorted(str(e["profile"]) for e in events(logs, "profile_file_removed")) == ["a", "b"]
    assert set(fleet.workers) == {"c"}
    assert fleet.read_profiles().retired == frozenset()  # taken in: nothing changes again


def test_a_bad_table_or_an_unreadable_file_is_named_and_the_profiles_run_on(
    fleet: WorkerFleet, config: Path, tmp_path: Path
) -> None:
    workers = dict(fleet.workers)
    charter = tmp_path / "charter.yaml"
    write_config(  # a value that does not validate: that table alone is left out
        config,
        tmp_path / "data",
        f"[profiles.a]\ncharter = '{charter}'\nsync_interval = 'soon'\n"
        f"[profiles.b]\ncharter = '{ASTON}'\nsync_interval = 30\n",
    )
    with capture_logs() as logs:
        first, second = fleet.read_profiles(), fleet.read_profiles()
    assert first.retired == {"b"} and [w.profile for w in first.opened] == ["b"]
    assert second.retired == frozenset() and second.opened == []
    [bad] = events(logs, "profile_file_invalid")  # once
    assert f"{config} [profiles.a]" in str(bad["error"])
    assert "CRMSYNC_SYNC_INTERVAL" in str(bad["error"])
    assert fleet.workers["a"] is workers["a"] and not workers["a"].retired
    workers = dict(fleet.workers)

    write_config(  # an unknown setting: the file is refused whole, with its line
        config,
        tmp_path / "data",
        f"[profiles.a]\ncharter = '{charter}'\nsync_intervall = 5\n"
        f"[profiles.b]\ncharter = '{ASTON}'\n",
    )
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == frozenset() and changes.opened == []
    [refused] = events(logs, "profile_file_invalid")
    assert f"{config}:7: profile 'a': unknown setting 'sync_intervall'" in str(refused["error"])
    assert fleet.workers == workers

    config.write_text("[profiles.a\n")  # not TOML: nothing taken from it
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == frozenset() and changes.opened == []
    [unreadable] = events(logs, "profile_file_invalid")
    assert str(config) in str(unreadable["error"]) and "line 1" in str(unreadable["error"])
    assert fleet.workers == workers


def test_a_setting_only_a_restart_applies_is_reported_and_kept(
    fleet: WorkerFleet, config: Path, tmp_path: Path
) -> None:
    workers = dict(fleet.workers)
    charter = tmp_path / "charter.yaml"
    tables = f"[profiles.a]\ncharter = '{charter}'\n[profiles.b]\ncharter = '{ASTON}'\n"
    write_config(config, tmp_path / "data", tables, port=18099)
    with capture_logs() as logs:
        changes = fleet.read_profiles()
        fleet.read_profiles()
    assert changes.retired == frozenset() and changes.opened == []
    [restart] = events(logs, "restart_needed")
    assert restart["settings"] == ["http_port"]
    assert fleet.workers == workers


def test_an_edited_charter_reopens_its_profile_and_a_broken_one_is_named_once(
    fleet: WorkerFleet, tmp_path: Path
) -> None:
    charter = tmp_path / "charter.yaml"
    b_worker = fleet.workers["b"]
    a_worker = fleet.workers["a"]
    text = charter.read_text()
    charter.write_text(text + "\n# edited\n")
    with capture_logs() as logs:
        changes = fleet.read_profiles()
    assert changes.retired == {"a"} and [w.profile for w in changes.opened] == ["a"]
    assert [e["profile"] for e in events(logs, "profile_sources_changed")] == ["a"]
    assert a_worker.retired and fleet.workers["b"] is b_worker
    assert fleet.read_profiles().opened == []  # taken in

    a_worker = fleet.workers["a"]
    charter.write_text("clocks: [\n")
    with capture_logs() as logs:
        first, second = fleet.read_profiles(), fleet.read_profiles()
    assert first.opened == second.opened == [] and first.retired == second.retired == frozenset()
    [refused] = [e for e in events(logs, "profile_file_changed") if e["log_level"] == "error"]
    assert str(charter) in str(refused["error"])
    assert fleet.workers["a"] is a_worker and not a_worker.retired

    charter.write_text(text)  # mended: taken in
    assert [w.profile for w in fleet.read_profiles().opened] == ["a"]


def test_the_single_profile_setup_takes_in_its_edited_settings(
    config: Path, tmp_path: Path
) -> None:
    charter = tmp_path / "charter.yaml"
    write_config(config, tmp_path / "data", f"charter = '{charter}'\n")
    with build_fleet(load_settings(), reload=load_settings) as fleet:
        [worker] = fleet.open_workers()
        assert fleet.read_profiles().opened == []
        config.write_text(config.read_text().replace("sync_interval = 60", "sync_interval = 90"))
        changes = fleet.read_profiles()
        assert changes.retired == {"default"}
        assert [(w.profile, w.interval) for w in changes.opened] == [("default", 90)]
        assert worker.retired

        config.write_text(config.read_text() + f"[profiles.x]\ncharter = '{ASTON}'\n")
        with capture_logs() as logs:
            changes = fleet.read_profiles()
        assert changes.opened == [] and changes.retired == frozenset()
        [refused] = events(logs, "profile_file_invalid")
        assert "a restart changes the setup" in str(refused["error"])
