"""The composition root: settings -> adapters -> services. Nothing else wires objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crmsync.adapters.crm.local import LocalCrm
from crmsync.adapters.state.url import open_state_store, state_store_target
from crmsync.domain.charter import Charter
from crmsync.errors import CharterFileError, ConfigError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.charter_mapping_check import check_charter_against_mapping
from crmsync.mapping.field_mapping import FieldMapping, load_mapping
from crmsync.mapping.yaml_source import load_yaml
from crmsync.ports import ArchiveCipher, ArchiveStore, CrmPort, StateStore
from crmsync.service.archiving import ArchivingService
from crmsync.service.sync_cycle import Hook, SyncCycle
from crmsync.settings import Settings

if TYPE_CHECKING:  # the Salesforce adapter (requests, PyJWT) is imported when it is built
    from crmsync.adapters.crm.salesforce import SalesforceCrm

LOCAL_CRM_FILE = "local-crm.sqlite3"


def system_clock() -> datetime:
    """The wall clock: read here, in the composition root, and nowhere in the core."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything one profile needs to run cycles."""

    settings: Settings
    charter: Charter
    mapping: FieldMapping
    crm: CrmPort
    state: StateStore
    cycle: SyncCycle

    def close(self) -> None:
        self.state.close()
        closer = getattr(self.crm, "close", None)
        if callable(closer):
            closer()


def local_crm_path(settings: Settings) -> Path:
    """Where the embedded local CRM lives."""
    return settings.data_dir / LOCAL_CRM_FILE


def build_crm(settings: Settings, clock: Callable[[], datetime] = system_clock) -> CrmPort:
    """The CRM adapter the settings name."""
    if settings.crm == "local":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return LocalCrm(local_crm_path(settings), clock=clock)
    return build_salesforce(settings)


def build_salesforce(settings: Settings) -> SalesforceCrm:
    """The Salesforce adapter from the ``CRMSYNC_SF_*`` settings (logs in on first use).

    Raises ``ConfigError`` naming the settings the chosen auth mode lacks."""
    from crmsync.adapters.crm.salesforce import SalesforceCrm  # noqa: PLC0415
    from crmsync.adapters.crm.salesforce_auth import (  # noqa: PLC0415
        SalesforceAuth,
        SalesforceCredentials,
        TimeoutSession,
    )

    credentials = SalesforceCredentials(
        mode=settings.sf_auth,
        login_url=settings.sf_login_url,
        instance_url=settings.sf_instance_url,
        consumer_key=settings.sf_consumer_key,
        consumer_secret=settings.sf_consumer_secret,
        private_key_file=settings.sf_private_key_file,
        username=settings.sf_username,
        password=settings.sf_password,
        security_token=settings.sf_security_token,
        session_id=settings.sf_session_id,
        api_version=settings.sf_api_version,
    )
    auth = SalesforceAuth(credentials, TimeoutSession(settings.sf_timeout))
    return SalesforceCrm(
        auth,
        api_version=settings.sf_api_version,
        budget_share=settings.sf_api_budget_share,
        bulk_threshold=settings.sf_bulk_threshold,
    )


