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
        int | None, typer.Option("--port", help="Port (default CRMSYNC_HTTP_PORT or 8080).")
    ] = None,
) -> None:
    """Exit 0 when the local worker's health endpoint answers 200, else 1.

    Exit status: 0 healthy; 1 not answering or not healthy; 2 a bad CRMSYNC_HTTP_PORT."""
    text = os.environ.get("CRMSYNC_HTTP_PORT", "8080")
    if port is None and not (text.strip().isdigit() and 0 < int(text) <= 65535):
        raise fail(f"configuration: CRMSYNC_HTTP_PORT={text!r} is not a port (1-65535)")
    chosen = port or int(text)
    path = "/readyz" if ready else "/healthz"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{chosen}{path}", timeout=5) as answer:
            if answer.status == 200:
                return
    except (urllib.error.URLError, OSError) as exc:
        raise fail(f"{path} on port {chosen}: {exc}", 1) from exc
    raise fail(f"{path} on port {chosen}: not ready", 1)
