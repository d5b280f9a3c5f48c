"""The graph, taught: links from accepted events, merges and deletions from HubSpot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forwarder.identity.graph import ContactChanges, Linker
from forwarder.storage.sqlite import SqliteStorage

EMAIL = ("email", "a@x.io")


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "f.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_identify_joins_the_anonymous_visitor_and_the_email(storage: SqliteStorage) -> None:
    released: list[tuple[str, tuple[str, ...]]] = []
    link = Linker(storage, lambda: 1.0, lambda portal, kinds: released.append((portal, kinds)))
    identify = {"type": "identify", "anonymousId": "A", "traits": {"email": "A@x.io"}}
    assert await link("main", [identify, {"type": "track", "anonymousId": "B"}]) == []
    [person] = (await storage.people_of("main", [("anonymousId", "A")])).values()
    assert EMAIL in person
    assert released == []  # nothing was held


async def test_merge_remaps_a_replaced_primary_to_the_new_contact(storage: SqliteStorage) -> None:
    await storage.link("main", [("contactId", "11"), EMAIL], now=1.0)
    await ContactChanges(storage).merged("main", primary=11, merged=[], new=22, now=2.0)
    [person] = (await storage.people_of("main", [EMAIL])).values()
    assert ("contactId", "22") in person
    assert ("contactId", "11") not in person


async def test_merge_without_a_winner_changes_nothing(storage: SqliteStorage) -> None:
    await storage.link("main", [("contactId", "11"), EMAIL], now=1.0)
    await ContactChanges(storage).merged("main", primary=None, merged=[11], new=None, now=2.0)
    [person] = (await storage.people_of("main", [EMAIL])).values()
    assert ("contactId", "11") in person


async def test_deletion_erases_the_person_holding_the_contact_id(storage: SqliteStorage) -> None:
    await storage.link("main", [("contactId", "11"), EMAIL], now=1.0)
    await ContactChanges(storage).deleted("main", 11, now=2.0)
    assert await storage.people_of("main", [EMAIL]) == {}


async def test_a_link_repeated_by_the_events_of_a_request_is_given_to_the_store_once(
    storage: SqliteStorage,
) -> None:
    """A batch from one device asserts its user's link in each event: the store gets it once."""
    asked: list[list[list[tuple[str, str]]]] = []
    learn_soon = storage.learn_soon

    def counting(portal: str, groups: list[list[tuple[str, str]]], *, now: float) -> object:
        asked.append([list(g) for g in groups])
        return learn_soon(portal, groups, now=now)

    storage.learn_soon = counting  # type: ignore[method-assign]
    event = {"type": "track", "userId": "u1", "context": {"traits": {"email": "A@x.io"}}}
    other = {"type": "track", "userId": "u2", "context": {"traits": {"email": "b@x.io"}}}
    await Linker(storage, lambda: 1.0)("main", [event, event, event, other, other])
    assert asked == [[[("userId", "u1"), EMAIL], [("userId", "u2"), ("email", "b@x.io")]]]
    [person] = (await storage.people_of("main", [("userId", "u1")])).values()
    assert EMAIL in person
