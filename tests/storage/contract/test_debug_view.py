"""DebugView: attempts read back per item, counts that conserve across purges."""

from __future__ import annotations

from forwarder.storage.base import Storage
from forwarder.storage.outcomes import Reason
from tests.storage.contract.builders import NOW, WINDOW, event


async def test_attempts_are_kept_per_item(storage: Storage) -> None:
    from forwarder.storage.base import Attempt

    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    attempt = Attempt(
        item_ids=tuple(i.id for i in items),
        at=NOW,
        route="/events/v3/send/batch",
        status=503,
        duration_ms=12.5,
        correlation_id="c-1",
        error="unavailable",
        reason=Reason.RETRYING,
        category="UNAVAILABLE",
    )
    await storage.record_attempts([attempt])
    assert await storage.attempts_of([items[1].id]) == [attempt]


async def test_each_item_reads_back_every_attempt_of_the_batches_it_was_in(
    storage: Storage,
) -> None:
    from forwarder.storage.base import Attempt

    events = [event(f"m{i}") for i in range(3)]
    await storage.append(events, now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
    ids = tuple(i.id for i in items)
    failed = Attempt(ids, NOW, "/r", 503, 1.0, "c-1", "down", Reason.RETRYING, "UNAVAILABLE")
    sent = Attempt(ids[:2], NOW + 1, "/r", 204, 2.0, "c-2", None, Reason.DELIVERED, None)
    await storage.record_attempts([failed])
    await storage.record_attempts([sent])
    assert await storage.attempts_of([ids[0]]) == [failed, sent]
    assert await storage.attempts_of([ids[2]]) == [failed]
    assert await storage.attempts_of(list(ids)) == [failed, sent]


async def test_counts_conserve_across_purges(storage: Storage) -> None:
    await storage.append([event(str(i)) for i in range(4)], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
    await storage.finish([items[0].id], "delivered", now=NOW)
    await storage.finish([items[1].id], "dead", now=NOW)
    await storage.purge(dedup_before=NOW + 1, events_before=NOW + 1)
    counts = await storage.counts()
    assert counts[("main", "conversions", "accepted")] == 4
    assert counts[("main", "conversions", "delivered")] == 1
    assert counts[("main", "conversions", "dead")] == 1
    assert counts[("main", "conversions", "leased")] == 1
    assert counts[("main", "conversions", "pending")] == 1
