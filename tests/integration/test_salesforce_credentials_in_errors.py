"""No Salesforce credential in any text the adapter raises or reports, at the HTTP level:
a server whose error bodies echo the request's headers (``Authorization: Bearer <session
id>``) or a record error quoting the session id; in session mode, where the session id is
the configured secret, and through ``check --online`` and the sync cycle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.cli import app
from crmsync.errors import CrmError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.salesforce_fake import (
    API,
    ECHO_HEADERS,
    INSTANCE,
    FakeOrg,
    FakeSalesforce,
    fake_salesforce,
    session_client,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")
MON_10 = "2026-03-02T10:00:00.000+0000"
A = "500000000000001AAA"
OWNER = "005000000000OWNAAA"


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Undo the CLI's logging configuration (its stream is closed after the run)."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with fake_salesforce(ManualClock(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))) as started:
        started.org.seed(
            "Case",
            [
                {
                    "Id": A,
                    "Type": "Complaint",
                    "Origin": "Email",
                    "OwnerId": OWNER,
                    "Complaint_Manager__c": OWNER,
                    "CreatedDate": MON_10,
                    "SystemModstamp": MON_10,
                }
            ],
        )
        yield started


@pytest.fixture
def org(fake: FakeSalesforce) -> FakeOrg:
    return fake.org


def chain_text(error: BaseException) -> str:
    """``str`` and ``repr`` of ``error`` and every exception behind it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    out = []
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        out.append(f"{current}\n{current!r}")
        todo += [current.__cause__, current.__context__]
    return "\n".join(out)


def test_an_error_body_echoing_the_session_header_is_raised_without_the_session_id(
    org: FakeOrg,
) -> None:
    """A 400 whose message quotes the request headers: the raised error (and its chain)
    says what failed and holds *** where the session id was."""
    crm = session_client(org)
    token = crm.auth.token
    assert token is not None
    org.fail_next("/describe", status=400, code="BAD_REQUEST", message=f"seen: {ECHO_HEADERS}")
    with pytest.raises(CrmError) as caught:
        crm.describe("Case")
    text = chain_text(caught.value)
    assert token not in text
    assert "Authorization: Bearer ***" in str(caught.value)
    assert "BAD_REQUEST" in str(caught.value)


def test_an_echoed_session_id_in_a_query_error_never_reaches_the_cycle_error(
    org: FakeOrg,
) -> None:
    """A failed query echoing the headers ends the cycle with an error free of the session id,
    and no log event holds it."""
    crm = session_client(org)
    token = crm.auth.token
    assert token is not None
    org.fail_next("/query", status=400, code="MALFORMED_QUERY", message=ECHO_HEADERS, times=5)
    # the related reads (Tasks, Status history) travel as subrequests of one Composite call
    org.fail_next(
        "/query",
        status=400,
        code="MALFORMED_QUERY",
        message=ECHO_HEADERS,
        times=5,
        inside_composite=True,
    )
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="sf")
    with capture_logs() as logs, pytest.raises(CrmError) as caught:
        cycle.run()
    assert token not in chain_text(caught.value)
    assert "***" in str(caught.value)
    assert token not in repr(logs)


def test_a_record_error_quoting_the_session_id_is_reported_without_it(org: FakeOrg) -> None:
    """A per-record write error whose message quotes the session id: the cycle's record
    failure and its log line name the record and the error, with *** for the id."""
    crm = session_client(org)
    token = crm.auth.token
    assert token is not None
    org.reject(A, "FIELD_CUSTOM_VALIDATION_EXCEPTION", f"trigger saw Bearer {token}", ())
    state = MemoryStateStore()
    state.migrate()
    cycle = SyncCycle(crm=crm, state=state, charter=ASTON, mapping=MAPPING, profile="sf")
    with capture_logs() as logs:
        report = cycle.run()
    assert report.errors
    messages = " ".join(f.message for f in report.errors)
    assert token not in messages and token not in repr(logs)
    assert "trigger saw Bearer ***" in messages
    assert {f.record_id for f in report.errors} >= {A}


def test_check_online_against_a_server_echoing_the_session_id_prints_no_session_id(
    org: FakeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --online` in session mode, the describe answer echoing the request headers:
    exit 2 with each object's failure listed, the session id nowhere in the output."""
    monkeypatch.chdir(ROOT)
    token = org.issue_session()
    env = {
        "CRMSYNC_CRM": "salesforce",
        "CRMSYNC_SF_AUTH": "session",
        "CRMSYNC_SF_INSTANCE_URL": INSTANCE,
        "CRMSYNC_SF_SESSION_ID": token,
        "CRMSYNC_SF_API_VERSION": API,
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
    }
    org.fail_next("/describe", status=400, code="BAD_REQUEST", message=ECHO_HEADERS, times=9)
    done = CliRunner().invoke(app, ["check", "--online", "mappings/charters/aston.yaml"], env=env)
    assert done.exit_code == 2, done.output
    assert "Case: cannot be described: describe Case: BAD_REQUEST" in done.stderr
    assert "Bearer ***" in done.stderr
    assert token not in done.stdout + done.stderr
