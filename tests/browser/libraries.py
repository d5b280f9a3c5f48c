"""The npm browser libraries (``tests/browser/libraries/package.json``), installed and served.

The first run installs the locked packages from the npm registry with ``npm ci`` into
``tests/browser/libraries/node_modules`` (git-ignored; ``.ci/run`` does it up front). Their
packaged bundles are served by the test site, never loaded from a CDN.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support import npm_ci

LIBRARIES = Path(__file__).parent / "libraries"
BUNDLES = {
    # The UMD build exposes ``AnalyticsNext.AnalyticsBrowser``; its chunks sit beside it.
    "analytics-next": LIBRARIES / "node_modules/@segment/analytics-next/dist/umd",
    # The "bundled" build carries its plugins, so nothing is fetched from RudderStack's CDN.
    "rudderstack": LIBRARIES / "node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd",
}


def npm_missing() -> str | None:
    """Why the libraries cannot be installed here, or None."""
    if all(path.is_dir() for path in BUNDLES.values()):
        return None
    if shutil.which("npm") is None:
        return "needs npm (CI has Node 20) to install the browser libraries"
    return None


def install() -> None:
    """``npm ci`` from the committed lock unless every bundle is already there."""
    npm_ci(LIBRARIES, list(BUNDLES.values()), timeout_s=300)


def publish(site_root: Path) -> None:
    """Link each bundle directory into the site as ``/vendor/<name>/``."""
    vendor = site_root / "vendor"
    vendor.mkdir(exist_ok=True)
    for name, path in BUNDLES.items():
        link = vendor / name
        if not link.exists():
            link.symlink_to(path, target_is_directory=True)


def analytics_next_page(
    forwarder_url: str,
    write_key: str,
    segment: dict[str, Any],
    calls: str,
    metrics: dict[str, Any] | None = None,
    *,
    settings_from_forwarder: bool = False,
) -> str:
    """A page loading analytics.js from the npm bundle with its settings inline (or read from
    the forwarder's ``/v1/projects/{key}/settings``).

    ``segment`` is the ``Segment.io`` integration's settings; the same ``apiHost`` and
    ``protocol`` go into the load options too, which is where analytics.js takes the host
    for its own metrics (``/m``) from.
    """
    host = {"apiHost": forwarder_url.removeprefix("http://") + "/v1", "protocol": "http"}
    settings: dict[str, Any] = {
        "writeKey": write_key,
        "cdnSettings": {
            "integrations": {"Segment.io": {"apiKey": write_key, **host, **segment}},
            "metrics": metrics or {},
        },
    }
    if settings_from_forwarder:  # what Segment's CDN would answer, the forwarder answers
        settings = {"writeKey": write_key, "cdnURL": forwarder_url}
    options = {"integrations": {"Segment.io": host}}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>analytics.js page</title>
<script src="/vendor/analytics-next/index.js"></script>
<script>
window.analytics = AnalyticsNext.AnalyticsBrowser.load({json.dumps(settings)},
  {json.dumps(options)});
{calls}
</script>
</head><body><h1>analytics.js</h1></body></html>
"""


def rudderstack_page(
    forwarder_url: str, write_key: str, options: dict[str, Any], calls: str
) -> str:
    """A page loading RudderStack's v3 SDK from the npm bundle, both URLs at the forwarder."""
    load = {"configUrl": forwarder_url, "logLevel": "ERROR", **options}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>RudderStack page</title>
<script src="/vendor/rudderstack/index.js"></script>
<script>
window.rs = new rudderanalytics.RudderAnalytics();
rs.load({json.dumps(write_key)}, {json.dumps(forwarder_url)}, {json.dumps(load)});
{calls}
</script>
</head><body><h1>RudderStack</h1></body></html>
"""
