"""Which charter a demo shows: a bundled one by name, or any charter file by path."""

from __future__ import annotations

from pathlib import Path

from crmsync.domain.charter import Charter
from crmsync.errors import CharterFileError, ConfigError

BUNDLED_DIR = Path("mappings") / "charters"
"""Where the bundled charters live, from the project folder (where ``make demo`` runs)."""

CHARTERS: tuple[str, ...] = (
    "aston",
    "the-square-mile",
    "studijob",
    "kilkenny",
    "fca-disp",
    "housing-ombudsman",
    "cbi-cpc",
)
"""The bundled charters, by name."""


def charter_file(name_or_path: str) -> Path:
    """The file of a bundled charter name, or ``name_or_path`` itself when it names a file
    (it has a directory part or a ``.yaml``/``.yml`` suffix). ``ConfigError`` for an
    unknown name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    if name_or_path not in CHARTERS:
        raise ConfigError(
            f"unknown charter '{name_or_path}' (bundled: {', '.join(CHARTERS)}; "
            "or give the path of a charter file)"
        )
    return BUNDLED_DIR / f"{name_or_path}.yaml"


def demo_charter(name_or_path: str) -> Charter:
    """Load a bundled charter by name or any charter file by path.

    Raises ``ConfigError`` with one line naming the file: unknown name, unreadable file,
    or the file's first problem (and how many more there are).
    """
    from crmsync.mapping.charter_file import load_charter  # noqa: PLC0415 - pydantic, on use

    path = charter_file(name_or_path)
    try:
        return load_charter(path)
    except CharterFileError as exc:
        if not exc.problems:
            raise ConfigError(f"{path}: not a usable charter") from exc
        more = f" (and {len(exc.problems) - 1} more problems)" if len(exc.problems) > 1 else ""
        raise ConfigError(f"{exc.problems[0]}{more}") from exc
