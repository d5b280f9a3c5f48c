"""Lifecycle: what a store keeps across close and reopen."""

from __future__ import annotations

from forwarder.storage.base import Duplicate
from tests.storage.contract.builders import NOW, WINDOW, Factory, event


async def test_events_survive_close_and_reopen(factory: Factory) -> None:
    first = factory()
    await first.open()
    await first.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    await first.close()
    second = factory()
    await second.open()
    assert [e.message_id for e in await second.recent_events()] == ["a", "b"]
    assert await second.pending_count() == 2
    [dup] = await second.append([event("a")], now=NOW + 1, dedup_window_s=WINDOW)
    assert isinstance(dup, Duplicate)
    await second.close()
