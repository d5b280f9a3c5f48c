"""The backlog gauges of a real ``forwarder serve``, read from ``GET /metrics`` over loopback
while HubSpot (a sandbox process) is down, and again after delivery drained the queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from forwarder.clock import ManualClock
from forwarder.delivery.backlog import QueueGauges
from forwarder.storage.sqlite import SqliteStorage
from forwarder.telemetry import Metrics
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


class SlowToCount(SqliteStorage):
    """A real store whose queue_depth takes one second of the manual clock, and says when."""

    def __init__(self, path: Path, clock: ManualClock) -> None:
        super().__init__(path)
        self.clock = clock
        self.asked_at: list[float] = []

    async def queue_depth(self, portal: str, destination: str, *, now: float) -> tuple[int, float]:
        self.asked_at.append(self.clock.monotonic())
        self.clock.advance(1.0)
        return await super().queue_depth(portal, destination, now=now)


async def test_a_slow_sample_spaces_the_next_so_sampling_stays_a_small_share_of_a_core(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    store = SlowToCount(tmp_path / "f.db", clock)
    await store.open()
    task = asyncio.create_task(
        QueueGauges(store, [("main", "conversions")], Metrics(), clock).run()
    )
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            clock.advance(1.0)
            if len(store.asked_at) == 2:
                break
    finally:
        task.cancel()
        await store.close()
    first, second = store.asked_at[:2]
    # One second of sampling (paced on SQLite: a tenth of it CPU), then 4 idle: 2 % of a core.
    assert second - first >= 5.0
