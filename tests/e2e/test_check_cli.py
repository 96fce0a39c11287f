"""`crmsync check` as a user runs it: exit status and every problem with file:line:column."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def crmsync(
    cwd: Path, *args: str, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in ``cwd`` with no CRMSYNC_* from the caller (only
    ``settings``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "300", "CRMSYNC_CONFIG": str(cwd / "crmsync.toml")})
    env.update(settings or {})
    beside = Path(sys.executable).with_name("crmsync")
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "crmsync"]
    return subprocess.run(
        [*command, "check", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def copy_mappings(tmp_path: Path) -> Path:
    """A working folder holding a copy of the bundled mappings/ (the defaults `check` reads)."""
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (present once) by ``new`` in ``path``; the 1-based line of the edit."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def test_the_bundled_files_pass(tmp_path: Path) -> None:
    """The shipped mappings (Dataverse, Salesforce) and charters pass, each charter against
    each mapping; exit 0."""
    root = copy_mappings(tmp_path)
    done = crmsync(root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["ok   mappings/dynamics365.yaml", "ok   mappings/salesforce.yaml"]
    both = "fits mappings/dynamics365.yaml, mappings/salesforce.yaml)"
    assert f"ok   mappings/charters/aston.yaml (6 clocks; {both}" in lines
    charters = sorted(p.name for p in (root / "mappings" / "charters").glob("*.yaml"))
    assert len(charters) >= 4
    assert [line.split()[1] for line in lines[2:]] == [f"mappings/charters/{c}" for c in charters]
    assert all(line.endswith(f" clocks; {both}") for line in lines[2:])


def test_a_broken_copy_of_the_mappings_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    """A renamed picklist value, a duplicate mapping key, a misspelt required attribute and
    a duplicate charter key: all reported in one run, each at file:line:column."""
    root = copy_mappings(tmp_path)
    mapping = root / "mappings" / "salesforce.yaml"
    edit(mapping, "{Email: email,", "{Email: e-mail,")
    dup = edit(mapping, "    description: Description\n", "    description: Description\n" * 2)
    studijob = root / "mappings" / "charters" / "studijob.yaml"
    require = edit(studijob, "require: [registered_by,", "require: [registerd_by,")
    stop = edit(
        studijob, "    stop: [feedback, decision]\n", "    stop: [feedback, decision]\n" * 2
    )
    aston_when = 1 + (root / "mappings" / "charters" / "aston.yaml").read_text(
        encoding="utf-8"
    ).splitlines().index("    when: {channel: email}")
    done = crmsync(root)
    assert done.returncode == 2
    problems = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert problems == [
        f"mappings/salesforce.yaml:{dup + 1}:5 (complaints.attributes.description): "
        f"duplicate key 'description' (first at line {dup})",
        f"mappings/charters/aston.yaml:{aston_when}:21 (clocks[0].when.channel): 'email' is "
        "not a value of 'channel': no CRM value of Origin maps to it (mapped: e-mail, phone, "
        "web, letter, in_person) (did you mean 'e-mail'?)",
        f"mappings/charters/studijob.yaml:{require}:15 (clocks[0].require[0]): attribute "
        "'registerd_by' is not in the mapping mappings/dynamics365.yaml "
        "(did you mean 'registered_by'?)",
        f"mappings/charters/studijob.yaml:{require}:15 (clocks[0].require[0]): attribute "
        "'registerd_by' is not in the mapping mappings/salesforce.yaml "
        "(did you mean 'registered_by'?)",
        f"mappings/charters/studijob.yaml:{stop + 1}:5 (clocks[1].stop): duplicate key 'stop' "
        f"(first at line {stop})",
    ]
    assert "ok   mappings/charters/kilkenny.yaml" in done.stdout


def test_every_profile_pairs_its_own_charter_and_mapping(tmp_path: Path) -> None:
    """A [profiles.NAME] charter is checked against that profile's mapping, not only the
    bundled pairs: an event the profile's mapping lacks is reported."""
    root = copy_mappings(tmp_path)
    custom = root / "custom"
    custom.mkdir()
    shutil.copy(root / "mappings" / "salesforce.yaml", custom / "org.yaml")
    shutil.copy(root / "mappings" / "charters" / "kilkenny.yaml", custom / "kilkenny.yaml")
    edit(custom / "org.yaml", "    callback: Callback_At__c\n", "    called_back: Callback_At__c\n")
    (root / "crmsync.toml").write_text(
        "[profiles.acme]\n"
        'charter = "custom/kilkenny.yaml"\n'
        'mapping = "custom/org.yaml"\n'
        "[profiles.bundled]\n"
        'charter = "mappings/charters/aston.yaml"\n',
        encoding="utf-8",
    )
    callback_line = [
        i + 1
        for i, line in enumerate((custom / "kilkenny.yaml").read_text().splitlines())
        if "stop:" in line and "callback" in line
    ]
    done = crmsync(root)
    assert done.returncode == 2
    problems = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert problems
    assert all(p.startswith("custom/kilkenny.yaml:") for p in problems)
    assert [int(p.split(":")[1]) for p in problems] == callback_line
    assert all("event 'callback' is not in the mapping custom/org.yaml" in p for p in problems)
    assert "ok   custom/org.yaml" in done.stdout
    assert "ok   mappings/charters/kilkenny.yaml" in done.stdout


