"""A leased item's event read from ``events.head`` (migration 13: one packed column) is the
event its columns hold, whatever its fields; an event without a head (stored before migration
13, or erased since) is read from its columns."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage

NOW = 1_800_000_000.0

EVENTS = st.lists(
    st.builds(
        NewEvent,
        portal=st.just("main"),
        message_id=st.text(min_size=1, max_size=20),
        source=st.text(max_size=10),
        type=st.sampled_from(["track", "identify", "page"]),
        name=st.none() | st.text(max_size=20),
        received_at=st.floats(NOW - 1e6, NOW, allow_nan=False),
        payload=st.binary(max_size=30),
        destinations=st.just(("conversions",)),
        test=st.booleans(),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda e: e.message_id,
)


async def _leased_and_stored(db: Path, events: list[NewEvent], drop_heads: bool) -> tuple:
    storage = SqliteStorage(db)
    await storage.open()
    try:
        await storage.append(events, now=NOW, dedup_window_s=60)
        if drop_heads:
            conn = sqlite3.connect(db)
            conn.execute("UPDATE events SET head = NULL")
            conn.commit()
            conn.close()
        leased = await storage.lease("main", "conversions", limit=100, now=NOW, lease_s=30)
        stored = [await storage.get_event(i.event.seq) for i in leased]
    finally:
        await storage.close()
    return [i.event for i in leased], stored


@settings(max_examples=40, deadline=None)
@given(events=EVENTS, drop_heads=st.booleans())
def test_a_leased_event_is_the_event_its_columns_hold(
    events: list[NewEvent], drop_heads: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        leased, stored = asyncio.run(_leased_and_stored(Path(tmp) / "f.db", events, drop_heads))
    assert leased == stored
    assert sorted(e.message_id for e in leased) == sorted(e.message_id for e in events)


async def test_an_erased_event_replayed_is_leased_erased(tmp_path: Path) -> None:
    """The erasure empties the event's head too: a lease never reads the name it had."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        event = NewEvent(
            "main", "m1", "s", "track", "Secret", NOW, b'{"email":"e@x.co"}', ("conversions",)
        )
        await storage.append([event], now=NOW, dedup_window_s=60)
        await storage.erase("main", [("email", "e@x.co")], now=NOW + 1)
        dropped = await storage.items_in_state("dropped")
        await storage.requeue([r.id for r in dropped], state="dropped", now=NOW + 2)
        leased = await storage.lease("main", "conversions", limit=10, now=NOW + 2, lease_s=30)
    finally:
        await storage.close()
    assert [(i.event.name, i.event.payload) for i in leased] == [(None, b'{"erased":true}')]
