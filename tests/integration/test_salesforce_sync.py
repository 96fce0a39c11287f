"""Sync cycles through the Salesforce adapter against the HTTP fake org: the bundled mapping
and the Aston charter, injected faults, the API budget, every auth mode, and secrets.

Aston (Europe/London, GMT in early March 2026, so local time = UTC): Mon-Thu 08:30-17:00.
A complaint received Mon 2026-03-02 10:00 by e-mail has, at Wed 2026-03-04 10:00:
- level1-resolution (1 business_days): day0 = Mon, due the close of Tue = Tue 17:00 ->
  breached, a follow-up to the complaint manager;
- email-reply (2 business_days): due Wed 17:00 -> on_track, and it is the next due.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from structlog.testing import capture_logs
from typer.testing import CliRunner

from crmsync.adapters.crm.retry_policy import NO_WAIT
from crmsync.adapters.crm.salesforce import SalesforceCrm
from crmsync.adapters.crm.salesforce_auth import SalesforceCredentials
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.bootstrap import build_crm, settings_model
from crmsync.cli import app
from crmsync.errors import ConfigError, CrmAuthError, CrmLimitError, CrmTransientError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import FieldFilter
from crmsync.service.complaint_source import COMPLAINTS_WATERMARK
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.salesforce_fake import (
    API,
    BASE,
    INSTANCE,
    LOGIN,
    FakeOrg,
    FakeSalesforce,
    client,
    fake_salesforce,
    session_client,
)
from state_views import ledger, recorded_runs

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON = load_charter(ROOT / "mappings" / "charters" / "aston.yaml")

MON_10 = "2026-03-02T10:00:00.000+0000"
MON_11 = "2026-03-02T11:00:00.000+0000"
WED_10 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
OWNER = "005000000000OWNAAA"
MANAGER = "005000000000MGRAAA"
A = "500000000000001AAA"  # e-mail complaint, nothing done: level1-resolution breached
B = "500000000000002AAA"  # acknowledged and decided on Monday: every clock met
C = "500000000000003AAA"  # a question, not a complaint
KEY_A = f"crmsync:{A}:level1-resolution:0:breached"
SOBJECTS = f"{BASE}/composite/sobjects"


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Undo the CLI's logging configuration (its stream is closed after the run)."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WED_10)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSalesforce]:
    with fake_salesforce(clock) as started:
        yield started


@pytest.fixture
def org(fake: FakeSalesforce) -> FakeOrg:
    """The fake org holding complaints A and B and question C (stamped Monday)."""
    base = {"Origin": "Email", "OwnerId": OWNER, "Complaint_Manager__c": MANAGER}
    fake.org.seed(
        "Case",
        [
            {"Id": A, "Type": "Complaint", "CreatedDate": MON_10, "SystemModstamp": MON_10} | base,
            {
                "Id": B,
                "Type": "Complaint",
                "CreatedDate": MON_10,
                "Acknowledged_At__c": "2026-03-02T10:30:00.000+0000",
                "Decision_At__c": MON_11,
                "SystemModstamp": MON_11,
            }
            | base,
            {"Id": C, "Type": "Question", "CreatedDate": MON_10, "SystemModstamp": MON_10} | base,
        ],
    )
    return fake.org


def cycle_for(crm: SalesforceCrm, state: MemoryStateStore | None = None) -> SyncCycle:
    store = state or MemoryStateStore()
    store.migrate()
    return SyncCycle(crm=crm, state=store, charter=ASTON, mapping=MAPPING, profile="sf")


def tasks(org: FakeOrg) -> dict[str, dict[str, Any]]:
    return {t["CrmSync_Key__c"]: t for t in org.all("Task") if t.get("CrmSync_Key__c")}


def requests_to(org: FakeOrg, method: str, part: str) -> int:
    return sum(1 for m, path, _billed in org.log if m == method and part in path)


# --------------------------------------------------------------------------- a clean cycle


def test_cycle_writes_flags_and_one_follow_up_through_the_api(org: FakeOrg) -> None:
    """A cycle flags A breached and B met, creates A's level-1 follow-up, leaves the question
    alone and moves the watermark to the org's clock, in three billed calls."""
    crm = session_client(org)
    cycle = cycle_for(crm)
    report = cycle.run()

    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 2, 1)
    a, b, c = org.get("Case", A), org.get("Case", B), org.get("Case", C)
    assert (a["Charter_Status__c"], a["Charter_Breaches__c"]) == ("breached", "level1-resolution")
    assert a["Charter_Next_Due__c"] == "2026-03-04T17:00:00.000+0000"  # email-reply, Wed 17:00
    assert a["Charter_Checked_At__c"] == "2026-03-04T10:00:00.000+0000"
    assert b["Charter_Status__c"] == "met"
    assert "Charter_Breaches__c" not in b  # empty text is stored as null
    assert "Charter_Next_Due__c" not in b
    assert "Charter_Status__c" not in c
    [task] = tasks(org).values()
    assert task["CrmSync_Key__c"] == KEY_A
    assert (task["WhatId"], task["OwnerId"]) == (A, MANAGER)  # breached: to the manager
    assert (task["Status"], task["Priority"], task["Type"]) == (
        "Not Started",
        "High",
        "Charter Follow-up",
    )
    assert task["ActivityDate"] == "2026-03-03"  # due Tue 17:00 local
    assert cycle.state.get_watermark("sf", COMPLAINTS_WATERMARK) == WED_10
    # billed: changed Tasks, Status history and Cases (one Composite), the two new cases'
    # Tasks and Status history (one Composite), and the page's writes (one Composite: the
    # task create, then the two flag updates, one Collections subrequest each)
    assert org.billed() == 3
    assert sum(1 for m, path, _ in org.log if m == "POST" and path.endswith("/composite")) == 3
    assert org.composite_log[-1] == [("POST", SOBJECTS), ("PATCH", SOBJECTS)]
    assert [path for _m, path, _b in org.log if path == SOBJECTS] == []  # none alone
    assert report.crm_calls == 3 + 1  # plus the unbilled Versions call for the clock


