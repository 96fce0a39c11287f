"""``crmsync healthcheck``: the container's HEALTHCHECK probe of the running worker."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Annotated

import typer

from crmsync.cli.app import PlainCommand, app, fail


@app.command("healthcheck", cls=PlainCommand)
def healthcheck_cmd(
    ready: Annotated[
        bool, typer.Option("--ready", help="Probe /readyz instead of /healthz.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (default: CRMSYNC_HTTP_PORT, crmsync.toml or 8080)."),
    ] = None,
) -> None:
    """Exit 0 when the local worker's health endpoint answers 200, else 1.

    Exit status: 0 healthy; 1 not answering or not healthy; 2 bad settings (a port that
    is not one)."""
    text = os.environ.get("CRMSYNC_HTTP_PORT")
    if (
        port is None
        and text is not None
        and not (text.strip().isdigit() and 0 < int(text) <= 65535)
    ):
        raise fail(f"configuration: CRMSYNC_HTTP_PORT={text!r} is not a port (1-65535)")
    if port is None:
        from crmsync.bootstrap import load_settings  # noqa: PLC0415 - the root, on use

        try:  # CRMSYNC_HTTP_PORT, crmsync.toml or the default, as the worker reads it
            port = load_settings().http_port
        except ValueError as exc:
            raise fail(f"configuration: {exc}") from exc
        if port == 0:
            raise fail("configuration: CRMSYNC_HTTP_PORT is 0 (any free port): pass --port")
    chosen = port
    path = "/readyz" if ready else "/healthz"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{chosen}{path}", timeout=5) as answer:
            if answer.status == 200:
                return
    except (urllib.error.URLError, OSError) as exc:
        raise fail(f"{path} on port {chosen}: {exc}", 1) from exc
    raise fail(f"{path} on port {chosen}: not ready", 1)
