"""What a cycle promises beyond one evaluation (issue 10 points 1-3, reference-org.md):
staff work is never undone, the follow-up horizon stays where the first cycle put it,
a changed charter re-evaluates every open complaint, and an unknown CRMSYNC_PROFILE is
refused in the single-profile setup.

Aston (Europe/London, GMT in March 2026): a complaint received by e-mail Mon 2 Mar 10:00
has level1-resolution due Tue 3 Mar 17:00 and email-reply due Wed 4 Mar 17:00.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from typer.testing import CliRunner

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.memory import MemoryStateStore
from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.cli import app
from crmsync.mapping.charter_file import load_charter, load_charter_text
from crmsync.mapping.field_mapping import load_mapping
from crmsync.ports import CrmPort, StateStore
from crmsync.service.sync_cycle import SyncCycle
from fakes.clock import ManualClock
from fakes.salesforce_fake import FakeOrg, fake_salesforce, session_client
from state_views import ledger

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
ASTON_FILE = ROOT / "mappings" / "charters" / "aston.yaml"
ASTON = load_charter(ASTON_FILE)
A = "500000000000001AAA"
B = "500000000000002AAA"
OWNER, MANAGER, STAFF = "005000000000OWNAAA", "005000000000MGRAAA", "005000000000STFAAA"
KEY_A = f"crmsync:{A}:level1-resolution:0:breached"
WED_10 = datetime(2026, 3, 4, 10, tzinfo=UTC)


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def case(cid: str, **fields: Any) -> dict[str, Any]:
    row = {
        "Id": cid,
        "Type": "Complaint",
        "CreatedDate": "2026-03-02T10:00:00.000+0000",
        "SystemModstamp": "2026-03-02T10:00:00.000+0000",
        "Origin": "Email",
        "OwnerId": OWNER,
        "Complaint_Manager__c": MANAGER,
    }
    row.update(fields)
    return row


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Undo the CLI's logging configuration (its stream is closed after the run)."""
    yield
    structlog.reset_defaults()


def new_state(path: Path | None = None) -> StateStore:
    store: StateStore = MemoryStateStore() if path is None else SqliteStateStore(path)
    store.migrate()
    return store


def cycle_of(crm: CrmPort, state: StateStore, **options: Any) -> SyncCycle:
    return SyncCycle(
        crm=crm, state=state, charter=options.pop("charter", ASTON), mapping=MAPPING, **options
    )


# ------------------------------------------------------------- staff work is never undone


def test_a_lost_state_store_never_undoes_staff_work_on_the_local_crm(tmp_path: Path) -> None:
    """The follow-up staff completed and re-assigned is left exactly as they left it by a
    cycle on a new, empty state store (lost, renamed profile): nothing created, nothing
    written to the task; the new ledger knows the task and a later stop completes nothing
    twice."""
    clock = ManualClock(WED_10)
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    assert all(r.ok for r in crm.insert_records("Case", [case(A)]))
    clock.now += timedelta(minutes=1)
    first = cycle_of(crm, new_state(tmp_path / "s1.sqlite3"))
    assert first.run(now=ts("2026-03-04T10:00:00+00:00")).tasks_created == 1
    [task] = [t for t in crm.export_records("Task") if t.fields.get("CrmSync_Key__c") == KEY_A]
    staff = {"Status": "Completed", "OwnerId": STAFF, "Subject": "handled by phone"}
    assert crm.update_records("Task", [(task.id, staff)])[0].ok
    clock.now += timedelta(minutes=1)
    [worked] = crm.records_by_id("Task", [task.id], [*staff, "SystemModstamp"])

    lost = new_state(tmp_path / "s2.sqlite3")
    report = cycle_of(crm, lost).run(now=ts("2026-03-04T11:00:00+00:00"))
    assert (report.status, report.tasks_created) == ("ok", 0)
    [after] = crm.records_by_id("Task", [task.id], [*staff, "SystemModstamp"])
    assert after.fields == worked.fields
    tasks = [t for t in crm.export_records("Task") if t.fields.get("CrmSync_Key__c")]
    assert [t.id for t in tasks] == [task.id]
    entry = ledger(lost, "default", [A])[KEY_A]
    assert (entry.status, entry.crm_id) == ("done", task.id)


