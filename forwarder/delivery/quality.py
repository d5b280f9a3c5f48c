"""What delivery teaches about attribution quality: identifiers sent, holds, failures, latency.

Counts go to the process's ``QualityTally`` (no I/O here); a dead item's reason is HubSpot's
message (the outcome's ``message``), so they group.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence

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
        if not ready:
            return
        # Per event only one shape tuple and one received_at; what follows is per shape.
        # The events of a batch share a few shapes (most often one, checked in C by
        # ``list.count``), but hardly ever a received_at when they were ingested one by one:
        # latencies are bucketed per event (source, type, name) from the sorted times.
        shapes = [
            (r.item.event.source, r.item.event.type, r.item.event.name, r.identifier, r.campaign)
            for r in ready
        ]
        received = [r.item.event.received_at for r in ready]
        counted = (
            {shapes[0]: len(shapes)} if shapes.count(shapes[0]) == len(shapes) else Counter(shapes)
        )
        for (source, kind_of_event, name, kind, campaign), n in counted.items():
            if kind is None:  # not a conversion (a timeline copy of an event)
                continue
            metrics = ["sent", f"sent:{kind}"]
            if kind in RESOLVED_KINDS:
                metrics.append("resolved")
            if campaign:
                metrics.append("campaign")
            for metric in metrics:
                self._tally.add(at, source, event_type(kind_of_event, name), metric, n)
        for (source, kind_of_event, name), times in _times_by_event(counted, shapes, received):
            of = (source, event_type(kind_of_event, name))
            for bucket, n in _latency_counts(times, at):
                self._tally.add(at, *of, f"latency_le:{bucket}", n)

    def expired(self, events: Sequence[StoredEvent], at: float) -> None:
        """Held conversions that were never identified."""
        for event in events:
            self._tally.add(at, *_of(event), "expired")


EventOf = tuple[str, str, str | None]
"""(source, type, name) of a sent event: what its latency is counted by."""
Shape = tuple[str, str, str | None, str | None, bool]
"""(source, type, name, identifier kind, campaign) of a sent event."""


def _times_by_event(
    counted: Mapping[Shape, int], shapes: list[Shape], received: list[float]
) -> list[tuple[EventOf, list[float]]]:
    """The received_at of the conversions among ``shapes``, by (source, type, name)."""
    events = {shape[:3] for shape in counted if shape[3] is not None}
    if not events:  # no conversion among them (a timeline batch)
        return []
    if len(events) == 1 and all(shape[3] is not None for shape in counted):
        return [(events.pop(), received)]  # the common case: one kind of event
    times: dict[EventOf, list[float]] = {}
    for shape, received_at in zip(shapes, received, strict=True):
        if shape[3] is not None:
            times.setdefault(shape[:3], []).append(received_at)
    return list(times.items())


def _latency_counts(times: list[float], at: float) -> list[tuple[int, int]]:
    """How many of ``times`` fall in each latency bucket at ``at`` (buckets with none left
    out): each bucket's end found by bisection in the sorted times, not each time bucketed
    (a batch's times mostly fall in one or two buckets: a few dozen look-ups per batch).

    Exact: ``latency_bucket`` of the latency computed as for one event only grows as
    received_at falls, so it is the key of a bisection over the times, newest first."""

    def bucket_of(received_at: float) -> int:
        return latency_bucket(max(0.0, (at - received_at) * 1000))

    newest_first = sorted(times, reverse=True)
    counts: list[tuple[int, int]] = []
    start = 0
    while start < len(newest_first):
        bucket = bucket_of(newest_first[start])
        end = bisect_right(newest_first, bucket, lo=start, key=bucket_of)
        counts.append((bucket, end - start))
        start = end
    return counts