def build_state(settings: Settings) -> StateStore:
    """The state store the settings name, migrated to the current schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_state_store(settings.state_url_value, settings.data_dir)
    store.migrate()
    return store


def build_runtime(
    settings: Settings,
    *,
    crm: CrmPort | None = None,
    state: StateStore | None = None,
    hook: Hook | None = None,
) -> Runtime:
    """Load charter and mapping (refusing bad files, and a charter that names events,
    attributes or ``when`` values the mapping cannot produce, before anything runs) and
    wire a cycle."""
    charter = load_charter(settings.charter)
    mapping = load_mapping(settings.mapping)
    misfits = check_charter_against_mapping(load_yaml(settings.charter), mapping)
    if misfits:
        raise CharterFileError(str(settings.charter), misfits)
    crm = crm or build_crm(settings)
    state = state or build_state(settings)
    cycle = SyncCycle(
        crm=crm,
        state=state,
        charter=charter,
        mapping=mapping,
        profile=settings.profile,
        overlap=timedelta(seconds=settings.overlap),
        write_batch=settings.write_batch,
        hook=hook,
        follow_up_since=(
            None if settings.follow_up_since is None else int(settings.follow_up_since.timestamp())
        ),
    )
    return Runtime(settings, charter, mapping, crm, state, cycle)


# ------------------------------------------------------------------ the archive
ARCHIVE_DIR = "archive"


def archive_cipher(settings: Settings) -> ArchiveCipher | None:
    """The AES-256-GCM cipher of ``CRMSYNC_ARCHIVE_KEY`` (sealing and reading) and
    ``CRMSYNC_ARCHIVE_KEYS`` (reading entries sealed before a rotation), or None when both
    are empty; ``ConfigError`` for a malformed key."""
    from crmsync.adapters.archive.cipher import AesGcmCipher  # noqa: PLC0415

    key = settings.archive_key.get_secret_value() if settings.archive_key else ""
    old = settings.archive_keys.get_secret_value() if settings.archive_keys else ""
    if not key.strip() and not old.strip():
        return None
    return AesGcmCipher.from_base64(key, old)


def build_archive(settings: Settings) -> ArchiveStore:
    """The archive store ``CRMSYNC_ARCHIVE_URL`` names: empty = ``data_dir/archive`` (local
    folder); ``postgresql://...`` (``state``: the state store's URL) = PostgreSQL, schema
    ``crmsync_archive``; ``s3://bucket/prefix?...`` = S3-compatible object storage."""
    kind, url = _archive_target(settings)
    if kind == "local":
        from crmsync.adapters.archive.local import LocalArchiveStore  # noqa: PLC0415

        return LocalArchiveStore(settings.data_dir / ARCHIVE_DIR)
    if kind == "postgresql":
        from crmsync.adapters.archive.postgres import PostgresArchiveStore  # noqa: PLC0415

        return PostgresArchiveStore(url)
    from crmsync.adapters.archive.s3 import S3ArchiveStore  # noqa: PLC0415

    return S3ArchiveStore.from_url(url)


def _archive_target(settings: Settings) -> tuple[str, str]:
    """``(kind, url)`` of the archive store, opening nothing; ``ConfigError`` for a URL no
    store takes."""
    url = settings.archive_url.get_secret_value().strip() if settings.archive_url else ""
    if url == "state":
        url = settings.state_url_value or ""
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("CRMSYNC_ARCHIVE_URL=state needs a PostgreSQL CRMSYNC_STATE_URL")
    if not url:
        return "local", ""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", url
    if scheme == "s3":
        return "s3", url
    raise ConfigError(
        f"CRMSYNC_ARCHIVE_URL: unknown scheme '{scheme}' (empty for a local folder, "
        "postgresql://..., state, or s3://bucket/prefix)"
    )


def check_settings(settings: Settings) -> None:
    """Refuse, before anything runs, what the settings name but no adapter takes: the state
    store and archive URLs, the archive keys (``ConfigError`` naming the setting). Opens
    nothing and reads no file."""
    try:
        state_store_target(settings.state_url_value, settings.data_dir)
    except ConfigError as exc:
        raise ConfigError(f"CRMSYNC_STATE_URL: {exc}") from exc
    _archive_target(settings)
    archive_cipher(settings)


def build_archiving(
    runtime: Runtime, archive: ArchiveStore, *, hook: Hook | None = None
) -> ArchivingService:
    """The archiving service of a runtime's profile over ``archive``."""
    s = runtime.settings
    return ArchivingService(
        crm=runtime.crm,
        state=runtime.state,
        archive=archive,
        charter=runtime.charter,
        mapping=runtime.mapping,
        profile=s.profile,
        archive_after=s.archive_after,
        cipher=archive_cipher(s),
        overlap=timedelta(seconds=s.overlap),
        write_batch=s.write_batch,
        hook=hook,
    )
