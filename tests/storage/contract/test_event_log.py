"""EventLog: durable appends, dedup by messageId, the backlog count, purges."""

from __future__ import annotations

from forwarder.storage.base import Accepted, Duplicate, NewEvent, Storage
from tests.storage.contract.builders import NOW, WINDOW, event


async def test_appended_events_are_accepted_in_order(storage: Storage) -> None:
    results = await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    assert all(isinstance(r, Accepted) for r in results)
    assert [e.message_id for e in await storage.recent_events()] == ["a", "b"]
    assert await storage.pending_count() == 2


async def test_repeated_message_id_within_window_is_a_duplicate(storage: Storage) -> None:
    [first] = await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    results = await storage.append([event("a"), event("a")], now=NOW + 10, dedup_window_s=WINDOW)
    assert isinstance(first, Accepted)
    assert results == [Duplicate(seq=first.seq), Duplicate(seq=first.seq)]
    assert len(await storage.recent_events()) == 1


async def test_same_message_id_in_one_call_is_stored_once(storage: Storage) -> None:
    results = await storage.append([event("a"), event("a")], now=NOW, dedup_window_s=WINDOW)
    assert isinstance(results[0], Accepted)
    assert isinstance(results[1], Duplicate)


async def test_message_id_after_the_window_is_accepted_again(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [again] = await storage.append([event("a")], now=NOW + WINDOW + 1, dedup_window_s=WINDOW)
    assert isinstance(again, Accepted)


async def test_dedup_is_per_portal(storage: Storage) -> None:
    results = await storage.append(
        [event("a"), event("a", portal="other")], now=NOW, dedup_window_s=WINDOW
    )
    assert all(isinstance(r, Accepted) for r in results)


async def test_dropped_destinations_are_final_at_once(storage: Storage) -> None:
    dropped = NewEvent(
        portal="main",
        message_id="d",
        source="s",
        type="track",
        name="x",
        received_at=NOW,
        payload=b"{}",
        dropped=(("conversions", "no mapping"),),
    )
    await storage.append([dropped], now=NOW, dedup_window_s=WINDOW)
    assert await storage.pending_count() == 0
    assert await storage.counts() == {
        ("main", "conversions", "accepted"): 1,
        ("main", "conversions", "dropped"): 1,
    }


async def test_events_of_one_call_keep_each_its_own_fields_items_and_drops(
    storage: Storage,
) -> None:
    """Events of every shape in one call: none is read with another's fields or items."""
    both = NewEvent(
        "main",
        "both",
        "src-a",
        "track",
        "",
        NOW,
        b'{"a":1}',
        destinations=("conversions", "timeline"),
        dropped=(("contacts", "no email"),),
    )
    only_dropped = NewEvent(
        "main", "drop", "src-b", "track", "x", NOW + 1, b"{}", dropped=(("conversions", "why"),)
    )
    plain = NewEvent(
        "other", "plain", "src-c", "identify", None, NOW + 2, b'{"c":3}', ("contacts",), test=True
    )
    results = await storage.append([both, only_dropped, plain], now=NOW, dedup_window_s=WINDOW)
    seqs = [r.seq for r in results if isinstance(r, Accepted)]
    assert len(seqs) == 3
    for seq, sent in zip(seqs, (both, only_dropped, plain), strict=True):
        stored = await storage.get_event(seq)
        assert stored is not None
        assert (stored.portal, stored.message_id, stored.source, stored.type) == (
            sent.portal,
            sent.message_id,
            sent.source,
            sent.type,
        )
        assert (stored.name, stored.payload, stored.test) == (sent.name, sent.payload, sent.test)
        items = {(i.destination, i.state) for i in await storage.items_of(seq)}
        assert items == {(d, "pending") for d in sent.destinations} | {
            (d, "dropped") for d, _ in sent.dropped
        }
    assert await storage.pending_count() == 3
    assert await storage.counts() == {
        ("main", "conversions", "accepted"): 2,
        ("main", "conversions", "pending"): 1,
        ("main", "conversions", "dropped"): 1,
        ("main", "timeline", "accepted"): 1,
        ("main", "timeline", "pending"): 1,
        ("main", "contacts", "accepted"): 1,
        ("main", "contacts", "dropped"): 1,
        ("other", "contacts", "accepted"): 1,
        ("other", "contacts", "pending"): 1,
    }


async def test_purge_forgets_old_dedup_keys_and_finished_events(storage: Storage) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    [item, _] = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    await storage.finish([item.id], "delivered", now=NOW)
    await storage.purge(dedup_before=NOW + 1, events_before=NOW + 1)
    assert [e.message_id for e in await storage.recent_events()] == ["b"]
    [again] = await storage.append([event("a")], now=NOW + 2, dedup_window_s=WINDOW)
    assert isinstance(again, Accepted)


async def test_concurrent_appends_are_all_durable(storage: Storage) -> None:
    import asyncio

    batches = [[event(f"{b}-{i}") for i in range(20)] for b in range(50)]
    await asyncio.gather(
        *(storage.append(batch, now=NOW, dedup_window_s=WINDOW) for batch in batches)
    )
    assert len(await storage.recent_events(limit=5000)) == 1000
    assert await storage.pending_count() == 1000
