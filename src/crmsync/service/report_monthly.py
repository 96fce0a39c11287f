"""Last month's report, written by the worker once the month has ended (checked daily).

The month is the charter's local calendar month before the one ``now`` falls in; the
report covers the clock instances due in it, per ISO week (the month is the total), from
the profile's state store and archive. It is written as ``<profile>-<YYYY-MM>.html`` and
``.json`` into the report folder, each file replaced whole (written aside, then renamed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from crmsync.domain.charter import Charter
from crmsync.domain.report import Period
from crmsync.ports import ArchiveCipher, ArchiveStore, PopulationReader
from crmsync.private_file import PrivateFile
from crmsync.service.report_page import PageSource
from crmsync.service.report_source import stored_canonicals, stored_complaints
from crmsync.service.report_stream import (
    ReportRequest,
    empty_partial,
    report_complaints,
    report_document,
)


def last_month(charter: Charter, now: int) -> tuple[date, date]:
    """The first and last local date of the month before the one ``now`` is in."""
    today = datetime.fromtimestamp(now, charter.calendar.zone).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def monthly_report_paths(folder: Path, profile: str, first: date) -> tuple[Path, Path]:
    """The JSON and HTML files of the month that starts on ``first``."""
    stem = f"{profile}-{first:%Y-%m}"
    return folder / f"{stem}.json", folder / f"{stem}.html"


def write_monthly_report(
    charter: Charter,
    state: PopulationReader,
    archive: ArchiveStore | None,
    *,
    profile: str,
    now: int,
    folder: Path,
    cipher: ArchiveCipher | None = None,
) -> list[Path]:
    """Write last month's report (HTML and JSON) into ``folder``; return the two paths."""
    from crmsync.service.report_html import render_html  # noqa: PLC0415 - matplotlib, on use

    first, last = last_month(charter, now)
    request = ReportRequest(charter, first, last, now, Period.WEEK)
    partial = empty_partial(request)
    canonicals = stored_canonicals(state, archive, profile, cipher)
    report_complaints(
        request, stored_complaints(canonicals, charter.calendar.zone, partial.errors), partial
    )
    document = report_document(request, partial)
    folder.mkdir(parents=True, exist_ok=True)
    source = f"profile {profile} (state store and archive)"
    json_path, html_path = monthly_report_paths(folder, profile, first)
    written = []
    for path, text in (
        (json_path, json.dumps(document, ensure_ascii=False) + "\n"),
        (html_path, render_html(document, PageSource(charter, source))),
    ):
        with PrivateFile.open(path) as handle:  # 0600, whole or not at all
            handle.write(text)
        written.append(path)
    return written


def write_missing_monthly_report(
    charter: Charter,
    state: PopulationReader,
    open_archive: Callable[[], ArchiveStore],
    *,
    profile: str,
    now: int,
    folder: Path,
    cipher: ArchiveCipher | None = None,
) -> list[Path]:
    """Write last month's report into ``folder`` unless both its files are there; return
    the paths written (none when it was there). The archive is opened with
    ``open_archive`` only when a report is written, and closed after."""
    first, _ = last_month(charter, now)
    if all(p.exists() for p in monthly_report_paths(folder, profile, first)):
        return []
    archive = open_archive()
    try:
        return write_monthly_report(
            charter, state, archive, profile=profile, now=now, folder=folder, cipher=cipher
        )
    finally:
        archive.close()
