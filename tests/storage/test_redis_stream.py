"""A Redis queue's stream and lease index: what lease and finish leave in them, and a store
whose items a release before NOACK leased (their stream entries in the group's pending list)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.storage.base import NewEvent
from forwarder.storage.redis import RedisStorage
from forwarder.storage.redis.keys import GROUP, SEP
from tests.storage.redis_server import redis_storage

NOW = 1_800_000_000.3


def event(message_id: str, now: float = NOW) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=message_id,
        source="web",
        type="track",
        name="E",
        received_at=now,
        payload=b"{}",
        destinations=("conversions",),
    )


async def _append(storage: RedisStorage, n: int) -> None:
    await storage.append([event(f"m{i}") for i in range(n)], now=NOW, dedup_window_s=60)


async def _stream_items(storage: RedisStorage) -> list[int]:
    entries = await storage.client.xrange(storage.keys.queue("main", "conversions"))
    return [int(fields[b"i"]) for _, fields in entries]


async def test_a_lease_leaves_the_groups_pending_list_empty() -> None:
    async with redis_storage() as (storage, _):
        await _append(storage, 3)
        items = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
        assert len(items) == 3
        pending = await storage.client.xpending(storage.keys.queue("main", "conversions"), GROUP)
        assert pending["pending"] == 0
        # the entries stay until their items are final: the queue's depth counts them
        assert await _stream_items(storage) == [i.id for i in items]
        assert (await storage.queue_depth("main", "conversions", now=NOW + 5))[0] == 3


async def test_an_earlier_releases_lease_in_the_pending_list_is_taken_over_and_finished() -> None:
    async with redis_storage() as (storage, _):
        await _append(storage, 3)
        q = storage.keys.queue("main", "conversions")
        lz = storage.keys.name("leases", "main", "conversions")
        # What the release before this one's lease left: the entries read into the group's
        # pending list, the items leased until a deadline now past, the tallies moved.
        [(_, entries)] = await storage.client.xreadgroup(GROUP, "old", {q: ">"}, count=3)
        ids = [int(fields[b"i"]) for _, fields in entries]
        for item_id in ids:
            await storage.client.hset(
                storage.keys.item(item_id), mapping={"state": "leased", "av": NOW + 1}
            )
            await storage.client.zadd(lz, {str(item_id): NOW + 1})
        await storage.client.hincrby(
            storage.keys.name("open"), f"main{SEP}conversions{SEP}pending", -3
        )
        await storage.client.hincrby(
            storage.keys.name("open"), f"main{SEP}conversions{SEP}leased", 3
        )
        taken = await storage.lease("main", "conversions", limit=5, now=NOW + 2, lease_s=30)
        assert [i.id for i in taken] == ids
        await storage.finish(ids, "delivered", now=NOW + 3)
        pending = await storage.client.xpending(q, GROUP)
        assert pending["pending"] == 0
        assert await storage.client.xlen(q) == 0
        counts = await storage.counts()
        assert counts[("main", "conversions", "delivered")] == 3
        assert ("main", "conversions", "leased") not in counts


async def test_a_long_lease_ends_on_the_whole_second_after_the_one_asked() -> None:
    async with redis_storage() as (storage, _):
        await _append(storage, 1)
        [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=20)
        lz = storage.keys.name("leases", "main", "conversions")
        assert await storage.client.zscore(lz, str(item.id)) == 1_800_000_021.0
        # a tenth of a second short of the whole second: still leased
        assert await storage.lease("main", "conversions", limit=1, now=NOW + 20.6, lease_s=20) == []
        [again] = await storage.lease("main", "conversions", limit=1, now=NOW + 20.7, lease_s=20)
        assert again.id == item.id


@settings(max_examples=25, deadline=None)
@given(rounds=st.lists(st.sets(st.integers(0, 11), min_size=1), min_size=1, max_size=5))
async def test_finishing_any_items_in_any_order_leaves_exactly_the_open_ones_queued(
    rounds: list[set[int]],
) -> None:
    async with redis_storage() as (storage, _):
        await _append(storage, 12)
        items = await storage.lease("main", "conversions", limit=8, now=NOW, lease_s=30)
        ids = sorted(i.id for i in items) + sorted(
            set(await _stream_items(storage)) - {i.id for i in items}
        )
        open_ids = set(ids)
        for chosen in rounds:
            finished = [ids[i] for i in sorted(chosen, reverse=len(chosen) % 2 == 0)]
            await storage.finish(finished, "delivered", now=NOW + 1)
            open_ids -= set(finished)
            assert await _stream_items(storage) == sorted(open_ids)
            depth, _ = await storage.queue_depth("main", "conversions", now=time.time())
            assert depth == len(open_ids)


_VALUES = st.text(st.characters(blacklist_characters="\x1f", blacklist_categories=("Cs",)))


@settings(max_examples=20, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.one_of(_VALUES, st.text(min_size=30, max_size=300)), min_size=1, max_size=4),
        min_size=1,
        max_size=20,
    )
)
async def test_people_of_replies_each_person_with_all_its_keys_whatever_their_length(
    groups: list[list[str]],
) -> None:
    async with redis_storage() as (storage, _):
        # each group one person (values unique across groups: a shared value would merge them)
        people = [
            [("userId", f"{g}:{i}:{v}") for i, v in enumerate(group)]
            for g, group in enumerate(groups)
        ]
        for keys in people:
            await storage.link("main", keys, now=NOW)
        asked = [k for keys in people for k in keys] + [("userId", "nobody")]
        found = await storage.people_of("main", asked)
        assert set(found) == set(asked) - {("userId", "nobody")}
        for keys in people:
            for key in keys:
                assert sorted(found[key]) == sorted(keys)
