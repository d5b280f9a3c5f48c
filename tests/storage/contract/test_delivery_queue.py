"""DeliveryQueue: leases, final states, retries, holds, requeues and queue depth."""

from __future__ import annotations

import msgspec

from forwarder.storage.base import Storage
from forwarder.storage.outcomes import Outcome, Reason
from tests.storage.contract.builders import NOW, WINDOW, event

BUSY = Outcome(Reason.RETRYING, "503")


async def test_lease_takes_ready_items_oldest_first_and_hides_them(storage: Storage) -> None:
    await storage.append([event(str(i)) for i in range(5)], now=NOW, dedup_window_s=WINDOW)
    leased = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
    assert [i.event.message_id for i in leased] == ["0", "1", "2"]
    rest = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
    assert [i.event.message_id for i in rest] == ["3", "4"]
    assert await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30) == []


async def test_expired_lease_is_taken_again(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [first] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    [again] = await storage.lease("main", "conversions", limit=1, now=NOW + 31, lease_s=30)
    assert again.id == first.id


async def test_finished_items_leave_the_backlog_once(storage: Storage) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    ids = [i.id for i in items]
    await storage.finish(ids, "delivered", now=NOW + 1)
    await storage.finish(ids, "dead", now=NOW + 2)  # idempotent: the first final state stays
    assert await storage.pending_count() == 0
    assert await storage.counts() == {
        ("main", "conversions", "accepted"): 2,
        ("main", "conversions", "delivered"): 2,
    }


async def test_a_finish_across_queues_counts_what_each_queue_closed_once(
    storage: Storage,
) -> None:
    """Ids of several queues in one finish, some of them closed already: each queue's tally
    moves by the items it closed, the first id's queue included."""
    await storage.append(
        [event("a", destinations=("conversions", "timeline")), event("b"), event("c")],
        now=NOW,
        dedup_window_s=WINDOW,
    )
    conversions = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
    [timeline] = await storage.lease("main", "timeline", limit=1, now=NOW, lease_s=30)
    await storage.finish([conversions[2].id], "dead", now=NOW + 1)
    ids = [conversions[0].id, timeline.id, conversions[1].id, conversions[2].id]
    await storage.finish(ids, "delivered", now=NOW + 2)
    assert await storage.pending_count() == 0
    assert await storage.counts() == {
        ("main", "conversions", "accepted"): 3,
        ("main", "conversions", "delivered"): 2,
        ("main", "conversions", "dead"): 1,
        ("main", "timeline", "accepted"): 1,
        ("main", "timeline", "delivered"): 1,
    }


async def test_retry_makes_items_due_later_and_counts_the_attempt(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.retry([item.id], available_at=NOW + 60, now=NOW, outcome=BUSY)
    assert await storage.lease("main", "conversions", limit=1, now=NOW + 59, lease_s=30) == []
    [again] = await storage.lease("main", "conversions", limit=1, now=NOW + 60, lease_s=30)
    assert again.attempts == 1
    assert await storage.ready_at("main", "conversions") == NOW + 90


async def test_retry_for_a_destination_failure_keeps_the_attempt_count(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.retry([item.id], available_at=NOW + 1, now=NOW, outcome=BUSY, count_attempt=False)
    [again] = await storage.lease("main", "conversions", limit=1, now=NOW + 1, lease_s=30)
    assert again.attempts == 0
    assert again.id == item.id


async def test_held_items_wait_for_release(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    aid = ("anonymousId", "A")
    waiting = Outcome(Reason.AWAITING_IDENTITY, notes=("no identity",))
    await storage.hold([item.id], until=NOW + 1000, now=NOW, outcome=waiting, keys=[aid])
    assert await storage.lease("main", "conversions", limit=1, now=NOW + 2000, lease_s=30) == []
    [held] = await storage.items_in_state("held")
    assert held.outcome == waiting
    await storage.release_for("main", [aid], now=NOW + 5)
    [released] = await storage.lease("main", "conversions", limit=1, now=NOW + 5, lease_s=30)
    assert released.id == item.id
    assert await storage.pending_count() == 1


async def test_queues_are_separate_per_portal_and_destination(storage: Storage) -> None:
    await storage.append(
        [event("a", destinations=("conversions", "timeline")), event("b", portal="other")],
        now=NOW,
        dedup_window_s=WINDOW,
    )
    timeline = await storage.lease("main", "timeline", limit=10, now=NOW, lease_s=30)
    assert [i.event.message_id for i in timeline] == ["a"]
    other = await storage.lease("other", "conversions", limit=10, now=NOW, lease_s=30)
    assert [i.event.message_id for i in other] == ["b"]
    assert await storage.queue_depth("main", "conversions", now=NOW + 5) == (1, 5.0)


async def test_dead_letters_can_be_requeued(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.finish([item.id], "dead", now=NOW, outcome=Outcome(Reason.REJECTED, "400"))
    assert await storage.requeue([item.id], state="dead", now=NOW + 1) == 1
    assert await storage.requeue([item.id], state="dead", now=NOW + 1) == 0
    assert await storage.pending_count() == 1
    [again] = await storage.lease("main", "conversions", limit=1, now=NOW + 1, lease_s=30)
    assert again.id == item.id
    counts = await storage.counts()
    assert counts.get(("main", "conversions", "dead"), 0) == 0


async def test_expedite_makes_backed_off_items_due_now(storage: Storage) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    await storage.retry([items[0].id], available_at=NOW + 300, now=NOW, outcome=BUSY)
    assert await storage.expedite("main", "conversions", now=NOW + 1) == 1
    [due] = await storage.lease("main", "conversions", limit=5, now=NOW + 1, lease_s=30)
    assert due.id == items[0].id
    assert await storage.expedite("main", "conversions", now=NOW + 2) == 0


async def test_queue_depth_counts_pending_and_leased_items_and_ages_the_oldest(
    storage: Storage,
) -> None:
    events = [event(str(i), received_at=NOW + 10 * i) for i in range(4)]
    await storage.append(events, now=NOW + 30, dedup_window_s=WINDOW)
    [first, second] = await storage.lease("main", "conversions", limit=2, now=NOW + 30, lease_s=30)
    await storage.finish([first.id], "delivered", now=NOW + 30)
    await storage.hold([second.id], until=NOW + 999, now=NOW + 30)
    # Left: "2" (received at NOW + 20) and "3", both pending; the held "1" does not wait to be sent.
    assert await storage.queue_depth("main", "conversions", now=NOW + 50) == (2, 30.0)
    await storage.lease("main", "conversions", limit=1, now=NOW + 50, lease_s=30)
    assert await storage.queue_depth("main", "conversions", now=NOW + 60) == (2, 40.0)


async def test_a_drained_queue_has_no_depth_and_no_age(storage: Storage) -> None:
    assert await storage.queue_depth("main", "conversions", now=NOW) == (0, 0.0)
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.finish([item.id], "delivered", now=NOW + 1)
    assert await storage.queue_depth("main", "conversions", now=NOW + 9) == (0, 0.0)


async def test_outcomes_are_kept_field_by_field(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    refused = Outcome(Reason.REJECTED, "400: bad property", "VALIDATION_ERROR", "c-1")
    await storage.finish([item.id], "dead", now=NOW, outcome=refused)
    [record] = await storage.items_in_state("dead")
    assert record.outcome == refused
    assert (record.outcome.message, record.outcome.category) == (
        "400: bad property",
        "VALIDATION_ERROR",
    )


async def test_a_replayed_dead_letter_says_it_was_replayed(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.finish([item.id], "dead", now=NOW, outcome=Outcome(Reason.REJECTED, "400"))
    await storage.requeue([item.id], state="dead", now=NOW + 1)
    [record] = await storage.items_of(item.event.seq)
    assert (record.state, record.outcome) == ("pending", Outcome(Reason.REPLAYED))


async def test_a_fresh_item_has_no_outcome_and_a_retried_one_keeps_why(storage: Storage) -> None:
    await storage.append([event("a")], now=NOW, dedup_window_s=WINDOW)
    [fresh] = await storage.items_of(1)
    [item] = await storage.lease("main", "conversions", limit=1, now=NOW, lease_s=30)
    await storage.retry([item.id], available_at=NOW + 60, now=NOW, outcome=BUSY)
    [retried] = await storage.items_of(item.event.seq)
    assert (fresh.outcome, retried.outcome) == (None, BUSY)


async def test_items_dropped_at_append_keep_the_policy_words(storage: Storage) -> None:
    dropped = msgspec.structs.replace(event("a"), dropped=(("timeline", "no template"),))
    await storage.append([dropped], now=NOW, dedup_window_s=WINDOW)
    [record] = await storage.items_in_state("dropped")
    assert record.outcome == Outcome(Reason.POLICY, "no template")


async def test_an_item_retried_out_of_a_batch_is_due_at_its_retry_not_at_the_lease_end(
    storage: Storage,
) -> None:
    """Retrying part of a leased batch frees those items from its lease (the rest stays
    leased): they are due again when the retry says, however long the lease still runs."""
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    a, b = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=300)
    await storage.retry([a.id], available_at=NOW + 5, now=NOW + 1, outcome=BUSY)
    assert await storage.lease("main", "conversions", limit=5, now=NOW + 4, lease_s=30) == []
    [again] = await storage.lease("main", "conversions", limit=5, now=NOW + 5, lease_s=30)
    assert again.id == a.id
    assert sorted(i.id for i in await storage.items_in_state("leased")) == [a.id, b.id]


async def test_an_item_released_from_hold_while_its_batch_is_in_flight_is_due_at_once(
    storage: Storage,
) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    a, b = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=300)
    aid = ("anonymousId", "A")
    waiting = Outcome(Reason.AWAITING_IDENTITY, notes=("no identity",))
    await storage.hold([a.id], until=NOW + 1000, now=NOW, outcome=waiting, keys=[aid])
    await storage.release_for("main", [aid], now=NOW + 1)
    [released] = await storage.lease("main", "conversions", limit=5, now=NOW + 1, lease_s=30)
    assert released.id == a.id
    await storage.finish([b.id], "delivered", now=NOW + 2)
    assert [i.id for i in await storage.items_in_state("leased")] == [a.id]
    assert await storage.pending_count() == 1


async def test_the_unfinished_rest_of_a_batch_stays_leased_until_its_lease_ends(
    storage: Storage,
) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    a, b = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    await storage.finish([a.id], "delivered", now=NOW + 1)
    assert await storage.lease("main", "conversions", limit=5, now=NOW + 29, lease_s=30) == []
    assert await storage.ready_at("main", "conversions") == NOW + 30
    [again] = await storage.lease("main", "conversions", limit=5, now=NOW + 30, lease_s=30)
    assert again.id == b.id


async def test_an_expired_lease_bigger_than_the_next_batch_comes_back_over_several(
    storage: Storage,
) -> None:
    """A crashed worker's lease of three comes back first, two then one, before newer items;
    what did not fit stays out of reach of the pending items' lease until it is taken."""
    await storage.append([event(str(i)) for i in range(3)], now=NOW, dedup_window_s=WINDOW)
    crashed = await storage.lease("main", "conversions", limit=3, now=NOW, lease_s=30)
    await storage.append([event("new")], now=NOW + 10, dedup_window_s=WINDOW)
    first = await storage.lease("main", "conversions", limit=2, now=NOW + 31, lease_s=30)
    second = await storage.lease("main", "conversions", limit=2, now=NOW + 31, lease_s=30)
    assert [i.id for i in first + second[:1]] == [i.id for i in crashed]
    assert [i.event.message_id for i in second] == ["2", "new"]
    assert await storage.lease("main", "conversions", limit=2, now=NOW + 31, lease_s=30) == []
