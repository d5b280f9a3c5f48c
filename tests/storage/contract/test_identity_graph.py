"""IdentityGraph: people, held items released by identity, contact merges, erasure,
touch memory."""

from __future__ import annotations

from forwarder.storage.base import (
    NewEvent,
    Storage,
    Touch,
    TouchKind,
    TouchMemory,
    TouchOrigin,
)
from forwarder.storage.outcomes import Outcome, Reason
from tests.storage.contract.builders import NOW, WINDOW, event


async def test_linked_identifiers_are_one_person(storage: Storage) -> None:
    await storage.link("main", [("anonymousId", "A"), ("email", "e@x.co")], now=NOW)
    await storage.link("main", [("userId", "U"), ("email", "e@x.co")], now=NOW + 1)
    people = await storage.people_of("main", [("anonymousId", "A"), ("userId", "nobody")])
    assert set(people) == {("anonymousId", "A")}
    assert sorted(people[("anonymousId", "A")]) == [
        ("anonymousId", "A"),
        ("email", "e@x.co"),
        ("userId", "U"),
    ]


async def test_linking_two_people_merges_them(storage: Storage) -> None:
    await storage.link("main", [("anonymousId", "A"), ("utk", "T")], now=NOW)
    await storage.link("main", [("userId", "U"), ("email", "e@x.co")], now=NOW)
    await storage.link("main", [("anonymousId", "A"), ("userId", "U")], now=NOW)
    [everyone] = (await storage.people_of("main", [("utk", "T")])).values()
    assert {k for k, _ in everyone} == {"anonymousId", "utk", "userId", "email"}


async def test_identity_is_per_portal(storage: Storage) -> None:
    await storage.link("main", [("anonymousId", "A"), ("email", "e@x.co")], now=NOW)
    assert await storage.people_of("other", [("anonymousId", "A")]) == {}


async def test_held_items_are_released_by_their_keys(storage: Storage) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    await storage.hold([items[0].id], until=NOW + 99, now=NOW, keys=[("anonymousId", "A")])
    await storage.hold([items[1].id], until=NOW + 99, now=NOW, keys=[("anonymousId", "B")])
    released = await storage.release_for("main", [("anonymousId", "A")], now=NOW + 5)
    assert [i.id for i in released] == [items[0].id]
    assert released[0].event.message_id == "a"
    assert await storage.release_for("main", [("anonymousId", "A")], now=NOW + 6) == []
    [again] = await storage.lease("main", "conversions", limit=5, now=NOW + 5, lease_s=30)
    assert again.id == items[0].id


KNOWN = [[("anonymousId", "A"), ("email", "e@x.co")], [("userId", "U"), ("utk", "T")]]
TAUGHT = [
    [("userId", "U"), ("email", "e@x.co")],
    [("anonymousId", "N"), ("email", "n@x.co")],
    [("anonymousId", "N"), ("utk", "T2")],
]
WAITING = ["A", "U", "N", "Z"]
"""The identifiers the held items of ``_graph_with_held_items`` wait on (``Z`` stays unknown)."""


