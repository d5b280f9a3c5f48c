"""Touch memory benchmark: what learning touches at ingest costs, on the worst traffic for it.

Run by hand, never in CI (the machine is shared and noisy: compare the two rows of one run)::

    python benchmarks/touch_memory.py                  # 3 rounds of 20,000 events each way
    python benchmarks/touch_memory.py --rounds 1 --batches 50

In-process (no HTTP server, no delivery workers), a fresh SQLite file per run: ``POST
/v1/batch`` with 100 browser-style track events per request, *every* event carrying the
snippet's ``context.attribution`` (a first and last touch with a click id), from 5,000
visitors who each come back 4 times. Printed: events/s with ``attribution.remember`` off and on
(rounds interleaved), then the per-event cost of reading touches and of the enrich step for new
and for repeated touches.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    AttributionSettings,
    PortalSettings,
    Secret,
    ServerSettings,
    Settings,
    SourceSettings,
    StorageSettings,
)
from forwarder.delivery.touches import TouchReader
from forwarder.pipeline.enrich import Enricher
from forwarder.storage.sqlite import SqliteStorage

KEY = "bench_touch_memory_key"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
VISITORS = 5000
BATCH = 100


def events(n: int, start: int) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        visitor = f"v{i % VISITORS}"
        touch = {
            "source": "google",
            "name": "spring",
            "clickIds": {"gclid": f"G{visitor}"},
            "timestamp": "2026-12-01T10:00:00.000Z",
        }
        context = {
            "campaign": {"source": "google", "name": "spring"},
            "attribution": {"firstTouch": touch, "lastTouch": touch},
        }
        out.append(
            {
                "type": "track",
                "event": "Viewed",
                "anonymousId": visitor,
                "messageId": str(uuid.uuid4()),
                "timestamp": "2026-12-02T10:00:00.000Z",
                "context": context,
                "properties": {"x": 1},
            }
        )
    return out


def settings(db: Path, remember: bool) -> Settings:
    portal = PortalSettings(
        portal_id=1, unmapped_events="auto", attribution=AttributionSettings(remember=remember)
    )
    return Settings(
        server=ServerSettings(log_requests=False, delivery=False),
        storage=StorageSettings(url=f"sqlite:///{db}"),
        sources=(SourceSettings(name="bench", write_key=Secret(KEY), portal="main"),),
        portals={"main": portal},
    )


async def ingest(db: Path, remember: bool, batches: int) -> float:
    bodies = [{"batch": events(BATCH, b * BATCH)} for b in range(batches)]
    async with AsyncTestClient(app=create_app(settings(db, remember))) as client:
        started = time.perf_counter()
        for body in bodies:
            response = await client.post("/v1/batch", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
        return batches * BATCH / (time.perf_counter() - started)


async def per_event_costs(work: Path) -> dict[str, float]:
    reader = TouchReader(("click_id", "utm"))
    sample = events(2 * VISITORS, 0)
    started = time.perf_counter()
    for data in sample:
        reader(data, "bench")
    costs = {"read touches": (time.perf_counter() - started) / len(sample)}
    storage = SqliteStorage(work / "enrich.db")
    await storage.open()
    try:
        enrich = Enricher(storage, time.time, None, {"main": reader})
        for label, chunk in (("enrich, new", sample[:VISITORS]), ("enrich, repeat", sample)):
            started = time.perf_counter()
            for i in range(0, len(chunk), BATCH):
                await enrich.learn_touches("main", chunk[i : i + BATCH], "bench")
            costs[label] = (time.perf_counter() - started) / len(chunk)
    finally:
        await storage.close()
    return costs


async def main(args: argparse.Namespace) -> None:
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for remember in (False, True):
                db = Path(tmp) / f"{r}-{remember}.db"
                rates[remember].append(await ingest(db, remember, args.batches))
        costs = await per_event_costs(Path(tmp))
    for remember, found in rates.items():
        rounds = ", ".join(f"{x:,.0f}" for x in found)
        print(
            f"remember={str(remember).lower():<5} events/s: median {statistics.median(found):,.0f}"
            f" (rounds {rounds})"
        )
    for label, seconds in costs.items():
        print(f"{label}: {seconds * 1e6:.1f} us/event")


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=200, help="requests of 100 events per run")
    asyncio.run(main(parser.parse_args()))
