"""Open an HTML file in headless Debian chromium over the DevTools protocol.

Records every request the page makes besides the file itself, console errors and
uncaught exceptions, the rendered size of each ``svg.chart``, the pages it prints on A4,
the tables too wide for them, the names (class ``name``) broken inside a word on the
screen or in print, and (optionally) a PNG screenshot of the whole page. Used by the
report page test and, run as a script, to refresh the screenshots under ``docs/reports/``:

    .venv/bin/python tests/browser_page.py PAGE.html OUT.png [MAX_HEIGHT]
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The chromium executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageVisit:
    """What the browser saw while loading and rendering the page."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    charts: list[dict[str, float]] = field(default_factory=list)
    title: str = ""
    a4_pages: int = 0  # pages of the page printed to PDF on A4 (CSS page size honoured)
    clipped_tables: list[str] = field(default_factory=list)
    """Tables wider than an A4 page's printable width (186 mm) in print media: each named
    by its first header cell; they would be cut when printed."""
    name_pieces: int = 0
    """Pieces of the names shown (elements of class ``name``) looked at, on the screen and
    in print: a piece runs up to white space, or up to and including ``-``, ``/`` or ``_``
    (the places a name may wrap)."""
    split_names: list[str] = field(default_factory=list)
    """Pieces of names broken where they may not be, each saying how and in which name,
    after ``screen:`` or ``print:``: a piece that fits its column broken at all, a longer
    one elsewhere than at its soft hyphens."""


class _Devtools:
    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == method:
                return
        raise TimeoutError(method)


_SPLIT_NAMES = r"""JSON.stringify((() => {
  const SOFT = '\u00ad';
  const found = [];
  let pieces = 0;
  // the line a character is drawn on: the top of its glyph's box (the range of a character
  // just after a soft hyphen where a line broke also has a box for the hyphen before it)
  const line = ([node, at]) => {
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + 1);
    const boxes = Array.from(range.getClientRects()).filter(r => r.width > 0);
    return boxes.length ? Math.round(boxes[boxes.length - 1].top) : null;
  };
  const lines = (chars) => new Set(chars.map(line).filter(top => top !== null)).size;
  const text = (chars) => chars.map(([, , c]) => c).join('');
  for (const el of document.querySelectorAll('.name')) {
    const cell = el.closest('td, th, p, li, div');
    const style = getComputedStyle(cell);
    const column = cell.clientWidth - parseFloat(style.paddingLeft)
      - parseFloat(style.paddingRight);
    const name = el.textContent.replaceAll(SOFT, '');
    const chars = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode())
      for (let i = 0; i < n.data.length; i++) chars.push([n, i, n.data[i]]);
    const look = (piece) => {
      if (!piece.length) return;
      pieces++;
      if (lines(piece) < 2) return;
      const probe = document.createElement('span');
      probe.style.cssText = 'position: absolute; visibility: hidden; white-space: nowrap';
      probe.textContent = text(piece).replaceAll(SOFT, '');
      el.appendChild(probe);
      const width = probe.getBoundingClientRect().width;
      probe.remove();
      if (width <= column) {
        found.push(`'${probe.textContent}' broken though it fits (${width.toFixed(0)} of `
          + `${column.toFixed(0)} px) in '${name}'`);
        return;
      }
      let from = 0;  // too long for its column: broken at its soft hyphens only
      piece.forEach(([, , c], i) => {
        if (c !== SOFT && i < piece.length - 1) return;
        const part = piece.slice(from, c === SOFT ? i : i + 1);
        if (lines(part) > 1) found.push(`'${text(part)}' cut inside in '${name}'`);
        from = i + 1;
      });
    };
    let start = 0;
    chars.forEach(([, , c], i) => {
      if (/\s/.test(c)) {
        look(chars.slice(start, i));
        start = i + 1;
      } else if ('-/_'.includes(c)) {
        look(chars.slice(start, i + 1));
        start = i + 1;
      }
    });
    look(chars.slice(start));
  }
  return {pieces, found};
})())"""
"""The pieces of names (class ``name``) the page shows, and each broken across lines where
it may not be: a piece (up to white space, or up to and including ``-``, ``/`` or ``_``)
that fits its column broken at all, or one too long for it broken elsewhere than at a
soft hyphen."""


