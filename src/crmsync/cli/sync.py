"""``crmsync sync``, ``run``, ``demo``, ``check`` and ``config show``."""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crmsync.cli.app import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_FAILED,
    PlainCommand,
    app,
    err,
    fail,
    parse_now,
    plain,
)
from crmsync.cli.locking import WaitOption, hold_profile
from crmsync.cli.options import AllowFutureNowOpt, JsonAliasOpt, TableFormatOpt, wants_json
from crmsync.cli.profile import (
    NEW_PROFILE_OPTION,
    build_runtime_or_exit,
    crash_hook_from_env,
    load_profile,
    load_profile_setup,
    load_settings,
    refuse_unknown_profile,
)
from crmsync.cli.progress import out_console, progress
from crmsync.errors import ConfigError, CrmSyncError, ProfileLostError

if TYPE_CHECKING:  # the composition root and adapters are imported when a command runs
    from crmsync.bootstrap import Runtime
    from crmsync.mapping.field_mapping import FieldMapping
    from crmsync.service.cycle_report import CycleReport
    from crmsync.settings import Settings

config_app = typer.Typer(help="Show the configuration in force.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _print_report(report: CycleReport, console: Console) -> None:
    table = Table(title=f"cycle {report.run_id} ({report.status}) as of {report.now}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("records read", report.records_read),
        ("complaints evaluated", report.complaints_evaluated),
        ("flags written", report.flags_written),
        ("tasks created", report.tasks_created),
        ("tasks completed", report.tasks_completed),
        ("errors", len(report.errors)),
        ("CRM calls", report.crm_calls),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if report.errors:
        errors = Table(title="errors (kept as failures; retried next cycle when transient)")
        for column in ("kind", "record", "field", "message"):
            errors.add_column(column, overflow="fold")
        for e in report.errors[:50]:
            errors.add_row(e.kind, plain(e.record_id), plain(e.field or ""), plain(e.message))
        console.print(errors)
        if len(report.errors) > 50:
            console.print(f"... and {len(report.errors) - 50} more (use --json for all)")


def _print_planned(report: CycleReport, console: Console) -> None:
    table = Table(title=f"dry run: {len(report.planned)} planned write(s), nothing written")
    for column in ("write", "complaint", "target", "what"):
        table.add_column(column, overflow="fold")
    for p in report.planned:
        table.add_row(p.kind, plain(p.complaint_id), plain(p.target), plain(p.summary))
    console.print(table)


def _run_cycle(runtime: Runtime, now: int | None, dry_run: bool) -> CycleReport:
    """One cycle; on a terminal with a live line of counts (long first syncs read for
    minutes)."""
    with progress("records read") as tracker:
        seen = 0

        def show(report: CycleReport) -> None:
            nonlocal seen
            tracker.advance(
                report.records_read - seen,
                description=f"evaluated {report.complaints_evaluated:,}  flags "
                f"{report.flags_written:,}  tasks {report.tasks_created:,}  records read",
            )
            seen = report.records_read

        return runtime.cycle.run(now=now, dry_run=dry_run, progress=show)


@app.command("sync", cls=PlainCommand)
def sync_cmd(  # noqa: PLR0917 - one parameter per command-line option
    once: Annotated[bool, typer.Option("--once", help="Run exactly one cycle and exit.")] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Evaluation instant (replay a day, tests); the pull still "
            "uses the CRM's own clock.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the planned writes; write nothing.")
    ] = False,
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
    wait: WaitOption = "0",
    new_profile: Annotated[bool, NEW_PROFILE_OPTION] = False,
    allow_future_now: AllowFutureNowOpt = False,
) -> None:
    """Run one sync cycle: pull, evaluate, write flags and follow-ups (needs --once).

    Pulls the complaints changed since the last cycle, evaluates them against the charter
    and writes the flags and follow-up tasks that changed. `crmsync run` is the
    long-running worker; without --once this command refuses (exit 2) rather than start
    it. --once takes the profile's lock like the worker (a --dry-run writes nothing and
    does not). Exit status: 0 all went well, 3 some records failed (listed; kept as
    failures), 2 bad configuration or arguments, 1 the cycle failed, 5 another process
    works the profile (named), or this process lost the profile's lock during the cycle
    (it stopped before its next write).

    --now must lie in 1970..2199; a --now later than this machine's clock is refused
    (exit 2) unless --allow-future-now or --dry-run: the flags and follow-ups written as
    of it would stand in the CRM as if that time had come.
    """
    as_json = wants_json(fmt, as_json)
    if not once:
        raise fail(
            "crmsync sync runs one cycle only with --once; "
            "to start the long-running worker use 'crmsync run'"
        )
    settings, single = load_profile_setup()
    instant = (
        parse_now(now, writes=not dry_run, allow_future=allow_future_now)
        if now is not None
        else None
    )
    with contextlib.ExitStack() as held:
        guard = None
        if not dry_run:
            guard = held.enter_context(hold_profile(settings, "crmsync sync --once", wait))
        runtime = build_runtime_or_exit(settings)
        if guard is not None:
            runtime.cycle.guard = guard
        try:
            if single:
                refuse_unknown_profile(
                    runtime.state, runtime.settings.profile, new_profile=new_profile
                )
            report = _run_cycle(runtime, instant, dry_run)
        except ProfileLostError as exc:
            raise fail(f"cycle stopped: {exc}", EXIT_BUSY) from exc
        except CrmSyncError as exc:
            raise fail(f"cycle failed: {exc}", 1) from exc
        finally:
            runtime.close()
    if as_json:
        print(json.dumps(report.as_dict(), sort_keys=True))  # one JSON line
    else:
        console = out_console()
        if dry_run:
            _print_planned(report, console)
        _print_report(report, console)
    if report.errors:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("run", cls=PlainCommand)
