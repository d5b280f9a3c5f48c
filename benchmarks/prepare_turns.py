"""How long delivery's preparation of one batch holds the event loop it shares with ingest.

A batch of 500 mapped ``Order Completed`` events (each with ``context.traits.email``, its
``userId`` linked to the email in the graph, as the delivered path of ``benchmarks/ingest.py``)
is prepared by the conversions destination on a real SQLite (or, with ``--redis URL``, Redis)
store, while a coroutine takes a turn of the loop whenever it can (as an ingest request would).
Reported per run: the longest stretch of the loop thread's own CPU time between two of its
turns (``time.thread_time``: what another process takes from the core does not count, so the
figure repeats on a busy machine), the number of turns it got, and the whole preparation's CPU;
medians over ``--runs``. Compare two checkouts by ``PYTHONPATH``::

    PYTHONPATH=/work/wt/base python benchmarks/prepare_turns.py
    PYTHONPATH=. python benchmarks/prepare_turns.py --redis redis://127.0.0.1:6379/0
    PYTHONPATH=. python benchmarks/prepare_turns.py --instructions   # callgrind, per event

``--instructions`` counts, under callgrind (``benchmarks/callgrind.py``), the instructions of
``--runs`` preparations without the other coroutine, per event, for each thread (the loop's
first; SQLite's writer next): what preparing in parts costs beside the batch at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from callgrind import instrument, thread_totals  # type: ignore[import-not-found]

from forwarder.config import EventMapping, PortalSettings, StorageSettings
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations.conversions import Conversions
from forwarder.delivery.mapping import Mapper
from forwarder.identity.resolve import Resolver
from forwarder.storage import create_storage
from forwarder.storage.base import Item, StoredEvent

PORTAL = PortalSettings(
    portal_id=1,
    events=(
        EventMapping(
            event="Order Completed",
            custom_event="order_completed",
            properties={"revenue": "revenue"},
        ),
    ),
)


def _items(n: int, users: int) -> list[Item]:
    items = []
    for i in range(n):
        u = i % users
        body = {
            "type": "track",
            "userId": f"user-{u}",
            "messageId": f"m-{i}",
            "event": "Order Completed",
            "properties": {"revenue": 42, "currency": "EUR"},
            "context": {"traits": {"email": f"user-{u}@example.com"}},
            "timestamp": "2026-12-06T09:00:00.000Z",
        }
        payload = json.dumps(body).encode()
        event = StoredEvent(
            i, "main", f"m-{i}", "bench", "track", "Order Completed", 1.0, payload, False
        )
        items.append(Item(i, "main", "conversions", 0, event))
    return items


_TICK_S = 0.0002


async def _one(conversions: Conversions, items: list[Item]) -> tuple[float, int, float]:
    """(longest loop-thread CPU between two turns of the other coroutine, its turns, the
    preparation's loop-thread CPU), in ms."""
    longest, turns = 0.0, 0
    last = time.thread_time()

    async def other() -> None:
        nonlocal longest, turns, last
        while True:
            await asyncio.sleep(_TICK_S)  # not 0: a spinning loop would count as preparation
            now = time.thread_time()
            longest = max(longest, now - last)
            last = now
            turns += 1

    ticker = asyncio.create_task(other())
    await asyncio.sleep(0)
    started = time.thread_time()
    longest, turns, last = 0.0, 0, started
    await conversions.prepare(items)
    ticker.cancel()
    longest = max(longest, time.thread_time() - last)  # the stretch after its last turn
    started = time.thread_time()
    await conversions.prepare(items)  # alone: its CPU without the other coroutine's turns
    cpu = time.thread_time() - started
    return longest * 1000, turns, cpu * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--redis", help="a Redis URL (a fresh key prefix; deleted after)")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--counted", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions:
        _count(args)
        return
    with tempfile.TemporaryDirectory() as work:
        if args.redis:
            url = f"{args.redis}?prefix=bench-turns-{secrets.token_hex(4)}"
        else:
            url = f"sqlite:///{Path(work) / 'f.db'}"
        storage = create_storage(StorageSettings(url=url))
        await storage.open()
        try:
            groups = [
                [("userId", f"user-{u}"), ("email", f"user-{u}@example.com")]
                for u in range(args.users)
            ]
            await storage.learn("main", groups, now=1.0)
            catalog = DefinitionCatalog("main", None, storage, create_missing=False)  # type: ignore[arg-type]
            resolver = Resolver("main", ("email",), storage)
            attributor = Attributor("main", PORTAL.attribution, storage)
            conversions = Conversions(PORTAL, Mapper(PORTAL), catalog, resolver, attributor)
            if args.counted:  # the child of ``--instructions``: counting on around the runs
                batches = [_items(args.events, args.users) for _ in range(args.runs + 2)]
                for items in batches[:2]:
                    await conversions.prepare(items)
                instrument(True)
                for items in batches[2:]:
                    await conversions.prepare(items)
                instrument(False)
                return
            runs = []
            for n in range(args.runs + 2):
                items = _items(args.events, args.users)
                result = await _one(conversions, items)
                if n >= 2:  # warm: imports, caches, the scripts loaded
                    runs.append(result)
        finally:
            if args.redis:
                client = storage.client  # type: ignore[attr-defined]
                keys = [k async for k in client.scan_iter(match=f"{storage.keys.prefix}:*")]  # type: ignore[attr-defined]
                for start in range(0, len(keys), 500):
                    await client.delete(*keys[start : start + 500])
            await storage.close()
    longest = statistics.median(r[0] for r in runs)
    turns = statistics.median(r[1] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    print(
        f"{args.events} events, {'redis' if args.redis else 'sqlite'}: longest turn "
        f"{longest:.2f} ms of loop CPU (max {max(r[0] for r in runs):.2f}), "
        f"{turns:.0f} turns for others, preparation {cpu:.2f} ms CPU (medians of {len(runs)})"
    )


def _count(args: argparse.Namespace) -> None:
    extra = ["--redis", args.redis] if args.redis else []
    counts = thread_totals(
        __file__, "--counted", "--runs", str(args.runs), "--events", str(args.events), *extra
    )
    per_event = [round(c / args.runs / args.events) for c in counts if c]
    print(f"{args.events} events: instructions per event, by thread (loop first): {per_event}")


if __name__ == "__main__":
    asyncio.run(main())
