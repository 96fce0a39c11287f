"""The composition root: settings -> adapters -> services. Nothing else wires objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmsync.adapters.local_crm import LocalCrm
from crmsync.adapters.state_factory import open_state_store
from crmsync.domain.charter import Charter
from crmsync.errors import ConfigError
from crmsync.mapping.charter_file import load_charter
from crmsync.mapping.field_mapping import FieldMapping, load_mapping
from crmsync.ports import CrmPort, StateStore
from crmsync.service.sync_cycle import Hook, SyncCycle
from crmsync.settings import Settings

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
    raise ConfigError(
        "CRMSYNC_CRM=salesforce: the Salesforce adapter is not part of this build yet "
        "(use CRMSYNC_CRM=local)"
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
    """Load charter and mapping (refusing bad files before anything runs) and wire a cycle."""
    charter = load_charter(settings.charter)
    mapping = load_mapping(settings.mapping)
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
    )
    return Runtime(settings, charter, mapping, crm, state, cycle)
