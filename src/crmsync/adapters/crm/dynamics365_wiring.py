"""Dynamics 365 / Dataverse as the composition root chooses it (``CRMSYNC_CRM=dynamics365``):
its ``d365_*`` settings group, the adapter built from it, its ``check --online`` remedies
and its set-up command (``crmsync dynamics365 setup``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.adapters.crm.dynamics365_remedies import DATAVERSE_REMEDIES
from crmsync.adapters.crm.dynamics365_settings import DataverseSettings
from crmsync.ports import CrmPort, CrmWiring

if TYPE_CHECKING:  # requests and MSAL load when the adapter is built
    from crmsync.adapters.crm.dynamics365 import DataverseCrm


def build_dataverse(settings: Mapping[str, Any]) -> DataverseCrm:
    """The Dataverse adapter from the ``d365_*`` settings (signs in on first use).

    Raises ``ConfigError`` naming the settings the sign-in lacks."""
    from crmsync.adapters.crm.dynamics365 import DataverseCrm  # noqa: PLC0415 - on use
    from crmsync.adapters.crm.dynamics365_auth import (  # noqa: PLC0415 - on use
        DataverseCredentials,
        MsalTokenSource,
    )

    secret = settings["d365_client_secret"]
    credentials = DataverseCredentials(
        org_url=settings["d365_org_url"] or "",
        tenant_id=settings["d365_tenant_id"] or "",
        client_id=settings["d365_client_id"] or "",
        client_secret=secret.get_secret_value() if secret is not None else None,
        certificate_file=settings["d365_certificate_file"],
        certificate_thumbprint=settings["d365_certificate_thumbprint"],
        authority_host=settings["d365_authority_host"],
    )
    return DataverseCrm(
        credentials.org_url,
        MsalTokenSource(credentials),
        api_version=settings["d365_api_version"],
        timeout=settings["d365_timeout"],
    )


def _build(settings: Mapping[str, Any], clock: Callable[[], datetime]) -> CrmPort:
    return build_dataverse(settings)  # the org's clock, not ours; looked up on each build


WIRING = CrmWiring(
    name="dynamics365",
    settings_prefix="d365_",
    build=_build,
    remedies=DATAVERSE_REMEDIES,
    settings=DataverseSettings,
    commands="crmsync.cli.dynamics365",
)
