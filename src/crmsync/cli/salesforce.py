"""``crmsync salesforce metadata`` and ``crmsync salesforce deploy``: the org's custom
fields and the integration permission set, generated from the mapping."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from crmsync.cli.app import EXIT_FAILED, PlainCommand, err, fail
from crmsync.cli.profile import load_profile
from crmsync.errors import ConfigError

if TYPE_CHECKING:
    from crmsync.mapping.field_mapping import FieldMapping

COMMANDS = typer.Typer(
    help="Set up a Salesforce org: the custom fields and permission set the mapping needs.",
    no_args_is_help=True,
)
"""``crmsync salesforce ...``, registered by the Salesforce wiring (``CrmWiring.commands``)."""

MappingOpt = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help="The field mapping (default: the settings' mapping: CRMSYNC_MAPPING, "
        "crmsync.toml or the profile's).",
    ),
]


def _load(path: Path | None) -> FieldMapping:
    """The mapping at ``path`` (``None``: the settings' mapping); exit 2 with every problem
    when it is invalid."""
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415 - pydantic, on use

    try:
        return load_mapping(path if path is not None else load_profile().mapping)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


@COMMANDS.command(
    "metadata",
    short_help="Write a Salesforce DX project with the fields the mapping needs.",
    cls=PlainCommand,
)
def metadata_cmd(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="DIR", help="The project folder to write (created if absent)."
        ),
    ],
    mapping: MappingOpt = None,
) -> None:
    """Write a complete Salesforce DX project made from the mapping: sfdx-project.json, every
    custom field the mapping reads or writes and the CrmSync_Integration permission set
    under force-app/main/default/, and manifest/package.xml. Deploy it from that folder with
    `cd DIR && sf project deploy start --source-dir force-app --target-org ALIAS`, or with
    `crmsync salesforce deploy`.

    Exit status: 0 written; 1 the folder could not be written; 2 the mapping is invalid."""
    from crmsync.adapters.crm.salesforce_metadata import (  # noqa: PLC0415 - pydantic, on use
        component_count,
        write_source,
    )

    loaded = _load(mapping)
    try:
        written = write_source(loaded, out)
    except OSError as exc:
        raise fail(f"--out: cannot write {out}: {exc.strerror}", EXIT_FAILED) from exc
    fields = sum(1 for p in written if p.name.endswith(".field-meta.xml"))
    Console().print(
        f"wrote a Salesforce DX project of {component_count(loaded)} components to {out}: "
        f"{fields} custom fields and the permission set CrmSync_Integration "
        f"(deploy: cd {out} && sf project deploy start --source-dir force-app "
        "--target-org ALIAS)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@COMMANDS.command(
    "deploy", short_help="Deploy those fields and the permission set to the org.", cls=PlainCommand
)
def deploy_cmd(
    check_only: Annotated[
        bool,
        typer.Option("--check-only", help="Validate the deploy in the org; change nothing."),
    ] = False,
    mapping: MappingOpt = None,
    wait: Annotated[
        str,
        typer.Option(
            "--wait", help="How long to wait for the org to finish (a duration: 30m, 1800s)."
        ),
    ] = "30m",
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", hidden=True)] = 2.0,
) -> None:
    """Deploy the mapping's custom fields and the CrmSync_Integration permission set to the
    org of the CRMSYNC_SF_* settings through the Metadata API, wait with a progress line and
    report each component the org refused (name and reason).

    Exit status: 0 deployed (or validated with --check-only); 1 the org refused components
    or the deploy did not finish in time; 2 configuration or login problems."""
    import time  # noqa: PLC0415 - only this command sleeps

    from crmsync.adapters.crm.salesforce_deploy import (  # noqa: PLC0415 - an adapter
        DeployStatus,
        MetadataDeployer,
        wait_for,
    )
    from crmsync.adapters.crm.salesforce_metadata import custom_fields, deploy_zip  # noqa: PLC0415 - on use
    from crmsync.adapters.crm.salesforce_wiring import build_salesforce  # noqa: PLC0415 - on use
    from crmsync.bootstrap import settings_by_name  # noqa: PLC0415 - the composition root
    from crmsync.cli.locking import wait_seconds  # noqa: PLC0415 - settings load on use
    from crmsync.errors import CrmSyncError  # noqa: PLC0415 - imported when used

    max_wait = wait_seconds(wait)
    loaded = _load(mapping)
    settings = load_profile()
    what = "validate" if check_only else "deploy"
    try:
        crm = build_salesforce(settings_by_name(settings))
        auth = crm.auth
        deployer = MetadataDeployer(auth, api_version=crm.api_version)
        zip_bytes = deploy_zip(loaded, crm.api_version)
        deploy_id = deployer.start(zip_bytes, check_only=check_only)
        err.print(
            f"{what}: {len(custom_fields(loaded))} custom fields and the permission set "
            f"CrmSync_Integration sent to {auth.instance_url} (deploy {deploy_id})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        seen: list[str] = []

        def progress(status: DeployStatus) -> None:
            line = (
                f"{what} {deploy_id}: {status.status}, {status.components_deployed}/"
                f"{status.components_total} components"
                + (f", {status.components_failed} failed" if status.components_failed else "")
            )
            if not seen or seen[-1] != line:
                seen.append(line)
                err.print(line, highlight=False, markup=False, soft_wrap=True)

        final = wait_for(
            deployer,
            deploy_id,
            check_only=check_only,
            on_progress=progress,
            sleep=time.sleep,
            poll_seconds=poll_seconds,
            max_wait_seconds=max_wait,
        )
    except CrmSyncError as exc:
        if _is_config(exc):  # a setting to fix: the message names it, no class name
            raise fail(f"{what}: {exc}") from exc
        raise fail(f"{what}: {exc}", 1) from exc
    for failure in final.failures:
        err.print(f"refused: {failure}", highlight=False, markup=False, soft_wrap=True)
    if not final.done:
        raise fail(f"{what} {deploy_id} still {final.status} after {wait}", 1)
    if not final.succeeded:
        reason = f": {final.error}" if final.error else ""
        raise fail(
            f"{what} {deploy_id} {final.status.lower()} ({len(final.failures)} components "
            f"refused){reason}; nothing was changed in the org",
            1,
        )
    Console().print(
        f"{'validated (check only, nothing changed)' if check_only else 'deployed'}: "
        f"{final.components_deployed} components; next: assign the permission set "
        "CrmSync_Integration to the integration user, then crmsync check --online",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _is_config(exc: Exception) -> bool:
    return isinstance(exc, ConfigError)