def run_cmd(new_profile: Annotated[bool, NEW_PROFILE_OPTION] = False) -> None:
    """Start the long-running worker: a sync cycle every interval, for every profile.

    A cycle runs every CRMSYNC_SYNC_INTERVAL (default 5 minutes), and at the next due or
    warning instant when that comes sooner; archiving and state retention run nightly.
    Health and metrics are served on CRMSYNC_HTTP_PORT. SIGTERM (or Ctrl-C) finishes the
    cycle in progress and exits 0.

    Exit status: 0 stopped by SIGTERM or Ctrl-C; 2 bad configuration, or no profile could
    start."""
    from crmsync.bootstrap import build_fleet  # noqa: PLC0415 - only this command
    from crmsync.bootstrap import load_settings as read_again  # noqa: PLC0415 - the root

    settings = load_settings()
    try:  # the profiles and the port are configuration: checked before any profile opens
        fleet = build_fleet(settings, hook=crash_hook_from_env(), reload=read_again)
    except ValueError as exc:  # ConfigError, or a profile that does not validate
        raise fail(f"configuration: {exc}") from exc
    with fleet:
        if not fleet.runtimes and not fleet.pending:
            raise fail("no profile could be started (see the errors above)")
        if settings.single_profile:
            for runtime in fleet.runtimes:
                refuse_unknown_profile(
                    runtime.state, runtime.settings.profile, new_profile=new_profile
                )
            fleet.admit = lambda runtime: refuse_unknown_profile(
                runtime.state, runtime.settings.profile, new_profile=new_profile
            )
        fleet.run()


