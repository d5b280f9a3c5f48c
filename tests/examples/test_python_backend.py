"""``examples/python-backend`` scripts run against a real server; HubSpot (sandbox) gets them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.examples.conftest import EXAMPLES, sandbox_events, wait_for
from tests.support import SERVER_KEY, ServerProcess

BACKEND = EXAMPLES / "python-backend"


def run_example(script: str, server: ServerProcess, user: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FORWARDER_URL": server.url,
        "FORWARDER_WRITE_KEY": SERVER_KEY,
        "EXAMPLE_USER_ID": user,
    }
    return subprocess.run(
        [sys.executable, str(BACKEND / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def accepted(server: ServerProcess) -> float:
    """``forwarder_accepted_events_total`` of the server source: events stored durably."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    found = re.search(r'^forwarder_accepted_events_total\{source="backend"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def delivered_for(server: ServerProcess, email: str) -> set[str]:
    """HubSpot event names the sandbox received for this email."""
    return {
        name
        for name, events in sandbox_events(server.url).items()
        if any(e["email"] == email for e in events)
    }


def test_segment_sdk_backend_events_are_stored_and_reach_hubspot(server: ServerProcess) -> None:
    before = accepted(server)
    run = run_example("segment_backend.py", server, "user-1001")
    assert run.returncode == 0, run.stderr
    assert accepted(server) - before == 3  # identify + two tracks, each stored once
    wanted = {"pe123456_signed_up", "pe123456_order_completed"}
    wait_for(
        lambda: delivered_for(server, "user-1001@example.com") >= wanted,
        what="both conversions in the sandbox with the identified email",
    )


def test_httpx_backend_events_are_stored_and_reach_hubspot(server: ServerProcess) -> None:
    before = accepted(server)
    run = run_example("httpx_backend.py", server, "user-2002")
    assert run.returncode == 0, run.stderr
    assert "'accepted': 2" in run.stdout
    assert accepted(server) - before == 2
    wait_for(
        lambda: "pe123456_subscription_renewed" in delivered_for(server, "user-2002@example.com"),
        what="the renewal in the sandbox with the identified email",
    )
