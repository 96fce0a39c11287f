"""The profile lock as the one-off commands take it: ``--wait``, the holder, exit 5."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from crmsync.cli.app import EXIT_BUSY, err, fail
from crmsync.errors import CrmSyncError, ProfileBusyError

if TYPE_CHECKING:
    from crmsync.settings import Settings

WaitOption = Annotated[
    str,
    typer.Option(
        "--wait",
        help="How long to wait for another process working this profile (seconds or "
        "'5 minutes'; default 0: say who holds it and exit 5).",
    ),
]


def wait_seconds(text: str) -> int:
    """``--wait``: 0, whole seconds or a duration; exit 2 when it is none of them."""
    from crmsync.settings import duration_seconds  # noqa: PLC0415 - settings load on use

    if text.strip() in ("", "0"):
        return 0
    try:
        return duration_seconds(text, "--wait")
    except ValueError as exc:
        raise fail(f"--wait: {exc}") from exc


@contextmanager
def hold_profile(settings: Settings, command: str, wait: str) -> Iterator[Callable[[], None]]:
    """Hold ``settings.profile``'s lock (the worker's) while the block runs; the block gets
    the guard to call before it writes (``ProfileLostError`` once the lock is lost).

    Waits up to ``wait`` for another holder (saying who it is on standard error), then
    exits 5 naming it; exits 1 when the lock itself cannot be reached.
    """
    from crmsync.adapters.profile_lock import acquire_profile, profile_guard  # noqa: PLC0415 - on use
    from crmsync.bootstrap import build_profile_lock  # noqa: PLC0415 - the composition root

    seconds = wait_seconds(wait)
    lock = build_profile_lock(settings, command=command)

    def waiting(holder: str) -> None:
        err.print(
            f"waiting up to {seconds}s for profile '{settings.profile}', worked by {holder}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    try:
        acquire_profile(lock, settings.profile, wait=seconds, on_wait=waiting)
    except ProfileBusyError as exc:
        lock.close()
        raise fail(
            f"{exc}; nothing was done. One process works a profile at a time: try again "
            "when it has finished (or pass --wait)",
            EXIT_BUSY,
        ) from exc
    except CrmSyncError as exc:
        lock.close()
        raise fail(f"profile lock: {exc}", 1) from exc
    try:
        yield profile_guard(lock, settings.profile)
    finally:
        lock.close()
