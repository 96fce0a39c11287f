"""A third CRM ("tertia") is its own package and one registry line: its settings are read,
``crm`` takes its name, the composition root builds it and its command appears in the CLI,
while no module of crmsync is edited (docs/architecture.md, "Adding a CRM")."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsync import bootstrap
from crmsync.cli import app
from crmsync.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src" / "crmsync"

# The throwaway CRM "tertia": the local CRM under another name, built from its own settings.
PACKAGE = {
    "__init__.py": "",
    "settings.py": """
from pydantic import BaseModel, Field, SecretStr


class TertiaSettings(BaseModel):
    tertia_token: SecretStr | None = Field(default=None, description="Tertia API token")
    tertia_region: str = Field(default="eu", pattern=r"^[a-z]{2}$", description="Tertia region")
""",
    "wiring.py": """
from pathlib import Path

from tertia_crm.settings import TertiaSettings
from crmsync.adapters.crm.local import LocalCrm
from crmsync.errors import ConfigError
from crmsync.ports import CrmWiring
from crmsync.service.online_check import FIXED_SCHEMA


class TertiaCrm(LocalCrm):
    def __init__(self, path, *, token, region, clock):
        super().__init__(path, clock=clock)
        self.token, self.region = token, region


def _build(settings, clock):
    if settings["tertia_token"] is None:
        raise ConfigError("CRMSYNC_TERTIA_TOKEN is not set")
    return TertiaCrm(
        Path(settings["data_dir"]) / "tertia.sqlite3",
        token=settings["tertia_token"].get_secret_value(),
        region=settings["tertia_region"],
        clock=clock,
    )


WIRING = CrmWiring(
    name="tertia",
    settings_prefix="tertia_",
    build=_build,
    remedies=FIXED_SCHEMA,
    settings=TertiaSettings,
    commands="tertia_crm.commands",
)
""",
    "commands.py": '''
import typer

from crmsync.bootstrap import settings_by_name
from crmsync.cli.app import PlainCommand
from crmsync.cli.profile import load_profile

COMMANDS = typer.Typer(help="Set up an Tertia org.", no_args_is_help=True)


@COMMANDS.command("setup", cls=PlainCommand)
def setup_cmd() -> None:
    """Say which Tertia region the settings name.

    Exit status: 0 done; 2 configuration problems."""
    typer.echo(f"tertia setup in {settings_by_name(load_profile())['tertia_region']}")
''',
}


@pytest.fixture
def tertia(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The tertia package importable and registered by one added registry line; a clean
    environment whose crmsync.toml is ``tmp_path/crmsync.toml``. Yields the data folder."""
    package = tmp_path / "tertia_crm"
    package.mkdir()
    for name, text in PACKAGE.items():
        (package / name).write_text(text.lstrip(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = {**bootstrap.CRM_ADAPTERS, "tertia": "tertia_crm.wiring"}  # the one added line
    monkeypatch.setattr(bootstrap, "CRM_ADAPTERS", registry)
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "crmsync.toml"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "data"
    for module in [m for m in sys.modules if m == "tertia_crm" or m.startswith("tertia_crm.")]:
        del sys.modules[module]


def test_its_settings_are_read_from_the_environment_and_shown_redacted(
    tertia: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CRMSYNC_CRM=tertia validates; CRMSYNC_TERTIA_* reach its settings; its token is a
    secret."""
    monkeypatch.setenv("CRMSYNC_CRM", "tertia")
    monkeypatch.setenv("CRMSYNC_TERTIA_TOKEN", "t0ken-secret")
    monkeypatch.setenv("CRMSYNC_TERTIA_REGION", "us")
    settings = bootstrap.load_settings()
    by_name = bootstrap.settings_by_name(settings)
    assert (settings.crm, by_name["tertia_region"]) == ("tertia", "us")
    assert by_name["tertia_token"].get_secret_value() == "t0ken-secret"
    assert settings.shown()["tertia_token"] == "**********"
    assert type(settings).sources()["tertia_region"] == "environment"


def test_its_settings_are_checked_like_every_other(
    tertia: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad region names its variable; a misspelt key in crmsync.toml gets its suggestion;
    an unknown CRM lists the registered ones, tertia among them."""
    monkeypatch.setenv("CRMSYNC_TERTIA_REGION", "europe")
    with pytest.raises(ConfigError, match=r"^CRMSYNC_TERTIA_REGION: String should match"):
        bootstrap.load_settings()
    monkeypatch.delenv("CRMSYNC_TERTIA_REGION")
    toml = tertia.parent / "crmsync.toml"
    toml.write_text('tertia_regoin = "us"\n', encoding="utf-8")
    misspelt = r"unknown setting 'tertia_regoin' \(did you mean 'tertia_region'\?\)"
    with pytest.raises(ConfigError, match=misspelt):
        bootstrap.load_settings()
    toml.write_text('tertia_region = "us"\ncrm = "tertai"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        bootstrap.load_settings()
    assert str(caught.value) == (
        "CRMSYNC_CRM: 'tertai' is not a CRM crmsync has: "
        "use 'local', 'salesforce', 'dynamics365' or 'tertia'"
    )


def test_the_composition_root_builds_it(tertia: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build_crm hands the tertia wiring its settings by name and returns its adapter."""
    monkeypatch.setenv("CRMSYNC_CRM", "tertia")
    monkeypatch.setenv("CRMSYNC_TERTIA_TOKEN", "t0ken-secret")
    crm: Any = bootstrap.build_crm(bootstrap.load_settings())
    try:
        assert type(crm).__name__ == "TertiaCrm"
        assert (crm.token, crm.region) == ("t0ken-secret", "eu")
        assert crm.path == tertia / "tertia.sqlite3"
    finally:
        crm.close()
    monkeypatch.delenv("CRMSYNC_TERTIA_TOKEN")
    with pytest.raises(ConfigError, match="CRMSYNC_TERTIA_TOKEN is not set"):
        bootstrap.build_crm(bootstrap.load_settings())


def test_its_command_appears_in_the_cli(tertia: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`crmsync --help` lists `tertia`, `crmsync tertia setup` runs on its settings, and
    `config show` shows its settings with the others."""
    monkeypatch.setenv("CRMSYNC_TERTIA_REGION", "us")
    monkeypatch.setenv("CRMSYNC_TERTIA_TOKEN", "t0ken-secret")
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert listed.exit_code == 0
    rows = [line.split()[0] for line in listed.stdout.splitlines() if "Tertia" in line]
    assert rows == ["tertia"]
    done = CliRunner().invoke(app, ["tertia", "setup"])
    assert (done.exit_code, done.stdout) == (0, "tertia setup in us\n")
    shown = CliRunner().invoke(app, ["config", "show", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["tertia_token"] == "**********"
    assert "t0ken-secret" not in shown.stdout


def test_no_module_of_crmsync_names_it() -> None:
    """All of the above ran without crmsync naming tertia anywhere: the registry line the
    fixture adds is the one edit a new CRM makes to crmsync's own modules."""
    assert [str(p) for p in SRC.rglob("*.py") if "tertia" in p.read_text().lower()] == []
