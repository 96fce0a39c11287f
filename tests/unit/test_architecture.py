"""Dependencies point inward and time is an input (style.md rules 1 and 2)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "crmsync"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library_and_itself(path: Path) -> None:
    """A domain module imports the stdlib, crmsync.domain and crmsync.errors, nothing else."""
    allowed_own = ("crmsync.domain", "crmsync.errors")
    bad = sorted(
        name
        for name in _imports(path)
        if not (name.split(".")[0] in sys.stdlib_module_names or name.startswith(allowed_own))
        and name != "__future__"
    )
    assert bad == []


@pytest.mark.parametrize(
    "path", _modules("domain") + _modules("service"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_core_and_services_never_import_adapters_or_entry_points(path: Path) -> None:
    """domain/ and service/ never import adapters, the CLI or the composition root."""
    forbidden = ("crmsync.adapters", "crmsync.cli", "crmsync.bootstrap", "crmsync.worker")
    assert sorted(n for n in _imports(path) if n.startswith(forbidden)) == []


def _outside_the_root() -> list[Path]:
    """Every module but the adapters themselves, the composition root and the CLI."""
    return [
        p
        for p in _modules("")
        if p.relative_to(SRC).parts[0] not in {"adapters", "cli", "bootstrap.py"}
    ]


@pytest.mark.parametrize("path", _outside_the_root(), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_composition_root_and_the_cli_import_adapters(path: Path) -> None:
    """Adapters are chosen and built in ``bootstrap.py`` (the CLI calls it): the worker,
    the services, the domain and the mapping take ports and callables, never an adapter."""
    assert sorted(n for n in _imports(path) if n.startswith("crmsync.adapters")) == []


@pytest.mark.parametrize("path", _modules("worker"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_worker_never_imports_the_composition_root_or_the_cli(path: Path) -> None:
    """The root builds the worker and hands it what it runs: the worker never reaches back."""
    forbidden = ("crmsync.bootstrap", "crmsync.cli")
    assert sorted(n for n in _imports(path) if n.startswith(forbidden)) == []


@pytest.mark.parametrize("path", _modules("adapters"), ids=lambda p: str(p.relative_to(SRC)))
def test_adapters_never_import_settings_or_entry_points(path: Path) -> None:
    """An adapter takes its configuration as arguments: no settings, CLI or composition root."""
    forbidden = ("crmsync.settings", "crmsync.cli", "crmsync.bootstrap", "crmsync.worker")
    assert sorted(n for n in _imports(path) if n.startswith(forbidden)) == []


# Sibling imports still to be taken apart by issue 11: none left; the list only shrinks.
_SIBLING_IMPORTS_NOT_YET_REMOVED: set[tuple[str, str]] = set()


def _port_of(module: str) -> str | None:
    """``crm``, ``state`` or ``archive`` for a module inside that adapter group, else None."""
    parts = module.split(".")
    if parts[:2] == ["crmsync", "adapters"] and len(parts) > 2 and not parts[2].startswith("_"):
        return parts[2]
    return None


# The adapters themselves; the other modules in a group are that group's shared parts
# (SOQL, retries, the state codec, migrations).
def _crm_adapters() -> set[str]:
    """Each registered CRM's adapter: the module its wiring (``NAME_wiring``) builds."""
    from crmsync.bootstrap import CRM_ADAPTERS

    return {module.removesuffix("_wiring") for module in CRM_ADAPTERS.values()}


_ADAPTERS = _crm_adapters() | {
    "crmsync.adapters.state.memory",
    "crmsync.adapters.state.sqlite",
    "crmsync.adapters.state.postgres",
    "crmsync.adapters.archive.cipher",
    "crmsync.adapters.archive.local",
    "crmsync.adapters.archive.postgres",
    "crmsync.adapters.archive.s3",
}


@pytest.mark.parametrize("path", _modules("adapters"), ids=lambda p: str(p.relative_to(SRC)))
def test_adapters_never_import_sibling_adapters(path: Path) -> None:
    """An adapter module imports no other adapter and nothing from another port's group:
    shared rules live in the domain, in its own group's parts or in ``adapters/_*.py``."""
    rel = str(path.relative_to(SRC / "adapters"))
    own = "crmsync.adapters." + rel.removesuffix(".py").replace("/", ".")
    siblings = sorted(
        name
        for name in _imports(path)
        if _port_of(name) is not None
        and name != own
        and (name in _ADAPTERS or _port_of(name) != _port_of(own))
        and own != f"{name}_wiring"  # a CRM's wiring builds its own adapter
        and (rel, name) not in _SIBLING_IMPORTS_NOT_YET_REMOVED
    )
    assert siblings == []


