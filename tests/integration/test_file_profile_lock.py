"""The profile lock on files: who holds it, and a bounded wait for it (one process, two locks)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from crmsync.adapters.profile_lock import FileProfileLock, acquire_profile
from crmsync.errors import ProfileBusyError


def test_a_taken_profile_names_its_holder_and_is_refused(tmp_path: Path) -> None:
    """A second lock on the same file is refused at once, naming command, pid and host."""
    first = FileProfileLock(tmp_path / "locks", command="crmsync archive run")
    second = FileProfileLock(tmp_path / "locks", command="crmsync sync --once")
    acquire_profile(first, "aston")
    with pytest.raises(ProfileBusyError) as caught:
        acquire_profile(second, "aston")
    assert caught.value.profile == "aston"
    assert caught.value.holder.startswith(
        f"'crmsync archive run' (pid {os.getpid()} on host {socket.gethostname()}, since "
    )
    assert stat_mode(tmp_path / "locks" / "aston.lock") == 0o600
    acquire_profile(second, "kilkenny")  # another profile is free
    first.close()
    acquire_profile(second, "aston")
    assert second.held("aston") and not first.held("aston")
    second.close()


def test_a_bounded_wait_tells_once_then_gives_up(tmp_path: Path) -> None:
    """With wait=3 the waiter is told who holds it once, polls until the time is up, then
    raises; the lock is taken as soon as it is free."""
    holder = FileProfileLock(tmp_path, command="crmsync run")
    waiter = FileProfileLock(tmp_path, command="crmsync state prune")
    assert holder.try_acquire("default")
    now = [0.0]
    told: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ProfileBusyError):
        acquire_profile(
            waiter, "default", wait=3, on_wait=told.append, clock=lambda: now[0], sleep=sleep
        )
    assert now[0] == 3.0
    assert len(told) == 1 and told[0].startswith("'crmsync run' (pid ")

    def release_then_sleep(seconds: float) -> None:
        holder.release("default")
        sleep(seconds)

    acquire_profile(waiter, "default", wait=60, clock=lambda: now[0], sleep=release_then_sleep)
    assert waiter.held("default")
    assert now[0] == 3.5  # one poll
    waiter.close()


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