# --------------------------------------------------------------------------- faults


def test_a_503_mid_cycle_is_retried_and_the_cycle_succeeds(org: FakeOrg) -> None:
    """One 503 on the first write is retried by the policy (logged), nothing is duplicated."""
    org.fail_next("/composite", status=503, method="POST", carrying=[A])  # the page's writes
    crm = session_client(org)
    with capture_logs() as logs:
        report = cycle_for(crm).run()
    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 2, 1)
    assert list(tasks(org)) == [KEY_A]
    # two Composite calls of reads, then the writes' Composite twice (503, then success);
    # only the second was answered, so the create and the updates were each made once
    assert requests_to(org, "POST", "/composite") == 2 + 2
    assert org.composite_log[2:] == [[("POST", SOBJECTS), ("PATCH", SOBJECTS)]]
    failed = [e for e in logs if e["event"] == "crm_attempt_failed"]
    assert [(e["attempt"], e["transient"], e["retrying"], e["status"]) for e in failed] == [
        (1, True, True, 503)
    ]


def test_a_query_subrequest_that_fails_alone_is_fetched_again_on_its_own(org: FakeOrg) -> None:
    """The Composite call carrying the first pulls answers 200, but one query subrequest in
    it answers 503: that page alone is fetched again (one more billed call), the cycle ends
    as a clean one would, and the retry is logged."""
    org.fail_next("/queryAll", status=503, inside_composite=True)
    with capture_logs() as logs:
        report = cycle_for(session_client(org)).run()
    assert (report.status, report.flags_written, report.tasks_created) == ("ok", 2, 1)
    assert org.get("Case", A)["Charter_Status__c"] == "breached"
    assert list(tasks(org)) == [KEY_A]
    assert org.billed() == 3 + 1  # the clean cycle's three, plus the page fetched again
    assert requests_to(org, "GET", "/queryAll") == 1  # that page (the related reads: Composite)
    [retry] = [e for e in logs if e["event"] == "sf_subrequest_retry"]
    assert (retry["status"], retry["code"]) == (503, "SERVER_UNAVAILABLE")


def test_a_query_subrequest_that_keeps_failing_ends_the_cycle_and_keeps_state(
    org: FakeOrg,
) -> None:
    """When the page fetched again fails through every attempt of the retry policy too, the
    cycle ends with a transient error before any write, its watermark unmoved."""
    org.fail_next("/queryAll", status=503, inside_composite=True, times=2)
    org.fail_next("/queryAll", status=503, method="GET", times=4)  # every policy attempt
    state = MemoryStateStore()
    with pytest.raises(CrmTransientError, match="SERVER_UNAVAILABLE"):
        cycle_for(session_client(org), state).run()
    assert state.get_watermark("sf", COMPLAINTS_WATERMARK) is None
    assert recorded_runs(state, "sf")[0].status == "failed"
    assert requests_to(org, "PATCH", "/composite/sobjects") == 0
    assert tasks(org) == {}


