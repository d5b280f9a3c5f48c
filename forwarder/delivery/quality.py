"""What delivery teaches about attribution quality: identifiers sent, holds, failures, latency.

Counts go to the process's ``QualityTally`` (no I/O here); a dead item's reason is HubSpot's
message (the outcome's ``message``), so they group.
"""

from __future__ import annotations

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
        for r in ready:
            kind = r.identifier
            if kind is None:
                continue
            event = r.item.event
            latency_ms = max(0.0, (at - event.received_at) * 1000)
            metrics = ["sent", f"sent:{kind}", f"latency_le:{latency_bucket(latency_ms)}"]
            if kind in RESOLVED_KINDS:
                metrics.append("resolved")
            if r.campaign:
                metrics.append("campaign")
            self._tally.add_many(at, *_of(event), metrics)

    def expired(self, events: Sequence[StoredEvent], at: float) -> None:
        """Held conversions that were never identified."""
        for event in events:
            self._tally.add(at, *_of(event), "expired")
