"""The Dockerfile's structure (no Docker engine runs here): dockerfile-parse reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]


def parsed() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def instructions(stage: int | None = None) -> list[dict[str, str]]:
    """Instructions of the whole file, or of one stage (0-based)."""
    items = parsed().structure
    if stage is None:
        return items
    starts = [i for i, item in enumerate(items) if item["instruction"] == "FROM"]
    end = starts[stage + 1] if stage + 1 < len(starts) else len(items)
    return items[starts[stage] : end]


def values(name: str, stage: int | None = None) -> list[str]:
    return [i["value"] for i in instructions(stage) if i["instruction"] == name]


def test_multi_stage_build_wheels_then_installs_them_into_a_slim_image() -> None:
    """Two stages: the first builds wheels, the final one is slim and installs from them."""
    froms = values("FROM")
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    assert "slim" in froms[1]
    assert any("pip wheel" in v for v in values("RUN", 0))
    assert any("--from=build" in v for v in values("COPY", 1))
    assert any("--no-index" in v and "crmsync" in v for v in values("RUN", 1))


def test_runs_as_a_non_root_user() -> None:
    """USER is set in the final stage and is neither root nor uid 0."""
    users = values("USER", 1)
    assert users and users[-1] not in {"root", "0"}


def test_entrypoint_cmd_healthcheck_volume_and_port() -> None:
    """ENTRYPOINT ["crmsync"], CMD ["run"], a HEALTHCHECK on the health probe, /data."""
    assert json.loads(values("ENTRYPOINT")[-1]) == ["crmsync"]
    assert json.loads(values("CMD")[-1]) == ["run"]
    [health] = values("HEALTHCHECK")
    assert "crmsync" in health and "healthcheck" in health
    assert json.loads(values("VOLUME")[-1]) == ["/data"]
    assert "8080" in values("EXPOSE")
    env = parsed().envs
    assert env["CRMSYNC_DATA_DIR"] == "/data"


def test_no_secret_is_baked_in() -> None:
    """No ENV or ARG carries a secret setting, and key/env files are kept out of the context."""
    secret_words = ("PASSWORD", "TOKEN", "SECRET", "SESSION_ID", "ARCHIVE_KEY", "PRIVATE_KEY")
    for item in instructions():
        if item["instruction"] in {"ENV", "ARG"}:
            assert not any(word in item["value"].upper() for word in secret_words), item
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "crmsync-data", ".env", "*.pem", "*.key", "crmsync.toml"):
        assert pattern in ignored


def test_the_image_ships_the_mappings_the_defaults_point_at() -> None:
    """The default CRMSYNC_CHARTER/MAPPING paths are relative to WORKDIR, so mappings/ is copied."""
    assert values("WORKDIR", 1)[-1] == "/app"
    assert any(v.split()[0] == "mappings" for v in values("COPY", 1))


def _docker_runs(doc: Path) -> list[str]:
    """Every ``docker run`` command in the shell blocks of ``doc``, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    joined = "\n".join(block.replace("\\\n", " ") for block in blocks)
    return [line for line in joined.splitlines() if line.strip().startswith("docker run")]


def test_the_documented_salesforce_containers_name_charter_profile_and_a_readable_key() -> None:
    """A `docker run` for Salesforce in the docs sets the profile and a charter the image ships,
    and mounts the key in a way uid 10001 (the image's user) can read it: either the key's
    group added to the container and the key made group-readable, or a copy owned by 10001."""
    uid_lines = [v for v in values("RUN", 1) if "useradd" in v]
    assert uid_lines and "--uid 10001" in uid_lines[0]
    for doc in (ROOT / "docs" / "operator-guide.md", ROOT / "docs" / "salesforce-setup.md"):
        runs = [run for run in _docker_runs(doc) if "CRMSYNC_CRM=salesforce" in run]
        assert runs, doc
        text = doc.read_text()
        for run in runs:
            charter = re.search(r"CRMSYNC_CHARTER=(\S+)", run)
            assert charter, (doc, run)
            assert (ROOT / charter.group(1)).is_file(), (doc, charter.group(1))  # /app/mappings
            assert re.search(r"CRMSYNC_PROFILE=\w", run), (doc, run)
            assert "CRMSYNC_SF_PRIVATE_KEY_FILE=/run/secrets/sf.key" in run
            assert "target=/run/secrets/sf.key,readonly" in run
            source = re.search(r"source=\"?([^,\"]+)\"?,target=/run/secrets/sf.key", run)
            assert source, (doc, run)
            if source.group(1) == "$PWD/crmsync.key":  # through the key's group
                assert '--group-add "$(stat -c %g crmsync.key)"' in run, (doc, run)
                assert "chmod 640 crmsync.key" in text, doc
            else:  # a copy owned by the image's user
                install = re.search(
                    r"install (-D )?-o 10001 -g 10001 -m 0?400 crmsync.key (\S+)", text
                )
                assert install and install.group(2) == source.group(1), (doc, run)


def test_the_documented_compose_names_charter_profile_and_readable_secret_files() -> None:
    """The Compose example sets the profile and a charter the image ships, and the text
    hands every secret file crmsync reads to uid 10001 (Compose keeps the host's owner and
    mode, so a `chmod 600` file of yours is unreadable inside, as for `docker run`)."""
    doc = ROOT / "docs" / "operator-guide.md"
    text = doc.read_text()
    (block,) = re.findall(r"```yaml\n(services:.*?)```", text, flags=re.DOTALL)
    compose = yaml.safe_load(block)
    service = compose["services"]["crmsync"]
    environment = service["environment"]
    assert re.fullmatch(r"\w[\w-]*", environment["CRMSYNC_PROFILE"])
    assert (ROOT / environment["CRMSYNC_CHARTER"]).is_file()  # /app/mappings in the image
    files = {s if isinstance(s, str) else s["source"] for s in service["secrets"]}
    paths = sorted(compose["secrets"][name]["file"].removeprefix("./") for name in files)
    assert paths == ["secrets/archive_key", "secrets/sf.key", "secrets/state_url"]
    hand_over = " ".join(text.split())  # the command wraps across lines
    chown = re.search(r"sudo chown 10001:10001 ((?:secrets/[\w.]+ ?)+)", hand_over)
    chmod = re.search(r"sudo chmod 400 ((?:secrets/[\w.]+ ?)+)", hand_over)
    assert chown and sorted(chown.group(1).split()) == paths, chown
    assert chmod and sorted(chmod.group(1).split()) == paths, chmod
