"""Delivery's quality tally: what a delivered batch counts, and what it keeps alive meanwhile."""

from __future__ import annotations

import gc

from forwarder.delivery.destinations import Drop, Hold, Ready
from forwarder.delivery.mapping import Conversion
from forwarder.hubspot.models import EventCompletion
from forwarder.identity.choice import Identity
from forwarder.storage.base import Item, StoredEvent

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
