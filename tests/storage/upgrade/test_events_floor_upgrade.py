"""A Redis key space of version 4 (every event's seq in the ``events`` sorted set) opens under
migration 5: its events are listed and purged as before, from ``events_kept``, new ones need no
index, and its backlog leases and is delivered once. The key space was written by that
version's own code (``make_keyspace.py``, commit 7f954a1)."""

from __future__ import annotations

import json
from pathlib import Path

import redis.asyncio as aioredis

from forwarder.storage.base import Accepted, Duplicate
from forwarder.storage.redis import migrations
from forwarder.storage.redis.keys import Keys
from tests.storage.redis_server import REDIS_URL
from tests.storage.upgrade.test_lean_indexes_upgrade import again_event
from tests.storage.upgrade.test_upgrade import restored, upgraded

KEYSPACE = Path(__file__).parent / "keyspace-v4"
DUMP = json.loads((KEYSPACE / "redis.json").read_text())
MANIFEST = json.loads((KEYSPACE / "manifest.json").read_text())
T0: float = MANIFEST["t0"]
SEQS: dict[str, int] = MANIFEST["seqs"]
DELIVERED: list[str] = MANIFEST["delivered"]


async def test_a_version_4_key_space_lists_purges_and_delivers_without_the_events_index() -> None:
    async with upgraded(DUMP) as (storage, client, prefix):
        index_left = client.exists(f"{prefix}:events")
        kept = sorted(int(s) for s in client.zrange(f"{prefix}:events_kept", 0, -1))
        version = int(client.get(f"{prefix}:schema") or 0)

        mids = list(SEQS)
        duplicates = await storage.append(
            [again_event(m, T0 + 200) for m in mids], now=T0 + 200, dedup_window_s=3600
        )
        [new] = await storage.append(
            [again_event("n0", T0 + 200)], now=T0 + 200, dedup_window_s=3600
        )
        listed_before = [e.seq for e in await storage.recent_events(limit=100)]
        # the delivered events (received at t0) go; the pending ones and the new one stay
        await storage.purge(dedup_before=T0 + 50, events_before=T0 + 50)
        listed_after = [e.seq for e in await storage.recent_events(limit=100)]
        main = await storage.lease("main", "conversions", limit=100, now=T0 + 300, lease_s=30)
        other = await storage.lease("other", "conversions", limit=100, now=T0 + 300, lease_s=30)
        await storage.finish([i.id for i in main + other], "delivered", now=T0 + 300)
        again = await storage.lease("main", "conversions", limit=100, now=T0 + 400, lease_s=30)

    assert (version, index_left) == (migrations.LATEST, 0)
    assert kept == sorted(SEQS.values())
    assert duplicates == [Duplicate(SEQS[m]) for m in mids]
    assert isinstance(new, Accepted)
    assert new.seq == max(SEQS.values()) + 1
    assert listed_before == [*sorted(SEQS.values()), new.seq]
    assert listed_after == [
        *sorted(SEQS[m] for m in SEQS if m not in DELIVERED),
        new.seq,
    ]
    waiting = {m for m in SEQS if m not in DELIVERED} | {"n0"}
    assert sorted(i.event.message_id for i in main + other) == sorted(waiting)
    assert again == []


async def test_migration_5_run_again_keeps_its_floor_and_what_an_older_replica_indexed() -> None:
    """A replica that died after migration 5's rename, before it stamped the version, runs it
    again: the floor set the first time stays, and an ``events`` an older replica wrote
    meanwhile joins the kept events rather than replacing them."""
    with restored(DUMP):
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = Keys(DUMP["prefix"])
        try:
            await migrations._events_by_floor(client, keys)
            floor = await client.get(keys.name("events_floor"))
            await client.set(keys.name("seq"), 20)
            await client.zadd(keys.name("events"), {"20": 20})
            await migrations._events_by_floor(client, keys)
            floor_again = await client.get(keys.name("events_floor"))
            kept = sorted(int(s) for s in await client.zrange(keys.name("events_kept"), 0, -1))
            index_left = await client.exists(keys.name("events"))
        finally:
            await client.aclose()

    assert floor == floor_again == str(max(SEQS.values()) + 1).encode()
    assert kept == [*sorted(SEQS.values()), 20]
    assert index_left == 0