def test_the_sibling_import_allowance_only_names_imports_that_still_exist() -> None:
    """Every allowance above still matches an import, so a removed one cannot linger."""
    stale = sorted(
        (rel, name)
        for rel, name in _SIBLING_IMPORTS_NOT_YET_REMOVED
        if name not in _imports(SRC / "adapters" / rel)
    )
    assert stale == []


_HEAVY_IN_SERVICE_NOT_YET_MOVED: set[tuple[str, str]] = set()  # all moved (issue 11)


@pytest.mark.parametrize("path", _modules("service"), ids=lambda p: p.name)
def test_services_never_import_cryptography_or_holidays(path: Path) -> None:
    """Encryption is an adapter behind a port and holidays come through the charter's calendar:
    neither library is imported by a service module."""
    heavy = sorted(
        name
        for name in _imports(path)
        if name.split(".")[0] in {"cryptography", "holidays"}
        and (path.name, name.split(".")[0]) not in _HEAVY_IN_SERVICE_NOT_YET_MOVED
    )
    assert heavy == []


def test_the_heavy_import_allowance_only_names_imports_that_still_exist() -> None:
    """Every allowance above still matches an import."""
    stale = sorted(
        (name, lib)
        for name, lib in _HEAVY_IN_SERVICE_NOT_YET_MOVED
        if not any(n.split(".")[0] == lib for n in _imports(SRC / "service" / name))
    )
    assert stale == []


@pytest.mark.parametrize("path", _modules("demo"), ids=lambda p: p.name)
def test_demo_data_comes_from_the_charter(path: Path) -> None:
    """The demo package builds on the charter alone: no adapters, CLI or composition root,
    and no holidays or time zone rules of its own (the charter's calendar has them)."""
    forbidden = ("crmsync.adapters", "crmsync.cli", "crmsync.bootstrap", "crmsync.worker")
    imported = _imports(path)
    assert sorted(n for n in imported if n.startswith(forbidden)) == []
    assert sorted(n for n in imported if n.split(".")[0] in {"holidays", "dateutil"}) == []


@pytest.mark.parametrize(
    "path",
    _modules("domain") + _modules("service") + _modules("demo"),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_core_and_services_never_read_the_clock(path: Path) -> None:
    """No datetime.now(), utcnow(), today(), time.time() or time.monotonic in domain/service."""
    tree = ast.parse(path.read_text(), str(path))
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"now", "utcnow", "today", "time", "monotonic"}
    ]
    assert calls == []


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """Loading the CLI (what the container's HEALTHCHECK does every 30 s) pulls in neither
    pydantic, structlog, holidays nor any client library: commands import them on use."""
    import subprocess

    heavy = ["pydantic", "pydantic_settings", "structlog", "holidays", "psycopg", "requests"]
    code = f"import sys, crmsync.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


@pytest.mark.parametrize("path", _modules(""), ids=lambda p: str(p.relative_to(SRC)))
def test_public_errors_live_in_the_error_tree(path: Path) -> None:
    """A public class named ``...Error`` is defined only in ``errors.py``, drawn in its tree."""
    if path.name == "errors.py" and path.parent == SRC:
        return
    tree = ast.parse(path.read_text(), str(path))
    errors = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and node.name.endswith("Error")
        and not node.name.startswith("_")
    }
    assert errors == set()


def test_every_public_error_is_drawn_in_the_tree() -> None:
    """Each exception class of ``errors.py`` appears in its docstring's tree."""
    import crmsync.errors as module

    doc = module.__doc__ or ""
    names = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert [n for n in names if f" {n}" not in doc and f"{n}(" not in doc] == []


# The CLI is thin: its command modules share only app (exit codes, errors), options,
# progress, locking and profile (settings, the profile and its guards); none imports another
# command module, nor anything private of another module.
_CLI_SHARED = {"app", "options", "progress", "locking", "profile", "__init__"}


@pytest.mark.parametrize("path", _modules("cli"), ids=lambda p: p.name)
def test_cli_command_modules_import_only_the_shared_cli_modules(path: Path) -> None:
    if path.stem == "__init__":
        return  # registers every command module
    cli = {n.split(".")[2] for n in _imports(path) if n.startswith("crmsync.cli.")}
    assert sorted(cli - _CLI_SHARED) == []


@pytest.mark.parametrize(
    "path", _modules("cli") + _modules("inputs"), ids=lambda p: str(p.relative_to(SRC))
)
def test_the_cli_imports_no_private_names(path: Path) -> None:
    """No ``from module import _private`` in cli/ or inputs/: what two modules share is
    public where it is defined."""
    tree = ast.parse(path.read_text(), str(path))
    private = sorted(
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crmsync")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    )
    assert private == []


def test_the_profile_loading_and_its_guard_are_written_once_in_cli_profile() -> None:
    """load_settings / load_profile_setup / refuse_unknown_profile: defined in cli/profile.py
    and nowhere else under cli/."""
    names = {"load_settings", "load_profile", "load_profile_setup", "refuse_unknown_profile"}
    where = {
        node.name: path.name
        for path in _modules("cli")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef) and node.name in names
    }
    assert where == dict.fromkeys(names, "profile.py")


