"""The Redis backend's reads (debugger, tallies, erasure scan, attempts); no Lua needed.

Callers translate ``RedisError``; these are plain pipelines, one round trip each where possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis

from forwarder.storage.base import (
    FINAL_STATES,
    Attempt,
    Item,
    ItemRecord,
    ItemState,
    StoredEvent,
)
from forwarder.storage.outcomes import decode
from forwarder.storage.redis.keys import SEP, Keys

_attempt_decoder = msgspec.json.Decoder(Attempt)
_INDEXED = {"held", *FINAL_STATES}
"""States kept in a sorted set per portal; pending and leased items are found in the streams."""


def _s(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _event(seq: int, h: dict[bytes, bytes]) -> StoredEvent:
    return StoredEvent(
        seq=seq,
        portal=h[b"portal"].decode(),
        message_id=h[b"mid"].decode(),
        source=h[b"src"].decode(),
        type=h[b"type"].decode(),
        name=_s(h.get(b"name")),
        received_at=float(h[b"at"]),
        payload=h[b"payload"],
        test=h[b"test"] == b"1",
    )


def item_from_reply(portal: str, r: list[Any]) -> Item:
    """An ``Item`` from a script's ``item_reply``: id, attempts, destination, seq, event..."""
    event = StoredEvent(
        seq=int(r[3]),
        portal=r[4].decode(),
        message_id=r[5].decode(),
        source=r[6].decode(),
        type=r[7].decode(),
        name=_s(r[8]),
        received_at=float(r[9]),
        payload=r[11],
        test=r[10] == b"1",
    )
    return Item(
        id=int(r[0]), portal=portal, destination=r[2].decode(), attempts=int(r[1]), event=event
    )


def item_from_packed(portal: str, r: list[Any]) -> Item:
    """``item_from_reply`` for a reply a script packed with ``cmsgpack`` (strings, and false
    for a missing name)."""
    # Positional, in the structs' field order (seq, portal, message_id, source, type, name,
    # received_at, payload, test; then id, portal, destination, attempts, event): per item.
    event = StoredEvent(
        int(r[3]), r[4], r[5], r[6], r[7], r[8] or None, float(r[9]), r[11].encode(), r[10] == "1"
    )
    return Item(int(r[0]), portal, r[2], int(r[1]), event)


def _record(item_id: int, h: dict[bytes, bytes]) -> ItemRecord:
    return ItemRecord(
        id=item_id,
        event_seq=int(h[b"seq"]),
        portal=h[b"portal"].decode(),
        destination=h[b"dest"].decode(),
        state=cast(ItemState, h[b"state"].decode()),
        attempts=int(h[b"att"]),
        available_at=float(h[b"av"]),
        updated_at=float(h[b"up"]),
        outcome=decode(h.get(b"out")),
    )


