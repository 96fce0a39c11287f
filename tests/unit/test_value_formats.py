"""Each CRM adapter owns its datetime text (``ValueFormats``, issue 23): what crmsync writes
to a CRM, an archive mark's date among it, is in the CRM's own form."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from crmsync.adapters.crm.dynamics365 import DataverseCrm
from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.crm.retry_policy import NO_WAIT
from crmsync.adapters.crm.salesforce import SalesforceCrm
from crmsync.adapters.crm.salesforce_auth import (
    SalesforceAuth,
    SalesforceCredentials,
    TimeoutSession,
)
from crmsync.mapping.field_mapping import iso_instant_text
from crmsync.ports import ValueFormats

# 2026-03-02 09:15:00 UTC
INSTANT = int(datetime(2026, 3, 2, 9, 15, tzinfo=UTC).timestamp())


def test_the_local_crm_writes_the_reference_orgs_datetime_text(tmp_path: Path) -> None:
    with LocalCrm(tmp_path / "crm.sqlite3", clock=lambda: datetime(2026, 3, 2, tzinfo=UTC)) as crm:
        assert isinstance(crm, ValueFormats)
        assert crm.instant_text(INSTANT) == "2026-03-02T09:15:00.000+0000"


def test_salesforce_writes_its_own_datetime_text() -> None:
    credentials = SalesforceCredentials(
        mode="password",
        login_url="https://login.salesforce.com",
        username="worker@example.com",
        password=SecretStr("pw"),
        security_token=SecretStr("tok"),
        api_version="62.0",
    )
    crm = SalesforceCrm(
        SalesforceAuth(credentials, TimeoutSession(5.0), policy=NO_WAIT), api_version="62.0"
    )
    assert isinstance(crm, ValueFormats)
    assert crm.instant_text(INSTANT) == "2026-03-02T09:15:00.000+0000"


def test_dataverse_writes_its_own_datetime_text() -> None:
    crm = DataverseCrm("https://example.crm4.dynamics.com", lambda _renew: "token")
    assert isinstance(crm, ValueFormats)
    assert crm.instant_text(INSTANT) == "2026-03-02T09:15:00Z"


def test_a_crm_without_formats_of_its_own_is_written_iso_utc_text() -> None:
    assert iso_instant_text(INSTANT) == "2026-03-02T09:15:00Z"
    assert iso_instant_text(0) == "1970-01-01T00:00:00Z"
