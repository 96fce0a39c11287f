"""One set of settings for every command: ``CRMSYNC_*``, ``crmsync.toml`` and the profile;
an option overrides a setting, never the reverse; a command that reads the state store
refuses when there is none rather than creating an empty one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from crmsync.cli import app

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
KILKENNY = REPO / "mappings" / "charters" / "kilkenny.yaml"
SAMPLE = REPO / "samples" / "aston-complaints.jsonl"
NOW = "2026-04-08T12:00:00Z"


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No CRMSYNC_* from outside; the working directory an empty folder (no crmsync.toml,
    no crmsync-data) so that nothing is found or created by accident."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CRMSYNC_LOG_FORMAT", "json")
    yield work
    structlog.reset_defaults()


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_report_takes_crmsync_charter_and_the_option_wins(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --charter, report uses CRMSYNC_CHARTER; with it, the option wins over the
    setting (here a charter of another name)."""
    args = ("report", "-i", SAMPLE, "--from", "2026-03-01", "--to", "2026-03-31", "--now", NOW)
    args_json = (*args, "--format", "json")
    monkeypatch.setenv("CRMSYNC_CHARTER", str(ASTON))
    by_setting = cli(*args_json)
    assert by_setting.exit_code == 0, by_setting.output
    assert json.loads(by_setting.stdout)["charter"] == "aston"
    monkeypatch.setenv("CRMSYNC_CHARTER", str(KILKENNY))
    by_option = cli(*args_json, "--charter", ASTON)
    assert by_option.exit_code == 0, by_option.output
    assert json.loads(by_option.stdout) == json.loads(by_setting.stdout)
    missing = clean / "nowhere.yaml"
    monkeypatch.setenv("CRMSYNC_CHARTER", str(missing))
    refused = cli(*args_json)
    assert refused.exit_code == 2
    assert str(missing) in refused.stderr


