"""Stamp: give each valid event its ``messageId``, ``receivedAt`` and corrected ``timestamp``.

Segment's rule corrects a device clock that is off: ``timestamp = receivedAt - (sentAt -
originalTimestamp)``. Applied naively it also shifts every event by its transit time, so the
correction is made only when ``sentAt`` and ``receivedAt`` disagree by more than a threshold
(a wrong clock), never for ordinary network delay. Times in the future are clamped to
``receivedAt``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from forwarder.pipeline.validate import Valid

_FINGERPRINT_SKIP = frozenset({"messageId", "sentAt", "receivedAt", "writeKey"})


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as Segment writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def fingerprint(data: dict[str, Any]) -> str:
    """A content hash of the event (without transport fields) for fingerprint dedup."""
    body = {k: v for k, v in data.items() if k not in _FINGERPRINT_SKIP}
    digest = hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()
    return f"fp-{digest[:32]}"


class Stamper:
    """Decides the skew threshold once; ``__call__`` stamps one event in place."""

    def __init__(self, skew_threshold_s: float, *, fingerprints: bool = False) -> None:
        self._threshold = timedelta(seconds=skew_threshold_s)
        self._fingerprints = fingerprints

    def __call__(self, event: Valid, received_at: datetime) -> bool:
        """Stamp ``event.data``; returns True when the messageId is a content fingerprint."""
        data, msg = event.data, event.message
        data.pop("writeKey", None)
        fingerprinted = False
        if msg.message_id is None:
            fingerprinted = self._fingerprints
            data["messageId"] = fingerprint(data) if fingerprinted else str(uuid.uuid4())
        original = _aware(msg.original_timestamp or msg.timestamp or received_at)
        timestamp = original
        if msg.sent_at is not None:
            skew = _aware(msg.sent_at) - received_at
            if abs(skew) > self._threshold:
                timestamp = original - skew
        timestamp = min(timestamp, received_at)
        data["originalTimestamp"] = iso(original)
        data["timestamp"] = iso(timestamp)
        data["receivedAt"] = iso(received_at)
        if msg.sent_at is not None:
            data["sentAt"] = iso(_aware(msg.sent_at))
        return fingerprinted
