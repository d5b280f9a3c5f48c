"""Write a small Redis key space with the storage code on the path, for the upgrade tests of
the Redis layout between releases (``keyspace-v3``: key-space version 3, before migration 4;
``keyspace-v4``: version 4, before migration 5).

Run with that code first on the path, e.g. for version 3 (commit 2d15d06):

    git worktree add --detach /tmp/v3 2d15d06
    PYTHONPATH=/tmp/v3 python tests/storage/upgrade/make_keyspace.py \
        --out tests/storage/upgrade/keyspace-v3 --commit 2d15d06 --version 3

Two appends (one of eight events over two portals, one of five later, one of them with its own
short dedup window), four items delivered; then every key of the prefix is kept (``DUMP``,
hex) in ``redis.json`` and the messageIds with their seqs, times and states in
``manifest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import redis

from forwarder.storage.base import Accepted, NewEvent
from forwarder.storage.redis import RedisStorage

REDIS = "redis://127.0.0.1:6379/0"
PREFIX = "fixture-keyspace"
T0 = 1_800_000_000.0


def event(portal: str, mid: str, at: float, window: float | None = None) -> NewEvent:
    return NewEvent(
        portal=portal,
        message_id=mid,
        source="backend",
        type="track",
        name="Order Completed",
        received_at=at,
        payload=json.dumps({"messageId": mid, "userId": f"u-{mid}"}).encode(),
        destinations=("conversions",),
        dedup_window_s=window,
    )


async def write() -> dict[str, object]:
    storage = RedisStorage(f"{REDIS}?prefix={PREFIX}")
    await storage.open()
    try:
        first = [event("main", f"a{i}", T0) for i in range(6)]
        first += [event("other", f"b{i}", T0) for i in range(2)]
        later = [event("main", f"a{i}", T0 + 100) for i in range(6, 10)]
        later.append(event("main", "c0", T0 + 100, window=5.0))
        seqs: dict[str, int] = {}
        for batch, now in ((first, T0), (later, T0 + 100)):
            results = await storage.append(batch, now=now, dedup_window_s=3600)
            for e, r in zip(batch, results, strict=True):
                assert isinstance(r, Accepted)
                seqs[e.message_id] = r.seq
        items = await storage.lease("main", "conversions", limit=4, now=T0 + 100, lease_s=30)
        await storage.finish([i.id for i in items], "delivered", now=T0 + 100)
        delivered = sorted(i.event.message_id for i in items)
    finally:
        await storage.close()
    return {"t0": T0, "seqs": seqs, "delivered": delivered}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--version", type=int, required=True, help="the key space's version")
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS)
    stale = list(client.scan_iter(match=f"{PREFIX}:*"))
    if stale:
        client.delete(*stale)
    manifest = asyncio.run(write())
    keys = sorted(client.scan_iter(match=f"{PREFIX}:*"))
    dump = {"prefix": PREFIX, "keys": {k.decode(): client.dump(k).hex() for k in keys}}
    client.delete(*keys)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redis.json").write_text(json.dumps(dump, indent=1) + "\n")
    manifest = {"commit": args.commit, "version": args.version, **manifest}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
