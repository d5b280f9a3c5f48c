"""The storage contract, run against every backend: a real SQLite file and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from forwarder.storage.base import (
    QUALITY_RETENTION_H,
    RATE_RETENTION_MIN,
    Accepted,
    Duplicate,
    NewEvent,
    QualityCount,
    RateCount,
    Storage,
    Touch,
    TouchKind,
    TouchMemory,
    TouchOrigin,
)
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.sqlite import SqliteStorage
from tests.storage.redis_server import REDIS_URL, redis_prefix

BUSY = Outcome(Reason.RETRYING, "503")
NOW = 1_800_000_000.0
WINDOW = 3600.0

Factory = Callable[[], Storage]


def sqlite_factory(tmp_path: Path) -> Factory:
    return lambda: SqliteStorage(tmp_path / "contract.db")


def redis_factory(prefix: str) -> Factory:
    from forwarder.storage.redis import RedisStorage

    return lambda: RedisStorage(f"{REDIS_URL}?prefix={prefix}")


@pytest.fixture(params=["sqlite", "redis"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "sqlite":
        yield sqlite_factory(tmp_path)
        return
    with redis_prefix() as prefix:  # one key prefix per test, flushed afterwards
        yield redis_factory(prefix)


@pytest.fixture
async def storage(factory: Factory) -> AsyncIterator[Storage]:
    backend = factory()
    await backend.open()
    yield backend
    await backend.close()


def event(
    message_id: str, *, portal: str = "main", destinations: tuple[str, ...] = ("conversions",)
) -> NewEvent:
    return NewEvent(
        portal=portal,
        message_id=message_id,
        source="backend",
        type="track",
        name="Order Completed",
        received_at=NOW,
        payload=b'{"messageId":"%s"}' % message_id.encode(),
        destinations=destinations,
    )


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
    waiting = Outcome(Reason.AWAITING_IDENTITY, notes=("no identity",))
    await storage.hold([item.id], until=NOW + 1000, now=NOW, outcome=waiting)
    assert await storage.lease("main", "conversions", limit=1, now=NOW + 2000, lease_s=30) == []
    [held] = await storage.items_in_state("held")
    assert held.outcome == waiting
    await storage.release_held([item.id], now=NOW + 5)
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


async def test_meta_values_persist(storage: Storage) -> None:
    assert await storage.get_meta("k") is None
    await storage.set_meta("k", b"v1")
    await storage.set_meta("k", b"v2")
    assert await storage.get_meta("k") == b"v2"


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


# -- identity graph ----------------------------------------------------------------------------


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


async def test_merged_contact_ids_point_to_the_winner(storage: Storage) -> None:
    await storage.link("main", [("contactId", "1"), ("email", "old@x.co")], now=NOW)
    await storage.link("main", [("contactId", "2"), ("email", "new@x.co")], now=NOW)
    assert await storage.remap_contact("main", ["1"], "2") == 1
    assert await storage.remap_contact("main", ["1"], "2") == 0  # applying twice changes nothing
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


async def test_expedite_makes_backed_off_items_due_now(storage: Storage) -> None:
    await storage.append([event("a"), event("b")], now=NOW, dedup_window_s=WINDOW)
    items = await storage.lease("main", "conversions", limit=2, now=NOW, lease_s=30)
    await storage.retry([items[0].id], available_at=NOW + 300, now=NOW, outcome=BUSY)
    assert await storage.expedite("main", "conversions", now=NOW + 1) == 1
    [due] = await storage.lease("main", "conversions", limit=5, now=NOW + 1, lease_s=30)
    assert due.id == items[0].id
    assert await storage.expedite("main", "conversions", now=NOW + 2) == 0


HOUR = int(NOW // 3600)


def count(metric: str, n: int, *, hour: int = HOUR, event_type: str = "Purchase") -> QualityCount:
    return QualityCount(hour, "backend", event_type, metric, n)


async def test_quality_counters_add_up_per_hour_source_type_and_metric(storage: Storage) -> None:
    await storage.add_quality([count("received", 3), count("sent:email", 2)])
    await storage.add_quality([count("received", 4), count("received", 1, hour=HOUR + 1)])
    found = await storage.quality_hours(HOUR, HOUR + 1)
    assert sorted(found, key=lambda c: (c.hour, c.metric)) == [
        count("received", 7),
        count("sent:email", 2),
        count("received", 1, hour=HOUR + 1),
    ]


async def test_quality_counters_are_read_only_for_the_hours_asked(storage: Storage) -> None:
    await storage.add_quality([count("received", 1, hour=HOUR - 5), count("received", 2)])
    assert await storage.quality_hours(HOUR, HOUR) == [count("received", 2)]


async def test_quality_counters_past_retention_are_not_returned(storage: Storage) -> None:
    old = HOUR - QUALITY_RETENTION_H - 1
    await storage.add_quality([count("received", 1, hour=old), count("received", 2)])
    assert await storage.quality_hours(old, HOUR) == [count("received", 2)]


async def test_quality_counters_are_shared_by_two_handles_on_one_store(factory: Factory) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        await one.add_quality([count("received", 1)])
        await two.add_quality([count("received", 1)])
        assert await one.quality_hours(HOUR, HOUR) == [count("received", 2)]
    finally:
        await one.close()
        await two.close()


# -- touch memory ------------------------------------------------------------------------------


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


async def test_touch_memory_is_per_portal_and_identifier(storage: Storage) -> None:
    await storage.remember_touches("main", [(("anonymousId", "A"), touch(NOW, "a"))])
    assert await storage.touches_of("other", [("anonymousId", "A")]) == {}
    assert await storage.touches_of("main", [("userId", "A")]) == {}


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


# -- quotas ----------------------------------------------------------------------------------


async def test_a_quota_is_spent_only_within_its_cap(storage: Storage) -> None:
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 2, 3) == (True, 2)
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 2, 3) == (False, 2)
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 1, 3) == (True, 3)
    # Another period, quota or portal counts from zero.
    assert await storage.spend_quota("main", "crm_daily", "2026-12-6", 1, 3) == (True, 1)
    assert await storage.spend_quota("main", "events_monthly", "2026-12-0", 3, 3) == (True, 3)
    assert await storage.spend_quota("other", "crm_daily", "2026-12-6", 3, 3) == (True, 3)


async def test_hubspot_s_count_raises_a_quota_but_never_lowers_it(storage: Storage) -> None:
    await storage.spend_quota("main", "crm_daily", "d1", 5, 100)
    assert await storage.raise_quota("main", "crm_daily", "d1", 3) == 5
    assert await storage.raise_quota("main", "crm_daily", "d1", 40) == 40
    assert await storage.spend_quota("main", "crm_daily", "d1", 61, 100) == (False, 40)


async def test_two_handles_on_one_store_share_a_quota_and_it_outlives_them(
    factory: Factory,
) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        spent = [await h.spend_quota("main", "q", "p", 1, 5) for h in (one, two) * 4]
        assert [granted for granted, _ in spent] == [True] * 5 + [False] * 3
    finally:
        await one.close()
        await two.close()
    again = factory()  # a restart
    await again.open()
    try:
        assert await again.spend_quota("main", "q", "p", 1, 5) == (False, 5)
    finally:
        await again.close()


# -- rate history ----------------------------------------------------------------------------

MINUTE = int(NOW // 60)


async def test_request_counts_add_up_per_minute_and_are_shared(factory: Factory) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        await one.add_rates([RateCount(MINUTE, "main", "/r", "ok", 2)])
        await two.add_rates(
            [
                RateCount(MINUTE, "main", "/r", "ok", 3),
                RateCount(MINUTE + 1, "main", "/r", "throttled", 1),
            ]
        )
        found = await one.rate_minutes(MINUTE, MINUTE + 1)
        assert sorted(found, key=lambda c: c.minute) == [
            RateCount(MINUTE, "main", "/r", "ok", 5),
            RateCount(MINUTE + 1, "main", "/r", "throttled", 1),
        ]
    finally:
        await one.close()
        await two.close()


async def test_request_counts_past_retention_are_not_returned(storage: Storage) -> None:
    old = MINUTE - RATE_RETENTION_MIN - 1
    await storage.add_rates(
        [RateCount(old, "main", "/r", "ok", 1), RateCount(MINUTE, "main", "/r", "ok", 1)]
    )
    assert await storage.rate_minutes(old, MINUTE) == [RateCount(MINUTE, "main", "/r", "ok", 1)]
