"""``crmsync salesforce deploy [--check-only]`` through the Metadata API of the HTTP fake
org: the mapping's fields arrive, failures are named per component, nothing leaks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from crmsync.adapters.crm.retry_policy import NO_WAIT
from crmsync.adapters.crm.salesforce_auth import (
    SalesforceAuth,
    SalesforceCredentials,
    TimeoutSession,
)
from crmsync.adapters.crm.salesforce_deploy import MetadataDeployer, wait_for
from crmsync.adapters.crm.salesforce_metadata import custom_fields, deploy_zip
from crmsync.cli import app
from crmsync.errors import CrmAuthError
from crmsync.mapping.field_mapping import load_mapping
from fakes.salesforce_fake import API, INSTANCE, FakeOrg, fake_salesforce

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml")
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Undo the CLI's logging configuration (its stream is closed after the run)."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def org() -> Iterator[FakeOrg]:
    """A fake org without the mapping's custom fields (a fresh org, before the deploy)."""
    with fake_salesforce(lambda: NOW) as fake:
        for f in custom_fields(MAPPING):
            fake.org.hide_field(f.object, f.name)
        yield fake.org


def deployer(org: FakeOrg, session: str | None = None) -> MetadataDeployer:
    credentials = SalesforceCredentials(
        mode="session",
        instance_url=INSTANCE,
        session_id=SecretStr(session or org.issue_session()),
        api_version=API,
    )
    auth = SalesforceAuth(credentials, TimeoutSession(5.0), policy=NO_WAIT)
    return MetadataDeployer(auth, api_version=API, policy=NO_WAIT)


def run_cli(org: FakeOrg, tmp_path: Path, *args: str, session: str | None = None) -> Result:
    env = {
        "CRMSYNC_SF_AUTH": "session",
        "CRMSYNC_SF_INSTANCE_URL": INSTANCE,
        "CRMSYNC_SF_SESSION_ID": session or org.issue_session(),
        "CRMSYNC_SF_API_VERSION": API,
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
    }
    command = ["salesforce", "deploy", "--mapping", str(ROOT / "mappings" / "salesforce.yaml")]
    return CliRunner().invoke(app, [*command, "--poll-seconds", "0", *args], env=env)


def test_a_deploy_creates_every_field_and_the_permission_set(org: FakeOrg) -> None:
    """After the deploy the org describes every custom field of the mapping, the key as a
    unique external id, and holds the permission set; progress was reported each poll."""
    d = deployer(org)
    deploy_id = d.start(deploy_zip(MAPPING, API), check_only=False)
    seen = []
    final = wait_for(d, deploy_id, check_only=False, on_progress=seen.append, sleep=lambda s: None)
    assert [s.status for s in seen] == ["InProgress", "Succeeded"]
    assert final.succeeded and final.failures == ()
    assert final.components_deployed == final.components_total == len(custom_fields(MAPPING)) + 1
    case = org.schema["Case"]["fields"]
    assert case["Charter_Status__c"]["type"] == "picklist"
    assert case["Charter_Status__c"]["values"] == [
        "on_track",
        "at_risk",
        "breached",
        "met",
        "paused",
    ]
    assert case["Acknowledged_At__c"]["type"] == "datetime"
    key = org.schema["Task"]["fields"]["CrmSync_Key__c"]
    assert (key["type"], key["external_id"], key["unique"]) == ("string", True, True)
    assert org.permission_sets == {"CrmSync_Integration": "deployed"}


def test_check_only_validates_and_changes_nothing(org: FakeOrg, tmp_path: Path) -> None:
    """--check-only reports success and the org still lacks the fields."""
    result = run_cli(org, tmp_path, "--check-only")
    assert result.exit_code == 0, result.stderr
    assert "validated (check only, nothing changed)" in result.stdout
    assert "Charter_Status__c" not in org.schema["Case"]["fields"]
    assert org.permission_sets == {"CrmSync_Integration": ""}


def test_the_cli_deploys_with_a_progress_line(org: FakeOrg, tmp_path: Path) -> None:
    """`crmsync salesforce deploy` prints what it sent, a progress line per state and the
    next step; exit 0."""
    result = run_cli(org, tmp_path)
    assert result.exit_code == 0, result.stderr
    total = len(custom_fields(MAPPING)) + 1
    progress = [line for line in result.stderr.splitlines() if line.startswith("deploy 0Af")]
    assert [line.split(": ", 1)[1] for line in progress] == [
        f"InProgress, {total // 2}/{total} components",
        f"Succeeded, {total}/{total} components",
    ]
    assert "assign the permission set CrmSync_Integration" in result.stdout
    assert "Charter_Status__c" in org.schema["Case"]["fields"]


def test_each_refused_component_is_named_with_its_reason(org: FakeOrg, tmp_path: Path) -> None:
    """Two components the org refuses are each reported by type, name and reason; exit 1
    and, rolled back, nothing is created."""
    org.deploy_failures = {
        "Case.Charter_Status__c": "Picklist value: breached is a duplicate",
        "Activity.CrmSync_Key__c": "Field CrmSync_Key__c already exists as a Text(80)",
    }
    result = run_cli(org, tmp_path)
    assert result.exit_code == 1
    refused = sorted(line for line in result.stderr.splitlines() if line.startswith("refused"))
    assert refused == [
        "refused: CustomField Activity.CrmSync_Key__c: Field CrmSync_Key__c already exists as "
        "a Text(80)",
        "refused: CustomField Case.Charter_Status__c: Picklist value: breached is a duplicate",
    ]
    assert "2 components refused" in result.stderr
    assert "Acknowledged_At__c" not in org.schema["Case"]["fields"]


