"""What delivery teaches about attribution quality: identifiers sent, holds, failures, latency.

Counts go to the process's ``QualityTally`` (no I/O here); a dead item's reason is HubSpot's
message (the outcome's ``message``), so they group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from forwarder.delivery.destinations import Drop, Hold, Ready
from forwarder.events.destinations import DestinationName
from forwarder.storage.base import StoredEvent
from forwarder.storage.outcomes import Outcome, Reason, describe
from forwarder.tallies import QualityTally, event_type, latency_bucket, reason_label

ATTRIBUTED = DestinationName.CONVERSIONS
"""The queue whose items stand for an event in holds and identifier shares (a timeline copy
of the same event would count it twice)."""
RESOLVED_KINDS = frozenset({"objectId", "email"})
"""Identifiers HubSpot ties to a contact for sure (a utk only when it knows the visitor)."""


def _why(outcome: Outcome) -> str:
    if outcome.reason is Reason.REJECTED and outcome.message:
        return outcome.message
    return describe(outcome) or outcome.reason.value


def _of(event: StoredEvent) -> tuple[str, str]:
    return event.source, event_type(event.type, event.name)


class DeliveryTally:
    """Counts one queue's outcomes; ``at`` is the worker clock's now."""

    def __init__(self, tally: QualityTally) -> None:
        self._tally = tally

    def held(self, holds: Sequence[Hold], at: float) -> None:
        for hold in holds:
            if hold.item.destination == ATTRIBUTED:
                self._tally.add(at, *_of(hold.item.event), "held")

    def dropped(self, drops: Sequence[Drop], at: float) -> None:
        for drop in drops:
            why = f"dropped:{reason_label(drop.reason)}"
            self._tally.add_many(at, *_of(drop.item.event), ("dropped", why))

    def failed(self, events: Sequence[StoredEvent], outcome: Outcome, at: float) -> None:
        """Items that ended dead (or expired while retrying: as good as dead for attribution)."""
        why = f"dead:{reason_label(_why(outcome))}"
        for event in events:
            self._tally.add_many(at, *_of(event), ("dead", why))

    def delivered(self, ready: Sequence[Ready], at: float) -> None:
        """Conversions sent: with which identifier, resolved or not, campaign, latency."""
        # Events of a batch share a few shapes (those of one ingest request their received_at
        # too): count each shape, then its latency bucket and its metrics once.
        of_each: list[tuple[str, str, str | None, str, float, bool]] = []
        for r in ready:
            kind = r.identifier
            if kind is None:
                continue
            event = r.item.event
            of_each.append(
                (event.source, event.type, event.name, kind, event.received_at, r.campaign)
            )
        received = Counter(of_each)  # counted in C: each shape hashed once, not twice
        shapes: dict[tuple[str, str, str | None, str, int, bool], int] = {}
        for (source, type_, name, kind, received_at, campaign), n in received.items():
            bucket = latency_bucket(max(0.0, (at - received_at) * 1000))
            shape = (source, type_, name, kind, bucket, campaign)
            shapes[shape] = shapes.get(shape, 0) + n
        for (source, kind_of_event, name, kind, bucket, campaign), n in shapes.items():
            of = (source, event_type(kind_of_event, name))
            metrics = ["sent", f"sent:{kind}", f"latency_le:{bucket}"]
            if kind in RESOLVED_KINDS:
                metrics.append("resolved")
            if campaign:
                metrics.append("campaign")
            for metric in metrics:
                self._tally.add(at, *of, metric, n)

    def expired(self, events: Sequence[StoredEvent], at: float) -> None:
        """Held conversions that were never identified."""
        for event in events:
            self._tally.add(at, *_of(event), "expired")