def test_a_collections_subrequest_that_fails_alone_is_resent_for_its_records_only(
    fake: FakeSalesforce,
) -> None:
    """Of five Collections subrequests (1,000 updates) in one Composite call, the first
    answers 503: its 200 records are sent again after the Composite call and all 1,000 end
    written, none twice."""
    org = fake.org
    made = org.seed("Case", [{"Subject": "s"}] * 1000)
    org.fail_next("/composite/sobjects", status=503, inside_composite=True)
    crm = session_client(org)
    results = crm.update_records("Case", [(rid, {"Charter_Status__c": "met"}) for rid in made])
    assert [r.ref for r in results] == made
    assert all(r.ok and not r.transient for r in results)
    assert {c["Charter_Status__c"] for c in org.all("Case")} == {"met"}
    assert crm.calls.by_kind["write"] == 2  # the Composite call, then the 200 on their own
    assert requests_to(org, "PATCH", "/composite/sobjects") == 1


def test_collections_subrequests_that_keep_failing_are_transient_failures_per_record(
    fake: FakeSalesforce,
) -> None:
    """Two of five Collections subrequests fail in the first Composite call and again in
    every record-retry round (each round resends the 400 records as two subrequests of one
    Composite call): each of those records is reported as a transient failure carrying the
    org's code, the other 600 are written, and nothing is sent after the last round."""
    org = fake.org
    made = org.seed("Case", [{"Subject": "s"}] * 1000)
    rounds = 1 + NO_WAIT.record_retries
    org.fail_next(  # the subrequests carrying the first and the second 200 records
        "/composite/sobjects",
        status=503,
        inside_composite=True,
        times=2 * rounds,
        carrying=(made[0], made[200]),
    )
    crm = session_client(org)
    results = crm.update_records("Case", [(rid, {"Charter_Status__c": "met"}) for rid in made])
    failed = [r for r in results if not r.ok]
    assert [r.ref for r in failed] == made[:400]
    assert {(r.transient, r.error_code) for r in failed} == {(True, "SERVER_UNAVAILABLE")}
    assert all(org.get("Case", rid).get("Charter_Status__c") == "met" for rid in made[400:])
    assert all("Charter_Status__c" not in org.get("Case", rid) for rid in made[:400])
    assert crm.calls.by_kind["write"] == rounds


def test_a_record_lock_is_retried_for_that_record_only(org: FakeOrg) -> None:
    """UNABLE_TO_LOCK_ROW on one record of a write is resent for that record and succeeds."""
    org.lock(A, times=1)
    report = cycle_for(session_client(org)).run()
    assert (report.status, report.flags_written) == ("ok", 2)
    assert org.get("Case", A)["Charter_Status__c"] == "breached"
    # the page's writes in one Composite (the task create, the two flag updates), then A's
    # update again alone, as one Collections request
    assert org.composite_log[-1] == [("POST", SOBJECTS), ("PATCH", SOBJECTS)]
    assert requests_to(org, "POST", "/composite/sobjects") == 0
    assert requests_to(org, "PATCH", "/composite/sobjects") == 1


def test_a_lock_that_outlasts_the_retries_is_a_transient_failure(
    org: FakeOrg, clock: ManualClock
) -> None:
    """A record locked through all rounds is reported transient, holds the watermark at its
    stamp, and is written by the next cycle."""
    org.lock(A, times=4)  # the first write and its 3 record retries
    state = MemoryStateStore()
    cycle = cycle_for(session_client(org), state)
    report = cycle.run()
    assert report.status == "partial"
    [error] = report.errors
    assert (error.kind, error.record_id, error.transient) == ("flags", A, True)
    assert error.message.startswith("UNABLE_TO_LOCK_ROW")
    assert "Charter_Status__c" not in org.get("Case", A)
    assert org.get("Case", B)["Charter_Status__c"] == "met"
    assert state.get_watermark("sf", COMPLAINTS_WATERMARK) == datetime(2026, 3, 2, 10, tzinfo=UTC)

    clock.now += timedelta(minutes=10)
    again = cycle.run()
    assert (again.status, again.errors) == ("ok", [])
    assert org.get("Case", A)["Charter_Status__c"] == "breached"
    assert list(tasks(org)) == [KEY_A]  # no second task


