"""One CLI convention over every command's --help (docs/operator-guide.md, "Command-line
conventions"): readable placeholders, exit statuses, -o/--output, --format, durations,
--version and shell completion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from crmsync.cli import app

ROOT = get_command(app)


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


EVERY = [pytest.param(path, c, id=" ".join(path) or "crmsync") for path, c in _walk(ROOT, ())]
LEAVES = [p for p in EVERY if not hasattr(p.values[1], "commands")]


def _help(path: tuple[str, ...]) -> str:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    return done.stdout


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("-")]


def test_there_are_commands_to_check() -> None:
    names = {p.id for p in LEAVES}
    assert {"evaluate", "report", "archive export", "local import", "config show"} <= names
    assert {"salesforce deploy", "salesforce metadata", "dynamics365 setup"} <= names  # the CRMs'


@pytest.mark.parametrize(("path", "command"), EVERY)
def test_help_shows_readable_placeholders_and_no_markup(
    path: tuple[str, ...], command: Any
) -> None:
    """No typer type tags (<str>, <list[Path]>, <int range>), no {id} in the usage line, no
    reStructuredText markup (``..__c``)."""
    text = _help(path)
    assert re.findall(r"<[a-zA-Z][^>]*>", text) == []
    assert re.findall(r"\{[a-z_]+\}", text) == []
    assert "``" not in text


@pytest.mark.parametrize(("path", "command"), LEAVES)
def test_every_command_names_its_exit_statuses(path: tuple[str, ...], command: Any) -> None:
    assert re.search(r"[Ee]xit status", _help(path)), " ".join(path)


@pytest.mark.parametrize(("path", "command"), LEAVES)
def test_options_follow_the_convention(path: tuple[str, ...], command: Any) -> None:
    """A file written is -o/--output FILE (salesforce metadata: --out/-o DIR); --format
    takes table, json, csv, html (or the file formats jsonl, csv); --json is at most a
    hidden alias; every time option takes a DURATION."""
    for option in _options(command):
        names = set(option.opts) | set(option.secondary_opts)
        if "--output" in names or "--out" in names:
            assert "-o" in names, (path, option.opts)
        if "--format" in names:
            values = set((option.metavar or "").split("|"))
            assert values <= {"table", "json", "csv", "html", "jsonl"}, (path, values)
        if "--json" in names:
            assert option.hidden, (path, "a visible --json: use --format json")
        if names & {"--wait", "--keep-closed", "--keep-runs", "--interval"}:
            assert (option.metavar or "").startswith("DURATION"), (path, option.opts)


def test_version_and_shell_completion_are_offered() -> None:
    text = _help(())
    assert "--version" in text and "--install-completion" in text
    done = CliRunner().invoke(app, ["--version"])
    assert done.exit_code == 0
    assert re.fullmatch(r"crmsync \d+\.\d+\.\d+ \((compiled|pure Python)\)\n", done.stdout)


def test_format_json_and_the_old_json_flag_print_the_same(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`config show --format json` and the deprecated `--json` print the same document."""
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path))
    new = CliRunner().invoke(app, ["config", "show", "--format", "json"])
    old = CliRunner().invoke(app, ["config", "show", "--json"])
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert new.stdout == old.stdout
    [line] = new.stdout.splitlines()  # JSON Lines: the document on one line
    assert '"data_dir"' in line


def test_errors_name_no_exception_class(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`archive show 9999` says there is no such entry, not `EntryNotFoundError: ...`."""
    for name in ("CRMSYNC_ARCHIVE_URL", "CRMSYNC_PROFILE", "CRMSYNC_ARCHIVE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["archive", "show", "9999"])
    assert done.exit_code == 1
    assert done.stderr.startswith("error: ")
    assert "default/9999" in done.stderr
    assert not re.search(r"[A-Z][a-z]+Error\b", done.stderr), done.stderr