def test_every_noqa_says_why() -> None:
    """An inline ``# noqa: CODE`` carries its reason (``# noqa: CODE - why``)."""
    bare = [
        f"{path.relative_to(SRC)}:{number}"
        for path in _modules("")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "# noqa" in line and not re.search(r"# noqa: [A-Z0-9, ]+ - \S", line)
    ]
    assert bare == []


def test_the_input_readers_live_outside_the_cli_with_one_encoding_sniffer() -> None:
    """Byte-order marks are sniffed in ``inputs/encoding.py`` only; the CSV and JSON Lines
    readers are not in ``cli/``."""
    sniffing = sorted(
        str(path.relative_to(SRC))
        for path in _modules("")
        if "BOM_UTF16" in path.read_text() or "BOM_UTF32" in path.read_text()
    )
    assert sniffing == ["inputs/encoding.py"]
    readers = [p.name for p in _modules("cli") if "csv.reader(" in p.read_text()]
    assert readers == []


# ----------------------------------------------------------- the CRM-neutral boundary
# A Salesforce field, value format, error code or remedy named above ``adapters/crm/``.
_SALESFORCE_NAMES = re.compile(
    r"Salesforce|salesforce|SystemModstamp|\w+__c\b|sf_datetime|UNABLE_TO_LOCK_ROW"
    r"|REQUEST_LIMIT_EXCEEDED|INVALID_SESSION_ID|INVALID_FIELD|errorCode|SOQL|soql"
    r"|\bComposite\b|sObject|Bulk API"
)
# The same for Dynamics 365 / Dataverse: its product names, the d365 settings prefix, its
# columns and OData syntax (modifiedon, @odata.*, $batch, an alternate key's If-None-Match).
_DATAVERSE_NAMES = re.compile(
    r"(?i:dynamics|dataverse|d365)|modifiedon|incidentid|@odata|\$batch|\$filter"
    r"|crmsync_key|msal|0x8004[0-9a-fA-F]{4}"
)
_CRM_NAMES = {"Salesforce": _SALESFORCE_NAMES, "Dataverse": _DATAVERSE_NAMES}


# Allowed to name a CRM: its adapters, the composition root (one registry line per CRM),
# the settings (the default mapping's file name, what a write batch becomes in Salesforce)
# and each CRM's own command module.
def _crm_command_modules() -> set[str]:
    """Each registered CRM's own command module (``CrmWiring.commands``), as a path."""
    from crmsync.bootstrap import crm_commands

    return {
        module.removeprefix("crmsync.").replace(".", "/") + ".py"
        for module in crm_commands().values()
    }


_CRM_OWNED = {"bootstrap.py", "settings.py"} | _crm_command_modules()


def _above_the_crm_adapters() -> list[Path]:
    return [
        p
        for p in _modules("")
        if p.relative_to(SRC).parts[:2] != ("adapters", "crm")
        and str(p.relative_to(SRC)) not in _CRM_OWNED
    ]


@pytest.mark.parametrize("crm", sorted(_CRM_NAMES))
@pytest.mark.parametrize("path", _above_the_crm_adapters(), ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_above_the_crm_adapters_names_a_crm(path: Path, crm: str) -> None:
    """Above ``adapters/crm/`` no module names a Salesforce or Dataverse field, value format,
    error code or remedy: each CRM adapter owns its own."""
    assert sorted(set(_CRM_NAMES[crm].findall(path.read_text()))) == []


def test_the_retry_policy_names_no_crm_error_code() -> None:
    """The one retry policy is CRM-neutral: each adapter declares its transient, limit and
    auth errors in an ``ApiFailures`` of its own (APScheduler 4's
    ``_temporary_failure_exceptions``, per store)."""
    text = (SRC / "adapters" / "crm" / "retry_policy.py").read_text()
    assert sorted(set(_SALESFORCE_NAMES.findall(text))) == []
    assert sorted(set(_DATAVERSE_NAMES.findall(text))) == []
    assert sorted(set(re.findall(r"\b[A-Z]+(?:_[A-Z]+)+\b", text))) == ["NETWORK_ONLY", "NO_WAIT"]


def test_the_api_budget_is_read_through_its_port_not_by_attribute_guessing() -> None:
    """The composition root asks ``isinstance(crm, ApiBudget)``, never ``getattr``."""
    assert "getattr(crm" not in (SRC / "bootstrap.py").read_text()


# ------------------------------------------------ adding a CRM: what it touches, pinned
def _crm_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(r.search(line) for r in _CRM_NAMES.values())]


