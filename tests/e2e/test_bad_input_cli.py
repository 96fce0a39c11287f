"""Bad input through the installed `crmsync` command: a clear error naming the file, line
or setting, never a traceback, the good records still processed, the documented exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ASTON = REPO / "mappings" / "charters" / "aston.yaml"
NOW = "2026-03-12T12:00:00Z"


def crmsync_command() -> list[str]:
    """The console script installed beside this interpreter, else on PATH, else `-m crmsync`."""
    beside = Path(sys.executable).with_name("crmsync")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crmsync")
    return [found] if found else [sys.executable, "-m", "crmsync"]


def run(
    args: Sequence[str | Path],
    *,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run crmsync with a clean CRMSYNC_* environment (plus ``env``); text out."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRMSYNC_") and k not in ("FORCE_COLOR", "COLUMNS")
    }
    base["NO_COLOR"] = "1"
    base["CRMSYNC_SECRETS_DIR"] = "/nonexistent-secrets"
    done = subprocess.run(
        [*crmsync_command(), *map(str, args)],
        input=stdin,
        capture_output=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def complaint(complaint_id: str) -> dict[str, Any]:
    return {
        "id": complaint_id,
        "events": {"received": "2026-03-02T10:00:00Z"},
        "attributes": {"channel": "email"},
    }


def ids_out(stdout: str) -> list[str]:
    """The complaint ids of the output lines, in order, once each."""
    return list(dict.fromkeys(json.loads(line)["complaint_id"] for line in stdout.splitlines()))


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert "Traceback" not in done.stdout


# ------------------------------------------------------------------ evaluate's input


def test_a_line_of_deeply_nested_json_is_reported_and_the_rest_evaluated(tmp_path: Path) -> None:
    """One line nested 100,000 deep is a bad complaint on its line; the others are output."""
    source = tmp_path / "in.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    source.write_text(
        json.dumps(complaint("G-1")) + "\n" + '{"id": "D-1", "x": ' + deep + "}\n"
        "" + json.dumps(complaint("G-2")) + "\n",
        encoding="utf-8",
    )
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW])
    no_traceback(done)
    assert done.returncode == 3
    assert ids_out(done.stdout) == ["G-1", "G-2"]
    assert done.stderr.splitlines() == [
        "bad complaint line 2: not readable JSON: arrays or objects nested too deeply"
    ]


def test_explain_names_the_deeply_nested_line_of_the_wanted_id(tmp_path: Path) -> None:
    """explain --id of a complaint whose line cannot be read says which line and why (exit 3)."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "D-1", "x": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    done = run(["explain", "-c", ASTON, "-i", source, "--id", "D-1", "--now", NOW])
    no_traceback(done)
    assert done.returncode == 3
    assert "line 1: not readable JSON: arrays or objects nested too deeply" in done.stderr


def test_a_latin1_line_names_the_file_line_and_encoding(tmp_path: Path) -> None:
    """A Latin-1 line is reported with its line, byte and file; the UTF-8 lines still run."""
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(
        json.dumps(complaint("L-é"), ensure_ascii=False).encode("latin-1")
        + b"\n"
        + json.dumps(complaint("G-1")).encode()
        + b"\n"
    )
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW])
    no_traceback(done)
    assert done.returncode == 3
    assert ids_out(done.stdout) == ["G-1"]
    assert done.stderr.splitlines() == [
        f"bad complaint line 1: not UTF-8 text (byte 0xe9 at column 11 of {source}; "
        "crmsync reads UTF-8)"
    ]


