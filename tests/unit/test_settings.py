"""Settings: environment, crmsync.toml, secret files, durations, profiles, redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsync.bootstrap import settings_model
from crmsync.settings import duration_seconds, redact_url

Settings = settings_model()  # the shared settings and each registered CRM's group


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))


def test_defaults_are_the_embedded_setup() -> None:
    """Without configuration: local CRM, SQLite state in ./crmsync-data, 5-minute cycles."""
    s = Settings()
    assert (s.crm, s.data_dir, s.state_url, s.sync_interval, s.http_port) == (
        "local",
        Path("crmsync-data"),
        None,
        300,
        8080,
    )


def test_durations_accept_seconds_or_elapsed_units() -> None:
    """'5 minutes' is 300 s, '2' is 2 s; business units and zero are refused."""
    assert duration_seconds("5 minutes", "X") == 300
    assert duration_seconds("2", "X") == 2
    assert duration_seconds("30 days", "X") == 30 * 86400
    with pytest.raises(ValueError, match="elapsed"):
        duration_seconds("2 business_days", "X")
    with pytest.raises(ValueError):
        duration_seconds("0", "X")


def test_retention_takes_durations_or_never_and_at_least_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed complaints are kept 180 days and runs 90 by default; 'never' keeps them;
    under a day is refused naming the variable (a shorter one would forget the echo of
    the worker's own writes)."""
    s = Settings()
    assert (s.keep_closed, s.keep_runs) == (180 * 86400, 90 * 86400)
    monkeypatch.setenv("CRMSYNC_KEEP_CLOSED", "never")
    monkeypatch.setenv("CRMSYNC_KEEP_RUNS", "2 weeks")
    s = Settings()
    assert (s.keep_closed, s.keep_runs) == (None, 14 * 86400)
    monkeypatch.setenv("CRMSYNC_KEEP_CLOSED", "2 hours")
    with pytest.raises(ValueError, match="CRMSYNC_KEEP_CLOSED must be at least 1 day"):
        Settings()


def test_environment_wins_over_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CRMSYNC_* variables override crmsync.toml, which overrides the defaults."""
    toml = tmp_path / "crmsync.toml"
    toml.write_text('sync_interval = "2 minutes"\nhttp_port = 9000\n')
    monkeypatch.setenv("CRMSYNC_CONFIG", str(toml))
    monkeypatch.setenv("CRMSYNC_HTTP_PORT", "9100")
    s = Settings()
    assert (s.sync_interval, s.http_port) == (120, 9100)


def test_secret_files_are_read_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A secret file supplies the value; `config show` redacts passwords and URL passwords."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "crmsync_sf_password").write_text("hunter2")
    (secrets / "crmsync_state_url").write_text("postgresql://crm:s3cret@db:5432/crm")
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(secrets))
    s = Settings()
    assert s.sf_password is not None and s.sf_password.get_secret_value() == "hunter2"
    shown = s.shown()
    assert shown["sf_password"] == "**********"
    assert shown["state_url"] == "postgresql://crm:***@db:5432/crm"
    assert "hunter2" not in str(shown) and "s3cret" not in str(shown)


def test_profiles_override_the_base_and_get_their_own_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each [profiles.NAME] table is the base settings with its overrides and data_dir/NAME."""
    toml = tmp_path / "crmsync.toml"
    toml.write_text(
        'sync_interval = "2 minutes"\n'
        "[profiles.aston]\n"
        'charter = "mappings/charters/aston.yaml"\n'
        "[profiles.kilkenny]\n"
        'charter = "mappings/charters/kilkenny.yaml"\n'
        "sync_interval = 60\n"
    )
    monkeypatch.setenv("CRMSYNC_CONFIG", str(toml))
    profiles = Settings().profile_settings()
    assert [(p.profile, str(p.charter), p.data_dir, p.sync_interval) for p in profiles] == [
        ("aston", "mappings/charters/aston.yaml", Path("crmsync-data/aston"), 120),
        ("kilkenny", "mappings/charters/kilkenny.yaml", Path("crmsync-data/kilkenny"), 60),
    ]


def test_a_bad_profile_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An unknown setting or a bad value in a profile names the profile and the setting."""
    toml = tmp_path / "crmsync.toml"
    toml.write_text('[profiles.acme]\nchartr = "x.yaml"\n')
    monkeypatch.setenv("CRMSYNC_CONFIG", str(toml))
    with pytest.raises(ValueError, match=r"profile 'acme': unknown setting.*chartr"):
        Settings().profile_settings()
    toml.write_text('[profiles.acme]\ncrm = "dynamics"\n')
    with pytest.raises(ValueError, match="profile 'acme': crm"):
        Settings().profile_settings()


def test_redact_url_hides_only_the_password() -> None:
    """The password of a URL becomes ***; URLs without one are unchanged."""
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_profile_secrets_are_redacted_at_every_level(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Secrets in [profiles.NAME] tables and in CRMSYNC_PROFILES are masked, URL passwords
    removed, and the rest of each profile still shown."""
    toml = tmp_path / "crmsync.toml"
    toml.write_text(
        "[profiles.aston]\n"
        'state_url = "postgresql://crm:t0mlpw@db:5432/crm"\n'
        'sf_password = "hunter2"\n'
        'sf_session_id = "00Dxx!SESSIONSECRET"\n'
        'archive_key = "a2V5a2V5a2V5"\n'
        'sf_instance_url = "https://user:urlpw@org.my.salesforce.com"\n'
        'charter = "mappings/charters/aston.yaml"\n'
    )
    monkeypatch.setenv("CRMSYNC_CONFIG", str(toml))
    shown = Settings().shown()
    aston = json.loads(shown["profiles"])["aston"]
    assert aston == {
        "state_url": "postgresql://crm:***@db:5432/crm",
        "sf_password": "**********",
        "sf_session_id": "**********",
        "archive_key": "**********",
        "sf_instance_url": "https://user:***@org.my.salesforce.com",
        "charter": "mappings/charters/aston.yaml",
    }
    monkeypatch.setenv(
        "CRMSYNC_PROFILES",
        json.dumps({"k": {"sf_consumer_secret": "envsecret", "archive_url": "s3://b/p"}}),
    )
    shown = Settings().shown()
    assert json.loads(shown["profiles"])["k"] == {
        "sf_consumer_secret": "**********",
        "archive_url": "s3://b/p",
    }
    assert "envsecret" not in str(shown)