def test_explain_and_evaluate_take_the_profiles_charter_from_crmsync_toml(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The charter of the profile CRMSYNC_PROFILE names in crmsync.toml is the default."""
    (clean / "crmsync.toml").write_text(
        f'charter = "{KILKENNY}"\n[profiles.p01]\ncharter = "{ASTON}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("CRMSYNC_PROFILE", "p01")
    first = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])["id"]
    explained = cli("explain", "-i", SAMPLE, "--id", first, "--now", NOW)
    assert explained.exit_code == 0, explained.output
    assert "level1-resolution" in explained.stdout  # an Aston clock, not Kilkenny's
    evaluated = cli("evaluate", "-i", SAMPLE, "--now", NOW)
    assert evaluated.exit_code == 0, evaluated.output
    with_option = cli("evaluate", "-i", SAMPLE, "--now", NOW, "--charter", ASTON)
    assert evaluated.stdout == with_option.stdout


def test_local_import_and_export_use_the_profiles_data_dir(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import for profile p01 lands in p01's data_dir (crmsync.toml), not in
    ./crmsync-data; export reads it from there."""
    p01 = clean / "data-p01"
    (clean / "crmsync.toml").write_text(
        f'data_dir = "{clean / "top"}"\n[profiles.p01]\ndata_dir = "{p01}"\n'
        '[profiles.p02]\ncrm = "local"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CRMSYNC_PROFILE", "p01")
    rows = clean / "tasks.jsonl"
    rows.write_text('{"Subject": "Call back"}\n', encoding="utf-8")
    imported = cli("local", "import", rows, "--object", "Task")
    assert imported.exit_code == 0, imported.output
    assert (p01 / "local-crm.sqlite3").is_file()
    assert not (clean / "crmsync-data").exists()
    assert not (clean / "top").exists()
    exported = cli("local", "export", "Task")
    assert exported.exit_code == 0, exported.output
    assert [json.loads(x)["Subject"] for x in exported.stdout.splitlines()] == ["Call back"]
    # the top-level data_dir of crmsync.toml, in the single-profile setup
    (clean / "crmsync.toml").write_text(f'data_dir = "{clean / "top"}"\n', encoding="utf-8")
    monkeypatch.delenv("CRMSYNC_PROFILE")
    assert cli("local", "import", rows, "--object", "Task").exit_code == 0
    assert (clean / "top" / "local-crm.sqlite3").is_file()


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("report", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"),
        ("state", "prune"),
    ],
    ids=lambda c: c[0],
)
def test_a_command_reading_the_state_store_refuses_when_there_is_none(
    clean: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No CRMSYNC_DATA_DIR and no state store in ./crmsync-data: exit 2 naming the file and
    CRMSYNC_DATA_DIR; nothing is created (no empty state store, no zero report)."""
    monkeypatch.setenv("CRMSYNC_CHARTER", str(ASTON))
    result = cli(*command)
    assert result.exit_code == 2, result.output
    expected = Path("crmsync-data") / "state.sqlite3"
    assert f"no state store at {expected}" in result.stderr
    assert "CRMSYNC_DATA_DIR" in result.stderr
    assert result.stdout == ""
    assert not (clean / "crmsync-data" / "state.sqlite3").exists()


def test_the_option_overrides_a_profiles_setting(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`state prune --keep-closed` wins over the keep_closed of every profile, and an
    option given to a single-profile command wins over its profile's table: the profile's
    value is refused as invalid only when no option replaces it."""
    from crmsync.cli.profile import load_profile

    (clean / "crmsync.toml").write_text(
        '[profiles.p01]\nkeep_closed = "400 days"\nsync_interval = "2 minutes"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CRMSYNC_PROFILE", "p01")
    assert load_profile().keep_closed == 400 * 86400
    assert load_profile(keep_closed="30 days").keep_closed == 30 * 86400
    assert load_profile(keep_closed="30 days").sync_interval == 120


def test_config_show_names_each_values_source(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment, crmsync.toml (its path), default; and what a profile sets."""
    toml = clean / "crmsync.toml"
    toml.write_text(
        f'charter = "{ASTON}"\n[profiles.p01]\nsync_interval = "2 minutes"\n', encoding="utf-8"
    )
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(clean / "data"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(clean / "no-secrets"))
    done = CliRunner().invoke(app, ["config", "show", "--format", "table"], env={"COLUMNS": "300"})
    assert done.exit_code == 0, done.output
    rows = [
        cells[:3]
        for line in done.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) >= 3
    ]
    assert ["CRMSYNC_DATA_DIR", str(clean / "data"), "environment"] in rows
    assert ["CRMSYNC_CHARTER", str(ASTON), "crmsync.toml"] in rows
    assert ["CRMSYNC_MAPPING", "mappings/salesforce.yaml", "default"] in rows
    assert ["CRMSYNC_SYNC_INTERVAL", "300", "default"] in rows
    assert ["CRMSYNC_SYNC_INTERVAL", "120", "profile (crmsync.toml)"] in rows


def test_healthcheck_and_salesforce_metadata_read_the_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """healthcheck probes the port of crmsync.toml; salesforce metadata reads the profile's
    mapping (a missing one is named), and --mapping overrides it."""
    from crmsync.worker.ops_http import Metrics, OpsServer, Readiness

    ops = OpsServer(0, Metrics(), Readiness(60, lambda: 0.0, lambda: True), host="127.0.0.1")
    ops.start()
    try:
        missing = clean / "no-such-mapping.yaml"
        (clean / "crmsync.toml").write_text(
            f'http_port = {ops.port}\n[profiles.p01]\nmapping = "{missing}"\n', encoding="utf-8"
        )
        monkeypatch.setenv("CRMSYNC_PROFILE", "p01")
        assert cli("healthcheck").exit_code == 0
    finally:
        ops.stop()
    refused = cli("salesforce", "metadata", "-o", clean / "sfdx")
    assert refused.exit_code == 2
    assert str(missing) in refused.stderr
    made = cli(
        "salesforce",
        "metadata",
        "-o",
        clean / "sfdx",
        "--mapping",
        REPO / "mappings" / "salesforce.yaml",
    )
    assert made.exit_code == 0, made.output
    assert (clean / "sfdx" / "sfdx-project.json").is_file()
