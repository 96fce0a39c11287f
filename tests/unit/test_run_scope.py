"""The run skeleton shared by the sync cycle, archiving and retention (service/run_scope.py)."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from crmsync.ports import CallCounter
from crmsync.service.run_scope import RunEvents, new_run_id, run_scope

EVENTS = RunEvents("job_started", "job_finished", "job_failed")
log = structlog.get_logger("test.run_scope")


class SteppingTimer:
    """A timer that advances ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_run_binds_its_id_and_profile_and_unbinds_them_after() -> None:
    """Inside the scope every log line carries run_id and profile; after it neither is bound."""
    with run_scope(log, EVENTS, profile="north", run_id="r-1") as run:
        bound = structlog.contextvars.get_contextvars()
    assert (run.run_id, run.profile) == ("r-1", "north")
    assert bound == {"run_id": "r-1", "profile": "north"}
    assert structlog.contextvars.get_contextvars() == {}


def test_a_finished_run_logs_start_and_finish_with_calls_and_duration() -> None:
    """One start event with its fields, one finish event with the status, the finish
    fields, the CRM calls made inside the scope and the duration from the timer."""
    calls = CallCounter()
    calls.add("query", 3)  # made before the run: not counted
    with (
        capture_logs() as logs,
        run_scope(log, EVENTS, profile="p", calls=calls, timer=SteppingTimer(1.5)) as run,
    ):
        run.started(now="2026-01-01T00:00:00Z")
        calls.add("write", 2)
        assert run.crm_calls == 2
        run.finish("partial", written=7)
    assert [e["event"] for e in logs] == ["job_started", "job_finished"]
    started, finished = logs
    assert started["now"] == "2026-01-01T00:00:00Z"
    assert finished["status"] == "partial"
    assert (finished["written"], finished["crm_calls"], finished["duration_s"]) == (7, 2, 1.5)
    assert finished["log_level"] == "info"


def test_a_run_without_a_crm_logs_no_call_count_and_is_ok_by_default() -> None:
    """Without a call counter the finish event has no crm_calls; no ``finish`` call means ok."""
    with capture_logs() as logs, run_scope(log, EVENTS, profile="p"):
        pass
    [finished] = logs
    assert finished["status"] == "ok"
    assert "crm_calls" not in finished


def test_a_failed_run_logs_the_failure_and_lets_the_exception_go_on() -> None:
    """An exception inside the scope: one failed event (error level, type and message,
    calls, duration) instead of the finish event; the exception reaches the caller and
    the context is unbound."""
    calls = CallCounter()
    timer = SteppingTimer(0.25)
    with (
        capture_logs() as logs,
        pytest.raises(ValueError, match="boom"),
        run_scope(log, EVENTS, profile="p", calls=calls, timer=timer) as run,
    ):
        run.started()
        calls.add("query")
        raise ValueError("boom")
    assert [e["event"] for e in logs] == ["job_started", "job_failed"]
    failed = logs[1]
    assert failed["log_level"] == "error"
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: boom"
    assert (failed["crm_calls"], failed["duration_s"]) == (1, 0.25)
    assert structlog.contextvars.get_contextvars() == {}


def test_run_ids_are_twelve_hex_digits_and_fresh() -> None:
    """A run without a given id gets a new 12-hex-digit one."""
    first, second = new_run_id(), new_run_id()
    assert len(first) == 12 and int(first, 16) >= 0
    assert first != second
    with run_scope(log, EVENTS, profile="p") as run:
        assert len(run.run_id) == 12
