"""``crmsync dynamics365 setup``: crmsync's columns, status choice and follow-up key in a
Dataverse org, made from the mapping through the Web API's metadata endpoints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli.app import EXIT_FAILED, PlainCommand, err, fail
from crmsync.cli.profile import load_profile

COMMANDS = typer.Typer(
    help="Set up a Dynamics 365 (Dataverse) org: the columns and key the mapping needs.",
    no_args_is_help=True,
)
"""``crmsync dynamics365 ...``, registered by the Dataverse wiring (``CrmWiring.commands``)."""


@COMMANDS.command(
    "setup", short_help="Create crmsync's columns, choice and key in the org.", cls=PlainCommand
)
def setup_cmd(
    check_only: Annotated[
        bool, typer.Option("--check-only", help="List what is missing; change nothing.")
    ] = False,
) -> None:
    """Create, in the org of the CRMSYNC_D365_* settings, every column the mapping writes
    back (the status as a choice with the mapping's status_values), the follow-up key column
    and its alternate key; what exists is left as it is, so running it again does nothing.
    A column that exists with another type is named and left alone.

    Exit status: 0 done (or nothing missing); 1 the org refused something, or with
    --check-only something is missing; 2 configuration or sign-in problems."""
    from crmsync.adapters.crm.dynamics365_setup import (  # noqa: PLC0415 - an adapter
        apply,
        plan,
        wanted_for,
    )
    from crmsync.adapters.crm.dynamics365_wiring import build_dataverse  # noqa: PLC0415 - on use
    from crmsync.bootstrap import settings_by_name  # noqa: PLC0415 - the composition root
    from crmsync.errors import ConfigError, CrmError  # noqa: PLC0415 - imported when used
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415 - pydantic

    settings = load_profile()
    try:
        mapping = load_mapping(settings.mapping)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    wb, fu = mapping.spec.write_back, mapping.spec.follow_ups
    roles = ("status", "breaches", "next_due", "checked_at", "archived_at", "archive_ref")
    out = Console(highlight=False, soft_wrap=True)
    try:
        crm = build_dataverse(settings_by_name(settings))
    except ConfigError as exc:  # a sign-in setting missing: named, exit 2
        raise fail(str(exc)) from exc
    try:
        wanted = wanted_for(
            mapping.spec.complaints.object,
            {role: getattr(wb, role) for role in roles},
            wb.status_values,
            fu.object,
            fu.key_field,
        )
        steps = plan(crm, wanted)
        conflicts = [s for s in steps if s.action == "conflict"]
        for step in conflicts:
            err.print(f"conflict: {step.wanted.describe()}: {step.note}; left as it is")
        missing = [s for s in steps if s.action == "create"]
        if check_only:
            for step in missing:
                out.print(f"would create {step.wanted.describe()}", markup=False)
            out.print(f"check only: {len(missing)} to create, nothing changed", markup=False)
            if missing or conflicts:
                raise typer.Exit(EXIT_FAILED)
            return
        refused = 0
        for step, reason in apply(crm, missing):
            if reason is None:
                out.print(f"created {step.wanted.describe()}", markup=False)
            else:
                refused += 1
                err.print(f"refused: {step.wanted.describe()}: {reason}", markup=False)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    finally:
        crm.close()
    created = len(missing) - refused
    out.print(
        f"{created} created, {len(wanted) - len(steps)} already there"
        + (f", {refused} refused" if refused else "")
        + "; next: crmsync check --online",
        markup=False,
    )
    if refused or conflicts:
        raise typer.Exit(EXIT_FAILED)
