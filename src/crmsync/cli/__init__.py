"""The ``crmsync`` command line (typer); one module per command group, wired here. Each
CRM's own commands are registered by the CRM (``CrmWiring.commands``: see ``app``)."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import suppress

from crmsync.cli import archive as _archive  # noqa: F401 - registers the commands
from crmsync.cli import evaluate as _evaluate  # noqa: F401 - registers the commands
from crmsync.cli import ops as _ops  # noqa: F401 - registers the commands
from crmsync.cli import report as _report  # noqa: F401 - registers the commands
from crmsync.cli import runs as _runs  # noqa: F401 - registers the commands
from crmsync.cli import state as _state  # noqa: F401 - registers the commands
from crmsync.cli import sync as _sync  # noqa: F401 - registers the commands
from crmsync.cli.app import EXIT_FAILED, app, fail


def main() -> None:
    """Console-script entry point. Output that cannot be written (a full disk, a closed
    pipe) is an error message and exit status 1, never a traceback."""
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # what is still buffered fails here, not at interpreter exit
    except OSError as exc:
        with suppress(OSError):  # nothing more goes to the broken stream
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        reason = exc.strerror or str(exc) or "input/output error"
        if exc.filename:
            fail(f"{exc.filename}: {reason}")
        elif exc.errno in _WRITE_ERRORS:
            fail(f"cannot write the output: {reason}")
        else:
            fail(reason)
        raise SystemExit(EXIT_FAILED) from exc


# a stream that cannot take what is written: full disk or quota, closed pipe, device error
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.EIO}
