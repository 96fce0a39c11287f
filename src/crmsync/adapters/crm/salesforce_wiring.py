"""Salesforce as the composition root chooses it (``CRMSYNC_CRM=salesforce``): its ``sf_*``
settings group, the adapter built from it, its ``check --online`` remedies and its set-up
commands (``crmsync salesforce ...``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.adapters.crm.salesforce_remedies import SALESFORCE_REMEDIES
from crmsync.adapters.crm.salesforce_settings import SalesforceSettings
from crmsync.ports import CrmPort, CrmWiring

if TYPE_CHECKING:  # requests and PyJWT load when the adapter is built
    from crmsync.adapters.crm.salesforce import SalesforceCrm


def build_salesforce(settings: Mapping[str, Any]) -> SalesforceCrm:
    """The Salesforce adapter from the ``sf_*`` settings (logs in on first use).

    Raises ``ConfigError`` naming the settings the chosen auth mode lacks."""
    from crmsync.adapters.crm.salesforce import SalesforceCrm  # noqa: PLC0415 - on use
    from crmsync.adapters.crm.salesforce_auth import (  # noqa: PLC0415 - on use
        SalesforceAuth,
        SalesforceCredentials,
        TimeoutSession,
    )

    credentials = SalesforceCredentials(
        mode=settings["sf_auth"],
        login_url=settings["sf_login_url"],
        instance_url=settings["sf_instance_url"],
        consumer_key=settings["sf_consumer_key"],
        consumer_secret=settings["sf_consumer_secret"],
        private_key_file=settings["sf_private_key_file"],
        username=settings["sf_username"],
        password=settings["sf_password"],
        security_token=settings["sf_security_token"],
        session_id=settings["sf_session_id"],
        api_version=settings["sf_api_version"],
    )
    auth = SalesforceAuth(credentials, TimeoutSession(settings["sf_timeout"]))
    return SalesforceCrm(
        auth,
        api_version=settings["sf_api_version"],
        budget_share=settings["sf_api_budget_share"],
        bulk_threshold=settings["sf_bulk_threshold"],
    )


def _build(settings: Mapping[str, Any], clock: Callable[[], datetime]) -> CrmPort:
    return build_salesforce(settings)  # the org's clock, not ours


WIRING = CrmWiring(
    name="salesforce",
    settings_prefix="sf_",
    build=_build,
    remedies=SALESFORCE_REMEDIES,
    settings=SalesforceSettings,
    commands="crmsync.cli.salesforce",
)