@pytest.mark.parametrize("command", ["evaluate", "explain"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_file_is_refused_naming_file_and_encoding(
    tmp_path: Path, command: str, encoding: str
) -> None:
    """A UTF-16/32 file (with its byte-order mark) is a bad argument: exit 2, nothing output."""
    source = tmp_path / "wide.jsonl"
    source.write_bytes(json.dumps(complaint("W-1")).encode(encoding) + "\n".encode(encoding))
    extra = ["--id", "W-1"] if command == "explain" else []
    done = run([command, "-c", ASTON, "-i", source, "--now", NOW, *extra])
    no_traceback(done)
    assert done.returncode == 2
    assert done.stdout == ""
    wide = "UTF-16LE" if encoding == "utf-16" else "UTF-32LE"
    assert f"{source} is {wide} text (byte-order mark" in done.stderr
    assert "reads UTF-8" in done.stderr


def test_utf16_on_standard_input_is_named_as_such() -> None:
    """`--input -` with UTF-16 text says standard input is UTF-16."""
    data = (json.dumps(complaint("W-1")) + "\n").encode("utf-16")
    done = run(["evaluate", "-c", ASTON, "-i", "-", "--now", NOW], stdin=data)
    no_traceback(done)
    assert done.returncode == 2
    assert "standard input is UTF-16LE text" in done.stderr


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_an_unreadable_input_is_named(tmp_path: Path, command: str) -> None:
    """A directory or a missing file as --input is a clear bad argument (exit 2)."""
    extra = ["--id", "X"] if command == "explain" else []
    for path, reason in ((tmp_path, "Is a directory"), (tmp_path / "no.jsonl", "No such file")):
        done = run([command, "-c", ASTON, "-i", path, "--now", NOW, *extra])
        no_traceback(done)
        assert done.returncode == 2
        assert f"--input: cannot read {path}: {reason}" in done.stderr


def test_output_to_a_full_device_is_a_clear_error(tmp_path: Path) -> None:
    """--output /dev/full fails with ENOSPC naming the file: exit 1, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(complaint("G-1")) + "\n", encoding="utf-8")
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW, "--output", "/dev/full"])
    no_traceback(done)
    assert done.returncode == 1
    assert "cannot write --output: /dev/full: No space left on device" in done.stderr


def test_standard_output_on_a_full_device_is_a_clear_error(tmp_path: Path) -> None:
    """Standard output redirected to /dev/full: the error names standard output, exit 1."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(complaint("G-1")) + "\n", encoding="utf-8")
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*crmsync_command(), "evaluate", "-c", str(ASTON), "-i", str(source), "--now", NOW],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    assert done.returncode == 1
    assert "cannot write standard output: No space left on device" in stderr


# ------------------------------------------------------------------ markup and control characters


@pytest.mark.slow  # real processes, ~14 s
def test_rich_markup_in_paths_and_arguments_prints_literally(tmp_path: Path) -> None:
    """`[/]` and `[red]` in a path, --now, --id or a schema name are echoed as typed."""
    folder = tmp_path / "[red]x["  # with the file's "]" the path holds "[red]x[/]"
    folder.mkdir()
    charter = folder / "]charter.yaml"
    charter.write_text(ASTON.read_text(encoding="utf-8"), encoding="utf-8")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(complaint("G-1")) + "\n", encoding="utf-8")
    cases = [
        (
            ["evaluate", "-c", ASTON, "-i", tmp_path / "[/]no[red].jsonl", "--now", NOW],
            "[/]no[red]",
        ),
        (["evaluate", "-c", folder / "]absent.yaml", "-i", source, "--now", NOW], "[red]x[/]abs"),
        (["evaluate", "-c", charter, "-i", source, "--now", "[/]"], "--now: '[/]'"),
        (["explain", "-c", charter, "-i", source, "--id", "[/]x", "--now", NOW], "'[/]x'"),
        (["schema", "[/]"], "unknown schema '[/]'"),
    ]
    for args, shown in cases:
        done = run(args)
        no_traceback(done)
        assert done.returncode == 2, args
        assert shown in done.stderr, done.stderr
    done = run(["evaluate", "-c", charter, "-i", source, "--now", NOW])
    assert done.returncode == 0, done.stderr
    assert ids_out(done.stdout) == ["G-1"]