def test_named_files_are_checked_against_each_other_only(tmp_path: Path) -> None:
    """`check CHARTER --mapping MAPPING` cross-checks just that pair (`require: [foo]`)."""
    root = copy_mappings(tmp_path)
    charter = root / "mappings" / "charters" / "studijob.yaml"
    line = edit(charter, "require: [root_cause, solution]", "require: [root_cause, foo]")
    done = crmsync(root, "mappings/charters/studijob.yaml", "--mapping", "mappings/salesforce.yaml")
    assert done.returncode == 2
    assert (
        f"  mappings/charters/studijob.yaml:{line}:27 (clocks[2].require[1]): attribute 'foo' "
        "is not in the mapping mappings/salesforce.yaml" in done.stderr.splitlines()
    )
    assert "aston" not in done.stdout + done.stderr


def test_a_settings_problem_is_reported_and_the_files_are_still_checked(tmp_path: Path) -> None:
    """A profile that does not validate is one more problem; the bundled pairs still run."""
    root = copy_mappings(tmp_path)
    (root / "crmsync.toml").write_text(
        '[profiles.acme]\nchartr = "custom/kilkenny.yaml"\n', encoding="utf-8"
    )
    done = crmsync(root)
    assert done.returncode == 2
    assert done.stderr.startswith("configuration: ")
    assert "crmsync.toml:2: profile 'acme': unknown setting 'chartr'" in done.stderr
    assert "ok   mappings/charters/aston.yaml" in done.stdout


def test_the_charter_and_mapping_of_the_environment_are_paired(tmp_path: Path) -> None:
    """CRMSYNC_CHARTER with CRMSYNC_MAPPING (no profiles): that pair is cross-checked."""
    root = copy_mappings(tmp_path)
    custom = root / "custom"
    custom.mkdir()
    shutil.copy(root / "mappings" / "salesforce.yaml", custom / "org.yaml")
    shutil.copy(root / "mappings" / "charters" / "studijob.yaml", custom / "studijob.yaml")
    edit(custom / "org.yaml", "    involved: Involved__c\n", "    involved_parties: Involved__c\n")
    line = 1 + (custom / "studijob.yaml").read_text(encoding="utf-8").splitlines().index(
        "    require: [registered_by, complainant_type, complainant_name, description, involved]"
    )
    done = crmsync(
        root,
        settings={"CRMSYNC_CHARTER": "custom/studijob.yaml", "CRMSYNC_MAPPING": "custom/org.yaml"},
    )
    assert done.returncode == 2
    problems = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert problems == [
        f"custom/studijob.yaml:{line}:79 (clocks[0].require[4]): attribute 'involved' is not "
        "in the mapping custom/org.yaml (did you mean 'involved_parties'?)"
    ]


def test_online_without_login_settings_names_them(tmp_path: Path) -> None:
    """`check --online` against Salesforce with no JWT settings exits 2 with one line that
    names the missing settings (no internal class name, no traceback)."""
    cwd = copy_mappings(tmp_path)
    settings = {"CRMSYNC_CRM": "salesforce", "CRMSYNC_DATA_DIR": str(tmp_path / "data")}
    result = crmsync(cwd, "--online", settings=settings)
    assert result.returncode == 2
    assert "error: --online: CRMSYNC_SF_AUTH=jwt needs CRMSYNC_SF_CONSUMER_KEY" in result.stderr
    assert "ConfigError" not in result.stderr and "Traceback" not in result.stderr