def test_a_permanent_record_error_is_kept_with_id_field_and_message(org: FakeOrg) -> None:
    """A validation rule refusing A's flags is a failure naming A, the field and the message,
    and the watermark stays at A's stamp, not past it."""
    org.reject(
        A,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Charter status is locked by an approval",
        ("Charter_Status__c",),
    )
    state = MemoryStateStore()
    report = cycle_for(session_client(org), state).run()
    assert report.status == "partial"
    [error] = report.errors
    assert (error.kind, error.record_id, error.field, error.transient) == (
        "flags",
        A,
        "Charter_Status__c",
        False,
    )
    assert error.message == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: Charter status is locked by an approval"
    )
    assert org.get("Case", B)["Charter_Status__c"] == "met"
    assert state.get_watermark("sf", COMPLAINTS_WATERMARK) == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_a_follow_up_refused_for_good_is_tried_again_until_made_once(
    org: FakeOrg, clock: ManualClock
) -> None:
    """A's breached follow-up goes to its complaint manager, who left
    (INACTIVE_OWNER_OR_USER): every cycle tries it again and ends partial naming it, until
    staff give A another manager; then it is made, once, and later cycles are clean."""
    org.inactive_users.add(MANAGER)
    state = MemoryStateStore()
    cycle = cycle_for(session_client(org), state)
    first = cycle.run()
    assert first.status == "partial"
    assert [(e.kind, e.record_id, e.transient) for e in first.errors] == [("task", KEY_A, False)]
    assert first.errors[0].message.startswith("INACTIVE_OWNER_OR_USER: ")
    assert ledger(state, "sf", [A])[KEY_A].status == "failed"
    assert tasks(org) == {}

    clock.now += timedelta(minutes=10)
    second = cycle.run()  # nothing changed in the CRM: still tried, still reported
    assert second.status == "partial"
    assert [(e.kind, e.record_id) for e in second.errors] == [("task", KEY_A)]
    assert tasks(org) == {}

    clock.now += timedelta(minutes=10)
    org.touch("Case", A, Complaint_Manager__c=OWNER)
    clock.now += timedelta(minutes=10)
    third = cycle.run()
    assert (third.status, third.errors, third.tasks_created) == ("ok", [], 1)
    assert tasks(org)[KEY_A]["OwnerId"] == OWNER
    assert ledger(state, "sf", [A])[KEY_A].status == "done"

    clock.now += timedelta(minutes=10)
    fourth = cycle.run()
    assert (fourth.status, fourth.errors, fourth.tasks_created) == ("ok", [], 0)
    assert list(tasks(org)) == [KEY_A]


def test_a_case_deleted_in_the_org_is_forgotten_from_its_recycle_bin(
    org: FakeOrg, clock: ManualClock
) -> None:
    """A is deleted in the org (recycle bin): the next cycle's queryAll names it, A leaves
    the state store with no error and no write; the deletion pull rode in the same
    Composite call as the other first pages: the whole cycle is that one billed call."""
    state = MemoryStateStore()
    cycle = cycle_for(session_client(org), state)
    assert cycle.run().status == "ok"
    clock.now += timedelta(minutes=10)
    org.delete("Case", [A])
    clock.now += timedelta(minutes=10)
    before = len(org.log)
    report = cycle.run()
    billed = [(method, path) for method, path, paid in org.log[before:] if paid]
    assert (report.status, report.errors, report.complaints_deleted) == ("ok", [], 1)
    assert (report.flags_written, report.tasks_created) == (0, 0)
    assert list(state.get_complaints("sf", [A, B])) == [B]
    assert billed == [("POST", "/services/data/v62.0/composite")]  # every first page at once
    assert org.get("Case", A)["IsDeleted"] is True


def test_a_case_deleted_before_the_pull_window_gets_no_follow_up_when_it_falls_due(
    org: FakeOrg, clock: ManualClock
) -> None:
    """A is deleted with a stamp before the next pull's window (the recycle bin no longer
    names it to that pull). At 17:30 A's e-mail reply falls due (breached at 17:00): before
    creating that follow-up the cycle reads A by id, finds it gone, and forgets it; no
    task, no error."""
    state = MemoryStateStore()
    cycle = cycle_for(session_client(org), state)
    first = cycle.run()
    assert list(tasks(org)) == [KEY_A]
    org.touch("Case", A, IsDeleted=True, SystemModstamp="2026-03-04T09:00:00.000+0000")
    clock.now = WED_10 + timedelta(hours=7, minutes=30)
    with capture_logs() as logs:
        report = cycle.run()
    assert first.status == "ok"
    assert (report.status, report.errors, report.complaints_deleted) == ("ok", [], 1)
    assert (report.tasks_created, report.flags_written) == (0, 0)
    assert list(tasks(org)) == [KEY_A]
    assert [(e["record_id"], e["seen_by"]) for e in logs if e["event"] == "complaint_deleted"] == [
        (A, "read")
    ]
    assert list(state.get_complaints("sf", [A, B])) == [B]


