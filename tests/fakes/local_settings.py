"""Settings of the embedded default for tests: one data folder, the bundled files."""

from __future__ import annotations

from pathlib import Path

from crmsync.bootstrap import settings_model
from crmsync.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def local_settings(data_dir: Path) -> Settings:
    """Local CRM, SQLite state and local archive (no key) in ``data_dir``; the Aston
    charter and the bundled mapping; profile ``default``."""
    return settings_model()(
        data_dir=data_dir,
        charter=REPO / "mappings" / "charters" / "aston.yaml",
        mapping=REPO / "mappings" / "salesforce.yaml",
        state_url=None,
        archive_url=None,
        archive_key=None,
        profile="default",
    )
