"""State retention from the outside: the worker's nightly job and ``crmsync state prune``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs
from typer.testing import CliRunner

from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.bootstrap import Runtime, build_worker
from crmsync.cli import app
from crmsync.ports import LedgerEntry, RunRecord, StateStore, StoredComplaint
from state_views import ledger, recorded_runs

DAY = 86400
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def seed(store: StateStore, profile: str = "default") -> None:
    """Closed 200 days ago, closed 10 days ago, open; one finished follow-up; two runs."""
    store.put_complaints(
        [
            StoredComplaint(profile, "old", {"id": "old"}, {}, None, "h", True, T - 200 * DAY),
            StoredComplaint(profile, "new", {"id": "new"}, {}, None, "h", True, T - 10 * DAY),
            StoredComplaint(profile, "open", {"id": "open"}, {}, T + 60, "h"),
        ]
    )
    store.ledger_put(
        [LedgerEntry(profile, "k-old", "old", "decision", 0, "breached", "completed", "00T1")]
    )
    store.start_run(RunRecord(profile, "r-old", T - 100 * DAY, T - 100 * DAY + 5, "ok", {}))
    store.start_run(RunRecord(profile, "r-new", T - 60, T - 55, "ok", {}))


def test_the_nightly_job_applies_the_default_retention(runtime: Runtime) -> None:
    """Defaults: closed complaints kept 180 days, runs 90 days. The job forgets the
    complaint closed 200 days ago (and its completed follow-up) and the 100-day-old run."""
    state = runtime.state
    seed(state)
    build_worker(runtime, interval=300, clock=lambda: NOW).prune()
    assert sorted(state.get_complaints("default", ["old", "new", "open"])) == ["new", "open"]
    assert ledger(state, "default", ["old"]) == {}
    assert [r.run_id for r in recorded_runs(state, "default")] == ["r-new"]


def test_the_nightly_job_survives_a_broken_store(runtime: Runtime) -> None:
    """A state store failure is logged as ``prune_error`` naming it; no exception escapes,
    so the worker goes on."""
    runtime.state.close()
    with capture_logs() as logs:
        build_worker(runtime, interval=300, clock=lambda: NOW).prune()
    [error] = [e for e in logs if e["event"] == "prune_error"]
    assert error["kind"] == "StateStoreError"
    assert "closed" in error["error"]


def test_a_prune_is_one_run_started_then_pruned(runtime: Runtime) -> None:
    """The nightly prune logs ``state_prune_started`` and then ``state_pruned`` (status ok,
    what it forgot, its duration), one run in the run skeleton's shape."""
    seed(runtime.state)
    with capture_logs() as logs:
        build_worker(runtime, interval=300, clock=lambda: NOW).prune()
    started, pruned = [e for e in logs if e["event"].startswith("state_prune")]
    assert started["event"] == "state_prune_started"
    assert started["closed_before"] == "2026-05-26T12:00:00Z"
    assert (pruned["status"], pruned["complaints"], pruned["runs"]) == ("ok", 1, 1)
    assert pruned["duration_s"] >= 0


def prune_cli(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Exit code, standard output, standard error (where the log lines go)."""
    env = {"CRMSYNC_DATA_DIR": str(data_dir), "CRMSYNC_CONFIG": str(data_dir / "none.toml")}
    result = CliRunner().invoke(app, ["state", "prune", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_state_prune_command_prints_what_it_forgot(tmp_path: Path) -> None:
    """``crmsync state prune --json`` on the SQLite state of the data folder."""
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    store.migrate()
    seed(store)
    store.close()
    now = ("--now", "2026-11-22T12:00:00Z")
    code, out, err = prune_cli(tmp_path, *now, "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "profile": "default",
        "complaints": 1,
        "ledger_entries": 1,
        "runs": 1,
    }
    [logged] = [json.loads(line) for line in err.splitlines() if "state_pruned" in line]
    assert (logged["profile"], logged["closed_before"]) == ("default", "2026-05-26T12:00:00Z")
    assert logged["run_id"]
    code, out, err = prune_cli(tmp_path, *now, "--json")
    assert json.loads(out)["complaints"] == 0


def test_state_prune_options_override_the_settings(tmp_path: Path) -> None:
    """``--keep-closed 7 days`` also forgets the complaint closed 10 days ago; ``never``
    forgets no complaint; a retention under a day is refused, naming the setting."""
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    store.migrate()
    seed(store)
    store.close()
    now = ("--now", "2026-11-22T12:00:00Z", "--format", "table")
    code, out, err = prune_cli(tmp_path, *now, "--keep-closed", "never")
    assert code == 0, err
    assert "forgot 0 closed complaint(s)" in out
    code, out, err = prune_cli(tmp_path, *now, "--keep-closed", "7 days")
    assert code == 0, err
    assert "forgot 2 closed complaint(s)" in out
    code, out, err = prune_cli(tmp_path, "--keep-closed", "2 hours")
    assert code == 2
    assert "CRMSYNC_KEEP_CLOSED" in err
    assert "at least 1 day" in err


def test_state_prune_goes_over_every_profile_with_its_own_retention(tmp_path: Path) -> None:
    """With profiles in crmsync.toml each profile's own state is pruned by its own
    retention (kilkenny keeps closed complaints 300 days, so its 200-day-old one stays)."""
    for name in ("aston", "kilkenny"):
        store = SqliteStateStore(tmp_path / name / "state.sqlite3")
        store.migrate()
        seed(store, profile=name)
        store.close()
    config = tmp_path / "crmsync.toml"
    config.write_text(
        '[profiles.aston]\n[profiles.kilkenny]\nkeep_closed = "300 days"\n', encoding="utf-8"
    )
    env = {"CRMSYNC_DATA_DIR": str(tmp_path), "CRMSYNC_CONFIG": str(config)}
    result = CliRunner().invoke(
        app, ["state", "prune", "--now", "2026-11-22T12:00:00Z", "--json"], env=env
    )
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["profile"], x["complaints"], x["runs"]) for x in lines] == [
        ("aston", 1, 1),
        ("kilkenny", 0, 1),
    ]