def test_control_characters_in_ids_are_escaped_on_the_terminal(tmp_path: Path) -> None:
    """An id holding an escape sequence is shown as `\\x1b[31m`, never sent to the terminal."""
    source = tmp_path / "in.jsonl"
    bad = {"id": "E-\x1b[31m-\u202e", "events": {"received": "2026-03-02T10:00:00"}}
    source.write_text(json.dumps(bad) + "\n" + json.dumps(complaint("G-1")) + "\n")
    done = run(["evaluate", "-c", ASTON, "-i", source, "--now", NOW])
    assert done.returncode == 3
    assert ids_out(done.stdout) == ["G-1"]
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert "E-\\x1b[31m-\\u202e" in done.stderr
    explained = run(
        ["explain", "-c", ASTON, "-i", source, "--id", "E-\x1b[31m-\u202e", "--now", NOW]
    )
    assert explained.returncode == 3
    assert "\x1b" not in explained.stderr
    assert "E-\\x1b[31m-\\u202e" in explained.stderr


# ------------------------------------------------------------------ hostile YAML files

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)  # 9^9 = 387,420,489 values once expanded


def limited_memory() -> None:
    """Runs in the child: at most 2 GiB of address space (the bomb took 1.6 GB in a minute)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run_bounded(args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """crmsync under a 2 GiB address-space limit and a 60 s hang guard."""
    return subprocess.run(
        [*crmsync_command(), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
        check=False,
        preexec_fn=limited_memory,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BOMB, "aliases expand to more than 100,000 values (an alias bomb?): not read"),
        ("a: &a\n  b: *a\n", ":1: recursive alias: the value anchored here holds an alias"),
        ("x: " + "[" * 200_000 + "]" * 200_000 + "\n", "YAML nested too deeply to read"),
        ("#" + "x" * (100 << 20) + "\n", "larger than 1 MiB: not read"),
    ],
    ids=["alias-bomb", "recursive-alias", "deep-nesting", "100MB"],
)
def test_a_hostile_charter_is_refused_in_bounded_memory_and_time(
    tmp_path: Path, text: str, problem: str
) -> None:
    """Alias bombs, recursive aliases, deep nesting and huge files are refused: exit 2, named."""
    charter = tmp_path / "hostile.yaml"
    charter.write_text(text, encoding="utf-8")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(complaint("G-1")) + "\n", encoding="utf-8")
    done = run_bounded(["evaluate", "-c", charter, "-i", source, "--now", NOW])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{charter}" in done.stderr
    assert problem in done.stderr


def test_dev_zero_as_a_mapping_is_refused_by_check(tmp_path: Path) -> None:
    """`crmsync check --mapping /dev/zero` reads at most 1 MiB of it and names the file."""
    done = run_bounded(["check", "--mapping", "/dev/zero", ASTON])
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert "/dev/zero: larger than 1 MiB: not read" in done.stderr


def test_an_alias_bomb_mapping_is_refused_by_check(tmp_path: Path) -> None:
    """`crmsync check` names an alias-bomb mapping and still checks the charter."""
    mapping = tmp_path / "bomb.yaml"
    mapping.write_text(BOMB, encoding="utf-8")
    done = run_bounded(["check", "--mapping", mapping, ASTON])
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert f"{mapping}: aliases expand to more than 100,000 values" in done.stderr
    assert f"{ASTON}" in done.stdout + done.stderr


# ------------------------------------------------------------------ settings, before anything runs

SETTINGS_COMMANDS = [
    ["sync", "--once"],
    ["run"],
    ["demo", "--count", "5"],
    ["config", "show"],
    ["state", "prune"],
    ["archive", "run"],
    ["archive", "verify"],
]


@pytest.mark.parametrize("command", SETTINGS_COMMANDS, ids=" ".join)
def test_bad_json_in_crmsync_profiles_stops_every_command_before_it_runs(
    tmp_path: Path, command: list[str]
) -> None:
    """CRMSYNC_PROFILES that is not JSON: exit 2 naming it, and no data folder is created."""
    data = tmp_path / "data"
    env = {"CRMSYNC_DATA_DIR": str(data), "CRMSYNC_PROFILES": "{bad", "CRMSYNC_HTTP_PORT": "0"}
    done = run(command, env=env, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 2
    assert "configuration: CRMSYNC_PROFILES: not valid JSON: Expecting property name" in (
        done.stderr
    )
    assert not data.exists()


@pytest.mark.parametrize("command", SETTINGS_COMMANDS, ids=" ".join)
def test_an_unknown_key_in_crmsync_toml_stops_every_command_with_a_suggestion(
    tmp_path: Path, command: list[str]
) -> None:
    """A misspelt key in crmsync.toml: exit 2, file, line and the closest setting named."""
    data = tmp_path / "data"
    config = tmp_path / "crmsync.toml"
    config.write_text(f'data_dir = "{data}"\nhttp_port = 0\nsync_intervall = "5m"\n')
    done = run(command, env={"CRMSYNC_CONFIG": str(config)}, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 2
    assert (
        f"{config}:3: unknown setting 'sync_intervall' (did you mean 'sync_interval'?)"
        in done.stderr
    )
    assert not data.exists()


def test_check_reports_an_unknown_key_in_crmsync_toml(tmp_path: Path) -> None:
    """`crmsync check` names crmsync.toml's unknown keys beside the files it checks (exit 2)."""
    config = tmp_path / "crmsync.toml"
    config.write_text('[profiles.aston]\ncharter = "mappings/charters/aston.yaml"\nmaping = "x"\n')
    done = run(["check"], env={"CRMSYNC_CONFIG": str(config)}, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 2
    assert (
        f"{config}:3: profile 'aston': unknown setting 'maping' (did you mean 'mapping'?)"
        in done.stderr
    )
    assert "ok   mappings/charters/aston.yaml" in done.stdout


def test_the_worker_refuses_a_busy_port_before_opening_any_profile(tmp_path: Path) -> None:
    """`crmsync run` on a port another process holds: exit 2 naming CRMSYNC_HTTP_PORT,
    and no state or CRM file is created."""
    import socket

    data = tmp_path / "data"
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        done = run(
            ["run"], env={"CRMSYNC_DATA_DIR": str(data), "CRMSYNC_HTTP_PORT": str(port)}, cwd=REPO
        )
    finally:
        holder.close()
    no_traceback(done)
    assert done.returncode == 2
    assert (
        f"configuration: CRMSYNC_HTTP_PORT={port}: cannot listen on 0.0.0.0:{port} "
        "(Address already in use)" in done.stderr
    )
    assert not data.exists()


@pytest.mark.parametrize("port", ["70000", "-5"])
def test_the_worker_refuses_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    """CRMSYNC_HTTP_PORT=70000: exit 2 naming the setting, nothing created."""
    data = tmp_path / "data"
    done = run(["run"], env={"CRMSYNC_DATA_DIR": str(data), "CRMSYNC_HTTP_PORT": port}, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 2
    assert "configuration: CRMSYNC_HTTP_PORT: Input should be" in done.stderr
    assert not data.exists()


def test_healthcheck_names_a_bad_port_setting() -> None:
    """`crmsync healthcheck` with CRMSYNC_HTTP_PORT=abc: exit 2 naming it, no traceback."""
    done = run(["healthcheck"], env={"CRMSYNC_HTTP_PORT": "abc"})
    no_traceback(done)
    assert done.returncode == 2
    assert "CRMSYNC_HTTP_PORT='abc' is not a port" in done.stderr


def test_a_duration_in_iso_8601_is_shown_in_seconds() -> None:
    """CRMSYNC_SYNC_INTERVAL=PT5M and CRMSYNC_OVERLAP=30s: config show prints 300 and 30."""
    done = run(
        ["config", "show", "--json"],
        env={"CRMSYNC_SYNC_INTERVAL": "PT5M", "CRMSYNC_OVERLAP": "30s"},
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["sync_interval"], shown["overlap"]) == ("300", "30")


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_config_show_redacts_profile_secrets_in_every_format(tmp_path: Path, as_json: bool) -> None:
    """Secrets in a [profiles.NAME] table and in CRMSYNC_PROFILES never print, in the
    table or in --json; the masks and the rest of each profile do."""
    config = tmp_path / "crmsync.toml"
    config.write_text(
        "[profiles.aston]\n"
        'state_url = "postgresql://crm:t0mlSecret@db/crm"\n'
        'sf_password = "tomlHunter2"\n'
        'charter = "mappings/charters/aston.yaml"\n'
    )
    profiles = json.dumps(
        {
            "kil": {
                "archive_key": "ZW52S2V5U2VjcmV0LTAxMjM0NTY3ODlhYmNkZWZnaGk=",
                "sync_interval": 60,
            }
        }
    )
    env = {"CRMSYNC_CONFIG": str(config), "CRMSYNC_PROFILES": profiles, "COLUMNS": "250"}
    done = run(["config", "show", *(["--json"] if as_json else [])], env=env)
    no_traceback(done)
    assert done.returncode == 0
    for secret in ("t0mlSecret", "tomlHunter2", "ZW52S2V5U2VjcmV0LTAxMjM0NTY3ODlhYmNkZWZnaGk="):
        assert secret not in done.stdout + done.stderr
    for visible in ("postgresql://crm:***@db/crm", "mappings/charters/aston.yaml", "60"):
        assert visible in done.stdout


# ------------------------------------------------------------------ CRM data on the terminal


def test_sync_prints_markup_and_escapes_from_crm_data_literally(tmp_path: Path) -> None:
    """A picklist value '[/]' with an escape sequence: the errors table shows it as written,
    escaped, without a traceback; the cycle exits 3 (a record failed)."""
    data = tmp_path / "data"
    cases = tmp_path / "cases.jsonl"
    case = {
        "Type": "Complaint",
        "Origin": "[/]\x1b[31m",
        "Subject": "s",
        "CreatedDate": "2026-03-02T10:00:00.000+0000",
    }
    cases.write_text(json.dumps(case) + "\n", encoding="utf-8")
    env = {"CRMSYNC_DATA_DIR": str(data), "COLUMNS": "250"}
    imported = run(["local", "import", cases, "--object", "Case"], env=env, cwd=REPO)
    assert imported.returncode == 0, imported.stderr
    done = run(
        ["sync", "--once", "--now", "2026-03-10T00:00:00Z", "--format", "table"], env=env, cwd=REPO
    )
    no_traceback(done)
    assert done.returncode == 3
    assert "picklist value '[/]\\x1b[31m' is not mapped" in done.stdout
    assert "\x1b" not in done.stdout


def test_config_show_prints_values_and_meanings_literally() -> None:
    """A profile named '[/]x' and the '[profiles.NAME]' of a meaning print as written."""
    done = run(
        ["config", "show", "--format", "table"],
        env={"CRMSYNC_PROFILE": "[/]x\x1b[2J", "COLUMNS": "250"},
    )
    no_traceback(done)
    assert done.returncode == 0
    assert "[/]x\\x1b[2J" in done.stdout
    assert "[profiles.NAME]" in done.stdout
    assert "\x1b" not in done.stdout


def test_check_prints_a_path_with_markup_literally(tmp_path: Path) -> None:
    """`crmsync check` of '.../x[/]aston.yaml' says ok for that very path."""
    folder = tmp_path / "x["
    folder.mkdir()
    charter = folder / "]aston.yaml"
    charter.write_text(ASTON.read_text(encoding="utf-8"), encoding="utf-8")
    done = run(["check", charter], env={"COLUMNS": "250"}, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert f"ok   {tmp_path}/x[/]aston.yaml (6 clocks" in done.stdout


def test_local_import_reports_a_deeply_nested_line_and_imports_the_rest(tmp_path: Path) -> None:
    """A JSON Lines import with one line nested 100,000 deep: that line named, the others in."""
    data = tmp_path / "data"
    source = tmp_path / "cases.jsonl"
    good = {"Type": "Complaint", "Subject": "fine"}
    source.write_text(
        json.dumps(good) + "\n" + '{"Subject": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
        "" + json.dumps(good) + "\n",
        encoding="utf-8",
    )
    env = {"CRMSYNC_DATA_DIR": str(data)}
    done = run(["local", "import", source, "--object", "Case"], env=env, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 3
    assert f"{source}:2: not readable JSON: arrays or objects nested too deeply" in done.stderr
    assert "imported 2 Case records" in done.stderr


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("CRMSYNC_STATE_URL", "mysql://db/x", "CRMSYNC_STATE_URL: state store URL scheme 'mysql'"),
        ("CRMSYNC_ARCHIVE_URL", "ftp://x/y", "CRMSYNC_ARCHIVE_URL: unknown scheme 'ftp'"),
        ("CRMSYNC_ARCHIVE_KEY", "not-a-key", "CRMSYNC_ARCHIVE_KEY is not valid base64"),
    ],
)
def test_stores_and_keys_no_adapter_takes_are_refused_before_anything_runs(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    """A state or archive URL no store takes, or a malformed archive key: `sync --once`
    exits 2 naming the setting, with no data folder, lock or CRM created."""
    data = tmp_path / "data"
    done = run(["sync", "--once"], env={"CRMSYNC_DATA_DIR": str(data), setting: value}, cwd=REPO)
    no_traceback(done)
    assert done.returncode == 2
    assert f"configuration: {message}" in done.stderr
    assert value not in done.stderr or setting != "CRMSYNC_ARCHIVE_KEY"  # never the key
    assert not data.exists()


def test_a_state_store_that_cannot_be_reached_exits_1(tmp_path: Path) -> None:
    """A PostgreSQL state store nobody listens for is a failure (exit 1), not configuration."""
    done = run(
        ["sync", "--once"],
        env={
            "CRMSYNC_DATA_DIR": str(tmp_path / "data"),
            "CRMSYNC_STATE_URL": "postgresql://nobody@127.0.0.1:1/none",
        },
        cwd=REPO,
    )
    no_traceback(done)
    assert done.returncode == 1
    # the store named (its URL, password-free here), no exception class name (issue 21)
    assert "postgresql://nobody@127.0.0.1:1/none" in done.stderr
    assert "StateStoreError" not in done.stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["config", "show", "--json"], "error: cannot write the output: No space left on device"),
        (["schema", "charter"], "error: cannot write the output: No space left on device"),
        (["local", "export", "Case"], "error: cannot write standard output: No space left"),
    ],
    ids=" ".join,
)
def test_any_command_with_standard_output_on_a_full_device_says_so(
    tmp_path: Path, command: list[str], message: str
) -> None:
    """Standard output on /dev/full: one error line and exit 1, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    data = tmp_path / "data"
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"Type": "Complaint", "Subject": "s"}) + "\n")
    env = {**os.environ, "CRMSYNC_DATA_DIR": str(data), "CRMSYNC_SECRETS_DIR": "/nonexistent"}
    env.pop("CRMSYNC_CONFIG", None)
    subprocess.run(
        [*crmsync_command(), "local", "import", str(cases), "--object", "Case"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*crmsync_command(), *command],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            timeout=120,
            check=False,
        )
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert done.returncode == 1
    assert message in stderr


def test_local_export_to_a_full_device_names_the_file(tmp_path: Path) -> None:
    """`local export Case --output /dev/full`: the file named, exit 1, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    data = tmp_path / "data"
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"Type": "Complaint", "Subject": "s"}) + "\n")
    env = {"CRMSYNC_DATA_DIR": str(data)}
    assert run(["local", "import", cases, "--object", "Case"], env=env).returncode == 0
    done = run(["local", "export", "Case", "--output", "/dev/full"], env=env)
    no_traceback(done)
    assert done.returncode == 1
    assert "cannot write /dev/full: No space left on device" in done.stderr


def test_local_import_escapes_control_characters_in_its_reports(tmp_path: Path) -> None:
    """A field name holding an escape sequence is reported escaped; the good row is imported."""
    source = tmp_path / "cases.jsonl"
    source.write_text(
        json.dumps({"Sub\x1b[31mject": "x"}) + "\n" + json.dumps({"Subject": "fine"}) + "\n"
    )
    done = run(
        ["local", "import", source, "--object", "Case"],
        env={"CRMSYNC_DATA_DIR": str(tmp_path / "data")},
    )
    no_traceback(done)
    assert done.returncode == 3
    assert f"{source}:1: 'Sub\\x1b[31mject' is not a field name" in done.stderr
    assert "\x1b" not in done.stderr
    assert "imported 1 Case record" in done.stderr
