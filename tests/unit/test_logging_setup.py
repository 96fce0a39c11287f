"""What the libraries log through ``logging`` (the job queue's engine, the connection pool)
comes out as crmsync's own lines: one JSON object per line, an exception as one ``error``
field, never a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from crmsync.logging_setup import configure_logging


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class DatabaseError(Exception):
    pass


def _raise_chained() -> None:
    try:
        raise OSError(
            'connection to server at "127.0.0.1", port 5432 failed:\n\tConnection refused'
        )
    except OSError as exc:
        raise DatabaseError("\n    Database error.\n    ") from exc


def test_a_library_exception_is_one_json_line(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    configure_logging("json", "info")
    try:
        _raise_chained()
    except DatabaseError:
        logging.getLogger("procrastinate.manager").exception("listener error: %s", "x")
    [line] = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["event"] == "listener error: x"
    assert event["logger"] == "procrastinate.manager"
    assert event["level"] == "error"
    assert event["error"] == (
        "DatabaseError: Database error. <- OSError: connection to server at "
        '"127.0.0.1", port 5432 failed: Connection refused'
    )
    assert "Traceback" not in line


def test_library_info_lines_only_at_debug(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    configure_logging("json", "info")
    configure_logging("json", "info")  # configured twice: still one line per event
    library = logging.getLogger("crmsync-tests.a-library")
    library.info("connection ready")
    library.warning("error connecting in 'pool-1'")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["error connecting in 'pool-1'"]

    configure_logging("json", "debug")
    library.info("connection ready")
    assert [json.loads(x)["event"] for x in capsys.readouterr().err.splitlines()] == [
        "connection ready"
    ]
