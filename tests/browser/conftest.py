"""Real headless Chromium against a real ``forwarder serve``, pages served from a loopback site.

The site (a static HTTP server) and the forwarder run on different loopback ports, so every
request the script makes is cross-origin, as when the forwarder has its own domain. The
forwarder's browser source allows exactly the site's origin.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support import BROWSER_KEY, ORIGIN, ServerProcess, config_toml, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
T = TypeVar("T")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return "needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright Python package (pip install -e '.[dev]')"
    return None


# The documented way to deliver first-touch attribution: map it to event properties.
ATTRIBUTION_MAPPING = """
[[portals.main.events]]
event = "Attr Purchase"
custom_event = "attr_purchase"
[portals.main.events.properties]
revenue = "revenue"
"context.attribution.firstTouch.source" = "first_touch_source"
"context.attribution.firstTouch.name" = "first_touch_campaign"
"context.attribution.firstTouch.clickIds.gclid" = "first_touch_gclid"
"""


def browser_config(db: Path, port: int, origin: str) -> str:
    """``tests.support.config_toml`` with the browser source allowing ``origin`` instead."""
    allowed = 'allowed_origins = ["{}"]'
    toml = config_toml(db, port, portal_extra=ATTRIBUTION_MAPPING)
    return toml.replace(allowed.format(ORIGIN), allowed.format(origin))


def wait_for(probe: Callable[[], T | None], timeout_s: float = 10.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or probe}")
        time.sleep(0.05)


class Site:
    """Static pages on ``http://127.0.0.1:PORT``; tests write the pages they need.

    With ``upstream`` set, ``/fwd/*`` is passed to the forwarder like the reverse proxy of
    ``examples/web/README.md`` does (prefix stripped, ``Origin`` and cookies kept).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.upstream: str | None = None
        handler = functools.partial(_SiteHandler, directory=str(root), site=self)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, html: str) -> str:
        """Write a page; returns its URL on the site's origin."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html)
        return f"{self.origin}/{path.lstrip('/')}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    _PASSED = ("content-type", "origin", "cookie", "if-none-match", "user-agent")
    _RETURNED = ("content-type", "set-cookie", "etag", "cache-control", "vary")

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if not self._proxied():
            super().do_GET()

    def do_POST(self) -> None:
        if not self._proxied():
            self.send_error(405)

    def _proxied(self) -> bool:
        if self.site.upstream is None or not self.path.startswith("/fwd/"):
            return False
        length = int(self.headers.get("content-length") or 0)
        answer = httpx.request(
            self.command,
            self.site.upstream + self.path.removeprefix("/fwd"),
            content=self.rfile.read(length) if length else None,
            headers={k: v for k, v in self.headers.items() if k.lower() in self._PASSED},
        )
        self.send_response(answer.status_code)
        for name, value in answer.headers.multi_items():
            if name.lower() in self._RETURNED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Forwarder:
    """The running forwarder and what it stored."""

    def __init__(self, proc: ServerProcess, db: Path) -> None:
        self.proc = proc
        self.db = db
        self.url = proc.url

    def events(self, anonymous_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (optionally of one visitor), oldest first."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT payload FROM events ORDER BY seq").fetchall()
        events = [json.loads(bytes(row[0])) for row in rows]
        if anonymous_id is None:
            return events
        return [e for e in events if e.get("anonymousId") == anonymous_id]

    def named(self, name: str) -> list[dict[str, Any]]:
        """Stored track events called ``name`` (tests give each event a unique name)."""
        return [e for e in self.events() if e.get("event") == name]


def page_html(forwarder_url: str, options: dict[str, Any] | None = None, body: str = "") -> str:
    """A page with the documented loader snippet; ``body`` runs right after it, before load."""
    opts = {"host": forwarder_url, "flushInterval": 100, **(options or {})}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Test page</title>
<script>
(function (w, d, src, key, opts) {{
  var f = (w.forwarder = w.forwarder || []);
  if (f.initialized) return;
  var methods = ["load", "page", "track", "identify", "alias", "reset", "consent", "flush"];
  methods.forEach(function (m) {{
    f[m] = function () {{ f.push([m].concat([].slice.call(arguments))); return f; }};
  }});
  var s = d.createElement("script");
  s.async = true;
  s.src = src;
  d.head.appendChild(s);
  f.load(key, opts);
}})(window, document, "{forwarder_url}/js/v1/forwarder.js", "{BROWSER_KEY}", {json.dumps(opts)});
</script>
<script>{body}</script>
</head><body><h1>Test page</h1></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    served = Site(tmp_path_factory.mktemp("site"))
    yield served
    served.close()


@pytest.fixture(scope="module")
def forwarder(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Forwarder]:
    tmp = tmp_path_factory.mktemp("forwarder")
    db = tmp / "forwarder.db"
    port = free_port()
    proc = ServerProcess(tmp, browser_config(db, port, site.origin)).start(port)
    yield Forwarder(proc, db)
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile: no cookies, no localStorage."""
    ctx = browser.new_context()
    yield ctx
    ctx.close()
