"""`crmsync sync --once` through the Dataverse adapter against the fake org (its sign-in
replaced by the fake's): bad answers from the org are one clear line and an exit status,
never a traceback, and no follow-up is lost or made twice by the cycles after."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from crmsync.adapters.crm import dynamics365_wiring
from crmsync.cli import app
from fakes.clock import ManualClock
from fakes.dynamics365_fake import FakeDataverse, FakeDataverseServer, dataverse_client

ROOT = Path(__file__).resolve().parents[2]
MON_10 = "2026-03-02T10:00:00.000Z"
OWNER = "00000000-0000-0000-0000-0000000000a1"
A = "00000000-0000-0000-0000-000000000001"
B = "00000000-0000-0000-0000-000000000002"
KEYS = [f"crmsync:{c}:level1-resolution:0:breached" for c in (A, B)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))


@pytest.fixture
def org(
    clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeDataverse]:
    with FakeDataverseServer(clock) as server:
        server.org.seed(
            "incident",
            [
                {
                    "incidentid": complaint,
                    "casetypecode": 100000000,
                    "caseorigincode": 2,
                    "createdon": MON_10,
                    "modifiedon": MON_10,
                    "ownerid": OWNER,
                    "new_complaintmanager": OWNER,
                }
                for complaint in (A, B)
            ]
            + [{"casetypecode": 2, "title": f"other {n}"} for n in range(3)],
        )  # two complaints: pages of one row make a nextLink
        monkeypatch.setattr(
            dynamics365_wiring,
            "build_dataverse",
            lambda _s: dataverse_client(server.org, page_size=1),
        )
        monkeypatch.setenv("CRMSYNC_CRM", "dynamics365")
        monkeypatch.setenv("CRMSYNC_MAPPING", str(ROOT / "mappings" / "dynamics365.yaml"))
        monkeypatch.setenv("CRMSYNC_CHARTER", str(ROOT / "mappings" / "charters" / "aston.yaml"))
        monkeypatch.setenv("CRMSYNC_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("CRMSYNC_CONFIG", str(tmp_path / "no-crmsync.toml"))
        monkeypatch.setenv("CRMSYNC_LOG_FORMAT", "json")
        yield server.org


def sync() -> Result:
    return CliRunner().invoke(app, ["sync", "--once", "--new-profile"])


def follow_ups(org: FakeDataverse) -> list[str]:
    return sorted(t["crmsync_key"] for t in org.all("task") if t["crmsync_key"])


def one_line_failure(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert text in " ".join(result.stderr.split())


def test_a_foreign_next_link_fails_the_cycle_then_the_next_makes_the_follow_up_once(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """A nextLink to another host: exit 1 naming it; once the org answers well, one
    follow-up, and none more after."""
    org.foreign_next_link = "https://attacker.example.net"
    one_line_failure(sync(), 1, "attacker.example.net outside the org's Web API")
    assert follow_ups(org) == []
    org.foreign_next_link = None
    for _ in range(2):
        clock.advance(minutes=10)
        assert sync().exit_code == 0
    assert follow_ups(org) == KEYS


def test_a_throttle_longer_than_the_policy_waits_is_one_line_and_loses_nothing(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """The first $batch answers 429 asking for ten minutes: exit 1 naming the wait; the next
    cycle writes the follow-up once."""
    org.throttle(times=1, retry_after=600, path="$batch")
    one_line_failure(sync(), 1, "asks to wait 600 s")
    assert follow_ups(org) == []
    clock.advance(minutes=10)
    assert sync().exit_code == 0
    assert follow_ups(org) == KEYS


def test_a_batch_throttled_past_every_attempt_is_one_line_and_costs_no_follow_up(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """The org answers 429 to every $batch, more times than the policy tries: exit 1; the
    next cycles make each follow-up once."""
    org.throttle(times=50, retry_after=0, path="$batch")
    one_line_failure(sync(), 1, "cycle failed: ")
    assert follow_ups(org) == []
    org.throttles.clear()
    clock.advance(minutes=10)
    assert sync().exit_code == 0
    clock.advance(minutes=10)
    assert sync().exit_code == 0
    assert follow_ups(org) == KEYS


def test_an_expired_token_is_renewed_and_the_cycle_goes_on(org: FakeDataverse) -> None:
    """Tokens the org no longer honours: renewed once, the cycle ends well."""
    org.expire_tokens()
    result = sync()
    assert result.exit_code == 0, result.output
    assert follow_ups(org) == KEYS


def test_a_token_the_org_keeps_refusing_is_one_line(
    org: FakeDataverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewed token refused again (the application user was removed): exit 1, one line."""
    monkeypatch.setattr(org, "token_source", lambda: lambda _renew: "revoked")
    one_line_failure(sync(), 1, "(HTTP 401): the org refused the token, also once renewed")


def test_a_missing_column_is_one_line_naming_it(org: FakeDataverse) -> None:
    """The org lost a column the mapping reads: the CLI names the column, no traceback."""
    shape = org.tables["incident"]
    columns = {k: v for k, v in shape.columns.items() if k != "new_acknowledgedon"}
    org.tables = {**org.tables, "incident": dataclasses.replace(shape, columns=columns)}
    one_line_failure(sync(), 1, "cycle failed: read incident: 0x80060888 (HTTP 400): ")
    assert "property named 'new_acknowledgedon'" in sync().stderr
    assert follow_ups(org) == []


def test_a_choice_value_the_mapping_does_not_know_is_that_complaints_error_alone(
    org: FakeDataverse, clock: ManualClock
) -> None:
    """Channel 7 on A: exit 3 naming A and the column; B is flagged and followed up, once,
    and A's follow-up comes once the org holds a known channel again."""
    org.touch("incident", A, caseorigincode=7, modifiedon=MON_10)
    result = sync()
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert A in result.output
    assert "caseorigincode" in result.output
    assert follow_ups(org) == KEYS[1:]
    clock.advance(minutes=10)
    org.touch("incident", A, caseorigincode=2)
    for _ in range(2):
        clock.advance(minutes=10)
        assert sync().exit_code == 0
    assert follow_ups(org) == KEYS
