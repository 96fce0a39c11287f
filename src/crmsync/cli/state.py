"""``crmsync state``: the sync worker's own state store (retention)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from crmsync.cli.app import EXIT_BUSY, PlainCommand, app, fail, parse_now
from crmsync.cli.locking import WaitOption, hold_profile
from crmsync.cli.options import AllowFutureNowOpt, JsonAliasOpt, TableFormatOpt, wants_json
from crmsync.cli.profile import load_settings, require_state_store
from crmsync.cli.progress import out_console, progress
from crmsync.errors import ConfigError, CrmSyncError

if TYPE_CHECKING:  # the state store and the service are imported when the command runs
    from crmsync.ports import PruneCounts
    from crmsync.service.state_retention import Retention
    from crmsync.settings import Settings

EXIT_FAILED = 1

state_app = typer.Typer(
    help="The sync worker's state store: what it remembers between cycles.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")


@state_app.command(
    "prune",
    short_help="Forget old closed complaints and cycle history, for every profile.",
    cls=PlainCommand,
)
def prune_cmd(  # noqa: PLR0917 - one parameter per command-line option
    keep_closed: Annotated[
        str | None,
        typer.Option(
            "--keep-closed",
            help="Override CRMSYNC_KEEP_CLOSED for this run ('90 days', seconds, or 'never').",
        ),
    ] = None,
    keep_runs: Annotated[
        str | None,
        typer.Option("--keep-runs", help="Override CRMSYNC_KEEP_RUNS for this run."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="The instant retention counts back from (default: now)."),
    ] = None,
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
    wait: WaitOption = "0",
    allow_future_now: AllowFutureNowOpt = False,
) -> None:
    """Forget closed complaints older than CRMSYNC_KEEP_CLOSED (with their finished
    follow-ups) and cycle history older than CRMSYNC_KEEP_RUNS, for every profile.

    The worker does this every night at 03:00 UTC by itself. A complaint with a follow-up
    task still to write or to complete is kept however old; the archive is never touched.
    The options win over every profile's own settings. Each profile's lock is taken (the
    worker's): a profile another process works is skipped with its holder named, and the
    command exits 5 after the others are done. A --now later than this machine's clock
    is refused (exit 2) unless --allow-future-now: it would forget state early.

    Exit status: 0 pruned; 2 bad configuration or arguments, or no state store; 1 the state
    store failed; 5 a profile was skipped (another process works it).
    """
    as_json = wants_json(fmt, as_json)
    from crmsync.service.state_retention import Retention  # noqa: PLC0415 - imported when used

    settings = load_settings(keep_closed=keep_closed, keep_runs=keep_runs)
    instant = (
        parse_now(now, writes=True, allow_future=allow_future_now)
        if now is not None
        else int(time.time())
    )
    try:
        profiles = settings.profile_settings()
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from exc
    busy = False
    for profile in profiles:
        retention = Retention(
            settings.keep_closed if keep_closed is not None else profile.keep_closed,
            settings.keep_runs if keep_runs is not None else profile.keep_runs,
        )
        try:
            with (
                hold_profile(profile, "crmsync state prune", wait),
                progress(f"pruning the state of profile {profile.profile}"),
            ):
                counts = _prune(profile, retention, instant)
        except typer.Exit as exc:
            if exc.exit_code != EXIT_BUSY:
                raise
            busy = True
            continue
        if as_json:
            typer.echo(json.dumps({"profile": profile.profile, **asdict(counts)}))
        else:
            out_console().print(
                f"profile {profile.profile}: forgot {counts.complaints:,} closed complaint(s), "
                f"{counts.ledger_entries:,} follow-up record(s), {counts.runs:,} run(s)",
                highlight=False,
            )
    if busy:
        raise typer.Exit(EXIT_BUSY)


def _prune(settings: Settings, retention: Retention, instant: int) -> PruneCounts:
    """One profile's retention; exit 2 on a configuration problem, 1 when the store fails."""
    from crmsync.bootstrap import build_state  # noqa: PLC0415 - the composition root
    from crmsync.service.state_retention import prune_state  # noqa: PLC0415 - imported when used

    require_state_store(settings)
    try:
        state = build_state(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    except CrmSyncError as exc:
        raise fail(f"{exc}", EXIT_FAILED) from exc
    try:
        return prune_state(state, settings.profile, retention, instant)
    except CrmSyncError as exc:
        raise fail(f"{exc}", EXIT_FAILED) from exc
    finally:
        state.close()
