"""Salesforce's settings group (``CRMSYNC_SF_*``), which the composition root adds to the
settings: what each auth mode needs is in ``salesforce_auth.py``. Pydantic only, so
reading the settings loads no Salesforce client."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class SalesforceSettings(BaseModel):
    """The ``sf_*`` settings (``CRMSYNC_CRM=salesforce``)."""

    sf_auth: Literal["jwt", "client_credentials", "password", "session"] = Field(
        default="jwt", description="Salesforce auth: jwt, client_credentials, password, session"
    )
    sf_login_url: str = Field(
        default="https://login.salesforce.com",
        description="login server (https://test.salesforce.com for sandboxes, or My Domain)",
    )
    sf_instance_url: str | None = Field(
        default=None, description="org URL (needed for session mode; else from the login)"
    )
    sf_consumer_key: str | None = Field(default=None, description="connected app consumer key")
    sf_consumer_secret: SecretStr | None = Field(
        default=None, description="connected app secret (client_credentials)"
    )
    sf_private_key_file: Path | None = Field(
        default=None, description="PEM RSA private key of the connected app certificate (jwt)"
    )
    sf_username: str | None = Field(default=None, description="integration user (jwt, password)")
    sf_password: SecretStr | None = Field(default=None, description="password (password mode)")
    sf_security_token: SecretStr | None = Field(
        default=None, description="security token (password mode)"
    )
    sf_session_id: SecretStr | None = Field(
        default=None, description="an existing session id (session mode)"
    )
    sf_api_version: str = Field(
        default="62.0", pattern=r"^\d+\.\d$", description="REST API version"
    )
    sf_timeout: float = Field(
        default=30.0, gt=0, description="seconds before an HTTP request fails"
    )
    sf_api_budget_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="stop a cycle before using more than this share of the org's daily API limit",
    )
    sf_bulk_threshold: int = Field(
        default=10_000, ge=1, description="read with Bulk API 2.0 above this many records"
    )
