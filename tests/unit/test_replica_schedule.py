"""When the dispatcher next defers a profile's jobs (worker/replicas.py)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta, timezone

from crmsync.bootstrap import replica_name, settings_model
from crmsync.worker.replicas import next_nightly, next_sync, queue_name


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_nightly_job_is_next_due_at_its_hour_strictly_after_now() -> None:
    assert next_nightly("archive", _at("2026-12-06T01:59:59+00:00")) == _at(
        "2026-12-06T02:00:00+00:00"
    )
    assert next_nightly("archive", _at("2026-12-06T02:00:00+00:00")) == _at(
        "2026-12-07T02:00:00+00:00"
    )
    assert next_nightly("prune", _at("2026-12-31T03:30:00+00:00")) == _at(
        "2027-01-01T03:00:00+00:00"
    )


def test_a_nightly_hour_is_utc_whatever_the_offset_of_now() -> None:
    now = datetime(2026, 12, 6, 20, 0, tzinfo=timezone(timedelta(hours=5)))  # 15:00 UTC
    assert next_nightly("report", now) == datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def test_a_sync_keeps_its_interval_from_the_tick_it_was_due() -> None:
    due = _at("2026-12-06T10:00:00+00:00")
    assert next_sync(due, 300, _at("2026-12-06T10:00:01+00:00")) == _at("2026-12-06T10:05:00+00:00")


def test_a_sync_far_behind_is_next_due_an_interval_from_now_not_in_a_burst() -> None:
    due = _at("2026-12-06T10:00:00+00:00")
    assert next_sync(due, 300, _at("2026-12-06T10:07:00+00:00")) == _at("2026-12-06T10:12:00+00:00")


def test_each_profile_has_a_queue_of_its_own() -> None:
    assert queue_name("north") == "crmsync/north"
    assert queue_name("north") != queue_name("south")


def test_a_long_profile_name_still_gives_a_queue_postgresql_can_notify() -> None:
    """Procrastinate notifies ``procrastinate_queue_v1#QUEUE``; PostgreSQL refuses channel
    names of 64 bytes or more."""
    names = ["housing-association-of-the-north-west-stage-two", "ø" * 40]
    names.append(names[0] + "-b")
    queues = [queue_name(n) for n in names]
    assert all(len(f"procrastinate_queue_v1#{q}".encode()) < 64 for q in queues)
    assert len(set(queues)) == 3
    assert queues[0].startswith("crmsync/housing-association")


def test_a_replica_is_named_by_its_setting_or_else_by_its_host_and_pid() -> None:
    assert replica_name(settings_model()(replica="eu-west-2")) == "eu-west-2"
    assert replica_name(settings_model()(replica="")) == f"{socket.gethostname()}-{os.getpid()}"