def test_a_permission_for_a_field_the_org_lacks_is_refused(org: FakeOrg) -> None:
    """A zip whose permission set grants a field that is neither in the org nor in the zip
    fails on the permission set (as the Metadata API does)."""
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(deploy_zip(MAPPING, API)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name != "objects/Case.object":
                target.writestr(name, source.read(name))
    d = deployer(org)
    final = wait_for(
        d,
        d.start(out.getvalue(), check_only=True),
        check_only=True,
        on_progress=lambda s: None,
        sleep=lambda s: None,
    )
    assert final.status == "Failed"
    assert {f.name for f in final.failures} == {"CrmSync_Integration"}
    assert any("Case.Charter_Status__c" in f.problem for f in final.failures)


def test_an_invalid_session_is_an_auth_error_without_the_session(org: FakeOrg) -> None:
    """A session the org does not know is a CrmAuthError; the session id is never shown."""
    d = deployer(org, session="00DFAKE!stolen-session-value")
    with pytest.raises(CrmAuthError) as caught:
        d.start(deploy_zip(MAPPING, API), check_only=True)
    assert "INVALID_SESSION_ID" in str(caught.value)
    assert "stolen-session-value" not in str(caught.value)


def test_the_cli_names_a_refused_login_and_exits_1(org: FakeOrg, tmp_path: Path) -> None:
    """The CLI turns a refused session into one error line, no traceback, no secret."""
    result = run_cli(org, tmp_path, session="00DFAKE!not-a-session")
    assert result.exit_code == 1
    assert "INVALID_SESSION_ID" in result.stderr
    assert "not-a-session" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def check_online(org: FakeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(ROOT)
    env = {
        "CRMSYNC_CRM": "salesforce",
        "CRMSYNC_SF_AUTH": "session",
        "CRMSYNC_SF_INSTANCE_URL": INSTANCE,
        "CRMSYNC_SF_SESSION_ID": org.issue_session(),
        "CRMSYNC_SF_API_VERSION": API,
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
    }
    args = ["check", "--online", "mappings/charters/aston.yaml"]
    return CliRunner().invoke(app, [*args, "--mapping", "mappings/salesforce.yaml"], env=env)


def online_problems(result: Result) -> list[str]:
    return [
        line.split("salesforce CRM: ", 1)[1]
        for line in result.stderr.splitlines()
        if "salesforce CRM: " in line
    ]


def test_check_online_names_the_deploy_and_passes_after_it(
    org: FakeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fresh org every custom field is reported missing with the command that creates
    it; after `crmsync salesforce deploy` the same check passes."""
    before = check_online(org, tmp_path, monkeypatch)
    assert before.exit_code == 2
    missing = online_problems(before)
    assert len(missing) == len(custom_fields(MAPPING))
    assert all("create it with `crmsync salesforce deploy`" in line for line in missing)
    assert run_cli(org, tmp_path).exit_code == 0
    after = check_online(org, tmp_path, monkeypatch)
    assert after.exit_code == 0, after.stderr
    assert online_problems(after) == []


def test_check_online_reports_picklists_and_field_security_from_describe(
    org: FakeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the deploy: an org picklist value the mapping does not map, a follow-up
    constant the org's Task Type lacks, a read-only write-back field and a hidden standard
    field are each reported from describe."""
    assert run_cli(org, tmp_path).exit_code == 0
    org.set_field("Case", "Origin", values=["Email", "Phone", "Web", "Letter", "In Person", "Fax"])
    org.set_field("Task", "Type", values=["Call", "Email", "Customer Update"])
    org.set_field("Case", "Charter_Next_Due__c", updateable=False)
    org.hide_field("Case", "SuppliedName")
    problems = online_problems(check_online(org, tmp_path, monkeypatch))
    assert sorted(problems) == [
        "Case.Charter_Next_Due__c: not updateable (the worker writes it: write, write-back "
        "next_due): assign the permission set CrmSync_Integration to the integration user",
        "Case.Origin: the org's picklist value 'Fax' is not mapped: add it to "
        "attributes.channel.values (or say `unmapped: keep`/`drop` for the attribute)",
        "Case.SuppliedName: missing or hidden from the integration user (used as read, "
        "attribute complainant_name): give the integration user read access to it",
        "Task.Type: 'Charter Follow-up' (a follow-up constant) is not a value of the org's "
        "picklist: add it to the org's picklist values",
    ]


def test_missing_login_settings_are_one_line_naming_them(tmp_path: Path) -> None:
    """Without the JWT settings the deploy exits 2 naming each missing setting, with no
    internal class name and no traceback."""
    env: dict[str, str | None] = {
        "CRMSYNC_SF_AUTH": "jwt",
        "CRMSYNC_SF_CONSUMER_KEY": None,
        "CRMSYNC_SF_PRIVATE_KEY_FILE": None,
        "CRMSYNC_SF_USERNAME": None,
        "CRMSYNC_DATA_DIR": str(tmp_path),
        "CRMSYNC_CONFIG": str(tmp_path / "none.toml"),
    }
    mapping = str(ROOT / "mappings" / "salesforce.yaml")
    result = CliRunner().invoke(
        app, ["salesforce", "deploy", "--check-only", "--mapping", mapping], env=env
    )
    assert result.exit_code == 2
    assert "error: validate: CRMSYNC_SF_AUTH=jwt needs CRMSYNC_SF_CONSUMER_KEY" in result.stderr
    assert "CRMSYNC_SF_PRIVATE_KEY_FILE" in result.stderr and "CRMSYNC_SF_USERNAME" in result.stderr
    assert "ConfigError" not in result.stderr and "Traceback" not in result.stderr
