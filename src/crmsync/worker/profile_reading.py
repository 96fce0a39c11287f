"""What a new reading of the profiles changes for a running ``crmsync run``.

The profiles as they run (opened or still pending) against the profiles read now: a
profile read for the first time is added; one whose settings differ is changed; one
neither read nor with a file in the profiles folder is removed. A profile whose file is
there but could not be read (a bad file) is neither: it runs on as it was.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from crmsync.settings import Settings


@dataclass(frozen=True)
class ProfileReading:
    """The profiles added and changed (their settings as read now) and removed (names)."""

    added: list[Settings] = field(default_factory=list)
    changed: list[Settings] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def compare_profiles(
    running: Mapping[str, Settings], read: Sequence[Settings], files: Collection[str] | None
) -> ProfileReading:
    """``running`` (by name) against the profiles ``read`` now. ``files``: the names of
    the profile files in the folder now, good or bad; None when the folder could not be
    listed (then nothing is removed: a folder that went away is a fault, reported, not an
    order to stop every profile)."""
    now = {settings.profile: settings for settings in read}
    return ProfileReading(
        added=[s for name, s in now.items() if name not in running],
        changed=[s for name, s in now.items() if name in running and s != running[name]],
        removed=(
            []
            if files is None
            else sorted(name for name in running if name not in now and name not in files)
        ),
    )
