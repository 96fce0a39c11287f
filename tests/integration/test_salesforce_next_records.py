"""The Salesforce adapter follows ``nextRecordsUrl`` only on the org's own host: a path, or
an absolute URL on the instance URL's host. Any other host is an error, and no request (which
would carry the session token) is ever sent there. At the HTTP level, through the fake org."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from crmsync.errors import CrmError
from fakes.salesforce_fake import INSTANCE, PAGE, FakeSalesforce, fake_salesforce, session_client

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
UNTIL = datetime(2026, 3, 5, tzinfo=UTC)
ELSEWHERE = "https://collector.example.net"


@pytest.fixture
def stolen() -> list[str]:
    """URLs of requests that reached the other host."""
    return []


@contextmanager
def fake_with(base: str, stolen: list[str]) -> Iterator[FakeSalesforce]:
    with fake_salesforce(lambda: NOW, next_records_base=base) as fake:

        def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            stolen.append(str(request.url))
            return 200, {}, '{"done": true, "records": []}'

        for host in (ELSEWHERE, "https://fake-org.my.salesforce.com.example.net"):
            fake.mock.add_callback("GET", re.compile(re.escape(host) + "/.*"), callback=record)
        fake.org.seed("Case", [{"Subject": f"complaint {n}"} for n in range(PAGE + 1)])
        yield fake


def pull(fake: FakeSalesforce) -> list[Any]:
    crm = session_client(fake.org)
    return list(crm.changed_records("Case", ["Subject"], since=None, until=UNTIL))


@pytest.mark.parametrize("base", ["", INSTANCE, INSTANCE + ":443"], ids=["path", "host", "port"])
def test_next_records_on_the_orgs_own_host_are_followed(base: str, stolen: list[str]) -> None:
    """A relative nextRecordsUrl or one on the instance's host reads the second page."""
    with fake_with(base, stolen) as fake:
        records = pull(fake)
        assert len(records) == PAGE + 1
        assert sum(1 for m, path, _ in fake.org.log if m == "GET" and "/query/01g" in path) == 1
    assert stolen == []


@pytest.mark.parametrize(
    "base",
    [
        ELSEWHERE,
        "//collector.example.net",  # scheme-relative: another host all the same
        "https://fake-org.my.salesforce.com.example.net",  # the org's name as a prefix
        "http://fake-org.my.salesforce.com",  # the org's host without TLS
        "https://fake-org.my.salesforce.com:8443",  # another port
        "https://user@collector.example.net",
    ],
)
def test_next_records_on_another_host_are_an_error_and_never_requested(
    base: str, stolen: list[str]
) -> None:
    """The pull fails naming the other host; no request reaches it with the session token."""
    with fake_with(base, stolen) as fake:
        with pytest.raises(CrmError, match="not requested") as exc:
            pull(fake)
        assert "fake-org.my.salesforce.com" in str(exc.value)
        requested = [u for _m, u, _b in fake.org.log]
        assert not any("collector" in u for u in requested)
    assert stolen == []


def test_a_path_that_does_not_start_at_the_root_is_refused(stolen: list[str]) -> None:
    """'@collector.example.net/...' glued to the instance URL would change the host: refused."""
    with (
        fake_with("@collector.example.net", stolen) as fake,
        pytest.raises(CrmError, match="not requested"),
    ):
        pull(fake)
    assert stolen == []


def test_the_other_host_records_what_reaches_it() -> None:
    """Sanity of the set-up: the other host answers when asked directly, so the tests above
    would see a request that reached it."""
    caught: list[str] = []
    with fake_with(ELSEWHERE, caught):
        assert requests.get(f"{ELSEWHERE}/services/data", timeout=5).status_code == 200
    assert caught == [f"{ELSEWHERE}/services/data"]
