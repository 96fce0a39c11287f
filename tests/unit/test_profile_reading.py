"""A new reading of the profiles against those that run: added, changed, removed, and a
bad file's profile left as it runs."""

from __future__ import annotations

from pathlib import Path

from crmsync.bootstrap import settings_model
from crmsync.worker.profile_reading import compare_profiles

Settings = settings_model()  # the shared settings and each registered CRM's group


def profile(name: str, **values: object) -> Settings:
    return Settings(profile=name, data_dir=Path("/data") / name, **values)  # type: ignore[arg-type]


def test_a_new_profile_is_added_and_an_unchanged_one_is_left_alone() -> None:
    running = {"a": profile("a")}
    reading = compare_profiles(running, [profile("a"), profile("b")], {"a", "b"})
    assert [s.profile for s in reading.added] == ["b"]
    assert reading.changed == []
    assert reading.removed == []


def test_a_profile_whose_settings_differ_is_changed_with_its_new_settings() -> None:
    running = {"a": profile("a", sync_interval=60), "b": profile("b")}
    reading = compare_profiles(running, [profile("a", sync_interval=30), profile("b")], {"a", "b"})
    [changed] = reading.changed
    assert (changed.profile, changed.sync_interval) == ("a", 30)
    assert reading.added == [] and reading.removed == []


def test_a_profile_without_its_file_is_removed() -> None:
    running = {"a": profile("a"), "b": profile("b"), "c": profile("c")}
    reading = compare_profiles(running, [profile("b")], {"b"})
    assert reading.removed == ["a", "c"]


def test_a_bad_file_leaves_its_profile_running_as_it_was() -> None:
    """The file is there but could not be read: neither changed nor removed."""
    running = {"a": profile("a", sync_interval=60)}
    reading = compare_profiles(running, [], {"a"})
    assert reading.added == [] and reading.changed == [] and reading.removed == []


def test_a_folder_that_cannot_be_listed_removes_nothing() -> None:
    running = {"a": profile("a")}
    assert compare_profiles(running, [], None).removed == []
