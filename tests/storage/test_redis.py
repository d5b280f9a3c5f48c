"""What only the Redis backend does: replicas sharing one Redis (dedup races, dead replicas'
leases, shared rate windows, a lock), persistence warning, Redis unreachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
import redis
import redis.asyncio as aioredis
import structlog

from forwarder.clock import SystemClock
from forwarder.config import StorageSettings
from forwarder.delivery.ratelimit import SlidingWindowLimiter
from forwarder.errors import ConfigError, StorageUnavailableError
from forwarder.storage import create_storage
from forwarder.storage.base import Accepted, Duplicate, Key, NewEvent, StoredEvent
from forwarder.storage.redis import RedisStorage
from forwarder.storage.redis import store as redis_store
from forwarder.storage.redis.shared import COMPACT_VALUE_BYTES, check_version
from tests.storage.redis_server import (
    REDIS_URL,
    commands_of,
    redis_prefix,
    redis_storage,
    replica_pair,
)


def event(message_id: str, now: float) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=message_id,
        source="s",
        type="track",
        name="E",
        received_at=now,
        payload=b"{}",
        destinations=("conversions",),
    )


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two backends on one Redis and one prefix, as two replicas would be; leases of 0.6 s."""
    async with replica_pair("&lease_s=0.6") as pair:
        yield pair


def test_redis_url_selects_the_redis_backend() -> None:
    assert isinstance(create_storage(StorageSettings(url="redis://127.0.0.1:6379/3")), RedisStorage)


async def test_same_message_id_on_two_replicas_at_once_is_stored_once(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = replicas
    now = time.time()
    for i in range(50):
        results = await asyncio.gather(
            a.append([event(f"m{i}", now)], now=now, dedup_window_s=60),
            b.append([event(f"m{i}", now)], now=now, dedup_window_s=60),
        )
        kinds = sorted(type(r[0]).__name__ for r in results)
        assert kinds == ["Accepted", "Duplicate"]
    assert len(await a.recent_events(limit=1000)) == 50


async def test_a_dead_replicas_lease_is_claimed_after_it_expires(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = replicas
    now = time.time()
    await a.append([event("m", now)], now=now, dedup_window_s=60)
    [item] = await a.lease("main", "conversions", limit=1, now=now, lease_s=120)
    await a.close()  # the replica dies: nobody renews its lease (capped at 0.6 s)
    assert await b.lease("main", "conversions", limit=1, now=now + 0.3, lease_s=120) == []
    [claimed] = await b.lease("main", "conversions", limit=1, now=now + 0.7, lease_s=120)
    assert claimed.id == item.id
    await b.finish([claimed.id], "delivered", now=now + 1)
    counts = await b.counts()
    assert counts[("main", "conversions", "delivered")] == 1
    assert ("main", "conversions", "leased") not in counts


@pytest.mark.timeout(30)
async def test_a_live_replica_keeps_its_lease(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = replicas
    await a.append([event("m", time.time())], now=time.time(), dedup_window_s=60)
    assert await a.lease("main", "conversions", limit=1, now=time.time(), lease_s=120)
    await asyncio.sleep(1.0)  # longer than the lease: renewed in the background meanwhile
    assert await b.lease("main", "conversions", limit=1, now=time.time(), lease_s=120) == []


async def test_replicas_share_one_rolling_window(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    clock = SystemClock()
    limiters = []
    for storage in replicas:
        shared = storage.coordination()
        assert shared is not None
        limiters.append(SlidingWindowLimiter(5, 0.5, clock, shared=shared.window("main", "crm")))
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for limiter in limiters for _ in range(10)))
    # 20 acquisitions at 5 per 0.5 s across both replicas: at least three windows must pass
    assert time.monotonic() - started >= 1.5 - 0.05


async def test_replicas_share_one_pace(replicas: tuple[RedisStorage, RedisStorage]) -> None:
    """10 per 1 s paced one at a time: 10 acquisitions from two replicas are 0.1 s apart."""
    clock = SystemClock()
    limiters = []
    for storage in replicas:
        shared = storage.coordination()
        assert shared is not None
        window = shared.window("main", "paced")
        limiters.append(SlidingWindowLimiter(10, 1.0, clock, shared=window, burst=1))
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for limiter in limiters for _ in range(5)))
    # Each replica alone would pass its five in 0.4 s; shared, the tenth waits 0.9 s.
    assert time.monotonic() - started >= 0.9 - 0.05


