"""A leased item's event (read by the lease with the item's attempts and the event's ``test``
flag packed in one column) is the event ``get_event`` reads, whatever its fields."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.storage.base import NewEvent, StoredEvent
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


async def _leased_and_stored(
    db: Path, events: list[NewEvent], retries: int
) -> tuple[list[StoredEvent], list[StoredEvent | None], list[int]]:
    storage = SqliteStorage(db)
    await storage.open()
    try:
        await storage.append(events, now=NOW, dedup_window_s=60)
        for _ in range(retries):
            batch = await storage.lease("main", "conversions", limit=100, now=NOW, lease_s=30)
            await storage.retry([i.id for i in batch], available_at=NOW, now=NOW)
        leased = await storage.lease("main", "conversions", limit=100, now=NOW, lease_s=30)
        stored = [await storage.get_event(i.event.seq) for i in leased]
    finally:
        await storage.close()
    return [i.event for i in leased], stored, [i.attempts for i in leased]


@settings(max_examples=40, deadline=None)
@given(events=EVENTS, retries=st.integers(0, 3))
def test_a_leased_event_is_the_stored_event_and_its_attempts_are_counted(
    events: list[NewEvent], retries: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        leased, stored, attempts = asyncio.run(
            _leased_and_stored(Path(tmp) / "f.db", events, retries)
        )
    assert leased == stored
    assert attempts == [retries] * len(events)
    assert sorted(e.message_id for e in leased) == sorted(e.message_id for e in events)
