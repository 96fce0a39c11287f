"""The ``crmsync`` command line (typer); one module per command group, wired here."""

from __future__ import annotations

from crmsync.cli import archive as _archive  # noqa: F401 - registers the commands
from crmsync.cli import evaluate as _evaluate  # noqa: F401 - registers the commands
from crmsync.cli import local_crm as _local_crm  # noqa: F401 - registers the commands
from crmsync.cli import ops as _ops  # noqa: F401 - registers the commands
from crmsync.cli import report as _report  # noqa: F401 - registers the commands
from crmsync.cli import salesforce as _salesforce  # noqa: F401 - registers the commands
from crmsync.cli import state as _state  # noqa: F401 - registers the commands
from crmsync.cli import sync as _sync  # noqa: F401 - registers the commands
from crmsync.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