def visit(page: Path, screenshot: Path | None = None, max_height: int = 0) -> PageVisit:
    """Load ``page`` (a local file) headless and report what happened; a screenshot is
    of the whole page, or of its top ``max_height`` pixels."""
    binary = chromium_path()
    if binary is None:
        raise FileNotFoundError("chromium is not installed")
    # Chromium's helper processes (crash handler, utilities) outlive the browser process by
    # a moment and still write into the profile: the browser runs in a process group of its
    # own, the whole group is stopped, and a file written after that cannot fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1000,1400",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return _drive(Path(profile), page, screenshot, max_height)
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the browser's process group, SIGKILL after 10 s; wait for the browser."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers still running after the browser


def _drive(profile: Path, page: Path, screenshot: Path | None, max_height: int) -> PageVisit:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if time.monotonic() > deadline:
            raise TimeoutError("chromium did not open its DevTools port")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
        targets = json.load(answer)
    target = next(t for t in targets if t.get("type") == "page")
    tools = _Devtools(target["webSocketDebuggerUrl"])
    for domain in ("Page", "Network", "Runtime", "Log"):
        tools.call(f"{domain}.enable")
    url = page.resolve().as_uri()
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired")
    time.sleep(0.5)  # let late errors or requests arrive
    probe = tools.call(
        "Runtime.evaluate",
        expression="JSON.stringify({title: document.title, charts: Array.from("
        "document.querySelectorAll('svg.chart')).map(s => {const r = s.getBoundingClientRect();"
        " return {width: r.width, height: r.height, shapes: s.querySelectorAll("
        "'path, rect, line, polyline, text').length};})})",
        returnByValue=True,
    )
    seen = json.loads(probe["result"]["value"])
    names = [_split_names(tools, "screen")]
    if screenshot is not None:
        metrics = tools.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(size["height"], max_height) if max_height else size["height"]
        shot = tools.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1},
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    pdf = tools.call("Page.printToPDF", preferCSSPageSize=True, printBackground=True)
    pages = base64.b64decode(pdf["data"]).count(b"/Type /Page\n") or base64.b64decode(
        pdf["data"]
    ).count(b"/Type /Page")
    # print media at the printable width of A4 (210 mm less 2 x 12 mm margins = 703 px)
    tools.call("Emulation.setEmulatedMedia", media="print")
    tools.call(
        "Emulation.setDeviceMetricsOverride", width=703, height=1000, deviceScaleFactor=1,
        mobile=False,
    )  # fmt: skip
    names.append(_split_names(tools, "print"))
    clipped = tools.call(
        "Runtime.evaluate",
        expression="JSON.stringify(Array.from(document.querySelectorAll('table')).filter("
        "t => t.getBoundingClientRect().right > document.documentElement.clientWidth + 1 "
        "|| t.scrollWidth > t.parentElement.clientWidth + 1).map(t => (t.querySelector('th')"
        " || t).textContent.trim().slice(0, 40)))",
        returnByValue=True,
    )
    tools.call("Runtime.evaluate", expression="1")  # flush pending events
    result = PageVisit(
        title=seen["title"],
        charts=seen["charts"],
        a4_pages=pages,
        clipped_tables=json.loads(clipped["result"]["value"]),
        name_pieces=sum(pieces for pieces, _ in names),
        split_names=[split for _, found in names for split in found],
    )
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url:
                result.requests.append(requested)
        elif method == "Runtime.exceptionThrown":
            result.errors.append(json.dumps(params["exceptionDetails"])[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.errors.append(json.dumps(params.get("args"))[:300])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            result.errors.append(params["entry"].get("text", "")[:300])
    tools.ws.close()
    return result


def _split_names(tools: _Devtools, media: str) -> tuple[int, list[str]]:
    """How many pieces of names the page shows, and those broken across lines."""
    answer = tools.call("Runtime.evaluate", expression=_SPLIT_NAMES, returnByValue=True)
    seen = json.loads(answer["result"]["value"])
    return seen["pieces"], [f"{media}: {piece}" for piece in seen["found"]]


if __name__ == "__main__":
    seen = visit(
        Path(sys.argv[1]),
        Path(sys.argv[2]) if len(sys.argv) > 2 else None,
        int(sys.argv[3]) if len(sys.argv) > 3 else 0,
    )
    print(json.dumps({"requests": seen.requests, "errors": seen.errors, "charts": seen.charts}))
