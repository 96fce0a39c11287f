"""Tokens for the Dataverse Web API: OAuth 2.0 client credentials through MSAL.

An application user (an app registration in Microsoft Entra ID, added to the environment)
signs in with a client secret or a certificate (PEM private key + its SHA-1 thumbprint).
The scope is the org URL's ``/.default``. MSAL keeps the token and renews it before it
expires; after a 401 the adapter asks for a renewed one, which this source gets from a
fresh MSAL application (an empty cache), so a revoked token is never handed out again.

Failures are ``CrmAuthError`` naming the Entra error code and its description, never the
secret or the key; a missing setting is a ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crmsync.errors import ConfigError, CrmAuthError
from crmsync.redaction import redact_text


class ConfidentialClient(Protocol):
    """The part of ``msal.ConfidentialClientApplication`` used here."""

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any] | None: ...


AppFactory = Callable[[str, str, Any], ConfidentialClient]
"""(client id, authority URL, client credential) -> an MSAL confidential client."""


def msal_app(client_id: str, authority: str, credential: Any) -> ConfidentialClient:
    """The real MSAL application (imported on use: only Dataverse profiles need it)."""
    try:
        msal = importlib.import_module("msal")  # only Dataverse profiles load MSAL
    except ImportError:
        raise ConfigError(
            "CRMSYNC_CRM=dynamics365 needs the 'msal' package (pip install msal)"
        ) from None
    app: ConfidentialClient = msal.ConfidentialClientApplication(
        client_id, authority=authority, client_credential=credential
    )
    return app


@dataclass
class DataverseCredentials:
    """Who crmsync is to Dataverse. Exactly one of ``client_secret`` or
    (``certificate_file`` and ``certificate_thumbprint``) is given."""

    org_url: str
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_file: Path | None = None
    certificate_thumbprint: str | None = None
    authority_host: str = "https://login.microsoftonline.com"

    def check(self) -> None:
        """``ConfigError`` naming every missing or conflicting setting."""
        missing = [
            name
            for name, value in (
                ("CRMSYNC_D365_ORG_URL", self.org_url),
                ("CRMSYNC_D365_TENANT_ID", self.tenant_id),
                ("CRMSYNC_D365_CLIENT_ID", self.client_id),
            )
            if not value
        ]
        has_cert = self.certificate_file is not None or bool(self.certificate_thumbprint)
        if not self.client_secret and not has_cert:
            missing.append("CRMSYNC_D365_CLIENT_SECRET or CRMSYNC_D365_CERTIFICATE_FILE")
        if has_cert and not (self.certificate_file and self.certificate_thumbprint):
            missing.append("both CRMSYNC_D365_CERTIFICATE_FILE and ..._CERTIFICATE_THUMBPRINT")
        if self.client_secret and has_cert:
            raise ConfigError(
                "give CRMSYNC_D365_CLIENT_SECRET or a certificate for Dataverse, not both"
            )
        if missing:
            raise ConfigError("Dataverse sign-in needs " + ", ".join(missing))

    def credential(self) -> Any:
        """What MSAL takes as ``client_credential``."""
        if self.client_secret:
            return self.client_secret
        assert self.certificate_file is not None  # check() ran
        try:
            key = self.certificate_file.read_text()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the Dataverse certificate key {self.certificate_file}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None
        return {"private_key": key, "thumbprint": self.certificate_thumbprint}


class MsalTokenSource:
    """A ``TokenSource`` for ``DataverseCrm``: ``token(renew)`` gives a bearer token."""

    def __init__(self, credentials: DataverseCredentials, app_factory: AppFactory = msal_app):
        credentials.check()
        self.credentials = credentials
        self.scope = credentials.org_url.rstrip("/") + "/.default"
        self._factory = app_factory
        self._app: ConfidentialClient | None = None

    def _new_app(self) -> ConfidentialClient:
        c = self.credentials
        authority = f"{c.authority_host.rstrip('/')}/{c.tenant_id}"
        return self._factory(c.client_id, authority, c.credential())

    def __call__(self, renew: bool) -> str:
        if renew or self._app is None:
            self._app = self._new_app()
        answer = self._app.acquire_token_for_client(scopes=[self.scope]) or {}
        token = answer.get("access_token")
        if isinstance(token, str) and token:
            return token
        code = str(answer.get("error") or "no_token")
        described = " ".join(str(answer.get("error_description") or "").split())
        # the sign-in server may quote what it was sent: never the secret
        described = redact_text(described, [self.credentials.client_secret or ""])[:200]
        raise CrmAuthError(
            f"Dataverse sign-in for client {self.credentials.client_id} failed: {code}"
            + (f" ({described})" if described else "")
        )
