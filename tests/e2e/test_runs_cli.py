"""``crmsync runs`` on the real PostgreSQL: the jobs the replicas recorded, newest first,
filtered by profile, kind and start, as a table or JSON lines (issue 22)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from crmsync.adapters.job_queue import QueueTables
from crmsync.ports import RunCounts
from worker_processes import POSTGRES_URL, ROOT, clean_env, fresh_schema, require_postgres

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def schema() -> Iterator[str]:
    yield from fresh_schema()


def _runs(tmp_path: Path, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        data_dir=str(tmp_path),
        config=str(tmp_path / "none.toml"),
        state_url=POSTGRES_URL,
        queue_schema=schema,
    )
    return subprocess.run(
        [sys.executable, "-m", "crmsync", "runs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_runs_lists_newest_first_with_filters(tmp_path: Path, schema: str) -> None:
    tables = QueueTables(POSTGRES_URL, schema=schema)
    try:
        tables.migrate()
        tables.started(1, "north", "sync", "host-a-1", _at("2026-12-06T10:00:00"))
        tables.finished(1, _at("2026-12-06T10:00:02.5"), "succeeded", RunCounts(40, 3, 2, 1))
        tables.started(2, "south", "archive", "host-b-7", _at("2026-12-06T10:05:00"))
        tables.finished(
            2, _at("2026-12-06T10:05:01"), "failed", RunCounts(), error="ArchiveError: full"
        )
        tables.started(3, "north", "sync", "host-b-7", _at("2026-12-06T10:10:00"))
    finally:
        tables.close()

    every = _runs(tmp_path, schema, "--format", "json")
    assert every.returncode == 0, every.stderr
    lines = [json.loads(line) for line in every.stdout.splitlines()]
    assert [(r["profile"], r["kind"], r["replica"]) for r in lines] == [
        ("north", "sync", "host-b-7"),
        ("south", "archive", "host-b-7"),
        ("north", "sync", "host-a-1"),
    ]
    assert lines[0]["status"] == "running" and lines[0]["finished_at"] is None
    assert lines[2] == {
        "profile": "north",
        "kind": "sync",
        "replica": "host-a-1",
        "started_at": "2026-12-06T10:00:00.000000Z",
        "finished_at": "2026-12-06T10:00:02.500000Z",
        "status": "succeeded",
        "records_read": 40,
        "flags_written": 3,
        "tasks_created": 2,
        "tasks_completed": 1,
        "error": None,
    }
    assert lines[1]["error"] == "ArchiveError: full"

    north = _runs(tmp_path, schema, "--profile", "north", "--format", "json")
    assert [json.loads(x)["started_at"] for x in north.stdout.splitlines()] == [
        "2026-12-06T10:10:00.000000Z",
        "2026-12-06T10:00:00.000000Z",
    ]
    archives = _runs(tmp_path, schema, "--kind", "archive", "--format", "json")
    assert [json.loads(x)["profile"] for x in archives.stdout.splitlines()] == ["south"]
    since = _runs(tmp_path, schema, "--since", "2026-12-06T10:05:00Z", "--format", "json")
    assert [json.loads(x)["profile"] for x in since.stdout.splitlines()] == ["north", "south"]
    table = _runs(tmp_path, schema, "--format", "table")
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == [
        "profile",
        "kind",
        "replica",
        "started_at",
        "finished_at",
        "status",
        "records_read",
        "flags_written",
        "tasks_created",
        "tasks_completed",
        "error",
    ]
    assert lines[2].split() == [
        "north",
        "sync",
        "host-a-1",
        "2026-12-06T10:00:00Z",
        "2026-12-06T10:00:02Z",
        "succeeded",
        "40",
        "3",
        "2",
        "1",
    ]
    assert "ArchiveError: full" in lines[1]


def test_runs_of_a_queue_never_worked_is_empty(tmp_path: Path, schema: str) -> None:
    done = _runs(tmp_path, schema, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_runs_without_postgresql_says_so_and_exits_2(tmp_path: Path) -> None:
    env = clean_env(data_dir=str(tmp_path), config=str(tmp_path / "x.toml"))
    done = subprocess.run(
        [sys.executable, "-m", "crmsync", "runs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PostgreSQL state store" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO-8601 instant"),
        (["--since", "2026-12-06"], "--since needs a date-time with offset"),
        (["--kind", "nightly"], "'--kind'"),
        (["--format", "xml"], "'--format'"),
    ],
)
def test_a_bad_option_value_is_named_on_one_line_and_exits_2(
    tmp_path: Path, args: list[str], names: str
) -> None:
    done = _runs(tmp_path, "q_unused", *args)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "rror" in line]
    assert len(errors) == 1 and names in errors[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def _negative_hash_schema() -> str:
    """A fresh schema name whose dispatch-lock key hashes below zero (half of them do)."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        while True:
            name = f"q_{uuid.uuid4().hex[:10]}"
            row = conn.execute("SELECT hashtext(%s)", (f"crmsync-dispatch:{name}",)).fetchone()
            if row is not None and row[0] < 0:
                return name


def test_one_dispatcher_at_a_time_and_the_lock_given_back() -> None:
    require_postgres()
    name = _negative_hash_schema()
    first = {("north", "sync"): _at("2026-12-06T10:00:00")}
    now = _at("2026-12-06T10:00:01")
    one, two = QueueTables(POSTGRES_URL, schema=name), QueueTables(POSTGRES_URL, schema=name)
    try:
        one.migrate()
        assert one.take_due(first, now) == [("north", "sync", _at("2026-12-06T10:00:00"))]
        assert two.take_due(first, now) is None  # the other replica dispatches now
        one.end_dispatch()
        assert two.take_due(first, now) == [("north", "sync", _at("2026-12-06T10:00:00"))]
        two.reschedule({("north", "sync"): _at("2026-12-06T10:05:00")})
        two.end_dispatch()
        assert one.take_due(first, now) == []  # moved on: nothing due until 10:05
        one.end_dispatch()
    finally:
        one.close()
        two.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
