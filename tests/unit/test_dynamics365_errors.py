"""Dataverse's error answers: read into ApiError, classified by the one retry policy."""

from __future__ import annotations

import pytest
import requests

from crmsync.adapters.crm.dynamics365_errors import (
    DATAVERSE_FAILURES,
    api_error,
    retry_after_seconds,
)
from crmsync.errors import ApiError, CrmAuthError, CrmError, CrmTransientError


def test_an_error_body_gives_its_code_message_and_retry_after() -> None:
    error = api_error(
        429,
        {"Retry-After": "12", "Content-Type": "application/json"},
        {"error": {"code": "0x80072322", "message": "Number of requests\n exceeded the limit"}},
    )
    assert (error.status, error.code, error.message) == (
        429,
        "0x80072322",
        "Number of requests exceeded the limit",
    )
    assert error.retry_after == 12.0
    assert str(error) == "0x80072322 (HTTP 429): Number of requests exceeded the limit"


def test_an_answer_that_is_not_json_still_gives_a_named_error() -> None:
    """An HTML gateway page or an empty body: the status names the error, text is cut."""
    assert api_error(502, {}, None).code == "HTTP_502"
    assert api_error(502, {}, None).message == "no message"
    long = api_error(500, {}, "x" * 5000)
    assert len(long.message) == 300
    assert api_error(400, {}, {"error": "not an object"}).code == "HTTP_400"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "5"}, 5.0),
        ({"Retry-After": " 0 "}, 0.0),
        ({}, None),
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"Retry-After": "-3"}, None),
    ],
)
def test_retry_after_is_read_in_seconds_case_insensitively(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiError(429, "0x80072322", "too many"), True),
        (ApiError(503, "HTTP_503", "unavailable"), True),
        (ApiError(401, "HTTP_401", "token expired"), False),
        (ApiError(400, "0x80040203", "invalid argument"), False),
        (ApiError(404, "0x80040217", "does not exist"), False),
        (ApiError(412, "0x80060882", "exists"), False),
        (requests.Timeout("slow"), True),
    ],
)
def test_what_dataverse_declares_transient(error: BaseException, transient: bool) -> None:
    assert DATAVERSE_FAILURES.is_transient(error) is transient


def test_dataverse_failures_translate_into_the_crmsync_hierarchy() -> None:
    translate = DATAVERSE_FAILURES.translate
    assert isinstance(translate(ApiError(401, "HTTP_401", "expired"), "read"), CrmAuthError)
    assert isinstance(translate(ApiError(429, "0x80072322", "x"), "read"), CrmTransientError)
    permanent = translate(ApiError(400, "0x80040203", "bad column"), "write incidents")
    assert type(permanent) is CrmError
    assert str(permanent) == "write incidents: 0x80040203 (HTTP 400): bad column"