def test_request_limit_exceeded_ends_the_cycle_and_keeps_state(
    org: FakeOrg, clock: ManualClock
) -> None:
    """REQUEST_LIMIT_EXCEEDED on the first write ends the cycle with CrmLimitError, the
    watermark unmoved and the follow-up still planned; the next cycle finishes it once."""
    org.fail_next(  # the Composite call carrying the page's writes
        "/composite",
        status=403,
        code="REQUEST_LIMIT_EXCEEDED",
        message="TotalRequests",
        method="POST",
        carrying=[A],
    )
    state = MemoryStateStore()
    cycle = cycle_for(session_client(org), state)
    with pytest.raises(CrmLimitError, match="REQUEST_LIMIT_EXCEEDED"):
        cycle.run()
    assert state.get_watermark("sf", COMPLAINTS_WATERMARK) is None
    assert recorded_runs(state, "sf")[0].status == "failed"
    assert ledger(state, "sf", [A])[KEY_A].status == "planned"
    assert tasks(org) == {}
    assert requests_to(org, "POST", "/composite") == 2 + 1  # two of reads, the writes' once

    clock.now += timedelta(minutes=10)
    report = cycle.run()
    assert (report.status, report.tasks_created) == ("ok", 1)
    assert list(tasks(org)) == [KEY_A]
    assert ledger(state, "sf", [A])[KEY_A].status == "done"


def test_the_budget_share_stops_the_cycle_before_the_org_limit(org: FakeOrg) -> None:
    """With 498 of 1,000 daily calls used and a 0.5 share, the adapter sends two billed
    requests (the pulls, the related Tasks: 500 = 0.5 x 1,000) and refuses the third (the
    page's writes: the create and the flag updates) before sending it."""
    org.api_limit, org.api_used = 1000, 498
    state = MemoryStateStore()
    crm = session_client(org, budget_share=0.5)
    with pytest.raises(CrmLimitError, match="used 500 of its 1000"):
        cycle_for(crm, state).run()
    assert org.api_used == 500
    assert crm.api_usage == (500, 1000)
    assert requests_to(org, "POST", "/composite") == 2  # the reads; no write sent
    assert tasks(org) == {}
    assert "Charter_Status__c" not in org.get("Case", A)
    assert state.get_watermark("sf", COMPLAINTS_WATERMARK) is None


def test_an_expired_session_is_renewed_once_and_the_request_resent(
    org: FakeOrg, tmp_path: Path, clock: ManualClock
) -> None:
    """In JWT mode a 401 INVALID_SESSION_ID mid-run logs in again once and carries on."""
    crm = client(jwt_credentials(org, tmp_path))
    cycle = cycle_for(crm)
    assert cycle.run().status == "ok"
    org.expire_sessions()
    clock.now += timedelta(minutes=10)
    assert cycle.run().status == "ok"
    assert crm.auth.logins == 2
    assert crm.calls.by_kind["login"] == 2


def test_an_expired_session_in_session_mode_is_an_auth_error(org: FakeOrg) -> None:
    """A given session id cannot be renewed: the 401 becomes CrmAuthError, without the id."""
    crm = session_client(org)
    token = crm.auth.token
    org.expire_sessions()
    with pytest.raises(CrmAuthError) as caught:
        cycle_for(crm).run()
    assert token is not None
    assert token not in str(caught.value)


# --------------------------------------------------------------------------- auth modes


def rsa_pair(tmp_path: Path, name: str = "server.key") -> tuple[Path, bytes]:
    """A throwaway RSA key: the private key written as PEM, the public key's PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


def jwt_credentials(org: FakeOrg, tmp_path: Path) -> SalesforceCredentials:
    key_file, public = rsa_pair(tmp_path)
    org.jwt_apps["3MVG9-consumer"] = (public, "worker@example.com")
    return SalesforceCredentials(
        mode="jwt",
        login_url=LOGIN,
        consumer_key="3MVG9-consumer",
        private_key_file=key_file,
        username="worker@example.com",
        api_version=API,
    )


def test_jwt_bearer_login_signs_with_the_private_key(org: FakeOrg, tmp_path: Path) -> None:
    """JWT mode posts an RS256 assertion the org verifies with the app's public key."""
    crm = client(jwt_credentials(org, tmp_path))
    assert "Subject" in crm.describe("Case")
    assert crm.auth.instance_url == INSTANCE
    [form] = org.received_forms
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]


