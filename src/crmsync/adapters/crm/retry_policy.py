"""The one retry policy of the CRM adapters: what is transient, how long to wait, and the
translation of API failures into crmsync's error hierarchy.

The policy names no CRM: each adapter declares its API's failures in an ``ApiFailures``
(as each APScheduler 4 data store declares its ``_temporary_failure_exceptions``) and hands
it to ``RetryPolicy.run``. Transient (retried with exponential backoff and jitter, up to
``max_attempts``):

- the declared ``temporary_failure_exceptions`` (connection errors and timeouts by default);
- API errors whose code the adapter declares transient, whatever the HTTP status (a
  row lock may come as 400);
- API errors with a status the adapter declares transient (a 429 "slow down"), or a 5xx
  status whose code the adapter does not declare a limit or auth one.

A server's ``Retry-After`` is honoured: the wait before the next attempt is at least what
it asked; a wait longer than ``max_retry_after`` ends the operation with ``CrmLimitError``
(the next cycle comes back later) instead of holding the worker.

Never retried here: the adapter's limit codes (the cycle must end, ``CrmLimitError``), its
auth codes (the adapter renews its session once itself, then ``CrmAuthError``) and every
other error code. Every attempt is logged (event ``crm_attempt`` at debug,
``crm_attempt_failed`` at warning, ``crm_gave_up`` at error), without request bodies.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import structlog
import tenacity

from crmsync.errors import (
    ApiError,
    CrmAuthError,
    CrmError,
    CrmLimitError,
    CrmSyncError,
    CrmTransientError,
)

log = structlog.get_logger("crmsync.crm.retry")

T = TypeVar("T")


@dataclass(frozen=True)
class ApiFailures:
    """What one CRM adapter declares about its failures: which exception types are
    temporary, and which API error codes are transient, a limit or an expired session."""

    transient_codes: frozenset[str] = frozenset()
    limit_codes: frozenset[str] = frozenset()
    auth_codes: frozenset[str] = frozenset()
    transient_statuses: frozenset[int] = frozenset()
    auth_statuses: frozenset[int] = frozenset()
    temporary_failure_exceptions: tuple[type[BaseException], ...] = (
        requests.ConnectionError,
        requests.Timeout,
        CrmTransientError,
    )

    def is_transient(self, exc: BaseException) -> bool:
        """Whether the same request may succeed when sent again."""
        if isinstance(exc, ApiError):
            if exc.code in self.transient_codes or exc.status in self.transient_statuses:
                return True
            if self._is_limit(exc) or self._is_auth(exc):
                return False
            return exc.status >= 500
        return isinstance(exc, self.temporary_failure_exceptions)

    def translate(self, exc: BaseException, operation: str) -> CrmError:
        """The crmsync error for a failure of ``operation`` (to be raised ``from exc``)."""
        if isinstance(exc, CrmError):
            return exc
        if isinstance(exc, ApiError):
            text = f"{operation}: {exc}"
            if self._is_limit(exc):
                return CrmLimitError(text)
            if self._is_auth(exc):
                return CrmAuthError(text)
            if self.is_transient(exc):
                return CrmTransientError(text)
            return CrmError(text)
        if isinstance(exc, requests.Timeout):
            return CrmTransientError(f"{operation}: timed out")
        if isinstance(exc, requests.ConnectionError):
            return CrmTransientError(f"{operation}: connection failed ({type(exc).__name__})")
        return CrmError(f"{operation}: {type(exc).__name__}")

    def _is_limit(self, exc: ApiError) -> bool:
        return exc.code in self.limit_codes

    def _is_auth(self, exc: ApiError) -> bool:
        return exc.code in self.auth_codes or exc.status in self.auth_statuses


def _asked_wait(exc: BaseException | None) -> float | None:
    """The wait a server asked for with the failure (``Retry-After``), if any."""
    if isinstance(exc, ApiError) and exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    return None


NETWORK_ONLY = ApiFailures()
"""No API error codes declared: connection errors, timeouts and 5xx answers are transient."""


def _describe(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ApiError):
        return {"error_code": exc.code, "status": exc.status}
    return {"error": type(exc).__name__}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures (data, not code).

    ``sleep`` is injectable so tests run without waiting.
    """

    max_attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 8.0
    jitter: float = 0.5
    record_retries: int = 3  # extra rounds for single records reported transiently
    max_retry_after: float = 60.0  # a longer Retry-After ends the operation (CrmLimitError)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def wait_for(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_wait, self.initial_wait * (2 ** max(0, attempt - 1)))
        return float(base + random.uniform(0, self.jitter))

    def run(
        self, fn: Callable[[], T], *, operation: str, failures: ApiFailures = NETWORK_ONLY
    ) -> T:
        """Call ``fn`` until it succeeds, fails permanently or attempts run out.

        ``failures`` is the calling adapter's declaration of its transient, limit and auth
        errors. Raises the translated crmsync error (``CrmTransientError`` when attempts
        ran out).
        """
        state = {"attempt": 0}

        def attempt() -> T:
            state["attempt"] += 1
            n = state["attempt"]
            log.debug("crm_attempt", operation=operation, attempt=n)
            try:
                return fn()
            except Exception as exc:
                asked = _asked_wait(exc)
                if asked is not None and asked > self.max_retry_after:
                    log.warning("crm_asked_to_wait", operation=operation, attempt=n, seconds=asked)
                    raise CrmLimitError(
                        f"{operation}: the CRM asks to wait {asked:g} s before the next"
                        " request; the next cycle tries again"
                    ) from exc
                transient = failures.is_transient(exc)
                retrying = transient and n < self.max_attempts
                log.warning(
                    "crm_attempt_failed",
                    operation=operation,
                    attempt=n,
                    transient=transient,
                    retrying=retrying,
                    **_describe(exc),
                )
                raise

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait(),
            retry=tenacity.retry_if_exception(failures.is_transient),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except CrmSyncError:
            raise  # already ours (a budget refusal, a configuration problem): as it is
        except Exception as exc:
            error = failures.translate(exc, operation)
            log.error(
                "crm_gave_up",
                operation=operation,
                attempts=state["attempt"],
                crm_error=type(error).__name__,
                **_describe(exc),
            )
            raise error from exc

    def _wait(self) -> Callable[[tenacity.RetryCallState], float]:
        """Exponential backoff with jitter, but never less than a server's Retry-After."""
        backoff = tenacity.wait_exponential(
            multiplier=self.initial_wait, max=self.max_wait
        ) + tenacity.wait_random(0, self.jitter)

        def wait(state: tenacity.RetryCallState) -> float:
            base = float(backoff(state))
            failed = state.outcome.exception() if state.outcome is not None else None
            asked = _asked_wait(failed)
            return base if asked is None else max(base, asked)

        return wait


NO_WAIT = RetryPolicy(initial_wait=0.0, max_wait=0.0, jitter=0.0, sleep=lambda _s: None)
"""The same policy without waiting (tests, benchmarks)."""
