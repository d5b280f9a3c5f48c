"""A Redis key space of version 3 (a dedup hash of bare seqs beside ``dedup_at``, and the
``events_at`` and ``pev:{portal}`` indexes) opens under migration 4: its messages are still
duplicates of their seqs, purge forgets them and their events when old enough, and its backlog
leases. The key space was written by that version's own code (``make_keyspace.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import redis.asyncio as aioredis

from forwarder.storage.base import Accepted, Duplicate, NewEvent
from forwarder.storage.redis import RedisStorage, migrations
from forwarder.storage.redis.keys import Keys
from tests.storage.redis_server import REDIS_URL
from tests.storage.upgrade.test_upgrade import restored, upgraded

KEYSPACE = Path(__file__).parent / "keyspace-v3"
DUMP = json.loads((KEYSPACE / "redis.json").read_text())
MANIFEST = json.loads((KEYSPACE / "manifest.json").read_text())
T0: float = MANIFEST["t0"]
SEQS: dict[str, int] = MANIFEST["seqs"]


def again_event(mid: str, at: float) -> NewEvent:
    portal = "other" if mid.startswith("b") else "main"
    return NewEvent(portal, mid, "backend", "track", "Order Completed", at, b"{}", ("conversions",))


async def test_a_version_3_key_space_keeps_its_dedup_and_backlog_under_lean_indexes() -> None:
    async with upgraded(DUMP) as (storage, client, prefix):
        left = [
            k
            for k in ("dedup_at", "events_at", "pev:main", "pev:other")
            if client.exists(f"{prefix}:{k}")
        ]
        version = int(client.get(f"{prefix}:schema") or 0)

        mids = list(SEQS)
        replies = await storage.append(
            [again_event(m, T0 + 200) for m in mids], now=T0 + 200, dedup_window_s=3600
        )
        assert replies == [Duplicate(SEQS[m]) for m in mids]

        # what was seen at t0 is forgotten, what came at t0 + 100 is not; the delivered
        # events (received at t0) go, the ones still pending stay
        await storage.purge(dedup_before=T0 + 50, events_before=T0 + 50)
        forgotten, kept = await storage.append(
            [again_event("a0", T0 + 300), again_event("a6", T0 + 300)],
            now=T0 + 300,
            dedup_window_s=3600,
        )
        listed = {e.seq for e in await storage.recent_events(limit=100)}
        main = await storage.lease("main", "conversions", limit=100, now=T0 + 300, lease_s=30)
        other = await storage.lease("other", "conversions", limit=100, now=T0 + 300, lease_s=30)

    assert (version, left) == (migrations.LATEST, [])
    assert isinstance(forgotten, Accepted)
    assert kept == Duplicate(SEQS["a6"])
    assert listed == {SEQS[m] for m in SEQS if m not in MANIFEST["delivered"]} | {forgotten.seq}
    assert sorted(i.event.seq for i in main if i.event.seq in SEQS.values()) == sorted(
        SEQS[m] for m in ("a4", "a5", "a6", "a7", "a8", "a9", "c0")
    )
    assert sorted(i.event.message_id for i in other) == ["b0", "b1"]


async def test_migration_4_run_again_after_a_crash_keeps_the_dedup_log() -> None:
    """A replica that died after migration 4's deletes, before it stamped the version, runs it
    again at the next start: the log written the first time is what purge still needs."""
    with restored(DUMP) as url:
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = Keys(DUMP["prefix"])
        try:
            await migrations._lean_indexes(client, keys)
            first = await client.xrange(keys.name("dedup_log"))
            await migrations._lean_indexes(client, keys)
            again = await client.xrange(keys.name("dedup_log"))
        finally:
            await client.aclose()
        storage = RedisStorage(url)
        await storage.open()
        try:
            await storage.purge(dedup_before=T0 + 50, events_before=T0)
            [forgotten] = await storage.append(
                [again_event("b0", T0 + 300)], now=T0 + 300, dedup_window_s=3600
            )
        finally:
            await storage.close()

    assert again == first != []
    assert isinstance(forgotten, Accepted)


async def test_migration_4_drops_a_dedup_field_that_names_no_message() -> None:
    """A field without portal and message id (no release writes one) would have broken the
    log's pairs; it is deleted and the rest migrates."""
    with restored(DUMP) as url:
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = Keys(DUMP["prefix"])
        try:
            await client.hset(keys.name("dedup"), "stray", "99")
            await client.zadd(keys.name("dedup_at"), {"stray": T0})
            await migrations._lean_indexes(client, keys)
            stray = await client.hexists(keys.name("dedup"), "stray")
            kept = await client.hlen(keys.name("dedup"))
        finally:
            await client.aclose()
        storage = RedisStorage(url)
        await storage.open()
        try:
            replies = await storage.append(
                [again_event(m, T0 + 200) for m in SEQS], now=T0 + 200, dedup_window_s=3600
            )
        finally:
            await storage.close()

    assert (stray, kept) == (False, len(SEQS))
    assert replies == [Duplicate(SEQS[m]) for m in SEQS]