def test_jwt_signed_with_another_key_is_refused(org: FakeOrg, tmp_path: Path) -> None:
    """An assertion the app's certificate does not verify is CrmAuthError invalid_grant."""
    credentials = jwt_credentials(org, tmp_path)
    _other_file, other_public = rsa_pair(tmp_path, "other.key")
    org.jwt_apps["3MVG9-consumer"] = (other_public, "worker@example.com")
    with pytest.raises(CrmAuthError, match="invalid_grant"):
        client(credentials).describe("Case")


def test_password_login_through_simple_salesforce(org: FakeOrg) -> None:
    """Password mode logs in with password + security token (SOAP) and uses the session."""
    org.password_users["worker@example.com"] = ("s3cret-Pass", "TOKEN123")
    crm = client(
        SalesforceCredentials(
            mode="password",
            login_url=LOGIN,
            username="worker@example.com",
            password=SecretStr("s3cret-Pass"),
            security_token=SecretStr("TOKEN123"),
            api_version=API,
        )
    )
    assert "CrmSync_Key__c" in crm.describe("Task")
    assert crm.auth.instance_url == INSTANCE
    assert crm.auth.logins == 1


def test_client_credentials_login(org: FakeOrg) -> None:
    """Client-credentials mode exchanges key and secret for a session."""
    org.client_apps["3MVG9-cc"] = "cc-secret-value"
    crm = client(
        SalesforceCredentials(
            mode="client_credentials",
            login_url=LOGIN,
            consumer_key="3MVG9-cc",
            consumer_secret=SecretStr("cc-secret-value"),
            api_version=API,
        )
    )
    records = list(
        crm.changed_records(
            "Case", ["Type"], since=None, until=WED_10, where=[FieldFilter("Type", "=", "Question")]
        )
    )
    assert [r.id for r in records] == [C]


def test_no_secret_reaches_a_log_line_or_an_error_message(org: FakeOrg, tmp_path: Path) -> None:
    """Refused logins, a renewal and a full cycle log and raise nothing holding a secret."""
    secrets = ["s3cret-Pass", "TOKEN123", "cc-secret-value", "wrong-pass", "s3cret-PassTOKEN123"]
    org.password_users["worker@example.com"] = ("s3cret-Pass", "TOKEN123")
    org.client_apps["3MVG9-cc"] = "cc-secret-value"
    messages: list[str] = []
    with capture_logs() as logs:
        for mode, extra in (
            (
                "password",
                {"password": SecretStr("wrong-pass"), "security_token": SecretStr("TOKEN123")},
            ),
            ("client_credentials", {"consumer_secret": SecretStr("wrong-pass")}),
        ):
            bad = SalesforceCredentials(
                mode=mode,  # type: ignore[arg-type]
                login_url=LOGIN,
                username="worker@example.com",
                consumer_key="3MVG9-cc",
                api_version=API,
                **extra,  # type: ignore[arg-type]
            )
            with pytest.raises(CrmAuthError) as caught:
                client(bad).describe("Case")
            messages.append(str(caught.value))
        good = client(
            SalesforceCredentials(
                mode="password",
                login_url=LOGIN,
                username="worker@example.com",
                password=SecretStr("s3cret-Pass"),
                security_token=SecretStr("TOKEN123"),
                api_version=API,
            )
        )
        cycle_for(good).run()
        session = good.auth.token
        org.expire_sessions()
        good.describe("Case")
        secrets.append(str(session))
        secrets.append(str(good.auth.token))
    text = "\n".join(messages + [repr(e) for e in logs])
    assert logs  # something was logged
    assert [s for s in secrets if s in text] == []


# --------------------------------------------------------------------------- volume paths


