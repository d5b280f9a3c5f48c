"""The backlog gauges of a real ``forwarder serve``, read from ``GET /metrics`` over loopback
while HubSpot (a sandbox process) is down, and again after delivery drained the queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    SERVER_KEY,
    ServerProcess,
    free_port,
    sandbox_process,
    serve_config,
    track,
)

QUEUE = {"portal": "main", "destination": "conversions"}
EVENTS = 12


def gauges(url: str) -> dict[str, float]:
    """The two backlog gauges of the conversions queue (absent: never set)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("forwarder_queue_") and sample.labels == QUEUE:
                found[sample.name] = sample.value
    return found


def wait_for(read: Callable[[], dict[str, float]], ok: Callable[[dict[str, float]], bool]) -> None:
    deadline = time.monotonic() + 60
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = read()
        if ok(seen):
            return
        time.sleep(0.25)
    raise AssertionError(f"gauges never got there: {seen}")


def test_queue_gauges_show_a_backlog_while_hubspot_is_down_and_clear_once_it_drains(
    tmp_path: Path,
) -> None:
    with sandbox_process() as sandbox:
        sandbox.script({"route": "events.send_batch", "status": 503})
        port = free_port()
        server = ServerProcess(tmp_path, serve_config(tmp_path / "f.db", port, sandbox.url))
        server.start(port)
        try:
            with httpx.Client(base_url=server.url, auth=(SERVER_KEY, ""), timeout=5) as http:
                for i in range(EVENTS):
                    traits = {"traits": {"email": f"u{i}@example.com"}}  # identified: not held
                    event = track(messageId=f"m-{i}", context=traits)
                    assert http.post("/v1/track", json=event).status_code == 200

            def backlog(g: dict[str, float]) -> bool:
                depth = g.get("forwarder_queue_depth")
                return depth == EVENTS and g["forwarder_queue_oldest_age_seconds"] > 1.0

            wait_for(lambda: gauges(server.url), backlog)
            sandbox.clear_faults()

            def drained(g: dict[str, float]) -> bool:
                return g == {
                    "forwarder_queue_depth": 0.0,
                    "forwarder_queue_oldest_age_seconds": 0.0,
                }

            wait_for(lambda: gauges(server.url), drained)
        finally:
            server.stop()
        assert len(sandbox.received_uuids()) == EVENTS