def test_a_lost_state_store_never_undoes_staff_work_through_salesforce() -> None:
    """Through the Salesforce adapter: the create meets DUPLICATE_VALUE, the existing task
    is looked up by key (one query) and never upserted; its fields stay staff's."""
    clock = ManualClock(WED_10)
    with fake_salesforce(clock) as fake:
        org: FakeOrg = fake.org
        org.seed("Case", [case(A)])
        crm = session_client(org)
        cycle_of(crm, new_state(), profile="sf").run()
        [tid] = [t["Id"] for t in org.all("Task") if t.get("CrmSync_Key__c")]
        org.touch("Task", tid, Status="Completed", OwnerId=STAFF, Subject="handled")
        worked = org.get("Task", tid)
        before = len(org.log)
        clock.now += timedelta(minutes=5)
        report = cycle_of(session_client(org), new_state(), profile="sf").run()
        assert (report.status, report.tasks_created) == ("ok", 0)
        assert org.get("Task", tid) == worked
        assert [t["Id"] for t in org.all("Task") if t.get("CrmSync_Key__c")] == [tid]
        sent = org.log[before:]
        assert not [p for m, p, _ in sent if m == "PATCH" and "/composite/sobjects/Task" in p]
        assert [m for m, p, _ in sent if p.endswith("/composite/sobjects")].count("POST") == 1


# ------------------------------------------------------------------- the horizon


def test_the_horizon_is_set_by_the_first_cycle_and_never_moves(tmp_path: Path) -> None:
    """The first cycle stores its now minus 7 days; a later and an earlier (replayed) now
    leave it; a complaint breached before it gets its flags but no follow-up, one breached
    after it gets both."""
    clock = ManualClock(datetime(2026, 4, 1, tzinfo=UTC))
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    old = case(A)  # level1-resolution due Tue 3 Mar 17:00: before the horizon
    recent = case(
        B,
        CreatedDate="2026-03-23T10:00:00.000+0000",  # due Tue 24 Mar 17:00: after it
        SystemModstamp="2026-03-23T10:00:00.000+0000",
    )
    assert all(r.ok for r in crm.insert_records("Case", [old, recent]))
    clock.now += timedelta(minutes=1)
    state = new_state(tmp_path / "state.sqlite3")
    cycle = cycle_of(crm, state)
    first_now = ts("2026-03-25T12:00:00+00:00")
    cycle.run(now=first_now)
    stored = state.get_profile("default")
    assert stored is not None
    assert (stored.follow_up_since, stored.horizon) == (first_now - 7 * 86400,) * 2
    [a, b] = crm.records_by_id("Case", [A, B], ["Charter_Status__c"])
    assert a.fields["Charter_Status__c"] == b.fields["Charter_Status__c"] == "breached"
    keys = sorted(t.fields["CrmSync_Key__c"] for t in crm.export_records("Task"))
    assert [k.split(":")[1] for k in keys] == [B] * len(keys)
    assert f"crmsync:{B}:level1-resolution:0:breached" in keys
    for now in ("2026-03-30T12:00:00+00:00", "2026-03-20T12:00:00+00:00"):
        clock.now += timedelta(minutes=1)
        cycle.run(now=ts(now))
        assert state.get_profile("default") == stored.__class__(
            "default", stored.follow_up_since, stored.horizon, stored.charter_hash,
            stored.mapping_hash, ts(now),
        )  # fmt: skip


# ------------------------------------------------------------- a changed charter


def test_a_changed_charter_is_logged_and_every_open_complaint_evaluated_again(
    tmp_path: Path,
) -> None:
    """A cycle under a charter whose content changed logs it and evaluates every open stored
    complaint again at once, with nothing changed on the records (a dry run shows the same
    and records nothing); the next cycle evaluates none."""
    clock = ManualClock(WED_10)
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    assert all(r.ok for r in crm.insert_records("Case", [case(A), case(B)]))
    clock.now += timedelta(minutes=1)
    state = new_state(tmp_path / "state.sqlite3")
    now = ts("2026-03-04T10:00:00+00:00")
    cycle_of(crm, state).run(now=now)
    clock.now += timedelta(minutes=1)
    assert cycle_of(crm, state).run(now=now).complaints_evaluated == 0

    stricter = ASTON_FILE.read_text(encoding="utf-8").replace(
        "target: 2 business_days", "target: 1 business_days", 1
    )
    changed = load_charter_text(stricter, str(ASTON_FILE))
    assert changed.content_hash != ASTON.content_hash
    clock.now += timedelta(minutes=1)
    dry = cycle_of(crm, state, charter=changed).run(now=now, dry_run=True)
    assert dry.complaints_evaluated == 2  # a dry run shows it, and records nothing
    assert state.get_profile("default").charter_hash == ASTON.content_hash  # type: ignore[union-attr]
    with capture_logs() as logs:
        report = cycle_of(crm, state, charter=changed).run(now=now)
    assert report.complaints_evaluated == 2
    [event] = [e for e in logs if e["event"] == "profile_configuration_changed"]
    assert event["changed"] == ["charter"]
    assert event["log_level"] == "warning"
    clock.now += timedelta(minutes=1)
    assert cycle_of(crm, state, charter=changed).run(now=now).complaints_evaluated == 0


