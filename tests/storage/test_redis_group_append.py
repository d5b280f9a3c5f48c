"""Appends that come while others are on their way to Redis go together in one script (group
commit), each caller still answered with its own events' results, alone in what fails."""

from __future__ import annotations

import asyncio
import time

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import Accepted, Duplicate
from forwarder.storage.redis import RedisStorage
from tests.storage.contract.builders import event
from tests.storage.redis_server import commands_of, redis_storage


async def _warm(storage: RedisStorage, now: float) -> None:
    """The script loaded (its first call is two commands), so a test counts calls only."""
    await storage.append([event("warm", received_at=now)], now=now, dedup_window_s=60)


async def test_requests_arriving_while_appends_are_in_flight_share_one_script() -> None:
    now = time.time()
    async with redis_storage() as (storage, prefix):
        await _warm(storage, now)
        results: list[list[object]] = []

        async def forty_requests() -> None:
            results.extend(
                await asyncio.gather(
                    *(
                        storage.append(
                            [event(f"m{i}", received_at=now)], now=now, dedup_window_s=60
                        )
                        for i in range(40)
                    )
                )
            )

        calls = await commands_of(prefix, forty_requests)
        stored = await storage.recent_events(limit=100)
    assert all(c == "EVALSHA" for c in calls)
    assert len(calls) < 10  # 40 requests
    seqs = [r[0].seq for r in results if isinstance(r[0], Accepted)]
    assert len(set(seqs)) == 40
    # each caller got the seq of its own event
    by_seq = {e.seq: e.message_id for e in stored}
    assert [by_seq[s] for s in seqs] == [f"m{i}" for i in range(40)]


async def test_a_message_id_sent_twice_in_one_group_is_stored_once() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await _warm(storage, now)
        ids = [f"m{i}" for i in range(10)] + ["m3"]
        results = await asyncio.gather(
            *(storage.append([event(m, received_at=now)], now=now, dedup_window_s=60) for m in ids)
        )
        stored = await storage.recent_events(limit=100)
    first = results[3][0]
    assert isinstance(first, Accepted)
    assert results[-1] == [Duplicate(seq=first.seq)]
    assert sorted(e.message_id for e in stored) == sorted({*ids, "warm"})


async def test_a_group_takes_at_most_100_events_but_a_bigger_request_goes_whole() -> None:
    now = time.time()
    async with redis_storage() as (storage, prefix):
        await _warm(storage, now)
        sizes = [60, 60, 60, 60, 150, 30, 30]
        results: list[list[object]] = []

        async def requests() -> None:
            results.extend(
                await asyncio.gather(
                    *(
                        storage.append(
                            [event(f"r{r}-{i}", received_at=now) for i in range(size)],
                            now=now,
                            dedup_window_s=60,
                        )
                        for r, size in enumerate(sizes)
                    )
                )
            )

        calls = await commands_of(prefix, requests)
        inside = await commands_of(prefix, requests, inside_scripts=True)
    # 60 alone; then groups of 60, 60, 60, 150 and 30 + 30, two on their way while 100 wait
    assert len(calls) == 6
    assert [len(r) for r in results] == sizes * 2
    assert all(isinstance(x, Accepted) for r in results[:7] for x in r)
    assert all(isinstance(x, Duplicate) for r in results[7:] for x in r)
    assert inside.count("MGET") == 6  # the second time all are duplicates: the same six calls


async def test_a_request_whose_caller_left_before_its_group_went_is_not_stored() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await _warm(storage, now)
        first = [
            asyncio.ensure_future(
                storage.append([event(m, received_at=now)], now=now, dedup_window_s=60)
            )
            for m in ("a", "b")
        ]
        left = asyncio.ensure_future(
            storage.append([event("left", received_at=now)], now=now, dedup_window_s=60)
        )
        stays = asyncio.ensure_future(
            storage.append([event("stays", received_at=now)], now=now, dedup_window_s=60)
        )
        await asyncio.sleep(0)  # all four asked; one on its way, three waiting
        left.cancel()
        await asyncio.gather(*first, stays)
        with pytest.raises(asyncio.CancelledError):
            await left
        stored = {e.message_id for e in await storage.recent_events(limit=100)}
    assert stored == {"warm", "a", "b", "stays"}