@app.command("demo", cls=PlainCommand)
def demo_cmd(
    charter: Annotated[
        str,
        typer.Option(
            "--charter",
            help="A bundled charter (aston, the-square-mile, studijob, kilkenny, fca-disp, "
            "housing-ombudsman, cbi-cpc) or the path of any charter file.",
        ),
    ] = "aston",
    count: Annotated[
        int, typer.Option("--count", min=1, max=100_000, help="Complaints to create.")
    ] = 300,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (same seed, same complaints).")
    ] = 7,
) -> None:
    """Show crmsync at work on a local CRM filled with realistic complaints.

    Creates a local CRM with complaints for the charter (a bundled one by name, or your
    own charter file by path: its hours, holidays and clocks shape the complaints) in
    CRMSYNC_DATA_DIR/demo-NAME (recreated on every run), runs one sync cycle, shows
    what it flagged and which follow-up tasks it created, and prints the commands to go
    on with.

    Exit status: 0 shown; 2 unknown charter or bad configuration; 1 the cycle failed."""
    from crmsync.bootstrap import local_crm_path, system_clock  # noqa: PLC0415 - on use
    from crmsync.demo.bundled_charters import charter_file, demo_charter  # noqa: PLC0415 - on use
    from crmsync.demo.seeding import seed_local_crm  # noqa: PLC0415 - the demo's generators
    from crmsync.logging_setup import configure_logging  # noqa: PLC0415 - logging set-up

    base = load_settings()
    try:
        charter_path = charter_file(charter)
        loaded = demo_charter(charter)
    except ConfigError as exc:
        raise fail(f"--charter: {exc}") from exc
    name = charter_path.stem
    data_dir = base.data_dir / f"demo-{name}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    settings = base.model_copy(
        update={
            "data_dir": data_dir,
            "charter": charter_path,
            "profile": f"demo-{name}",
            "state_url": None,
        }
    )
    if "log_level" not in base.model_fields_set:  # the tables below say what the log would
        configure_logging(base.log_format, "warning")
    console = out_console()
    runtime = build_runtime_or_exit(settings)
    try:
        clock_now = system_clock()
        start = clock_now - timedelta(days=75)
        with progress(f"creating {count:,} complaints"):
            created = seed_local_crm(
                runtime.crm,
                runtime.mapping,
                loaded,
                count=count,
                seed=seed,
                start=start,
                span_days=70,
                now=clock_now,
            )
        console.print(
            f"[bold]{runtime.charter.title}[/bold]: created {created.cases} complaints and "
            f"{created.tasks} related records (customer updates, status changes) in "
            f"{local_crm_path(settings)}"
        )
        report = _run_cycle(runtime, None, dry_run=False)
        _print_report(report, console)
        example = _show_demo(runtime, report, console)
        clock_ids = [c.id for c in runtime.charter.clocks]
    finally:
        runtime.close()
    # commands to copy: never wrapped or highlighted, even on a narrow terminal
    console.print(
        _next_steps(settings, example, start.date(), clock_now.date(), clock_ids),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _show_demo(runtime: Runtime, report: CycleReport, console: Console) -> str | None:
    """Print the statuses written and the follow-up tasks created; return the id of a
    complaint worth explaining: one that got a follow-up, else the first one."""
    from crmsync.bootstrap import system_clock  # noqa: PLC0415 - the composition root
    from crmsync.demo.summary import demo_summary  # noqa: PLC0415 - imported when used
    from crmsync.domain.flag_status import FLAG_VALUES  # noqa: PLC0415 - imported when used

    states = Table(
        title=f"{runtime.mapping.spec.write_back.status} written",
        caption="complaints; breached: a clock answered late or overdue",
    )
    states.add_column("status")
    states.add_column("complaints", justify="right")
    for status in FLAG_VALUES:
        states.add_row(status, str(report.states.get(status, 0)))
    console.print(states)
    summary = demo_summary(runtime.crm, runtime.mapping, system_clock() + timedelta(days=1))
    table = Table(title=f"follow-up tasks created ({len(summary.tasks)}; first 15)")
    for column in ("subject", "owner", "due", "priority"):
        table.add_column(column, overflow="fold")
    for task in summary.tasks[:15]:
        table.add_row(plain(task.subject), plain(task.owner), plain(task.due), plain(task.priority))
    console.print(table)
    return summary.example


def _return_steps(charter: Path, clock_ids: list[str], day: date) -> tuple[str, ...]:
    """The command of each regulator's return the charter's clocks can give, for the
    period holding ``day`` (provisional until it ends)."""
    from crmsync.domain.returns import (  # noqa: PLC0415 - imported when used
        ReturnKind,
        missing_clocks,
        period_containing,
    )

    lines: list[str] = []
    for kind in ReturnKind:
        if missing_clocks(kind, clock_ids):
            continue
        first, last = period_containing(kind, day)
        homes = " --homes 1000" if kind is ReturnKind.TSM else ""
        what = "with your number of homes, " if kind is ReturnKind.TSM else ""
        lines += [
            f"File the regulator's return ({what}provisional until {last.isoformat()}):",
            f"  .venv/bin/crmsync report --charter {charter} --return {kind.value}{homes} "
            f"--from {first.isoformat()} --to {last.isoformat()} --format html --output "
            f"{kind.value}-return.html",
        ]
    return tuple(lines)


def _next_steps(
    settings: Settings, example: str | None, first: date, last: date, clock_ids: list[str]
) -> str:
    """The exact commands to go on from the demo in a fresh shell, with its data
    directory, profile and charter."""
    complaint = example or "COMPLAINT_ID"
    return "\n".join(
        (
            "",
            "Next: the commands live in .venv/bin (or run '. .venv/bin/activate' first).",
            "Point them at this demo's data directory, profile and charter:",
            f"  export CRMSYNC_DATA_DIR={settings.data_dir} CRMSYNC_PROFILE={settings.profile} "
            f"CRMSYNC_CHARTER={settings.charter}",
            "Explain one complaint's clocks:",
            f"  .venv/bin/crmsync explain --charter {settings.charter} --id {complaint}",
            "Report how well the charter was kept:",
            f"  .venv/bin/crmsync report --charter {settings.charter} "
            f"--from {first.isoformat()} --to {last.isoformat()}",
            *_return_steps(settings.charter, clock_ids, last),
            "Run one more cycle, or start the worker (Ctrl-C stops it):",
            "  .venv/bin/crmsync sync --once",
            "  .venv/bin/crmsync run",
            "Look at the records:",
            "  .venv/bin/crmsync local export Case",
        )
    )


@app.command(
    "check",
    short_help="Validate every mapping and charter; all problems with file and line.",
    cls=PlainCommand,
)
def check_cmd(
    charters: Annotated[
        list[Path] | None,
        typer.Argument(help="Charter files (default: every mappings/charters/*.yaml)."),
    ] = None,
    mapping: Annotated[
        list[Path] | None,
        typer.Option("--mapping", help="Mapping files (default: mappings/*.yaml)."),
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also describe the CRM's objects (CRMSYNC_CRM) and check every mapped field "
            "exists with a usable type and the access the worker needs.",
        ),
    ] = False,
) -> None:
    """Validate every mapping and charter offline; print all problems with file, line and column.

    Each charter is cross-checked against each mapping: every event and attribute it names
    must be mapped, and every 'when' value must be one a CRM value maps to. Without file
    arguments the bundled charters are checked against the bundled mappings, and so is
    the charter and mapping of the settings (CRMSYNC_CHARTER, CRMSYNC_MAPPING) and of every
    [profiles.NAME] in crmsync.toml. With --online, the CRM must have every mapped field
    (type, createable/updateable, unique external id key). Exit status 2 when anything is
    wrong."""
    from crmsync.mapping.offline_check import check_files  # noqa: PLC0415 - pydantic

    charter_files = charters or sorted(Path("mappings/charters").glob("*.yaml"))
    mapping_files = mapping or sorted(Path("mappings").glob("*.yaml"))
    pairs = [(c, m) for c in charter_files for m in mapping_files]
    problems = 0
    if not charters and not mapping:
        configured, settings_problem = _configured_pairs()
        pairs += configured
        if settings_problem:
            problems += 1
            err.print(
                f"configuration: {settings_problem}", highlight=False, markup=False, soft_wrap=True
            )
    console = out_console()
    loaded_mappings: list[FieldMapping] = []
    for check in check_files(charter_files, mapping_files, pairs):
        if check.problems:
            problems += len(check.problems)
            lines = "\n".join(f"  {p}" for p in check.problems)
            err.print(
                f"{check.path}: {len(check.problems)} problem(s)\n{lines}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            continue
        if check.mapping is not None:
            loaded_mappings.append(check.mapping)
            console.print(
                f"[green]ok[/green]   {escape(str(check.path))}", highlight=False, soft_wrap=True
            )
        elif check.charter is not None:
            clocks = len(check.charter.clocks)
            fits = f"; fits {', '.join(check.fits)}" if check.fits else ""
            if check.unchecked:
                fits += f"; not cross-checked with {', '.join(check.unchecked)}"
            console.print(
                f"[green]ok[/green]   {escape(f'{check.path} ({clocks} clocks{fits})')}",
                highlight=False,
                soft_wrap=True,
            )
    if online:
        problems += _check_online(loaded_mappings, console)
    if problems:
        raise typer.Exit(2)


def _configured_pairs() -> tuple[list[tuple[Path, Path]], str | None]:
    """The (charter, mapping) of the settings, or of each configured profile; and the
    configuration problem that stopped reading them, if any."""
    from crmsync.bootstrap import load_settings as load  # noqa: PLC0415 - the root, on use

    try:
        profiles = load().profile_settings()
    except ValueError as exc:  # ConfigError: unknown keys, bad values, bad JSON
        return [], str(exc)
    return [(p.charter, p.mapping) for p in profiles], None


def _check_online(mappings: list[FieldMapping], console: Console) -> int:
    """Describe the CRM's objects for each mapping; print every problem; count them."""
    from crmsync.bootstrap import build_crm, online_remedies  # noqa: PLC0415 - the root
    from crmsync.service.online_check import check_online  # noqa: PLC0415 - imported when used

    settings = load_profile()
    try:
        crm = build_crm(settings)
    except ConfigError as exc:
        raise fail(f"--online: {exc}") from exc  # a setting to fix: named, no class name
    except CrmSyncError as exc:
        raise fail(f"--online: {exc}", EXIT_FAILED) from exc
    problems = 0
    try:
        for m in mappings:
            try:
                found = check_online(crm, m, remedies=online_remedies(settings))
            except CrmSyncError as exc:
                raise fail(f"--online: {exc}", 1) from exc
            for problem in found:
                err.print(
                    f"{m.source}: {settings.crm} CRM: {problem}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
            if found:
                problems += len(found)
            else:
                console.print(
                    f"[green]ok[/green]   {escape(str(m.source))} against the {settings.crm} CRM"
                )
    finally:
        crm.close()
    return problems


def _profiles_or_exit(settings: Settings) -> list[Settings]:
    if settings.single_profile:
        return []
    try:
        return settings.profile_settings()
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from exc


@config_app.command("show", cls=PlainCommand)
def config_show_cmd(
    fmt: TableFormatOpt = None,
    as_json: JsonAliasOpt = False,
) -> None:
    """Print every setting in force and where it comes from (environment, secret file,
    crmsync.toml, default), then what each profile sets; secrets redacted.

    Exit status: 0 printed; 2 the settings do not validate (each problem named)."""
    as_json = wants_json(fmt, as_json)
    settings = load_settings()
    shown = settings.shown()
    if as_json:
        print(json.dumps(shown, sort_keys=True))  # one JSON line
        return
    sources = type(settings).sources()
    table = Table(title="crmsync configuration")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("meaning", overflow="fold")
    for name, value in shown.items():
        description = type(settings).model_fields[name].description or ""
        table.add_row(
            f"CRMSYNC_{name.upper()}", plain(value), plain(sources[name]), plain(description)
        )
    console = out_console()
    console.print(table)
    for profile in _profiles_or_exit(settings):
        own = settings.profiles[profile.profile]
        values = profile.shown()
        rows = Table(title=f"profile {profile.profile} (CRMSYNC_PROFILE={profile.profile})")
        for column in ("setting", "value", "source"):
            rows.add_column(column, overflow="fold")
        for name in sorted(set(own) | {"data_dir"}):
            if name not in values:
                continue
            source = (
                "profile (crmsync.toml)"
                if name in own
                else f"default for a profile: CRMSYNC_DATA_DIR/{profile.profile}"
            )
            rows.add_row(f"CRMSYNC_{name.upper()}", plain(values[name]), plain(source))
        console.print(rows)