def test_bulk_query_past_the_threshold_streams_records_in_order(fake: FakeSalesforce) -> None:
    """When the first page's totalSize is past bulk_threshold, the pull runs a Bulk API 2.0
    job and still yields records ordered by (SystemModstamp, Id), typed as REST types them."""
    org = fake.org
    # stamps 09:00:00.000 + (i % 7) s: seven stamps shared out, ties broken by Id
    rows = [
        {
            "Id": f"5000000000{i:05d}AAA",
            "Type": "Complaint",
            "Complaint_Level__c": 2.0,
            "SystemModstamp": f"2026-03-02T09:00:0{i % 7}.000+0000",
        }
        for i in range(2100)
    ]
    org.seed("Case", rows)
    expected = [r["Id"] for r in sorted(rows, key=lambda r: (r["SystemModstamp"], r["Id"]))]
    crm = session_client(org, bulk_threshold=2000)
    got = list(crm.changed_records("Case", ["Complaint_Level__c"], since=None, until=WED_10))
    assert [r.id for r in got] == expected
    assert {r.fields["Complaint_Level__c"] for r in got} == {2.0}
    assert got[0].fields["SystemModstamp"] == "2026-03-02T09:00:00.000+0000"
    assert requests_to(org, "POST", "/jobs/query") == 1
    assert requests_to(org, "GET", "/queryAll") == 1  # the first page, read for its totalSize
    assert requests_to(org, "GET", f"{BASE}/query/") == 0  # no REST page after it


def test_a_window_that_fits_one_page_never_starts_a_bulk_job(fake: FakeSalesforce) -> None:
    """Below the threshold, or when the first page holds everything, one REST call does."""
    fake.org.seed("Case", [{"Type": "Complaint"}] * 30)
    crm = session_client(fake.org, bulk_threshold=10)
    later = WED_10 + timedelta(seconds=1)  # seeded at WED_10; until is exclusive
    assert len(list(crm.changed_records("Case", [], since=None, until=later))) == 30
    assert crm.calls.by_kind == {"query": 1}


def test_a_cycle_with_nothing_changed_costs_one_billed_call(
    org: FakeOrg, clock: ManualClock
) -> None:
    """Once the echo of a cycle's writes is read back, a cycle with nothing new sends the
    related-change and complaint pulls together: one billed call (and the free clock)."""
    crm = session_client(org)
    cycle = cycle_for(crm)
    cycle.run()
    for _ in ("echo of the writes", "nothing at all"):
        clock.now += timedelta(minutes=10)
        before = org.billed()
        report = cycle.run()
    assert (report.records_read, report.complaints_evaluated) == (0, 0)
    assert org.billed() - before == 1
    assert report.crm_calls == 2


def test_writes_pack_five_collections_into_one_composite_call(fake: FakeSalesforce) -> None:
    """1,000 updates cost one write call (5 x 200 in a Composite); 1,001 cost two."""
    org = fake.org
    made = org.seed("Case", [{"Subject": "s"}] * 1001)
    crm = session_client(org)
    results = crm.update_records(
        "Case", [(rid, {"Charter_Status__c": "met"}) for rid in made[:1000]]
    )
    assert all(r.ok for r in results)
    assert crm.calls.by_kind["write"] == 1
    results = crm.update_records("Case", [(rid, {"Charter_Status__c": "at_risk"}) for rid in made])
    assert all(r.ok for r in results)
    assert crm.calls.by_kind["write"] == 1 + 2
    assert {c["Charter_Status__c"] for c in org.all("Case")} == {"at_risk"}


# --------------------------------------------------------------------------- wiring


def test_build_crm_names_the_settings_a_mode_lacks() -> None:
    """CRMSYNC_CRM=salesforce in JWT mode without key file and user names both settings,
    never a secret's value."""
    settings = settings_model()(
        crm="salesforce",
        sf_auth="jwt",
        sf_consumer_key="3MVG9-consumer",
        sf_password=SecretStr("hunter2-secret"),
    )
    with pytest.raises(ConfigError) as caught:
        build_crm(settings)
    assert str(caught.value) == (
        "CRMSYNC_SF_AUTH=jwt needs CRMSYNC_SF_PRIVATE_KEY_FILE, CRMSYNC_SF_USERNAME (not set)"
    )


def test_build_crm_wires_the_salesforce_settings(org: FakeOrg) -> None:
    """Timeout, API version, budget share and bulk threshold reach the adapter."""
    settings = settings_model()(
        crm="salesforce",
        sf_auth="session",
        sf_instance_url=INSTANCE,
        sf_session_id=SecretStr(org.issue_session()),
        sf_api_version=API,
        sf_timeout=12,
        sf_api_budget_share=0.3,
        sf_bulk_threshold=500,
    )
    crm = build_crm(settings)
    assert isinstance(crm, SalesforceCrm)
    assert (crm.api_version, crm.budget_share, crm.bulk_threshold) == (API, 0.3, 500)
    assert crm.session.default_timeout == 12  # type: ignore[attr-defined]
    assert "Id" in crm.describe("Case")


