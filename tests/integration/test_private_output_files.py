"""Files handed to people (reports, evaluations, exports) are written by ``PrivateFile``:
0600 whatever the umask, and whole or not at all. A full disk (an injected ``ENOSPC``)
leaves no partial file and the previous good file exactly as it was."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync import private_file
from crmsync.private_file import PrivateFile


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _lenient_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0644), as on many hosts."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def full_disk(*_: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_new_file_is_private_and_complete(tmp_path: Path) -> None:
    """Written and committed: 0600 under umask 022, the whole text, nothing else beside it."""
    target = tmp_path / "report.html"
    with PrivateFile.open(target) as handle:
        handle.write("<html>…</html>\n")
    assert target.read_text(encoding="utf-8") == "<html>…</html>\n"
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_world_readable_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    """An earlier 0644 report at the path is replaced by a 0600 file with the new text."""
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o644)
    with PrivateFile.open(target) as handle:
        handle.write("new")
    assert (target.read_text(), mode(target)) == ("new", 0o600)


def test_a_write_failing_with_enospc_keeps_the_previous_file(tmp_path: Path) -> None:
    """ENOSPC while writing: the error propagates, the old file is untouched, no temporary
    file is left beside it."""
    target = tmp_path / "report.csv"
    target.write_text("previous good report\n")
    with pytest.raises(OSError, match="No space left"), PrivateFile.open(target) as handle:
        handle.write("half a rep")
        full_disk()
    assert target.read_text() == "previous good report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_enospc_at_fsync_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk that only shows when the data is forced out (fsync): same outcome."""
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")
    monkeypatch.setattr(private_file.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"), PrivateFile.open(target) as handle:
        handle.write("x" * 100_000)
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_no_file_appears_when_the_first_write_fails(tmp_path: Path) -> None:
    """Nothing existed and the write failed: nothing exists after."""
    with pytest.raises(OSError), PrivateFile.open(tmp_path / "new.json") as handle:
        handle.write("{")
        full_disk()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_does_not_exist_fails_at_open(tmp_path: Path) -> None:
    """The file cannot be made: ``open`` raises (a bad argument for the CLI)."""
    with pytest.raises(FileNotFoundError):
        PrivateFile.open(tmp_path / "missing" / "report.json")


def test_a_device_is_written_in_place(tmp_path: Path) -> None:
    """A target that is no regular file cannot be renamed over: /dev/null is written in
    place, and /dev/full reports ENOSPC when the text is flushed."""
    with PrivateFile.open(Path("/dev/null")) as handle:
        handle.write("gone")
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError) as caught, PrivateFile.open(Path("/dev/full")) as handle:
        handle.write("x")
    assert caught.value.errno == errno.ENOSPC


def test_a_symlink_target_is_written_through(tmp_path: Path) -> None:
    """A path that is a symlink: the file it points to gets the text; the link stays."""
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with PrivateFile.open(link) as handle:
        handle.write("new")
    assert link.is_symlink() and real.read_text() == "new"