async def _graph_with_held_items(storage: Storage, portal: str) -> dict[str, int]:
    """A portal's graph with two people and an item held on each of ``WAITING``."""
    for keys in KNOWN:
        await storage.link(portal, keys, now=NOW)
    events = [event(f"{portal}-{k}", portal=portal) for k in WAITING]
    await storage.append(events, now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease(portal, "conversions", limit=9, now=NOW, lease_s=30)
    held: dict[str, int] = {}
    for item, waits_on in zip(items, WAITING, strict=True):
        kind = "userId" if waits_on == "U" else "anonymousId"
        await storage.hold([item.id], until=NOW + 99, now=NOW, keys=[(kind, waits_on)])
        held[waits_on] = item.id
    return held


def _people(people: dict[tuple[str, str], list[tuple[str, str]]]) -> set[frozenset[object]]:
    return {frozenset(person) for person in people.values()}


async def test_learning_a_request_links_and_releases_as_the_separate_calls_do(
    storage: Storage,
) -> None:
    """``learn`` on one portal, ``link`` + ``people_of`` + ``release_for`` on another: the
    same people and the same released items."""
    held = await _graph_with_held_items(storage, "main")
    others = await _graph_with_held_items(storage, "other")
    released = await storage.learn("main", TAUGHT, now=NOW + 5)
    for keys in TAUGHT:
        await storage.link("other", keys, now=NOW + 5)
    people = await storage.people_of("other", [keys[0] for keys in TAUGHT])
    everyone = list(dict.fromkeys(k for person in people.values() for k in person))
    expected = await storage.release_for("other", everyone, now=NOW + 5)
    every_key = [k for keys in KNOWN + TAUGHT for k in keys]
    assert _people(await storage.people_of("main", every_key)) == _people(
        await storage.people_of("other", every_key)
    )
    assert [i.id for i in released] == [held[k] for k in ("A", "U", "N")]
    assert [i.id for i in expected] == [others[k] for k in ("A", "U", "N")]
    assert [i.event.message_id for i in released] == ["main-A", "main-U", "main-N"]


async def test_learning_merges_people_joined_by_a_later_group(storage: Storage) -> None:
    await storage.learn(
        "main",
        [[("anonymousId", "A"), ("email", "a@x.co")], [("anonymousId", "B"), ("userId", "U")]],
        now=NOW,
    )
    await storage.learn("main", [[("userId", "U"), ("email", "a@x.co")]], now=NOW + 1)
    [person] = (await storage.people_of("main", [("anonymousId", "B")])).values()
    assert set(person) == {
        ("anonymousId", "A"),
        ("email", "a@x.co"),
        ("anonymousId", "B"),
        ("userId", "U"),
    }


async def test_learning_again_releases_nothing_twice(storage: Storage) -> None:
    await _graph_with_held_items(storage, "main")
    assert len(await storage.learn("main", TAUGHT, now=NOW + 5)) == 3
    assert await storage.learn("main", TAUGHT, now=NOW + 6) == []
    assert await storage.learn("main", [], now=NOW + 6) == []


async def test_release_by_more_identifiers_than_one_redis_call_takes(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.hold([item.id], until=NOW + 99, now=NOW, keys=[("anonymousId", "A-1199")])
    keys = [("anonymousId", f"A-{i}") for i in range(1200)]  # SUNION goes in parts of 500
    [released] = await storage.release_for("main", keys, now=NOW + 1)
    assert released.id == item.id


async def test_merged_contact_ids_point_to_the_winner(storage: Storage) -> None:
    await storage.link("main", [("contactId", "1"), ("email", "old@x.co")], now=NOW)
    await storage.link("main", [("contactId", "2"), ("email", "new@x.co")], now=NOW)
    assert await storage.remap_contact("main", ["1"], "2", now=NOW) == 1
    assert (
        await storage.remap_contact("main", ["1"], "2", now=NOW) == 0
    )  # applying twice changes nothing
    [person] = (await storage.people_of("main", [("email", "old@x.co")])).values()
    assert ("contactId", "2") in person
    assert ("contactId", "1") not in person


async def test_erasure_removes_the_person_and_their_events_personal_data(storage: Storage) -> None:
    await storage.link("main", [("userId", "U"), ("email", "e@x.co")], now=NOW)
    mine = NewEvent(
        portal="main",
        message_id="mine",
        source="s",
        type="track",
        name="Bought",
        received_at=NOW,
        payload=b'{"userId":"U","event":"Bought"}',
        destinations=("conversions",),
    )
    await storage.append([mine, event("other")], now=NOW, dedup_window_s=WINDOW)
    erased = await storage.erase("main", [("email", "e@x.co")], now=NOW + 1)
    assert (erased.identifiers, erased.events, erased.items) == (2, 1, 1)
    assert await storage.people_of("main", [("userId", "U")]) == {}
    events = {e.message_id: e for e in await storage.recent_events()}
    assert b"U" not in events["mine"].payload
    assert events["other"].payload == b'{"messageId":"other"}'
    assert await storage.pending_count() == 1
    counts = await storage.counts()
    assert counts[("main", "conversions", "dropped")] == 1
    [record] = [r for r in await storage.items_in_state("dropped")]
    assert record.outcome == Outcome(Reason.ERASED)


def touch(at: float, campaign: str, **fields: str) -> Touch:
    return Touch(
        at=at,
        kind=TouchKind.UTM,
        origin=TouchOrigin.CAMPAIGN,
        message_id=f"m-{campaign}",
        event_type="page",
        name=campaign,
        click_ids=fields,
        device="A",
    )


async def test_touch_memory_keeps_the_earliest_and_the_latest_touch(storage: Storage) -> None:
    aid = ("anonymousId", "A")
    await storage.remember_touches("main", [(aid, touch(NOW, "middle"))])
    await storage.remember_touches(
        "main", [(aid, touch(NOW + 50, "newest")), (aid, touch(NOW - 50, "oldest", gclid="G"))]
    )
    await storage.remember_touches("main", [(aid, touch(NOW + 10, "between"))])
    memory = await storage.touches_of("main", [aid, ("userId", "nobody")])
    assert memory == {
        aid: TouchMemory(touch(NOW - 50, "oldest", gclid="G"), touch(NOW + 50, "newest"))
    }


async def test_of_touches_at_the_same_time_the_first_arrived_is_first_and_the_last_last(
    storage: Storage,
) -> None:
    aid = ("anonymousId", "A")
    await storage.remember_touches("main", [(aid, touch(NOW, "one")), (aid, touch(NOW, "two"))])
    await storage.remember_touches("main", [(aid, touch(NOW, "three"))])
    memory = await storage.touches_of("main", [aid])
    assert memory[aid] == TouchMemory(touch(NOW, "one"), touch(NOW, "three"))


async def test_touches_of_keys_of_several_kinds_find_each_remembered_key_once(
    storage: Storage,
) -> None:
    remembered = [("anonymousId", 'a"\\b'), ("userId", "é 💡"), ("email", "x@y.z")]
    await storage.remember_touches("main", [(k, touch(NOW, k[1])) for k in remembered])
    asked = [*remembered, ("userId", "x@y.z"), ("email", "nobody"), remembered[0]]
    memory = await storage.touches_of("main", asked)
    assert memory == {k: TouchMemory(touch(NOW, k[1]), touch(NOW, k[1])) for k in remembered}


async def test_touch_memory_is_per_portal_and_identifier(storage: Storage) -> None:
    await storage.remember_touches("main", [(("anonymousId", "A"), touch(NOW, "a"))])
    assert await storage.touches_of("other", [("anonymousId", "A")]) == {}
    assert await storage.touches_of("main", [("userId", "A")]) == {}


async def test_erasure_in_one_portal_leaves_another_portals_events_alone(
    storage: Storage,
) -> None:
    def bought(portal: str) -> NewEvent:
        payload = b'{"userId":"U","event":"Bought","portal":"%s"}' % portal.encode()
        return NewEvent(portal, f"m-{portal}", "s", "track", "Bought", NOW, payload, ("contacts",))

    for portal in ("main", "other"):
        await storage.link(portal, [("userId", "U")], now=NOW)
    await storage.append([bought("main"), bought("other")], now=NOW, dedup_window_s=WINDOW)
    erased = await storage.erase("main", [("userId", "U")], now=NOW + 1)
    events = {e.portal: e for e in await storage.recent_events()}
    assert (erased.events, erased.items) == (1, 1)
    assert b"U" not in events["main"].payload
    assert events["other"].payload == b'{"userId":"U","event":"Bought","portal":"other"}'
    assert await storage.people_of("other", [("userId", "U")]) != {}


async def test_erasure_removes_the_touch_memory_of_every_identifier_of_the_person(
    storage: Storage,
) -> None:
    keys = [("anonymousId", "A"), ("anonymousId", "B"), ("userId", "U")]
    await storage.link("main", [("anonymousId", "A"), ("userId", "U")], now=NOW)
    await storage.link("main", [("anonymousId", "B"), ("userId", "U")], now=NOW)
    await storage.remember_touches("main", [(k, touch(NOW, k[1])) for k in keys])
    await storage.remember_touches("main", [(("anonymousId", "other"), touch(NOW, "x"))])
    await storage.erase("main", [("userId", "U")], now=NOW + 1)
    assert await storage.touches_of("main", keys) == {}
    assert set(await storage.touches_of("main", [("anonymousId", "other")])) == {
        ("anonymousId", "other")
    }
