"""Resolve: each event's identity from the event itself first, then what the graph learned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forwarder.events.payload import payload_of
from forwarder.identity.graph import Linker
from forwarder.identity.resolve import Resolver
from forwarder.storage.sqlite import SqliteStorage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "f.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_anonymous_event_is_sent_with_the_email_an_earlier_identify_taught(
    storage: SqliteStorage,
) -> None:
    identify = {"type": "identify", "anonymousId": "A", "traits": {"email": "a@x.io"}}
    await Linker(storage, lambda: 1.0)("main", [identify])
    [identity] = await Resolver("main", ("objectId", "email"), storage).identities(
        [payload_of({"type": "track", "anonymousId": "A"})]
    )
    assert (identity.kind, identity.value) == ("email", "a@x.io")


async def test_the_event_s_own_email_wins_over_the_graph_s(storage: SqliteStorage) -> None:
    await storage.link("main", [("anonymousId", "A"), ("email", "a@x.io")], now=1.0)
    event = {"type": "track", "anonymousId": "A", "context": {"traits": {"email": "b@x.io"}}}
    [identity] = await Resolver("main", ("email",), storage).identities([payload_of(event)])
    assert identity.value == "b@x.io"


async def test_graph_contact_id_comes_before_the_event_s_email_in_the_default_order(
    storage: SqliteStorage,
) -> None:
    await storage.link("main", [("userId", "u1"), ("contactId", "901")], now=1.0)
    event = {"type": "track", "userId": "u1", "properties": {"email": "u1@x.io"}}
    resolver = Resolver("main", ("objectId", "email", "utk"), storage)
    [identity] = await resolver.identities([payload_of(event)])
    assert (identity.kind, identity.value) == ("objectId", "901")


async def test_a_part_of_a_batch_resolves_with_the_whole_batch_s_graph_as_on_its_own(
    storage: SqliteStorage,
) -> None:
    """Delivery reads a batch's graph once and resolves it in parts: a part given the whole
    batch's graph and member kinds gets the identities (and notes) it gets read alone, though
    the other part's people hold kinds (utk, contactId) its own do not."""
    await storage.link("main", [("userId", "u1"), ("email", "u1@x.io")], now=1.0)
    await storage.link("main", [("userId", "u2"), ("utk", "a" * 32)], now=1.0)
    await storage.link("main", [("userId", "u3"), ("contactId", "903")], now=1.0)
    events = [
        payload_of({"type": "track", "userId": "u1", "context": {"traits": {"email": "bad"}}}),
        payload_of({"type": "track", "userId": "u9"}),
        payload_of({"type": "track", "userId": "u2"}),
        payload_of({"type": "track", "userId": "u3", "context": {"hubspotutk": "nope"}}),
    ]
    resolver = Resolver("main", ("objectId", "email", "utk"), storage)
    whole = (await resolver.people(events)).gathered()
    for start, stop in ((0, 2), (2, 4)):
        alone = await resolver.identities(events[start:stop])
        assert await resolver.identities(events[start:stop], whole.part(start, stop)) == alone