async def test_header_correction_reaches_the_other_replica(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = (s.coordination() for s in replicas)
    assert a is not None
    assert b is not None
    await a.window("main", "crm").observe(7, 10, 5.0)
    assert await b.window("main", "crm").counts(5.0) == (0, 7)
    assert await b.window("main", "crm").try_acquire(4, 10, 5.0) > 0


async def test_a_lock_is_held_by_one_replica_at_a_time(
    replicas: tuple[RedisStorage, RedisStorage],
) -> None:
    inside: list[int] = []
    overlaps = 0

    async def hold(storage: RedisStorage) -> None:
        nonlocal overlaps
        shared = storage.coordination()
        assert shared is not None
        async with shared.lock("oauth-refresh:main", ttl_s=5):
            inside.append(1)
            overlaps = max(overlaps, len(inside))
            await asyncio.sleep(0.05)
            inside.pop()

    await asyncio.gather(*(hold(s) for s in replicas for _ in range(3)))
    assert overlaps == 1


async def test_aof_off_is_reported_loudly_at_open() -> None:
    with redis_prefix() as prefix, structlog.testing.capture_logs() as logs:
        storage = RedisStorage(f"{REDIS_URL}?prefix={prefix}")
        await storage.open()
        await storage.close()
    events = {entry["event"] for entry in logs}
    assert events & {"redis_aof_disabled", "redis_persistence_checked"}


@contextmanager
def hash_value_limit(limit: int) -> Iterator[None]:
    """The test Redis's ``hash-max-listpack-value`` set to ``limit``, restored afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    name = "hash-max-ziplist-value"  # the name 6.2 knows; 7 keeps it as an alias
    before = next(iter(client.config_get(name).values()))
    client.config_set(name, limit)
    try:
        yield
    finally:
        client.config_set(name, before)
        client.close()


SERVER_SETTING = pytest.mark.xdist_group("redis-server-setting")
"""The tests that change a setting of the machine's Redis run one after the other on one worker
of the parallel suite, never beside each other."""


@SERVER_SETTING
async def test_open_says_when_redis_keeps_events_in_their_large_form() -> None:
    with hash_value_limit(64), structlog.testing.capture_logs() as logs:
        async with redis_storage():
            pass
    said = [e for e in logs if e["event"] == "redis_events_not_compact"]
    assert [e["hash_max_listpack_value"] for e in said] == [64]
    assert f"hash-max-listpack-value {COMPACT_VALUE_BYTES}" in said[0]["action"]


@SERVER_SETTING
async def test_under_the_recommended_setting_an_event_is_compact_and_open_says_nothing() -> None:
    """Every field of an event's hash but a long payload stays under Redis's limit, so with the
    setting docs/redis.md recommends an event with a payload of a real SDK's size is stored
    compact (a listpack)."""
    now = time.time()
    payload = msgspec.json.encode({"type": "track", "properties": {"note": "x" * 1500}})
    with hash_value_limit(COMPACT_VALUE_BYTES), structlog.testing.capture_logs() as logs:
        async with redis_storage() as (storage, _prefix):
            [stored] = await storage.append(
                [
                    NewEvent(
                        portal="main",
                        message_id="m-" + "9" * 60,
                        source="s",
                        type="track",
                        name="Order Completed",
                        received_at=now,
                        payload=payload,
                        destinations=("conversions", "timeline", "contacts"),
                    )
                ],
                now=now,
                dedup_window_s=60,
            )
            client = aioredis.Redis.from_url(REDIS_URL)
            encoding = await client.object("encoding", storage.keys.event(stored.seq))
            await client.aclose()
    assert encoding in {b"listpack", b"ziplist"}  # the compact form's name in Redis 7 and 6.2
    assert "redis_events_not_compact" not in {e["event"] for e in logs}


async def test_unreachable_redis_fails_with_storage_unavailable() -> None:
    storage = RedisStorage("redis://127.0.0.1:1/0")
    with pytest.raises(StorageUnavailableError):
        await storage.open()


async def test_duplicates_report_the_first_seq() -> None:
    with redis_prefix() as prefix:
        storage = RedisStorage(f"{REDIS_URL}?prefix={prefix}")
        await storage.open()
        [first] = await storage.append([event("m", 1.0)], now=1.0, dedup_window_s=60)
        [again] = await storage.append([event("m", 2.0)], now=2.0, dedup_window_s=60)
        await storage.close()
    assert isinstance(first, Accepted)
    assert again == Duplicate(seq=first.seq)


async def test_recording_a_batchs_attempt_is_one_command_whatever_its_size() -> None:
    """The attempt and its per-item index go in one script call, not a command per item."""
    from forwarder.storage.base import Attempt
    from forwarder.storage.outcomes import Reason

    now = time.time()
    async with redis_storage() as (storage, prefix):
        fresh = [event(f"m{i}", now) for i in range(500)]
        await storage.append(fresh, now=now, dedup_window_s=60)
        items = await storage.lease("main", "conversions", limit=500, now=now, lease_s=30)
        ids = tuple(i.id for i in items)
        attempt = Attempt(ids, now, "/r", 204, 1.0, None, None, Reason.DELIVERED, None)
        await storage.record_attempts([attempt])  # the script is loaded by now
        assert await commands_of(prefix, lambda: storage.record_attempts([attempt])) == ["EVALSHA"]
        assert len(await storage.attempts_of([ids[-1]])) == 2


async def test_an_append_runs_a_few_commands_per_event_inside_its_script() -> None:
    """Per event its hash, per item its stream entry and its hash; the dedup check and log,
    sequences, queue sets and tallies once per call, and no index of events (17 commands an
    event were most of Redis's CPU on ingest; a sorted set per index, 4 an event, cost it more
    as the store grew)."""
    now = time.time()
    async with redis_storage() as (storage, prefix):
        await storage.append([event("warm", now)], now=now, dedup_window_s=60)
        fresh = [event(f"m{i}", now) for i in range(50)]
        commands = await commands_of(
            prefix,
            lambda: storage.append(fresh, now=now, dedup_window_s=60),
            inside_scripts=True,
        )
    assert 3 * 50 <= len(commands) <= 3 * 50 + 20
    assert commands.count("HMGET") == 1  # the dedup check
    assert commands.count("ZADD") == 0  # no index: purge walks the seqs
    assert commands.count("XADD") == 50 + 1  # the items' entries and the dedup log's


async def test_purge_goes_part_by_part_and_keeps_a_message_an_append_took_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dedup log's entries (one an append) and the events are purged a few at a time; a
    message accepted again after its window is known by its new seq after the old entry goes,
    and an event with an open item stays."""
    monkeypatch.setattr(redis_store, "_PURGE_BATCH", 3)
    async with redis_storage() as (storage, prefix):
        for i in range(5):
            await storage.append([event(f"m{i}", 100.0)], now=100.0, dedup_window_s=10)
        await storage.append(
            [event(f"m{i}", 100.0) for i in range(5, 12)], now=100.0, dedup_window_s=10
        )
        [taken] = await storage.append([event("m0", 150.0)], now=150.0, dedup_window_s=10)
        items = await storage.lease("main", "conversions", limit=20, now=150.0, lease_s=30)
        old = [i.id for i in items if i.event.received_at == 100.0 and i.event.message_id != "m3"]
        await storage.finish(old, "delivered", now=150.0)
        gone = await storage.purge(dedup_before=120.0, events_before=120.0)
        log = await storage.client.xlen(f"{prefix}:dedup_log")
        [still] = await storage.append([event("m0", 155.0)], now=155.0, dedup_window_s=10)
        [forgotten] = await storage.append([event("m1", 160.0)], now=160.0, dedup_window_s=10)
        left = [(e.message_id, e.received_at) for e in await storage.recent_events()]
    assert isinstance(taken, Accepted)
    assert gone == 11 + 11  # every field but m0's taken again; every old event but m3
    assert log == 1  # the entry of m0's second append
    assert still == Duplicate(taken.seq)
    assert isinstance(forgotten, Accepted)
    assert left == [("m3", 100.0), ("m0", 150.0), ("m1", 160.0)]


async def test_purge_reads_the_dedup_log_only_as_far_as_it_forgets() -> None:
    """The log's entries are read one at a time, up to the first not old enough: a purge with
    little or nothing to forget does not pull a step's worth of entries (up to 1,000 messages
    each) through the script (10-20 ms of Redis every purge at 100,000 messages logged)."""
    async with redis_storage() as (storage, prefix):
        for at in (100.0, 100.0, 200.0, 200.0, 200.0):
            fresh = [event(f"m{at}-{i}-{time.time()}", at) for i in range(3)]
            await storage.append(fresh, now=at, dedup_window_s=10)
        commands = await commands_of(
            prefix,
            lambda: storage.purge(dedup_before=150.0, events_before=50.0),
            inside_scripts=True,
        )
        left = await storage.client.xlen(f"{prefix}:dedup_log")
    assert commands.count("XRANGE") == 3  # the two old entries, then the first young one
    assert commands.count("XDEL") == 2
    assert left == 3


async def test_events_purge_walks_seqs_past_a_gap_and_keeps_an_open_one_until_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events have no index: purge walks their seqs up from a floor, a few at a time, passes a
    seq no event holds (a script that failed took it), and keeps an event with an open item
    apart until its item is final; listing and erasure read the kept events and the seqs above
    the floor."""
    monkeypatch.setattr(redis_store, "_PURGE_BATCH", 2)

    def mine(mid: str, at: float) -> NewEvent:
        payload = b'{"userId":"U"}' if mid in ("b", "d") else b"{}"
        return NewEvent("main", mid, "s", "track", "E", at, payload, ("conversions",))

    async with redis_storage() as (storage, prefix):
        await storage.link("main", [("userId", "U")], now=100.0)
        await storage.append([mine("a", 100.0), mine("b", 100.0)], now=100.0, dedup_window_s=10)
        await storage.client.incr(f"{prefix}:seq")  # seq 3: taken by a script that failed
        await storage.append([mine("c", 100.0)], now=100.0, dedup_window_s=10)
        await storage.append([mine("d", 200.0)], now=200.0, dedup_window_s=10)
        items = {
            i.event.message_id: i.id
            for i in await storage.lease("main", "conversions", limit=9, now=150.0, lease_s=30)
        }
        await storage.finish([items["a"], items["c"]], "delivered", now=150.0)
        await storage.purge(dedup_before=120.0, events_before=120.0)
        after_first = [await storage.get_event(s) is not None for s in (1, 2, 4, 5)]
        kept = await storage.client.zrange(f"{prefix}:events_kept", 0, -1)
        floor = int(await storage.client.get(f"{prefix}:events_floor"))
        listed = [e.seq for e in await storage.recent_events()]
        after_2 = [e.seq for e in await storage.recent_events(after_seq=2)]
        erased = await storage.erase("main", [("userId", "U")], now=210.0)
        await storage.finish([items["b"]], "delivered", now=300.0)
        await storage.purge(dedup_before=120.0, events_before=120.0)
        at_last = [e.seq for e in await storage.recent_events()]
        kept_last = await storage.client.zcard(f"{prefix}:events_kept")
    assert after_first == [False, True, False, True]
    assert (kept, floor) == ([b"2"], 5)
    assert listed == [2, 5]
    assert after_2 == [5]
    assert erased.events == 2  # b, kept below the floor, and d above it
    assert (at_last, kept_last) == ([5], 0)


async def test_an_append_is_stored_when_redis_py_packs_it_without_hiredis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_store, "_pack_command", None)
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        [accepted] = await storage.append([event("m", now)], now=now, dedup_window_s=60)
        assert isinstance(accepted, Accepted)
        stored = await storage.get_event(accepted.seq)
    assert stored is not None
    assert stored.message_id == "m"


async def test_an_ingests_append_carries_the_learning_begun_beside_it_in_one_call() -> None:
    now = time.time()
    async with redis_storage() as (storage, prefix):
        await storage.append([event("warm", now)], now=now, dedup_window_s=60)

        async def ingest() -> None:
            learning = storage.learn_soon("main", [[("userId", "u"), ("email", "e")]], now=now)
            await storage.append([event("m", now)], now=now, dedup_window_s=60)
            assert await learning == []

        assert await commands_of(prefix, ingest) == ["EVALSHA"]
        people = await storage.people_of("main", [("userId", "u")])
        assert sorted(people[("userId", "u")]) == [("email", "e"), ("userId", "u")]


async def test_items_released_by_a_learning_carried_by_an_append_reach_its_caller() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        [held] = await storage.append([event("held", now)], now=now, dedup_window_s=60)
        [item] = await storage.lease("main", "conversions", limit=1, now=now, lease_s=30)
        await storage.hold([item.id], until=now + 600, now=now, keys=[("userId", "u")])
        learning = storage.learn_soon("main", [[("userId", "u"), ("email", "e")]], now=now)
        await storage.append([event("other", now)], now=now, dedup_window_s=60)
        released = await learning
    assert [(i.id, i.event.message_id) for i in released] == [(item.id, "held")]
    assert isinstance(held, Accepted)
    assert released[0].event.seq == held.seq


async def test_a_learning_no_append_takes_is_learned_on_its_own() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        released = await storage.learn_soon("main", [[("userId", "u"), ("email", "e")]], now=now)
        people = await storage.people_of("main", [("email", "e")])
    assert released == []
    assert sorted(people[("email", "e")]) == [("email", "e"), ("userId", "u")]


async def test_a_leased_item_carries_its_event_exactly_as_stored() -> None:
    """The lease's script writes its reply as msgpack for msgspec to decode into Items: payloads
    of every length class, a missing and an empty name, a test flag, a time to the last bit."""
    now = 1_765_000_000.123456789
    payloads = [b"", b"{}", b"x" * 300, b"y" * 70_000, "\u00e9\u20ac".encode()] * 4
    events = [
        NewEvent(
            portal="main",
            message_id=f"m{i}",
            source="s",
            type="track",
            name=[None, "", "Order Completed"][i % 3],
            received_at=now + i / 7,
            payload=payload,
            destinations=("conversions",),
            test=i % 2 == 1,
        )
        for i, payload in enumerate(payloads)
    ]
    async with redis_storage() as (storage, _prefix):
        results = await storage.append(events, now=now, dedup_window_s=60)
        items = await storage.lease("main", "conversions", limit=50, now=now, lease_s=30)
    assert [i.event for i in items] == [
        StoredEvent(
            r.seq,
            e.portal,
            e.message_id,
            e.source,
            e.type,
            e.name,
            e.received_at,
            e.payload,
            e.test,
        )
        for r, e in zip(results, events, strict=True)
    ]
    assert {(i.portal, i.destination, i.attempts) for i in items} == {("main", "conversions", 0)}


async def test_leased_ids_and_seqs_of_every_msgpack_integer_size_arrive_as_stored() -> None:
    """The lease's script writes ids, seqs and attempts as msgpack integers: one byte below
    128, four below 2**32, eight from there."""
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await storage.client.set(storage.keys.name("seq"), 125)
        await storage.client.set(storage.keys.name("item_seq"), 2**32 - 3)
        await storage.append([event(f"m{i}", now) for i in range(4)], now=now, dedup_window_s=60)
        first = await storage.lease("main", "conversions", limit=4, now=now, lease_s=30)
        await storage.retry([i.id for i in first], available_at=now, now=now)
        again = await storage.lease("main", "conversions", limit=4, now=now + 1, lease_s=30)
    assert [(i.id, i.event.seq, i.attempts) for i in first] == [
        (2**32 - 2, 126, 0),
        (2**32 - 1, 127, 0),
        (2**32, 128, 0),
        (2**32 + 1, 129, 0),
    ]
    assert sorted((i.id, i.attempts) for i in again) == [(i.id, 1) for i in first]


async def test_seqs_and_item_ids_of_fifteen_digits_are_stored_and_leased_exactly() -> None:
    """The append formats each seq and item id once, as a whole number: past 10**14 Lua's own
    number formatting ('%.14g') would write them with an exponent."""
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await storage.client.set(storage.keys.name("seq"), 10**15)
        await storage.client.set(storage.keys.name("item_seq"), 2 * 10**15)
        results = await storage.append([event("m", now)], now=now, dedup_window_s=60)
        items = await storage.lease("main", "conversions", limit=1, now=now, lease_s=30)
        stored = await storage.client.hget(storage.keys.item(2 * 10**15 + 1), "seq")
        last = await storage.client.mget(storage.keys.name("seq"), storage.keys.name("item_seq"))
    assert results == [Accepted(seq=10**15 + 1)]
    assert [(i.id, i.event.seq) for i in items] == [(2 * 10**15 + 1, 10**15 + 1)]
    assert stored == str(10**15 + 1).encode()
    assert last == [str(10**15 + 1).encode(), str(2 * 10**15 + 1).encode()]


async def test_leased_times_whole_or_exact_in_a_float32_arrive_as_floats() -> None:
    """cmsgpack writes a whole time as an integer and a time a float32 holds as a float32:
    the Item still has the float stored."""
    times = [1_765_000_000.0, 0.5, 1_765_000_000.1]
    async with redis_storage() as (storage, _prefix):
        for i, at in enumerate(times):
            stored = msgspec.structs.replace(event(f"m{i}", at), received_at=at)
            await storage.append([stored], now=at, dedup_window_s=60)
        items = await storage.lease("main", "conversions", limit=5, now=2e9, lease_s=30)
    assert [(type(i.event.received_at), i.event.received_at) for i in items] == [
        (float, at) for at in times
    ]


async def test_people_of_answers_for_more_keys_than_one_command_takes() -> None:
    """The script reads the keys in parts of 1,000 (Lua's unpack has a stack limit)."""
    groups = [[("userId", f"u{i}"), ("email", f"{i}@x.co")] for i in range(1500)]
    async with redis_storage() as (storage, _prefix):
        await storage.learn("main", groups, now=1.0)
        asked = [key for keys in groups for key in keys] + [("userId", "nobody")]
        people = await storage.people_of("main", asked)
    assert people == {key: sorted(keys) for keys in groups for key in keys}


async def test_touches_of_answers_for_more_keys_than_one_command_takes() -> None:
    """The script reads the touches of 500 keys a command: the 501st key is in the next."""
    from tests.storage.contract.test_identity_graph import touch

    keys = [("anonymousId", f"a{i}") for i in range(1200)]
    remembered = [*keys[::7], keys[500]]
    async with redis_storage() as (storage, _prefix):
        await storage.remember_touches("main", [(k, touch(1.0, k[1])) for k in remembered])
        memory = await storage.touches_of("main", keys)
    assert sorted(memory) == sorted(remembered)
    assert memory[keys[500]].first == touch(1.0, "a500")


async def test_items_finished_together_leave_their_queues_indexes_and_holds() -> None:
    """One finish of leased and held items (of two destinations): acks, indexes, holds and
    tallies written once per call say what one finish per item said."""
    now = time.time()
    both = ("conversions", "timeline")
    events = [
        NewEvent("main", f"m{i}", "s", "track", "E", now, b"{}", destinations=both)
        for i in range(6)
    ]
    async with redis_storage() as (storage, _prefix):
        await storage.append(events, now=now, dedup_window_s=60)
        leased = [
            *await storage.lease("main", "conversions", limit=10, now=now, lease_s=30),
            *await storage.lease("main", "timeline", limit=10, now=now, lease_s=30),
        ]
        held = [i.id for i in leased[:4]]
        await storage.hold(held, until=now + 99, now=now, keys=[("userId", "u")])
        await storage.finish([i.id for i in leased], "expired", now=now)
        released = await storage.release_for("main", [("userId", "u")], now=now)
        counts = await storage.counts()
        again = await storage.lease("main", "conversions", limit=10, now=now + 60, lease_s=30)
        expired = await storage.items_in_state("expired", limit=100)
    assert released == []
    assert again == []
    assert sorted(r.id for r in expired) == sorted(i.id for i in leased)
    assert {k: n for k, n in counts.items() if k[2] != "accepted"} == {
        ("main", "conversions", "expired"): 6,
        ("main", "timeline", "expired"): 6,
    }


async def _lease_and_finish(
    stored: int, limit: int, *, inside_scripts: bool
) -> tuple[list[int], list[str], list[str], dict[tuple[str, str, str], int]]:
    """Store ``stored`` events, lease up to ``limit`` and finish them as delivered: the ids
    leased, the commands of the lease and of the finish, and the counts after."""
    now = time.time()
    async with redis_storage() as (storage, prefix):
        events = [event(f"m{i}", now) for i in range(stored)]
        await storage.append(events, now=now, dedup_window_s=60)
        leased: list[int] = []

        async def lease() -> None:
            items = await storage.lease("main", "conversions", limit=limit, now=now, lease_s=30)
            leased.extend(i.id for i in items)

        leasing = await commands_of(prefix, lease, inside_scripts=inside_scripts)
        finishing = await commands_of(
            prefix,
            lambda: storage.finish(leased, "delivered", now=now),
            inside_scripts=inside_scripts,
        )
        counts = await storage.counts()
    return leased, leasing, finishing, counts


async def test_a_lease_and_a_finish_run_a_few_commands_per_item_inside_their_scripts() -> None:
    """Lease: per item its read, its state and its event; finish: per item its read and its
    write; indexes, acks and tallies once per call (they were 5 and 11 commands an item)."""
    leased, leasing, finishing, _ = await _lease_and_finish(50, 50, inside_scripts=True)
    assert len(leased) == 50
    assert len(leasing) <= 3 * 50 + 10
    assert len(finishing) <= 2 * 50 + 10


async def test_a_whole_batchs_lease_and_finish_run_in_scripts_of_a_hundred_items() -> None:
    """Redis runs nothing else while a script runs: a batch of 250 is leased and finished in
    three scripts each (100, 100, 50), so no script holds every ingest's append for a batch."""
    leased, leasing, finishing, counts = await _lease_and_finish(260, 250, inside_scripts=False)
    assert len(set(leased)) == 250
    assert leasing == ["EVALSHA"] * 3
    assert finishing == ["EVALSHA"] * 3
    assert counts[("main", "conversions", "delivered")] == 250
    assert counts[("main", "conversions", "pending")] == 10


async def test_a_batchs_identity_and_touch_reads_run_in_scripts_of_a_bounded_number_of_keys() -> (
    None
):
    """Redis runs nothing else while a script runs: a batch of 500 events' anonymousIds and
    userIds (1,000) are one script each; 1,100 identifiers are looked up in the graph and in the
    touch memory in two scripts each (1,000 and 100), and the answers are those of one read
    (people found across scripts, touches of keys in any of them)."""
    from forwarder.storage.redis.store import _SCRIPT_KEYS
    from tests.storage.contract.test_identity_graph import touch

    assert _SCRIPT_KEYS == 1000
    groups = [[("userId", f"u{i}"), ("anonymousId", f"a{i}")] for i in range(550)]
    keys = [key for keys in groups for key in keys]
    async with redis_storage() as (storage, prefix):
        await storage.learn("main", groups, now=1.0)
        remembered = keys[::9]
        await storage.remember_touches("main", [(k, touch(1.0, k[1])) for k in remembered])
        await storage.people_of("main", keys[:1])  # the scripts are loaded by now
        await storage.touches_of("main", keys[:1])
        people: dict[object, object] = {}
        memory: dict[object, object] = {}

        async def read(keys: list[Key]) -> None:
            people.update(await storage.people_of("main", keys))
            memory.update(await storage.touches_of("main", keys))

        batch = await commands_of(prefix, lambda: read(keys[:1000]))
        reading = await commands_of(prefix, lambda: read(keys))
    assert batch == ["EVALSHA"] * 2
    assert reading == ["EVALSHA"] * 4
    assert people == {key: sorted(g) for g in groups for key in g}
    assert sorted(memory) == sorted(remembered)  # type: ignore[type-var]


@pytest.mark.parametrize("version", ["5.0.7", "6.0.16", "6.1.0"])
def test_a_redis_older_than_6_2_is_refused_in_one_line_naming_the_setting(version: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_version(version)
    assert str(refused.value) == (
        f"config error at storage.url: Redis {version} is too old: 6.2 or later is needed"
    )


@pytest.mark.parametrize("version", ["6.2.0", "7.0.15", "7.2.4", "8.0.1", ""])
def test_redis_6_2_and_later_or_an_unknown_version_open(version: str) -> None:
    check_version(version)


async def test_a_migration_step_longer_than_the_lock_runs_once_for_two_replicas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The migration lock is renewed while a step runs: a replica that opens meanwhile waits
    for it instead of running the step a second time when the lock's first time to live ends."""
    from forwarder.storage.redis import migrations
    from forwarder.storage.redis.keys import Keys
    from tests.replicas.cluster import start_redis

    runs: list[float] = []

    async def slow(client: object, keys: Keys) -> None:
        runs.append(time.monotonic())
        await asyncio.sleep(2.5)  # over twice the lock's time to live

    latest = migrations.LATEST + 1
    # Renewed every third of it: a second of time to live leaves a loaded machine's event
    # loop 0.6 s to renew in time (0.3 s lapsed once with 4 test workers on 2 cores).
    monkeypatch.setattr(migrations, "_LOCK_S", 1.0)
    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        (*migrations.MIGRATIONS, migrations.Migration(latest, "slow", slow)),
    )
    monkeypatch.setattr(migrations, "LATEST", latest)
    # A Redis of its own: on the machine's, another test's long script (a 10,000-event append,
    # run beside this one by the parallel suite) held a renewal back past the time to live.
    server = start_redis(tmp_path)
    keys = Keys("test")
    clients = [aioredis.Redis.from_url(server.url) for _ in range(2)]
    try:
        await clients[0].set(keys.name("schema"), latest - 1)
        applied = await asyncio.gather(*(migrations.migrate(c, keys, "test") for c in clients))
        version = int(await clients[0].get(keys.name("schema")))
    finally:
        for c in clients:
            await c.aclose()
        server.stop()
    assert len(runs) == 1
    assert sorted(len(a) for a in applied) == [0, 1]
    assert version == latest
