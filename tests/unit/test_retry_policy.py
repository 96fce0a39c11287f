"""The one retry policy: transient by errorCode (not HTTP status), bounded attempts, every
attempt logged, failures translated into crmsync's error hierarchy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import structlog
from structlog.testing import capture_logs

from crmsync.adapters.crm.retry_policy import NO_WAIT, RetryPolicy
from crmsync.adapters.crm.salesforce_errors import SALESFORCE_FAILURES, is_transient, translate
from crmsync.errors import ApiError, CrmAuthError, CrmError, CrmLimitError, CrmTransientError


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """structlog as shipped (a CLI run elsewhere may have configured it for its stream)."""
    structlog.reset_defaults()
    yield


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiError(400, "UNABLE_TO_LOCK_ROW", "locked"), True),  # a 400 that is transient
        (ApiError(503, "SERVER_UNAVAILABLE", "down"), True),
        (ApiError(500, "UNKNOWN_EXCEPTION", "oops"), True),
        (ApiError(403, "REQUEST_LIMIT_EXCEEDED", "limit"), False),
        (ApiError(401, "INVALID_SESSION_ID", "expired"), False),
        (ApiError(400, "MALFORMED_QUERY", "bad"), False),
        (ApiError(404, "NOT_FOUND", "gone"), False),
        (requests.ConnectionError("refused"), True),
        (requests.Timeout("slow"), True),
        (ValueError("bug"), False),
    ],
)
def test_transient_is_decided_by_error_code_then_status(
    error: BaseException, transient: bool
) -> None:
    """Row locks are transient whatever the status; limits and auth never are."""
    assert is_transient(error) is transient


def test_translation_into_the_crmsync_hierarchy() -> None:
    """Limit, auth, transient and other failures map to their crmsync errors, named."""
    assert isinstance(translate(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "x"), "q"), CrmLimitError)
    assert isinstance(translate(ApiError(401, "INVALID_SESSION_ID", "x"), "q"), CrmAuthError)
    assert isinstance(translate(ApiError(400, "UNABLE_TO_LOCK_ROW", "x"), "q"), CrmTransientError)
    assert isinstance(translate(requests.Timeout(), "q"), CrmTransientError)
    other = translate(ApiError(400, "MALFORMED_QUERY", "unexpected token"), "query Case")
    assert type(other) is CrmError
    assert str(other) == "query Case: MALFORMED_QUERY (HTTP 400): unexpected token"


def test_transient_failures_are_retried_until_success_and_every_attempt_logged() -> None:
    """Two 503s then success: three attempts, two failures logged as retrying, no sleep."""
    answers = [ApiError(503, "SERVER_UNAVAILABLE", "down")] * 2
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=4, initial_wait=0.5, max_wait=8, jitter=0, sleep=waits.append)

    def call() -> str:
        if answers:
            raise answers.pop()
        return "done"

    with capture_logs() as logs:
        assert policy.run(call, operation="query Case") == "done"
    failed = [e for e in logs if e["event"] == "crm_attempt_failed"]
    assert [(e["attempt"], e["retrying"], e["error_code"]) for e in failed] == [
        (1, True, "SERVER_UNAVAILABLE"),
        (2, True, "SERVER_UNAVAILABLE"),
    ]
    assert [e["attempt"] for e in logs if e["event"] == "crm_attempt"] == [1, 2, 3]
    assert waits == [0.5, 1.0]  # exponential: 0.5 x 2^0, 0.5 x 2^1 (jitter 0)


def test_attempts_run_out_into_a_transient_error() -> None:
    """A request failing transiently every time gives up after max_attempts."""
    calls = []

    def call() -> None:
        calls.append(1)
        raise requests.ConnectionError("refused")

    policy = RetryPolicy(
        max_attempts=3, initial_wait=0, max_wait=0, jitter=0, sleep=lambda _s: None
    )
    with capture_logs() as logs, pytest.raises(CrmTransientError, match="connection failed"):
        policy.run(call, operation="write Case")
    assert len(calls) == 3
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
        "crm_attempt_failed",
        "crm_attempt_failed",
        "crm_attempt_failed",
        "crm_gave_up",
    ]


def test_permanent_failures_are_not_retried() -> None:
    """REQUEST_LIMIT_EXCEEDED is raised at once as CrmLimitError."""
    calls = []

    def call() -> None:
        calls.append(1)
        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    with pytest.raises(CrmLimitError):
        NO_WAIT.run(call, operation="query Case", failures=SALESFORCE_FAILURES)
    assert len(calls) == 1


def test_wait_grows_exponentially_and_is_capped() -> None:
    """The record-retry wait doubles from initial_wait up to max_wait, plus jitter."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=3.0, jitter=0.0)
    assert [policy.wait_for(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittery = RetryPolicy(initial_wait=0.5, max_wait=3.0, jitter=0.25)
    assert all(0.5 <= jittery.wait_for(1) <= 0.75 for _ in range(50))


def test_the_policy_retries_what_the_adapter_declares_and_nothing_else() -> None:
    """The same 400 is retried for an adapter declaring its code transient and raised at
    once (a plain CrmError) under the CRM-neutral default, which knows no codes."""
    from crmsync.adapters.crm.retry_policy import NETWORK_ONLY, ApiFailures

    def failing(calls: list[int]) -> object:
        calls.append(1)
        raise ApiError(400, "ROW_BUSY", "busy")

    declared = ApiFailures(transient_codes=frozenset({"ROW_BUSY"}))
    calls: list[int] = []
    with pytest.raises(CrmTransientError, match="ROW_BUSY"):
        NO_WAIT.run(lambda: failing(calls), operation="write x", failures=declared)
    assert len(calls) == 4  # max_attempts
    calls.clear()
    with pytest.raises(CrmError) as raised:
        NO_WAIT.run(lambda: failing(calls), operation="write x", failures=NETWORK_ONLY)
    assert type(raised.value) is CrmError
    assert len(calls) == 1


def test_a_retry_after_is_honoured_as_the_least_wait() -> None:
    """A 429 asking for 7 s is waited 7 s (the backoff alone would wait 0.5 s); the
    next attempt succeeds."""
    from crmsync.adapters.crm.dynamics365_errors import DATAVERSE_FAILURES

    answers = [ApiError(429, "0x80072322", "Number of requests exceeded", retry_after=7)]
    waits: list[float] = []
    policy = RetryPolicy(initial_wait=0.5, max_wait=8, jitter=0, sleep=waits.append)

    def call() -> str:
        if answers:
            raise answers.pop()
        return "done"

    assert policy.run(call, operation="read incidents", failures=DATAVERSE_FAILURES) == "done"
    assert waits == [7.0]


def test_a_retry_after_longer_than_the_policy_allows_ends_the_operation() -> None:
    """A 429 asking for 300 s (over max_retry_after, 60 s) is not slept through: the
    operation ends at once with CrmLimitError naming the wait, and nothing is sent again."""
    from crmsync.adapters.crm.dynamics365_errors import DATAVERSE_FAILURES

    calls: list[int] = []
    waits: list[float] = []
    policy = RetryPolicy(initial_wait=0.5, jitter=0, sleep=waits.append)

    def call() -> None:
        calls.append(1)
        raise ApiError(429, "0x80072321", "Combined execution time exceeded", retry_after=300)

    with pytest.raises(CrmLimitError, match="asks to wait 300 s"):
        policy.run(call, operation="write incidents", failures=DATAVERSE_FAILURES)
    assert calls == [1]
    assert waits == []
