"""Dataverse sign-in: MSAL client credentials behind a token source, and its wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from crmsync.adapters.crm.dynamics365 import DataverseCrm
from crmsync.adapters.crm.dynamics365_auth import DataverseCredentials, MsalTokenSource
from crmsync.bootstrap import build_crm, settings_model
from crmsync.errors import ConfigError, CrmAuthError

ORG = "https://contoso.crm4.dynamics.com"
SECRET = "s3cr3t-client-value"


class FakeApp:
    """An MSAL confidential client answering from a list."""

    made: ClassVar[list[tuple[str, str, Any]]] = []

    def __init__(self, client_id: str, authority: str, credential: Any, answers: list[Any]):
        FakeApp.made.append((client_id, authority, credential))
        self.answers = answers
        self.scopes: list[list[str]] = []

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any] | None:
        self.scopes.append(scopes)
        answer: dict[str, Any] | None = self.answers.pop(0)
        return answer


def credentials(**changes: Any) -> DataverseCredentials:
    values: dict[str, Any] = {
        "org_url": ORG + "/",
        "tenant_id": "tenant-1",
        "client_id": "client-1",
        "client_secret": SECRET,
    }
    values.update(changes)
    return DataverseCredentials(**values)


def test_a_token_for_the_orgs_default_scope_and_a_fresh_app_to_renew() -> None:
    FakeApp.made.clear()
    answers: list[Any] = [{"access_token": "t1"}, {"access_token": "t1"}, {"access_token": "t2"}]
    apps: list[FakeApp] = []

    def factory(client_id: str, authority: str, credential: Any) -> FakeApp:
        apps.append(FakeApp(client_id, authority, credential, answers))
        return apps[-1]

    source = MsalTokenSource(credentials(), app_factory=factory)
    assert (source(False), source(False), source(True)) == ("t1", "t1", "t2")
    assert FakeApp.made == [
        ("client-1", "https://login.microsoftonline.com/tenant-1", SECRET),
        ("client-1", "https://login.microsoftonline.com/tenant-1", SECRET),
    ]  # one app reused (MSAL caches and renews), a new one after a 401
    assert apps[0].scopes == [[f"{ORG}/.default"]] * 2


def test_a_refused_sign_in_names_the_code_never_the_secret() -> None:
    answers: list[Any] = [
        {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client\nsecret."}
    ]
    source = MsalTokenSource(credentials(), app_factory=lambda c, a, k: FakeApp(c, a, k, answers))
    with pytest.raises(CrmAuthError) as caught:
        source(False)
    assert str(caught.value) == (
        "Dataverse sign-in for client client-1 failed: invalid_client "
        "(AADSTS7000215: Invalid client secret.)"
    )
    assert SECRET not in str(caught.value)


def test_a_sign_in_answer_quoting_the_secret_is_raised_without_it() -> None:
    """A sign-in server that echoes the client secret in its description: *** instead."""
    answers: list[Any] = [
        {"error": "invalid_client", "error_description": f"secret '{SECRET}' has expired"}
    ]
    source = MsalTokenSource(credentials(), app_factory=lambda c, a, k: FakeApp(c, a, k, answers))
    with pytest.raises(CrmAuthError) as caught:
        source(False)
    assert SECRET not in str(caught.value)
    assert "(secret '***' has expired)" in str(caught.value)


def test_a_certificate_is_read_from_its_file(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    made: list[Any] = []

    def factory(client_id: str, authority: str, credential: Any) -> FakeApp:
        made.append(credential)
        return FakeApp(client_id, authority, credential, [{"access_token": "t"}])

    source = MsalTokenSource(
        credentials(client_secret=None, certificate_file=key, certificate_thumbprint="AB12"),
        app_factory=factory,
    )
    assert source(False) == "t"
    assert made == [{"private_key": key.read_text(), "thumbprint": "AB12"}]


def test_a_certificate_sign_in_is_renewed_with_the_key_read_again(tmp_path: Path) -> None:
    """After a 401 the certificate's key is read afresh (a rotated key file is used)."""
    key = tmp_path / "app.pem"
    key.write_text("first key")
    made: list[Any] = []
    answers: list[Any] = [{"access_token": "t1"}, {"access_token": "t2"}]

    def factory(client_id: str, authority: str, credential: Any) -> FakeApp:
        made.append(credential)
        return FakeApp(client_id, authority, credential, answers)

    source = MsalTokenSource(
        credentials(client_secret=None, certificate_file=key, certificate_thumbprint="AB12"),
        app_factory=factory,
    )
    assert source(False) == "t1"
    key.write_text("rotated key")
    assert source(True) == "t2"
    assert made == [
        {"private_key": "first key", "thumbprint": "AB12"},
        {"private_key": "rotated key", "thumbprint": "AB12"},
    ]


def test_an_unreadable_certificate_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """A certificate file that cannot be read: one line naming it, no traceback of MSAL."""
    missing = tmp_path / "gone.pem"
    source = MsalTokenSource(
        credentials(client_secret=None, certificate_file=missing, certificate_thumbprint="AB12"),
        app_factory=lambda c, a, k: FakeApp(c, a, k, []),
    )
    with pytest.raises(ConfigError, match=f"cannot read the Dataverse certificate key {missing}"):
        source(False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"tenant_id": "", "client_secret": None},
            "Dataverse sign-in needs CRMSYNC_D365_TENANT_ID, "
            "CRMSYNC_D365_CLIENT_SECRET or CRMSYNC_D365_CERTIFICATE_FILE",
        ),
        (
            {"client_secret": None, "certificate_thumbprint": "AB12"},
            "Dataverse sign-in needs both CRMSYNC_D365_CERTIFICATE_FILE and "
            "..._CERTIFICATE_THUMBPRINT",
        ),
        (
            {"certificate_file": Path("k.pem"), "certificate_thumbprint": "AB12"},
            "give CRMSYNC_D365_CLIENT_SECRET or a certificate for Dataverse, not both",
        ),
    ],
)
def test_missing_or_conflicting_settings_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MsalTokenSource(credentials(**changes))
    assert str(caught.value) == message


def test_crmsync_crm_dynamics365_builds_the_dataverse_adapter() -> None:
    settings = settings_model()(
        crm="dynamics365",
        d365_org_url=ORG,
        d365_tenant_id="tenant-1",
        d365_client_id="client-1",
        d365_client_secret=SecretStr(SECRET),
        d365_timeout=12,
    )
    crm = build_crm(settings)
    assert isinstance(crm, DataverseCrm)
    assert (crm.base, crm.timeout) == (f"{ORG}/api/data/v9.2/", 12)
    crm.close()


def test_crmsync_crm_dynamics365_without_sign_in_settings_names_them() -> None:
    with pytest.raises(ConfigError, match="CRMSYNC_D365_ORG_URL, CRMSYNC_D365_CLIENT_ID"):
        build_crm(settings_model()(crm="dynamics365", d365_tenant_id="t"))
