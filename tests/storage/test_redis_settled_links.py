"""A Redis replica's cache of settled links (``storage/redis/settled.py``): learning a link it
knows costs its script a check per request, and the graph, the stamps' order and the releases
stay what learning it again would make them, on this replica and with another sharing the
Redis."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from forwarder.storage.base import Item, Key, NewEvent
from forwarder.storage.redis import RedisStorage
from tests.storage.redis_server import REDIS_URL, commands_of, replica_pair

LINK: list[Key] = [("userId", "U"), ("email", "a@x.co")]
NOW = time.time()
_ids = itertools.count()


def _event() -> NewEvent:
    return NewEvent("main", f"m{next(_ids)}", "s", "track", "E", NOW, b"{}", ("conversions",))


async def _ingest(storage: RedisStorage, groups: list[list[Key]], now: float) -> list[Item]:
    """One ingest request: its learning rides in its append's script (the cached path)."""
    learning = storage.learn_soon("main", groups, now=now)
    await storage.append([_event()], now=now, dedup_window_s=60)
    return await learning


def _stamps(storage: RedisStorage, key: Key) -> dict[str, float]:
    """The stamps of every key of ``key``'s person, as stored."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        person = client.hget(storage.keys.name("identities", "main"), "\x1f".join(key))
        members = client.zrange(
            storage.keys.name("person", "main", int(person or 0)), 0, -1, withscores=True
        )
    finally:
        client.close()
    return {m.decode(): s for m, s in members}


async def _held_on(storage: RedisStorage, keys: list[Key], now: float) -> int:
    await storage.append([_event()], now=now, dedup_window_s=60)
    [item] = await storage.lease("main", "conversions", limit=1, now=now, lease_s=30)
    await storage.hold([item.id], until=now + 99, now=now, keys=keys)
    return item.id


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two replicas on one Redis and one prefix."""
    async with replica_pair() as replicas:
        yield replicas


