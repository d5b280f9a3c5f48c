"""Touch memory on Redis is shared: a touch one replica ingested attributes a conversion another
replica ingests and delivers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.replicas.cluster import Process, flush_prefix, new_prefix, post, start_sandbox
from tests.support import SANDBOX_PORTAL_ID, ServerProcess, free_port, serve_config

SHARED_REDIS = "redis://127.0.0.1:6379/11"  # the replica suite's DB number
MAPPING = """
[[portals.main.events]]
event = "Attr Purchase"
custom_event = "attr_purchase"
[portals.main.events.properties]
"context.attribution.firstTouch.name" = "first_touch_campaign"
"context.attribution.firstTouch.clickIds.gclid" = "first_touch_gclid"
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Process]:
    process = start_sandbox(tmp_path)
    yield process
    process.stop()


def replica(tmp: Path, name: str, storage_url: str, sandbox_url: str, *, delivery: bool) -> Any:
    home = tmp / name
    home.mkdir()
    port = free_port()
    server_extra = "" if delivery else "delivery = false"
    config = serve_config(
        storage_url, port, sandbox_url, extra=MAPPING, server_extra=server_extra, max_delay_s=0.05
    )
    return ServerProcess(home, config).start(port)


def received(sandbox_url: str) -> list[dict[str, Any]]:
    name = f"pe{SANDBOX_PORTAL_ID}_attr_purchase"
    body = httpx.get(f"{sandbox_url}/_sandbox/events", params={"eventName": name}, timeout=5)
    events: list[dict[str, Any]] = body.json()["received"].get(name, [])
    return events


def test_touch_ingested_by_one_replica_attributes_a_conversion_on_another(
    tmp_path: Path, sandbox: Process
) -> None:
    prefix = new_prefix()
    url = f"{SHARED_REDIS}?prefix={prefix}&lease_s=3"
    ingest_only: ServerProcess | None = None
    delivering: ServerProcess | None = None
    try:
        ingest_only = replica(tmp_path, "ingest", url, sandbox.url, delivery=False)
        delivering = replica(tmp_path, "deliver", url, sandbox.url, delivery=True)
        landing = {
            "type": "page",
            "anonymousId": "laptop-1",
            "context": {"campaign": {"name": "spring-sale"}, "clickIds": {"gclid": "G-R"}},
        }
        link = {"type": "identify", "anonymousId": "laptop-1", "userId": "r-1"}
        assert post(ingest_only.url, [landing, link]) == 200
        purchase = {
            "type": "track",
            "event": "Attr Purchase",
            "userId": "r-1",
            "context": {"traits": {"email": "r1@example.com"}},
        }
        assert post(delivering.url, [purchase]) == 200

        deadline = time.monotonic() + 20
        while not received(sandbox.url) and time.monotonic() < deadline:
            time.sleep(0.2)
        [conversion] = received(sandbox.url)
        assert conversion["properties"]["first_touch_campaign"] == "spring-sale"
        assert conversion["properties"]["first_touch_gclid"] == "G-R"
    finally:
        for process in (ingest_only, delivering):
            if process is not None:
                process.stop()
        flush_prefix(SHARED_REDIS, prefix)
