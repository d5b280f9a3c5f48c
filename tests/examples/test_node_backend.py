"""``examples/node-backend`` (``@segment/analytics-node`` and plain fetch) against a real server.

Needs ``node`` and ``npm`` (CI has Node 20); the first run installs the example's locked
dependencies from the npm registry into ``examples/node-backend/node_modules`` (git-ignored),
with npm's cache under the example directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.examples.conftest import EXAMPLES, sandbox_events, wait_for
from tests.support import SERVER_KEY, ServerProcess, npm_ci

NODE_EXAMPLE = EXAMPLES / "node-backend"
MISSING = [tool for tool in ("node", "npm") if shutil.which(tool) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the Node example needs {' and '.join(MISSING)} on PATH (CI has Node 20)"
)


@pytest.fixture(scope="module")
def installed() -> None:
    npm_ci(NODE_EXAMPLE, [NODE_EXAMPLE / "node_modules" / "@segment" / "analytics-node"], 180)


def run_node(script: str, server: ServerProcess, user: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FORWARDER_URL": server.url,
        "FORWARDER_WRITE_KEY": SERVER_KEY,
        "EXAMPLE_USER_ID": user,
    }
    return subprocess.run(
        ["node", script],
        cwd=NODE_EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def delivered_for(server: ServerProcess, email: str) -> set[str]:
    return {
        name
        for name, events in sandbox_events(server.url).items()
        if any(e["email"] == email for e in events)
    }


@pytest.mark.usefixtures("installed")
def test_analytics_node_sdk_reaches_hubspot_through_the_forwarder(server: ServerProcess) -> None:
    run = run_node("index.mjs", server, "user-3003")
    assert run.returncode == 0, run.stderr
    wanted = {"pe123456_signed_up", "pe123456_order_completed"}
    wait_for(
        lambda: delivered_for(server, "user-3003@example.com") >= wanted,
        what="both conversions in the sandbox with the identified email",
    )


def test_plain_fetch_backend_reaches_hubspot_through_the_forwarder(server: ServerProcess) -> None:
    run = run_node("fetch.mjs", server, "user-4004")
    assert run.returncode == 0, run.stderr
    assert '"accepted":2' in run.stdout
    wait_for(
        lambda: "pe123456_subscription_renewed" in delivered_for(server, "user-4004@example.com"),
        what="the renewal in the sandbox with the identified email",
    )
