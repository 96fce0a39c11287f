"""Settings refused before anything runs: durations, ports, JSON, crmsync.toml's keys."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from crmsync.bootstrap import load_settings
from crmsync.errors import ConfigError
from crmsync.settings import MAX_CONFIG_BYTES, duration_seconds
from crmsync.worker.ops_http import Metrics, OpsServer, Readiness


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "crmsync.toml"))
    monkeypatch.setenv("CRMSYNC_SECRETS_DIR", str(tmp_path / "no-secrets"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30 seconds", 30),
        ("1 second", 1),
        ("30s", 30),
        ("5m", 300),
        ("5 min", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("5 minutes", 300),
        ("1 Minute", 60),
        ("PT5M", 300),
        ("PT30S", 30),
        ("pt1h30m", 5400),
        ("P1DT12H", 129600),
        ("P2W", 1209600),
        ("300", 300),
    ],
)
def test_durations_take_words_short_forms_and_iso_8601(text: str, seconds: int) -> None:
    """`30 seconds`, `30s`, `5m` and ISO 8601 `PT5M` are all whole seconds."""
    assert duration_seconds(text, "CRMSYNC_X") == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P1M", "'P1M' is not a duration"),  # months have no fixed length
        ("P1Y", "'P1Y' is not a duration"),
        ("PT", "'PT' is not a duration"),
        ("P", "'P' is not a duration"),
        ("PT0.5S", "'PT0.5S' is not a duration"),
        ("5 fortnights", "'5 fortnights' is not a duration"),
        ("5 m s", "'5 m s' is not a duration"),
        ("0s", "must be at least 1 second"),
        ("PT0S", "must be at least 1 second"),
        ("2 business_days", "must be elapsed time"),
    ],
)
def test_what_is_not_a_duration_is_named(text: str, message: str) -> None:
    """A bad duration names the setting and says what is wrong."""
    with pytest.raises(ValueError, match=r"^CRMSYNC_X") as exc:
        duration_seconds(text, "CRMSYNC_X")
    assert message in str(exc.value)


def test_a_duration_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CRMSYNC_SYNC_INTERVAL=PT2M and CRMSYNC_OVERLAP=30s reach the settings as seconds."""
    monkeypatch.setenv("CRMSYNC_SYNC_INTERVAL", "PT2M")
    monkeypatch.setenv("CRMSYNC_OVERLAP", "30s")
    monkeypatch.setenv("CRMSYNC_KEEP_RUNS", "P30D")
    s = load_settings()
    assert (s.sync_interval, s.overlap, s.keep_runs) == (120, 30, 30 * 86400)


def test_a_bad_duration_setting_names_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message starts with the variable's name, not pydantic's 'Value error'."""
    monkeypatch.setenv("CRMSYNC_SYNC_INTERVAL", "soon")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith("CRMSYNC_SYNC_INTERVAL: 'soon' is not a duration")
    assert "Value error" not in str(exc.value)


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, port: str
) -> None:
    """CRMSYNC_HTTP_PORT must be 0-65535."""
    monkeypatch.setenv("CRMSYNC_HTTP_PORT", port)
    with pytest.raises(ConfigError, match=r"^CRMSYNC_HTTP_PORT: "):
        load_settings()


def test_a_busy_port_is_a_configuration_error_naming_the_setting() -> None:
    """The ops server cannot bind a port another socket holds: ConfigError, port named."""
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    readiness = Readiness(interval=60, clock=lambda: 0.0, state_ok=lambda: True)
    try:
        with pytest.raises(ConfigError) as exc:
            OpsServer(port, Metrics(), readiness)
    finally:
        holder.close()
    assert str(exc.value) == (
        f"CRMSYNC_HTTP_PORT={port}: cannot listen on 0.0.0.0:{port} (Address already in use)"
    )


def test_an_unstarted_ops_server_stops_at_once() -> None:
    """stop() before start() releases the port without waiting for a serve loop."""
    server = OpsServer(0, Metrics(), Readiness(60, lambda: 0.0, lambda: True))
    port = server.port
    server.stop()
    again = socket.socket()
    again.bind(("0.0.0.0", port))
    again.close()


@pytest.mark.parametrize("value", ["{bad", "[1, 2", '{"a": '])
def test_bad_json_in_crmsync_profiles_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """CRMSYNC_PROFILES that is not JSON is a ConfigError naming it, with JSON's reason."""
    monkeypatch.setenv("CRMSYNC_PROFILES", value)
    with pytest.raises(ConfigError, match=r"^CRMSYNC_PROFILES: not valid JSON: .*line 1 column"):
        load_settings()


def test_unknown_keys_in_crmsync_toml_are_named_with_line_and_suggestion(tmp_path: Path) -> None:
    """Every unknown key, top level and in [profiles.NAME], with its line and the closest name."""
    (tmp_path / "crmsync.toml").write_text(
        "# settings\n"
        'sync_intervall = "5 minutes"\n'
        'charter = "mappings/charters/aston.yaml"\n'
        "[profiles.aston]\n"
        'chartr = "mappings/charters/aston.yaml"\n'
        "zzz = 1\n"
        "[profiles.kilkenny]\n"
        "sync_interval = 60\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings()
    file = tmp_path / "crmsync.toml"
    assert str(exc.value).splitlines() == [
        f"{file}: 3 problem(s)",
        f"  {file}:2: unknown setting 'sync_intervall' (did you mean 'sync_interval'?)",
        f"  {file}:5: profile 'aston': unknown setting 'chartr' (did you mean 'charter'?)",
        f"  {file}:6: profile 'aston': unknown setting 'zzz'",
    ]


def test_unknown_keys_in_crmsync_profiles_get_a_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile from CRMSYNC_PROFILES with a misspelt setting is named with the closest one."""
    monkeypatch.setenv("CRMSYNC_PROFILES", '{"acme": {"mappng": "m.yaml"}}')
    with pytest.raises(ValueError, match="profile 'acme'") as exc:
        load_settings().profile_settings()
    assert "'mappng' (did you mean 'mapping'?)" in str(exc.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"sync_interval = \n", "not valid TOML: Invalid value (at line 1, column 17)"),
        (b'profile = "caf\xe9"\n', ":1: not UTF-8 text (byte 0xe9)"),
        (b"#" + b"x" * MAX_CONFIG_BYTES + b"\n", "larger than 1 MiB: not read"),
    ],
    ids=["syntax", "latin-1", "too-large"],
)
def test_a_bad_crmsync_toml_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    """Bad TOML, a non-UTF-8 byte or a huge file is a ConfigError naming the file."""
    (tmp_path / "crmsync.toml").write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith(str(tmp_path / "crmsync.toml"))
    assert message in str(exc.value)


def test_a_directory_as_crmsync_toml_is_named(tmp_path: Path) -> None:
    """CRMSYNC_CONFIG naming a directory cannot be read, and says so."""
    (tmp_path / "crmsync.toml").mkdir()
    with pytest.raises(
        ConfigError, match=r"crmsync\.toml: cannot read the settings file: Is a dir"
    ):
        load_settings()


def test_a_missing_crmsync_toml_is_no_settings() -> None:
    """Without the file the defaults hold (the file is optional)."""
    assert load_settings().sync_interval == 300