class RedisReader:
    """Reads of one prefix."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        # redis-py types replies as unions of bytes, str, lists...; this client never decodes
        # (decode_responses is off), so every reply is bytes or lists of them: read as such.
        self._r: Any = client
        self._k = keys

    async def get_event(self, seq: int) -> StoredEvent | None:
        h = await self._r.hgetall(self._k.event(seq))
        return _event(seq, h) if h else None

    async def recent_events(self, after_seq: int, limit: int) -> list[StoredEvent]:
        """The first ``limit`` events after ``after_seq``: those purge kept below its floor,
        then the seqs up from the floor (dense; a gap is a seq a failed script took). The
        floor is read first: what a purge keeps meanwhile is still found above it."""
        start, last = await self._walk_from(after_seq + 1)
        kept = await self._r.zrangebyscore(
            self._k.name("events_kept"), f"({after_seq}", f"({start}", start=0, num=limit
        )
        found = await self._events([int(s) for s in kept])
        while len(found) < limit and start <= last:
            stop = min(last, start + limit - len(found) - 1)
            found += await self._events(range(start, stop + 1))
            start = stop + 1
        return found[:limit]

    async def _walk_from(self, first: int) -> tuple[int, int]:
        """Where a walk of the seqs from ``first`` starts (not below the floor), and the last
        seq given out."""
        floor, last = await self._r.mget(self._k.name("events_floor"), self._k.name("seq"))
        return max(first, int(floor or 1)), int(last or 0)

    async def _events(self, seqs: Sequence[int]) -> list[StoredEvent]:
        pipe = self._r.pipeline(transaction=False)
        for seq in seqs:
            pipe.hgetall(self._k.event(seq))
        rows = await pipe.execute() if seqs else []
        return [_event(seq, h) for seq, h in zip(seqs, rows, strict=True) if h]

    async def _records(self, ids: Sequence[int]) -> list[ItemRecord]:
        pipe = self._r.pipeline(transaction=False)
        for item_id in ids:
            pipe.hgetall(self._k.item(item_id))
        rows = await pipe.execute() if ids else []
        records = [_record(i, h) for i, h in zip(ids, rows, strict=True) if h]
        return sorted(records, key=lambda r: (r.available_at, r.id))

    async def items_of(self, seq: int) -> list[ItemRecord]:
        ids = await self._r.hget(self._k.event(seq), "items")
        return (await self._records([int(i) for i in (ids or b"").split(b",") if i]))[:100]

    async def items_in_state(
        self, state: ItemState, portal: str | None, limit: int
    ) -> list[ItemRecord]:
        portals = [portal] if portal is not None else await self._portals()
        if state in _INDEXED:
            pipe = self._r.pipeline(transaction=False)
            for p in portals:
                pipe.zrange(self._k.name("in_state", p, state), 0, limit - 1)
            ids = [int(i) for found in await pipe.execute() for i in found] if portals else []
        else:
            ids = await self._queued_ids(portals)
        records = [r for r in await self._records(ids) if r.state == state]
        return records[:limit]

    async def _portals(self) -> list[str]:
        return sorted(p.decode() for p in await self._r.smembers(self._k.name("portals")))

    async def _queued_ids(self, portals: Sequence[str]) -> list[int]:
        queues = [q.decode().split(SEP) for q in await self._r.smembers(self._k.name("queues"))]
        ids: list[int] = []
        for p, d in queues:
            if p in portals:
                entries = await self._r.xrange(self._k.queue(p, d))
                ids += [int(fields[b"i"]) for _, fields in entries]
        return ids

    async def queue_depth(self, portal: str, destination: str, now: float) -> tuple[int, float]:
        pipe = self._r.pipeline(transaction=False)
        pipe.xlen(self._k.queue(portal, destination))
        pipe.xrange(self._k.queue(portal, destination), count=1)
        length, first = await pipe.execute()
        if not first:
            return int(length), 0.0
        return int(length), now - float(first[0][1][b"r"])

    async def counts(self) -> dict[tuple[str, str, str], int]:
        pipe = self._r.pipeline(transaction=False)
        pipe.hgetall(self._k.name("tally"))
        pipe.hgetall(self._k.name("open"))
        out: dict[tuple[str, str, str], int] = {}
        tables: list[dict[bytes, bytes]] = await pipe.execute()
        for table in tables:
            for field, n in table.items():
                if int(n):
                    portal, destination, state = field.decode().split(SEP)
                    out[(portal, destination, state)] = int(n)
        return out

    async def attempts_of(self, item_ids: Sequence[int]) -> list[Attempt]:
        if not item_ids:
            return []
        names = [self._k.name("attempts_of", i) for i in item_ids]
        members: set[bytes] = await self._r.sunion(names)
        attempt_ids = sorted(a.decode() for a in members)
        if not attempt_ids:
            return []
        blobs = await self._r.mget([self._k.name("attempt", a) for a in attempt_ids])
        found = [_attempt_decoder.decode(b) for b in blobs if b is not None]
        return sorted(found, key=lambda a: a.at)

    async def events_containing(
        self, portal: str, needles: Sequence[bytes], batch: int
    ) -> list[int]:
        """Seqs of the portal's events whose payload holds any needle (erasure): a scan of
        every event, kept ones then the seqs from the floor (erasure is rare; an index per
        portal cost every append). The floor is read first: an event a purge keeps meanwhile
        is still above it."""
        found: list[int] = []
        if not needles:
            return found
        owner = portal.encode()
        first, last = await self._walk_from(1)
        after = 0
        while kept := await self._r.zrangebyscore(
            self._k.name("events_kept"), f"({after}", f"({first}", start=0, num=batch
        ):
            seqs = [int(s) for s in kept]
            found += await self._containing(owner, needles, seqs)
            after = seqs[-1]
        for s in range(first, last + 1, batch):
            found += await self._containing(owner, needles, range(s, min(last, s + batch - 1) + 1))
        return found

    async def _containing(
        self, owner: bytes, needles: Sequence[bytes], seqs: Sequence[int]
    ) -> list[int]:
        pipe = self._r.pipeline(transaction=False)
        for seq in seqs:
            pipe.hmget(self._k.event(seq), "portal", "payload")
        rows = await pipe.execute() if seqs else []
        return [
            seq
            for seq, (of, payload) in zip(seqs, rows, strict=True)
            if of == owner and payload is not None and any(n in payload for n in needles)
        ]
