"""The state store URL: which backend it names, and opening that backend (the one place
that knows every backend)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from crmsync.adapters.state.sqlite import SqliteStateStore
from crmsync.errors import ConfigError
from crmsync.ports import StateDatabase

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def open_state_store(url: str | None, data_dir: Path) -> StateDatabase:
    """Open (not migrate) the state store that ``url`` names (see ``state_store_target``).

    Raises ``ConfigError`` for a URL no backend takes; ``StateStoreError`` if the store
    cannot be opened.
    """
    kind, target = state_store_target(url, data_dir)
    if kind == "sqlite":
        return SqliteStateStore(Path(target))
    # psycopg costs a third of a second to import: only when PostgreSQL is asked for
    from crmsync.adapters.state.postgres import PostgresStateStore  # noqa: PLC0415

    return PostgresStateStore(str(target))


def state_store_target(url: str | None, data_dir: Path) -> tuple[str, Path | str]:
    """Which store ``url`` names, opening nothing: ``("sqlite", path)`` or
    ``("postgresql", url)``.

    - None or ``""``: SQLite at ``data_dir/state.sqlite3`` (the embedded default);
    - ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's spelling:
      the path is what follows the third slash; percent-escapes are decoded);
    - ``postgresql://...`` or ``postgres://...``: PostgreSQL, schema ``crmsync``.

    Raises ``ConfigError`` for any other URL, naming its scheme but never the rest (which
    may hold a password).
    """
    if url is None or not url.strip():
        return "sqlite", Path(data_dir) / "state.sqlite3"
    text = url.strip()
    match = _SCHEME.match(text)
    if match is None:
        raise ConfigError(
            "state store URL has no scheme: write sqlite:///path/to/file or "
            "postgresql://user@host/db"
        )
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        rest = text[match.end() :]
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(
                "state store URL sqlite:// needs a file path after three slashes: "
                "sqlite:///relative/file or sqlite:////absolute/file"
            )
        if "?" in rest or "#" in rest:
            raise ConfigError("state store URL sqlite:///... takes a file path only (no ? or #)")
        return "sqlite", Path(unquote(rest[1:]))
    if scheme in {"postgresql", "postgres"}:
        return "postgresql", text
    raise ConfigError(
        f"state store URL scheme '{scheme}' is not supported: use sqlite:///path or "
        "postgresql://... (or leave it empty for SQLite in the data folder)"
    )
