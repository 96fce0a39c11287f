"""The worker refuses a charter that names what its mapping cannot produce, before any cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.bootstrap import build_runtime
from crmsync.errors import CharterFileError
from fakes.local_settings import REPO, local_settings


def test_a_charter_with_an_unmapped_when_value_is_refused(tmp_path: Path) -> None:
    """`when: {channel: emial}` would silently disable a clock: the runtime is not built and
    the error names the charter's line and the likely value."""
    aston = (REPO / "mappings" / "charters" / "aston.yaml").read_text(encoding="utf-8")
    charter = tmp_path / "aston.yaml"
    charter.write_text(aston.replace("when: {channel: email}", "when: {channel: emial}"))
    line = 1 + aston.splitlines().index("    when: {channel: email}")
    settings = local_settings(tmp_path / "data").model_copy(update={"charter": charter})
    with pytest.raises(CharterFileError) as caught:
        build_runtime(settings)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (
        str(charter),
        line,
        "clocks[0].when.channel",
    )
    assert "did you mean 'email'?" in problem.message
    assert not (tmp_path / "data").exists()