def test_check_online_through_the_cli(
    org: FakeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`crmsync check --online` describes Case and Task on the org and lists every problem."""
    monkeypatch.chdir(ROOT)
    env = {
        "CRMSYNC_CRM": "salesforce",
        "CRMSYNC_SF_AUTH": "session",
        "CRMSYNC_SF_INSTANCE_URL": INSTANCE,
        "CRMSYNC_SF_SESSION_ID": org.issue_session(),
        "CRMSYNC_SF_API_VERSION": API,
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
    }
    args = [
        "check",
        "--online",
        "mappings/charters/aston.yaml",
        "--mapping",
        "mappings/salesforce.yaml",
    ]
    ok = CliRunner().invoke(app, args, env=env)
    assert ok.exit_code == 0, ok.stderr
    assert "against the salesforce CRM" in ok.stdout

    del org.schema["Case"]["fields"]["Decision_At__c"]
    org.schema["Task"]["fields"]["CrmSync_Key__c"]["unique"] = False
    bad = CliRunner().invoke(app, args, env=env)
    assert bad.exit_code == 2
    lines = [line for line in bad.stderr.splitlines() if "salesforce CRM:" in line]
    assert lines == [
        "mappings/salesforce.yaml: salesforce CRM: Case.Decision_At__c: missing or hidden from "
        "the integration user (used as read, event decision): create it with `crmsync "
        "salesforce deploy` (or `sf project deploy start --source-dir salesforce`) and assign "
        "the permission set CrmSync_Integration to the integration user",
        "mappings/salesforce.yaml: salesforce CRM: Task.CrmSync_Key__c: must be a unique "
        "external id (external_id, follow-up key); it is not unique",
    ]


def test_a_key_file_that_is_not_a_key_is_a_config_error(org: FakeOrg, tmp_path: Path) -> None:
    """JWT mode with a PEM that is not an RSA private key names the setting and the file."""
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    credentials = SalesforceCredentials(
        mode="jwt",
        login_url=LOGIN,
        consumer_key="3MVG9-consumer",
        private_key_file=bad,
        username="worker@example.com",
        api_version=API,
    )
    with pytest.raises(ConfigError, match=r"CRMSYNC_SF_PRIVATE_KEY_FILE: .*not-a-key\.pem"):
        client(credentials).describe("Case")
    assert org.received_forms == []  # nothing was sent


def test_the_status_history_pauses_a_clock_through_the_api(org: FakeOrg) -> None:
    """Case A (received Monday 10:00), set to Waiting on Customer on Monday 11:00, back to
    Working on Tuesday 09:00, waiting again from Tuesday 15:00: the cycle reads the history
    (the org refuses NewValue/OldValue in a query's WHERE, so the adapter filters those rows
    itself) and, under the service-desk example, writes A paused: its first reply, due Tue
    09:00 and moved by the first pause's 7 h of opening time to Tue 16:00, waits again."""
    history = [
        ("2026-03-02T11:00:00.000+0000", "Working", "Waiting on Customer"),
        ("2026-03-03T09:00:00.000+0000", "Waiting on Customer", "Working"),
        ("2026-03-03T15:00:00.000+0000", "Working", "Waiting on Customer"),
        ("2026-03-02T10:30:00.000+0000", "New", "Working"),  # not about waiting
    ]
    org.seed(
        "CaseHistory",
        [
            {"CaseId": A, "Field": "Status", "OldValue": old, "NewValue": new, "CreatedDate": at}
            for at, old, new in history
        ],
    )
    desk = load_charter(ROOT / "mappings" / "charters" / "examples" / "service-desk.yaml")
    store = MemoryStateStore()
    store.migrate()
    cycle = SyncCycle(
        crm=session_client(org), state=store, charter=desk, mapping=MAPPING, profile="sf"
    )
    report = cycle.run()
    assert report.status == "ok"
    assert org.get("Case", A)["Charter_Status__c"] == "paused"
    assert org.get("Case", B)["Charter_Status__c"] != "paused"
    stored = store.get_complaints("sf", [A])[A]
    events = stored.canonical["events"]
    assert events["paused"] == ["2026-03-02T11:00:00Z", "2026-03-03T15:00:00Z"]
    assert events["resumed"] == ["2026-03-03T09:00:00Z"]