# ----------------------------------------------------- an unknown profile is refused


def test_an_unknown_profile_is_refused_naming_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a cycle of 'default', a mistyped CRMSYNC_PROFILE is refused by sync --once and
    run with exit 2 naming 'default' and --new-profile, writing nothing; --new-profile
    starts it."""
    for name in list(os.environ):
        if name.startswith("CRMSYNC_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    crm = LocalCrm(data / "local-crm.sqlite3")
    assert all(r.ok for r in crm.insert_records("Case", [case(A)]))
    crm.close()
    env = {
        "CRMSYNC_DATA_DIR": str(data),
        "CRMSYNC_CHARTER": str(ASTON_FILE),
        "CRMSYNC_MAPPING": str(ROOT / "mappings" / "salesforce.yaml"),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
        "CRMSYNC_LOG_FORMAT": "json",
        "CRMSYNC_HTTP_PORT": "0",
    }
    runner = CliRunner()
    first = runner.invoke(app, ["sync", "--once", "--json"], env=env)
    assert first.exit_code == 0, first.stderr
    typo = {**env, "CRMSYNC_PROFILE": "defualt"}
    for command in (["sync", "--once", "--json"], ["run"]):
        refused = runner.invoke(app, command, env=typo)
        assert refused.exit_code == 2, refused.output
        assert "'defualt'" in refused.stderr
        assert "'default'" in refused.stderr
        assert "--new-profile" in refused.stderr
    store = SqliteStateStore(data / "state.sqlite3")
    store.migrate()
    assert store.known_profiles() == ["default"]
    store.close()
    started = runner.invoke(app, ["sync", "--once", "--json", "--new-profile"], env=typo)
    assert started.exit_code == 0, started.stderr


# ------------------------------------------- a state that no longer holds (extensions)


def test_a_breached_follow_up_is_completed_when_an_extension_moves_the_deadline(
    tmp_path: Path,
) -> None:
    """Housing Ombudsman: stage1-response (10 working days from the acknowledgement, Mon 2
    Mar 10:00 -> Mon 16 Mar 17:00) is breached on Wed 18 Mar and gets its follow-up; an
    extension notified on Fri 13 Mar, entered afterwards, moves the deadline 10 working days
    on: the clock runs again, the flags say so and the breached follow-up is completed."""
    charter = load_charter(ROOT / "mappings" / "charters" / "housing-ombudsman.yaml")
    clock = ManualClock(datetime(2026, 3, 18, 12, tzinfo=UTC))
    crm = LocalCrm(tmp_path / "crm.sqlite3", clock=clock)
    row = case(A, Acknowledged_At__c="2026-03-02T10:00:00.000+0000")
    assert all(r.ok for r in crm.insert_records("Case", [row]))
    clock.now += timedelta(minutes=1)
    state = new_state(tmp_path / "state.sqlite3")
    key = f"crmsync:{A}:stage1-response:0:breached"
    first = cycle_of(crm, state, charter=charter).run(now=ts("2026-03-18T12:00:00+00:00"))
    assert first.tasks_created == 1
    [task] = [t for t in crm.export_records("Task") if t.fields.get("CrmSync_Key__c") == key]
    assert task.fields["Status"] == "Not Started"

    update = {"Extension_Notified_At__c": "2026-03-13T12:00:00.000+0000"}
    assert crm.update_records("Case", [(A, update)])[0].ok
    clock.now += timedelta(minutes=1)
    later = cycle_of(crm, state, charter=charter).run(now=ts("2026-03-18T13:00:00+00:00"))
    assert (later.tasks_completed, later.tasks_created) == (1, 0)
    [after] = crm.records_by_id("Task", [task.id], ["Status"])
    assert after.fields["Status"] == "Completed"
    [flags] = crm.records_by_id("Case", [A], ["Charter_Status__c", "Charter_Next_Due__c"])
    assert flags.fields["Charter_Status__c"] == "on_track"
    # Mon 30 Mar 17:00 local is 16:00 UTC: British Summer Time began on Sunday 29 Mar
    assert flags.fields["Charter_Next_Due__c"].startswith("2026-03-30T16:00:00")
