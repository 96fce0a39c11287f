"""The CLI's one progress helper: a live line on a terminal, nothing at all elsewhere."""

from __future__ import annotations

import io

import pytest

from crmsync.cli.progress import out_console, progress, summary


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_line_counts_and_the_summary_is_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With standard error on a terminal the bar shows done/total and the summary follows."""
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress("entries exported", total=3) as tracker:
        tracker.advance(2)
        tracker.advance()
    summary("exported 3 entries")
    shown = terminal.getvalue()
    assert "entries exported" in shown
    assert "3/3" in shown
    assert shown.rstrip().endswith("exported 3 entries")


def test_off_a_terminal_nothing_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """With standard error on a pipe neither progress nor summary writes a byte."""
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with progress("entries exported", total=3) as tracker:
        tracker.advance(3)
    with progress("records read") as tracker:
        tracker.advance(10, description="evaluated 10")
    summary("exported 3 entries")
    assert pipe.getvalue() == ""


def test_no_progress_when_the_data_goes_to_the_same_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command writing its data to the terminal gets no progress line between the data."""
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress("complaints evaluated", data_to=FakeTerminal()) as tracker:
        tracker.advance(5)
    assert terminal.getvalue() == ""


def test_data_on_a_pipe_is_never_wrapped_or_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal a 300-character line of data stays one line, without colour codes."""
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stdout", pipe)
    line = "[bold]Complaint[/bold] " + "x" * 300
    out_console().print(line)
    assert pipe.getvalue() == "Complaint " + "x" * 300 + "\n"
