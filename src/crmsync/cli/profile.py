"""The settings and the profile a command works on, and the guards around them.

Every command reads its settings here: the ``CRMSYNC_*`` environment, ``crmsync.toml`` and
the profile (``[profiles.NAME]`` chosen by ``CRMSYNC_PROFILE``); an invalid setting exits 2
naming it. The unknown-profile guard and the composition root's ``build_runtime`` are
called from here too, so no command module is another's hub.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from crmsync.cli.app import EXIT_FAILED, fail
from crmsync.errors import ConfigError, CrmSyncError

if TYPE_CHECKING:  # the composition root and adapters are imported when a command runs
    from crmsync.bootstrap import Runtime
    from crmsync.ports import PopulationReader
    from crmsync.service.sync_cycle import Hook
    from crmsync.settings import Settings

NEW_PROFILE_OPTION = typer.Option(
    "--new-profile",
    help="Start a profile the state store has never worked although it holds others "
    "(single-profile setup; without it such a CRMSYNC_PROFILE is refused as a likely typo).",
)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and crmsync.toml (``overrides``: the command's options,
    which win over both; ``None`` is an option not given); exit 2 with the problems if
    invalid. Configures logging as the settings say."""
    from crmsync.bootstrap import check_settings  # noqa: PLC0415 - the root, on use
    from crmsync.bootstrap import load_settings as load  # noqa: PLC0415 - the root, on use
    from crmsync.logging_setup import configure_logging  # noqa: PLC0415 - loaded on use

    try:
        settings = load(**{k: v for k, v in overrides.items() if v is not None})
        for profile in settings.profile_settings():
            check_settings(profile)
    except ValueError as exc:  # ConfigError, or a profile that does not validate
        raise fail(f"configuration: {exc}") from exc
    configure_logging(settings.log_format, settings.log_level)
    return settings


def load_profile(**overrides: object) -> Settings:
    """The settings of the one profile a single-profile command works on: the settings
    themselves when crmsync.toml has no ``[profiles.NAME]``, else the profile that
    CRMSYNC_PROFILE names; exit 2 when profiles exist and none of them is named."""
    return load_profile_setup(**overrides)[0]


def load_profile_setup(**overrides: object) -> tuple[Settings, bool]:
    """``load_profile``'s settings, and whether this is the single-profile setup (no
    ``[profiles.NAME]`` in crmsync.toml). ``overrides`` (the command's options) win over
    the profile's settings too."""
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = load_settings(**given)
    if settings.single_profile:
        return settings, True
    try:
        profiles = {p.profile: p for p in settings.profile_settings()}
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from exc
    chosen = profiles.get(settings.profile)
    if chosen is None:
        raise fail(
            f"crmsync.toml configures the profiles {', '.join(profiles)}: name the one to "
            f"work on with CRMSYNC_PROFILE (it is '{settings.profile}')"
        )
    if given:  # an option overrides the profile's setting as well as the top-level one
        try:
            chosen = type(chosen).model_validate({**chosen.__dict__, **given})
        except ValueError as exc:
            raise fail(f"configuration: {exc}") from exc
    return chosen, False


def charter_path(given: Path | None) -> Path:
    """``--charter`` when given, else the charter of the settings (CRMSYNC_CHARTER,
    crmsync.toml, the profile CRMSYNC_PROFILE names): an option overrides a setting."""
    return given if given is not None else load_profile().charter


def require_state_store(settings: Settings) -> None:
    """Exit 2 when the profile's state store is an SQLite file that does not exist: a
    command that reads the state would otherwise create an empty one and report nothing.
    The message names the file and the setting that places it."""
    from crmsync.bootstrap import state_store_target  # noqa: PLC0415 - the root, on use

    try:
        kind, target = state_store_target(settings.state_url_value, settings.data_dir)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if kind != "sqlite" or Path(target).is_file():
        return
    where = (
        "CRMSYNC_STATE_URL"
        if settings.state_url_value
        else f"CRMSYNC_DATA_DIR (or the data_dir of crmsync.toml or of profile "
        f"'{settings.profile}'), which is {settings.data_dir}"
    )
    raise fail(
        f"no state store at {target}: no cycle has run with these settings. Point "
        f"{where} at the worker's data directory, or run 'crmsync sync --once' first"
    )


def refuse_unknown_profile(
    state: PopulationReader, profile: str, *, new_profile: bool | None = None
) -> None:
    """In the single-profile setup, exit 2 when ``profile`` (CRMSYNC_PROFILE) is one the
    state store has never worked while it holds others (a mistyped name would start afresh
    or read nothing), naming them. ``new_profile``: the command's ``--new-profile`` (True
    lets the new profile through); ``None`` for a command that only reads."""
    try:
        known = state.known_profiles()
    except CrmSyncError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    if new_profile or not known or profile in known:
        return
    hint = (
        f", or pass --new-profile to start '{profile}' (its first cycle plans its follow-ups "
        "afresh)"
        if new_profile is not None
        else ""
    )
    raise fail(
        f"CRMSYNC_PROFILE is '{profile}', a profile the state store has never worked; it "
        f"holds {', '.join(repr(k) for k in known)}. Set CRMSYNC_PROFILE to one of those" + hint
    )


def build_runtime_or_exit(settings: Settings) -> Runtime:
    """The profile's runtime from the composition root; a setting to fix exits 2, a state
    store or CRM that fails exits 1."""
    from crmsync.bootstrap import build_runtime  # noqa: PLC0415 - the root, on use

    try:
        return build_runtime(settings, hook=crash_hook_from_env())
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:  # the state store or the CRM failed: not configuration
        raise fail(str(exc), EXIT_FAILED) from exc


def crash_hook_from_env() -> Hook | None:
    """Fault injection for the crash tests: ``CRMSYNC_CRASH_AT=step[:n]`` sends SIGKILL to
    this very process the n-th time (default 1st) the cycle reaches ``step``."""
    spec = os.environ.get("CRMSYNC_CRASH_AT")
    if not spec:
        return None
    step, _, nth = spec.partition(":")
    target = int(nth or "1")
    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == step:
            seen["n"] += 1
            if seen["n"] == target:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook
