"""Dataverse's failures as the one retry policy needs them declared, and its error answers
read into ``ApiError``.

Dataverse answers an error with ``{"error": {"code": "0x80040217", "message": "..."}}``.
Service protection (too many requests, too much execution time, too many at once) is HTTP
429 with a ``Retry-After`` header: transient, and the policy waits at least that long. A
401 is an expired or refused token (renewed once by the adapter, then ``CrmAuthError``);
5xx and connection failures are transient; any other 4xx is the record's or the request's
own error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.adapters.crm.retry_policy import ApiFailures
from crmsync.errors import ApiError

THROTTLED = 429
UNAUTHORISED = 401

DATAVERSE_FAILURES = ApiFailures(
    transient_statuses=frozenset({THROTTLED}),
    auth_statuses=frozenset({UNAUTHORISED}),
)

_MESSAGE_LIMIT = 300  # a server message is quoted, never a whole body


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (Dataverse sends whole seconds), or None when absent or
    not a number of seconds."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value.strip())
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None


def api_error(status: int, headers: Mapping[str, str], body: Any) -> ApiError:
    """The ``ApiError`` of one Dataverse error answer (its JSON ``body`` already parsed, or
    None/text when it was not JSON): the error code, the server's message cut short, and
    the ``Retry-After`` it asked for."""
    code = f"HTTP_{status}"
    message = ""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        code = str(error.get("code") or code)
        message = str(error.get("message") or "")
    elif isinstance(body, str):
        message = body
    message = " ".join(message.split())[:_MESSAGE_LIMIT]
    if not message and status == UNAUTHORISED:
        message = "the org refused the token, also once renewed"
    message = message or "no message"
    return ApiError(status, code, message, retry_after=retry_after_seconds(headers))
