"""The Redis backend's key-space version, with the same rules as SQLite's schema version.

The key ``{prefix}:schema`` holds the number of the last migration applied to the key space.
At open, every migration above it runs (under a lock, so replicas opening together apply each
once) and the key is set to the version reached; a key space at a higher version was written
by a newer release and is refused (``StoreVersionError``).

Release 0.1.0 did not write the key. A key space without it but with 0.1.0's keys (an event
counter, the portal set) is at version 0; an empty one is new and starts at the latest
version. Migration 1 is 0.1.0's layout, so it changes no key and only stamps the version.

To change the layout, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec
from redis.exceptions import LockError

from forwarder.errors import StoreVersionError
from forwarder.storage.outcomes import encode, from_detail
from forwarder.storage.redis.keys import SEP, Keys

Step = Callable[[Any, Keys], Awaitable[None]]


class Migration(NamedTuple):
    """One forward step: the version it reaches, what it does in a line, and the step."""

    version: int
    summary: str
    step: Step


async def _stamp_only(client: Any, keys: Keys) -> None:
    """Nothing to change: the key space already has this layout."""


_CHUNK = 500
_ATTEMPT_REASONS = {
    "Retry": "retrying",
    "RetryPartial": "partial",
    "Split": "split",
    "GiveUp": "rejected",
    "Pause": "paused",
    "RefreshAuth": "reauthorized",
}
"""The classifier's outcome names that attempts recorded as their error when HubSpot gave no
message, and the reasons they stand for."""


async def _typed_outcomes(client: Any, keys: Keys) -> None:
    """Each item hash's free-text ``det`` read once into its typed outcome ``out``; attempts
    get the reason their error named, and successes ``delivered``."""
    last = int(await client.get(keys.name("item_seq")) or 0)
    for first in range(1, last + 1, _CHUNK):
        ids = range(first, min(last, first + _CHUNK - 1) + 1)
        pipe = client.pipeline(transaction=False)
        for item_id in ids:
            pipe.hmget(keys.item(item_id), "state", "det")
        rows = await pipe.execute()
        pipe = client.pipeline(transaction=False)
        for item_id, (state, det) in zip(ids, rows, strict=True):
            if state is None or (det is None and state in (b"pending", b"leased")):
                continue
            outcome = from_detail(state.decode(), None if det is None else det.decode())
            if outcome is not None:
                pipe.hset(keys.item(item_id), "out", encode(outcome))
            pipe.hdel(keys.item(item_id), "det")
        await pipe.execute()
    async for name in client.scan_iter(match=keys.name("attempt", "*"), count=_CHUNK):
        await _type_attempt(client, name)


async def _type_attempt(client: Any, name: bytes) -> None:
    raw = await client.get(name)
    if raw is None:
        return
    attempt = msgspec.json.decode(raw)
    if not isinstance(attempt, dict) or attempt.get("reason") is not None:
        return
    error, status = attempt.get("error"), attempt.get("status")
    if error in _ATTEMPT_REASONS:
        attempt["reason"], attempt["error"] = _ATTEMPT_REASONS[error], None
    elif error is None and isinstance(status, int) and 200 <= status < 300:
        attempt["reason"] = "delivered"
    else:
        return
    await client.set(name, msgspec.json.encode(attempt), keepttl=True)


async def _lean_indexes(client: Any, keys: Keys) -> None:
    """Each dedup field's value becomes ``seq seen_at`` and is logged in ``dedup_log`` in order
    of ``dedup_at``, an entry per time seen (an append's; ids ``0-n``, below any append's);
    then ``dedup_at``, ``events_at`` and every ``pev:{portal}`` go (purge walks ``events`` and
    the log instead, erasure scans ``events``). Run again after a crash, it converts and logs
    again while ``dedup_at`` is there (a value already converted keeps its seq), else only
    deletes what is left."""
    log, dedup, by_time = keys.name("dedup_log"), keys.name("dedup"), keys.name("dedup_at")
    if await client.exists(by_time):
        await client.delete(log)
    start, entries = 0, 0
    while chunk := await client.zrange(by_time, start, start + _CHUNK - 1, withscores=True):
        start += _CHUNK
        values = await client.hmget(dedup, [field for field, _ in chunk])
        converted: dict[bytes, bytes] = {}
        logged: dict[float, list[bytes]] = {}
        stray: list[bytes] = []
        for (field, seen), value in zip(chunk, values, strict=True):
            pair = field.split(SEP.encode(), 1)
            if len(pair) != 2:  # no append ever asks for it: not a message's field
                stray.append(field)
            elif value is not None:
                converted[field] = value.split(b" ")[0] + f" {seen!r}".encode()
                logged.setdefault(seen, []).extend(pair)
        pipe = client.pipeline(transaction=False)
        if converted:
            pipe.hset(dedup, mapping=converted)
        if stray:
            pipe.hdel(dedup, *stray)
        for seen, pairs in logged.items():
            entries += 1
            pipe.execute_command("XADD", log, f"0-{entries}", "now", repr(seen), *pairs)
        await pipe.execute()
    await client.unlink(by_time, keys.name("events_at"))
    for portal in await client.smembers(keys.name("portals")):
        await client.unlink(keys.name("portal_events", portal.decode()))


async def _events_by_floor(client: Any, keys: Keys) -> None:
    """``events`` (every event's seq) becomes ``events_kept`` (what purge walks first, deleting
    as before) and the floor starts past the last seq: new events need no index. Run again
    after a crash, the floor already set stays (and an ``events`` an older replica wrote
    meanwhile joins ``events_kept``)."""
    every, kept = keys.name("events"), keys.name("events_kept")
    if await client.exists(every):
        if await client.exists(kept):
            await client.zunionstore(kept, [kept, every])
            await client.unlink(every)
        else:
            await client.rename(every, kept)
    last = int(await client.get(keys.name("seq")) or 0)
    await client.set(keys.name("events_floor"), last + 1, nx=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "the 0.1.0 key layout (on a 0.1.0 store: no change, version stamped)", _stamp_only
    ),
    # A new hash per portal, written on use; stamped so that a release without touch memory,
    # whose erasure would leave the hash behind, refuses the key space.
    Migration(2, "touch memory: hashes tch:{portal}, created on use", _stamp_only),
    Migration(
        3,
        "typed outcomes: item hashes' det text read into out, attempts' reason",
        _typed_outcomes,
    ),
    Migration(
        4,
        "lean event indexes: dedup values hold their time, a dedup log; dedup_at, events_at"
        " and pev:{portal} deleted",
        _lean_indexes,
    ),
    Migration(
        5,
        "events without an index: events renamed events_kept, purge walks seqs from events_floor",
        _events_by_floor,
    ),
)
LATEST = MIGRATIONS[-1].version
_LOCK_S = 60


async def version_of(client: Any, keys: Keys) -> int | None:
    """The key space's version; ``None`` for a new, empty key space."""
    raw = await client.get(keys.name("schema"))
    if raw is not None:
        return int(raw)
    legacy = await client.exists(keys.name("seq"), keys.name("portals"), keys.name("meta"))
    return 0 if legacy else None


