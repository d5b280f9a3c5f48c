"""Delivery's quality tally: what a delivered batch counts, and what it keeps alive meanwhile."""

from __future__ import annotations

import gc

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.delivery.destinations import Drop, Hold, Ready
from forwarder.delivery.mapping import Conversion
from forwarder.delivery.quality import DeliveryTally
from forwarder.hubspot.models import EventCompletion
from forwarder.identity.choice import Identity
from forwarder.storage.base import Item, StoredEvent
from forwarder.tallies import LATENCY_BOUNDS_MS, Key, QualityTally, event_type, latency_bucket

AT = 1_800_000_000.0


def ready(n: int, *, received_at: float, identifier: str | None = "email") -> Ready:
    event = StoredEvent(
        seq=n,
        portal="main",
        message_id=f"m-{n}",
        source=("backend", "web")[n % 2],
        type=("track", "page")[n % 3 == 0],
        name="Order Completed",
        received_at=received_at,
        payload=b"{}",
        test=False,
    )
    item = Item(id=n, portal="main", destination="conversions", attempts=0, event=event)
    input_ = EventCompletion(event_name="pe1_order_completed", properties={}, uuid=f"u-{n}")
    return Ready(item, input_, f"u-{n}", identifier=identifier, campaign=n % 4 == 0)


def test_latency_bucket_is_the_first_bound_at_or_above_the_latency() -> None:
    previous = 0
    for bound in LATENCY_BOUNDS_MS:
        assert latency_bucket(bound) == bound
        assert latency_bucket(previous + 0.5) == bound
        previous = bound
    assert latency_bucket(0.0) == LATENCY_BOUNDS_MS[0]
    assert latency_bucket(LATENCY_BOUNDS_MS[-1] * 10.0) == LATENCY_BOUNDS_MS[-1]
    assert latency_bucket(float("inf")) == LATENCY_BOUNDS_MS[-1]


def test_a_delivered_batch_counts_what_its_events_count_one_by_one() -> None:
    """Events grouped by shape and by ingest request (their received_at) add up to the counts
    of each event on its own, latency buckets, identifier kinds and campaigns included."""
    times = [AT - 0.1, AT - 0.1, AT - 3.0, AT - 3.0, AT - 700.0, AT - 10**6, AT + 5.0]
    batch = [ready(n, received_at=times[n % len(times)]) for n in range(60)]
    batch += [
        ready(60, received_at=AT, identifier=None),
        ready(61, received_at=AT, identifier="utk"),
    ]
    whole, one_by_one = QualityTally(), QualityTally()
    DeliveryTally(whole).delivered(batch, AT)
    for r in batch:
        DeliveryTally(one_by_one).delivered([r], AT)
    assert whole.drain() == one_by_one.drain()


def test_a_delivered_batch_is_not_tracked_by_the_garbage_collector() -> None:
    """What a batch keeps alive for a whole HubSpot request (its items, inputs, identities and
    mappings) adds nothing for every garbage collection to traverse meanwhile."""
    r = ready(1, received_at=AT)
    values = [
        r,
        r.item,
        r.input,
        Hold(r.item, ("no email",)),
        Drop(r.item, "no mapping"),
        Identity("email", "a@x.io", ("used email from traits.email",)),
        Conversion("pe1_order_completed", {"revenue": "25"}),
    ]
    assert [type(v).__name__ for v in values if gc.is_tracked(v)] == []


def counted_one_shape_at_a_time(ready: list[Ready], at: float) -> dict[Key, int]:
    """What the tally counted before it bucketed latencies from sorted times: every event's
    latency bucketed on its own."""
    tally = QualityTally()
    for r in ready:
        if r.identifier is None:
            continue
        event = r.item.event
        of = (event.source, event_type(event.type, event.name))
        bucket = latency_bucket(max(0.0, (at - event.received_at) * 1000))
        metrics = ["sent", f"sent:{r.identifier}", f"latency_le:{bucket}"]
        metrics += ["resolved"] if r.identifier in ("objectId", "email") else []
        metrics += ["campaign"] if r.campaign else []
        for metric in metrics:
            tally.add(at, *of, metric)
    return tally.drain()


def shaped(n: int, source: str, name: str | None, kind: str | None, campaign: bool) -> Ready:
    r = ready(n, received_at=AT, identifier=kind)
    event = msgspec.structs.replace(r.item.event, source=source, name=name)
    return msgspec.structs.replace(
        r, item=msgspec.structs.replace(r.item, event=event), campaign=campaign
    )


ages_s = st.one_of(
    st.sampled_from([b / 1000 for b in LATENCY_BOUNDS_MS]),  # right on a bucket's bound
    st.floats(-10.0, 2e5, allow_nan=False),  # a clock that stepped back included
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["web", "backend"]),
            st.sampled_from(["Order Completed", "Signed Up", None]),
            st.sampled_from(["email", "utk", "objectId", None]),
            st.booleans(),
            ages_s,
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_a_delivered_batch_counts_what_each_event_counts_on_its_own(
    events: list[tuple[str, str | None, str | None, bool, float]], one_shape: bool
) -> None:
    """Whatever the batch's shapes (one or many, timeline items without an identifier among
    them) and its events' ages (on a bound, negative, distinct per event), the counts are
    those of each event bucketed on its own."""
    if one_shape:
        events = [(*events[0][:4], age) for *_, age in events]
    batch = []
    for n, (source, name, kind, campaign, age_s) in enumerate(events):
        r = shaped(n, source, name, kind, campaign)
        event = msgspec.structs.replace(r.item.event, received_at=AT - age_s)
        batch.append(msgspec.structs.replace(r, item=msgspec.structs.replace(r.item, event=event)))
    tally = QualityTally()
    DeliveryTally(tally).delivered(batch, AT)
    assert tally.drain() == counted_one_shape_at_a_time(batch, AT)