async def test_a_link_learned_again_is_settled_and_not_written_again(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    storage, _ = pair
    await _ingest(storage, [LINK], NOW)
    assert await _ingest(storage, [list(reversed(LINK))], NOW + 5) == []
    # not restamped: the keys' order could not change
    assert set(_stamps(storage, LINK[0]).values()) == {NOW}


def _links(n: int) -> list[list[Key]]:
    return [[("userId", f"U{i}"), ("email", f"{i}@x.co")] for i in range(n)]


async def _extra_commands(storage: RedisStorage, ingest: Callable[[], Awaitable[object]]) -> int:
    """Commands ``ingest`` runs inside its script beyond those of a request learning nothing."""
    prefix = storage.keys.prefix
    none = await commands_of(prefix, lambda: _ingest(storage, [], NOW), inside_scripts=True)
    return len(await commands_of(prefix, ingest, inside_scripts=True)) - len(none)


async def test_a_request_whose_links_are_settled_runs_no_command_per_link(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    storage, _ = pair
    await _ingest(storage, _links(50), NOW)
    assert await _extra_commands(storage, lambda: _ingest(storage, _links(50), NOW + 1)) <= 3


async def _ingest_together(
    storage: RedisStorage, links: list[list[Key]], now: float
) -> list[list[Item]]:
    """Requests that came together, one link each: their learnings ride one append's script."""
    learnings = [storage.learn_soon("main", [link], now=now) for link in links]
    await storage.append([_event()], now=now, dedup_window_s=60)
    return [await learning for learning in learnings]


async def test_requests_whose_links_are_settled_run_no_command_per_request(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """Returning users' requests gathered in one script: their holds are checked at once."""
    storage, _ = pair
    await _ingest_together(storage, _links(50), NOW)
    together = await _extra_commands(
        storage, lambda: _ingest_together(storage, _links(50), NOW + 1)
    )
    assert together <= 3


async def test_an_item_held_on_one_of_many_settled_links_is_released_to_its_own_request(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    storage, _ = pair
    links = _links(5)
    await _ingest_together(storage, links, NOW)
    await _ingest_together(storage, links, NOW + 1)  # settled
    held = await _held_on(storage, [("email", "3@x.co")], NOW + 2)
    released = await _ingest_together(storage, links, NOW + 3)
    assert [[i.id for i in items] for items in released] == [[], [], [], [held], []]


async def test_a_link_sharing_a_key_with_a_settled_one_unsettles_it(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """U-a settled, then U-b: learning U-a again makes a the most recently seen email again,
    as it does without any cache (delivery picks the most recently seen)."""
    storage, _ = pair
    await _ingest(storage, [LINK], NOW)
    await _ingest(storage, [LINK], NOW + 1)  # settled
    await _ingest(storage, [[("userId", "U"), ("email", "b@x.co")]], NOW + 2)
    await _ingest(storage, [LINK], NOW + 3)
    people = await storage.people_of("main", [("userId", "U")])
    assert people[("userId", "U")] == [("email", "b@x.co"), ("email", "a@x.co"), ("userId", "U")]


async def test_a_link_another_replica_unsettled_is_learned_again(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    ours, theirs = pair
    await _ingest(ours, [LINK], NOW)
    await _ingest(ours, [LINK], NOW + 1)  # settled here
    await _ingest(theirs, [[("userId", "U"), ("email", "b@x.co")]], NOW + 2)
    await _ingest(ours, [LINK], NOW + 3)
    people = await ours.people_of("main", [("userId", "U")])
    assert people[("userId", "U")] == [("email", "b@x.co"), ("email", "a@x.co"), ("userId", "U")]


async def test_an_item_held_after_its_link_was_settled_is_released_by_the_next_event(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """The race the cache must not widen: delivery read the graph before the link was learned,
    and holds the item after; the next event asserting the link releases it."""
    storage, _ = pair
    await _ingest(storage, [LINK], NOW)
    await _ingest(storage, [LINK], NOW + 1)
    held = await _held_on(storage, [("userId", "U")], NOW + 2)
    released = await _ingest(storage, [LINK], NOW + 3)
    assert [i.id for i in released] == [held]


async def test_an_item_held_by_another_replica_is_released_by_the_next_event(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    ours, theirs = pair
    await _ingest(ours, [LINK], NOW)
    await _ingest(ours, [LINK], NOW + 1)
    held = await _held_on(theirs, [("email", "a@x.co")], NOW + 2)
    released = await _ingest(ours, [LINK], NOW + 3)
    assert [i.id for i in released] == [held]


async def test_a_settled_link_is_learned_again_after_another_replica_erased_its_person(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    ours, theirs = pair
    await _ingest(ours, [LINK], NOW)
    await _ingest(ours, [LINK], NOW + 1)
    await theirs.erase("main", [("userId", "U")], now=NOW + 2)
    await _ingest(ours, [LINK], NOW + 3)
    people = await ours.people_of("main", [("email", "a@x.co")])
    assert sorted(people[("email", "a@x.co")]) == sorted(LINK)


async def test_a_settled_link_is_learned_again_after_its_contact_was_remapped(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """HubSpot merged the contact: the link's person lost its contactId for the new one."""
    ours, theirs = pair
    link: list[Key] = [("userId", "U"), ("contactId", "1")]
    await _ingest(ours, [link], NOW)
    await _ingest(ours, [link], NOW + 1)
    await theirs.remap_contact("main", ["1"], "2", now=NOW + 2)
    await _ingest(ours, [link], NOW + 3)
    people = await ours.people_of("main", [("contactId", "1")])
    assert sorted(people[("contactId", "1")]) == [
        ("contactId", "1"),
        ("contactId", "2"),
        ("userId", "U"),
    ]


async def test_a_settled_link_taught_beside_one_sharing_its_key_is_learned_too(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """One request teaching U-z (settled) and U-b: all three keys are stamped at once."""
    storage, _ = pair
    settled: list[Key] = [("userId", "U"), ("email", "z@x.co")]
    await _ingest(storage, [settled], NOW)
    await _ingest(storage, [settled], NOW + 1)
    await _ingest(storage, [settled, [("userId", "U"), ("email", "b@x.co")]], NOW + 2)
    assert set(_stamps(storage, ("userId", "U")).values()) == {NOW + 2}
