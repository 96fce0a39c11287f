"""Dynamics 365 / Dataverse's settings group (``CRMSYNC_D365_*``), which the composition
root adds to the settings: an application user signing in with client credentials
(``dynamics365_auth.py``). Pydantic only, so reading the settings loads no MSAL."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class DataverseSettings(BaseModel):
    """The ``d365_*`` settings (``CRMSYNC_CRM=dynamics365``)."""

    d365_org_url: str | None = Field(
        default=None, description="Dataverse org URL: https://ORG.crm.dynamics.com"
    )
    d365_tenant_id: str | None = Field(default=None, description="Microsoft Entra tenant id")
    d365_client_id: str | None = Field(default=None, description="app registration client id")
    d365_client_secret: SecretStr | None = Field(
        default=None, description="app registration client secret (or use a certificate)"
    )
    d365_certificate_file: Path | None = Field(
        default=None, description="PEM private key of the app registration's certificate"
    )
    d365_certificate_thumbprint: str | None = Field(
        default=None, description="SHA-1 thumbprint of that certificate (hex)"
    )
    d365_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra sign-in host (another for a sovereign cloud)",
    )
    d365_api_version: str = Field(
        default="9.2", pattern=r"^\d+\.\d$", description="Dataverse Web API version"
    )
    d365_timeout: float = Field(
        default=60.0, gt=0, description="seconds before an HTTP request fails"
    )