def test_the_composition_root_names_each_crm_on_one_line_of_its_registry() -> None:
    """Choosing a CRM is a lookup in ``CRM_ADAPTERS``, never a branch: bootstrap.py names
    Salesforce and Dataverse only on their registry lines, one each."""
    from crmsync.bootstrap import CRM_ADAPTERS

    registry = {f'    "{name}": "{module}",' for name, module in CRM_ADAPTERS.items()}
    lines = _crm_lines((SRC / "bootstrap.py").read_text())
    assert [line for line in lines if line not in registry] == []
    assert len(lines) == len(set(lines)) == len(_CRM_NAMES)


def test_each_registered_crm_wires_itself_under_its_own_name() -> None:
    """Each ``CRM_ADAPTERS`` module's ``WIRING`` carries the name it is registered under,
    the ``CRMSYNC_CRM`` setting offers exactly the registered CRMs, and each settings group
    is in the settings, its every field named with its prefix, a prefix no other CRM's
    starts with."""
    from crmsync.bootstrap import CRM_ADAPTERS, crm_wiring, settings_model

    wirings = {name: crm_wiring(name) for name in CRM_ADAPTERS}
    assert {name: w.name for name, w in wirings.items()} == {n: n for n in CRM_ADAPTERS}
    model = settings_model()
    assert model.crm_names == tuple(CRM_ADAPTERS)
    for wiring in wirings.values():
        group = list(wiring.settings.model_fields) if wiring.settings is not None else []
        assert bool(group) == bool(wiring.settings_prefix), wiring.name
        assert [n for n in group if not n.startswith(wiring.settings_prefix)] == [], wiring.name
        assert [n for n in group if n not in model.model_fields] == [], wiring.name
    prefixes = [w.settings_prefix for w in wirings.values() if w.settings_prefix]
    assert len(prefixes) == len(set(prefixes))
    assert not any(a != b and a.startswith(b) for a in prefixes for b in prefixes)


def _crm_setting_names() -> re.Pattern[str]:
    """A setting of a registered CRM's group, as a field (``x_key``), an environment
    variable (``CRMSYNC_X_KEY``) or a secret file (``crmsync_x_key``)."""
    from crmsync.bootstrap import CRM_ADAPTERS, crm_wiring

    prefixes = [crm_wiring(n).settings_prefix for n in CRM_ADAPTERS]
    alternatives = "|".join(re.escape(p) for p in prefixes if p)
    return re.compile(rf"(?i)(?<![a-z0-9])(?:crmsync_)?(?:{alternatives})[a-z0-9]\w*")


def test_a_crms_settings_are_read_only_by_its_own_wiring() -> None:
    """A settings group is read in its adapter's wiring, never by the composition root,
    the CLI (a CRM's own command module included) or another module."""
    from crmsync.bootstrap import CRM_ADAPTERS, crm_wiring

    groups = [crm_wiring(n).settings_prefix for n in CRM_ADAPTERS if crm_wiring(n).settings_prefix]
    reading = re.compile(r"\b(?:settings\.|\[\")(" + "|".join(groups) + r")\w+")
    readers = sorted(
        str(path.relative_to(SRC))
        for path in _modules("")
        if reading.search(path.read_text()) and not path.name.endswith("_wiring.py")
    )
    assert readers == []


@pytest.mark.parametrize(
    "path",
    [*_above_the_crm_adapters(), SRC / "bootstrap.py", SRC / "settings.py"],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_no_module_above_the_crm_adapters_names_a_crms_setting(path: Path) -> None:
    """The settings, the CLI and the composition root name no setting of a CRM's group
    (``CRMSYNC_<PREFIX>_...``): they take every CRM's settings from the registry, so a new
    CRM edits none of them. Only a CRM's own command module may name its settings."""
    assert sorted(set(_crm_setting_names().findall(path.read_text()))) == []


def test_the_settings_and_the_help_load_no_crm_client() -> None:
    """Reading the settings (every CRM's group) and ``crmsync --help`` (every CRM's
    commands) load no CRM's client library: those load when its adapter is built."""
    import subprocess

    clients = ["requests", "msal", "jwt", "simple_salesforce", "zeep"]
    code = (
        "import sys\n"
        "from crmsync.bootstrap import settings_model\n"
        "from crmsync.cli import app\n"
        "settings_model()\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:', ','.join(m for m in {clients!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "salesforce" in done.stdout and "dynamics365" in done.stdout  # the CRMs' commands
    assert done.stdout.splitlines()[-1] == "loaded: "
