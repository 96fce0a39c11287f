"""The embedded local CRM as the composition root chooses it (``CRMSYNC_CRM=local``): a
SQLite file in ``data_dir``; its schema is fixed, so ``check --online`` points at the
mapping; ``crmsync local ...`` imports, exports and deletes its records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from crmsync.adapters.crm.local import LocalCrm
from crmsync.ports import CrmPort, CrmWiring
from crmsync.service.online_check import FIXED_SCHEMA

LOCAL_CRM_FILE = "local-crm.sqlite3"


def local_crm_file(data_dir: Path) -> Path:
    """Where the embedded local CRM of ``data_dir`` lives."""
    return Path(data_dir) / LOCAL_CRM_FILE


def _build(settings: Mapping[str, Any], clock: Callable[[], datetime]) -> CrmPort:
    data_dir = Path(settings["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    return LocalCrm(local_crm_file(data_dir), clock=clock)


WIRING = CrmWiring(
    name="local",
    settings_prefix="",
    build=_build,
    remedies=FIXED_SCHEMA,
    commands="crmsync.cli.local_crm",
)
