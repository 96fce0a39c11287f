"""The API budget is a small optional port: an adapter offers it or does not."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.clock import ManualClock
from tests.fakes.salesforce_fake import FakeOrg, session_client

from crmsync.adapters.crm.local import LocalCrm
from crmsync.ports import ApiBudget


def test_salesforce_offers_the_api_budget_and_the_local_crm_does_not(tmp_path: Path) -> None:
    client = session_client(FakeOrg(ManualClock("2026-03-02T09:00:00+00:00")))
    try:
        assert isinstance(client, ApiBudget)
        assert client.api_usage is None  # nothing said by the org yet
    finally:
        client.close()
    local = LocalCrm(tmp_path / "crm.sqlite")
    try:
        assert not isinstance(local, ApiBudget)
    finally:
        local.close()
