"""Text from outside shown on a terminal: control characters escaped, never sent raw."""

from __future__ import annotations

import pytest
import structlog

from crmsync.logging_setup import configure_logging
from crmsync.terminal import escape_controls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("C-1", "C-1"),
        ("C-\x1b[31mred", "C-\\x1b[31mred"),  # an ANSI colour sequence
        ("a\x07b\x7fc\x9bd", "a\\x07b\\x7fc\\x9bd"),  # bell, DEL, C1 CSI
        ("left\u202eright", "left\\u202eright"),  # a bidi override
        ("two\nlines\tand tab", "two\\x0alines\\x09and tab"),
        ("café [/] ✓", "café [/] ✓"),  # printable text and markup are left alone
    ],
)
def test_control_characters_are_written_as_escapes(text: str, shown: str) -> None:
    """Every C0/C1 control, DEL and bidi override becomes a visible escape."""
    assert escape_controls(text) == shown


def test_newlines_can_be_kept_for_multi_line_messages() -> None:
    """keep_newlines leaves line breaks and still escapes the rest."""
    assert escape_controls("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"


def test_readable_logs_escape_ids(capsys: pytest.CaptureFixture[str]) -> None:
    """On the readable (terminal) renderer a record id with an escape sequence is escaped."""
    configure_logging("console", "info")
    structlog.get_logger("t").info("record_unreadable", record_id="500\x1b]0;owned\x07")
    err = capsys.readouterr().err
    assert "500\\x1b]0;owned\\x07" in err
    assert "\x1b]0;owned" not in err