async def test_a_failing_group_fails_each_of_its_callers_and_the_next_append_works() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await _warm(storage, now)
        seq_key = storage.keys.name("seq")
        client = storage.client
        good = await client.get(seq_key)
        await client.set(seq_key, "not a number")  # every append's script now fails
        outcomes = await asyncio.gather(
            *(
                storage.append([event(f"m{i}", received_at=now)], now=now, dedup_window_s=60)
                for i in range(8)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(o, StorageUnavailableError) for o in outcomes)
        await client.set(seq_key, good)
        assert await _the_next_append_is_stored(storage, now) == {"warm", "after"}


async def _the_next_append_is_stored(storage: RedisStorage, now: float) -> set[str]:
    """Append one event ("after"), which must be accepted; the messageIds stored then."""
    [after] = await storage.append([event("after", received_at=now)], now=now, dedup_window_s=60)
    assert isinstance(after, Accepted)
    return {e.message_id for e in await storage.recent_events(limit=100)}


async def test_the_learning_begun_beside_waiting_requests_rides_their_groups_script() -> None:
    now = time.time()
    async with redis_storage() as (storage, prefix):
        await _warm(storage, now)

        async def ingest(i: int) -> None:
            learning = storage.learn_soon(
                "main", [[("userId", f"u{i}"), ("email", f"e{i}")]], now=now
            )
            await storage.append([event(f"m{i}", received_at=now)], now=now, dedup_window_s=60)
            assert await learning == []

        async def ten_requests() -> None:
            await asyncio.gather(*(ingest(i) for i in range(10)))

        calls = await commands_of(prefix, ten_requests)
        people = await storage.people_of("main", [("userId", f"u{i}") for i in range(10)])
    # one on its way, then one group: a learning alone would be a script of its own
    assert calls == ["EVALSHA"] * 2
    for i in range(10):
        assert sorted(people[("userId", f"u{i}")]) == [("email", f"e{i}"), ("userId", f"u{i}")]


async def test_an_append_after_redis_lost_its_scripts_loads_it_again() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await _warm(storage, now)
        await storage.client.script_flush()
        assert await _the_next_append_is_stored(storage, now) == {"warm", "after"}


async def test_an_append_cancelled_on_its_way_leaves_no_reply_for_the_next_to_read() -> None:
    now = time.time()
    async with redis_storage() as (storage, _prefix):
        await _warm(storage, now)
        # Sent, no reply yet: Redis takes ~150 ms over the script, but how long the send
        # takes depends on the machine's load (the suite runs on every core), so each attempt
        # cancels a little later than the one before.
        for attempt in range(10):
            big = [event(f"big{attempt}-{i}", received_at=now) for i in range(10_000)]
            going = asyncio.ensure_future(storage.append(big, now=now, dedup_window_s=60))
            await asyncio.sleep(0.05 + 0.03 * attempt)
            going.cancel()
            try:
                await going
            except asyncio.CancelledError:
                break
            # else the cancel came while redis-py waited for the send (``asyncio.wait_for``
            # on Python 3.11 keeps the result of a task done as it is cancelled), or after the
            # reply: again
        else:
            pytest.fail("no append was cancelled on its way")
        results = await storage.append(
            [event("next", received_at=now), event("warm", received_at=now)],
            now=now,
            dedup_window_s=60,
        )
        assert len(results) == 2
        assert isinstance(results[0], Accepted)
        stored = await storage.get_event(results[0].seq)
        await _until_no_command_is_half_read(storage)
    assert stored is not None
    assert stored.message_id == "next"
    assert isinstance(results[1], Duplicate)


async def _until_no_command_is_half_read(storage: RedisStorage) -> None:
    """Until Redis holds no command it has only partly read (at most 10 s): a cancelled append
    sent whole still runs once Redis has read it all, and its keys must land before the test's
    prefix is flushed, not after (20,000 keys were once left on the machine's Redis)."""
    for _ in range(200):
        clients = await storage.client.client_list()
        if all(int(c.get("qbuf", 0)) == 0 for c in clients if c.get("cmd") != "client|list"):
            return
        await asyncio.sleep(0.05)