async def pending(client: Any, keys: Keys, store: str) -> list[Migration]:
    """The migrations the key space still needs, oldest first (none for a new one).

    Raises:
        StoreVersionError: the key space was written by a newer release.
    """
    found = await version_of(client, keys)
    if found is None:
        return []
    if found > LATEST:
        raise StoreVersionError(store, found, LATEST)
    return [m for m in MIGRATIONS if m.version > found]


async def migrate(client: Any, keys: Keys, store: str) -> list[Migration]:
    """Bring the key space to ``LATEST``; return the migrations this call applied."""
    if await version_of(client, keys) is None:
        # A new key space: nothing to migrate. NX: a replica that got here first wins.
        await client.set(keys.name("schema"), LATEST, nx=True)
    todo = await pending(client, keys, store)
    if not todo:
        return []
    # Another replica may be migrating: wait for its lock, polling. Held, the lock is renewed
    # while the steps run (a step over a large key space outlasts _LOCK_S), and lapses by
    # itself if this replica dies.
    guard = client.lock(keys.name("lock", "migrate"), timeout=_LOCK_S, sleep=0.1)
    await guard.acquire()
    renewing = asyncio.create_task(_renew(guard))
    applied = []
    try:
        for migration in await pending(client, keys, store):
            await migration.step(client, keys)
            await client.set(keys.name("schema"), migration.version)
            applied.append(migration)
    finally:
        renewing.cancel()
        with contextlib.suppress(LockError):
            await guard.release()
    return applied


async def _renew(guard: Any) -> None:
    """Keep the migration lock: its time to live back to ``_LOCK_S`` every third of it, until
    cancelled or lost (then it stops: another replica holds it)."""
    with contextlib.suppress(LockError):
        while True:
            await asyncio.sleep(_LOCK_S / 3)
            await guard.reacquire()
