"""Stamp: give each valid event its ``messageId``, ``receivedAt`` and corrected ``timestamp``.

Segment's rule corrects a device clock that is off: ``timestamp = receivedAt - (sentAt -
originalTimestamp)``. Applied naively it also shifts every event by its transit time, so the
correction is made only when ``sentAt`` and ``receivedAt`` disagree by more than a threshold
(a wrong clock), never for ordinary network delay. Times in the future are clamped to
``receivedAt``.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from forwarder.pipeline.validate import Valid

_FINGERPRINT_SKIP = frozenset({"messageId", "sentAt", "receivedAt", "writeKey"})


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as Segment writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_random = random.SystemRandom().getrandbits(64)
_rng = random.Random(_random)


def new_message_id() -> str:
    """A random UUIDv4 string for events sent without a messageId.

    Drawn from a PRNG seeded once from the OS: uniqueness, not secrecy, is what a messageId
    needs, and ``uuid.uuid4`` (one ``getrandom`` syscall each) showed as the costliest call of
    batch ingest.
    """
    n = _rng.getrandbits(128)
    n = (n & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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

    def __call__(self, event: Valid, received_at: datetime, received_iso: str) -> bool:
        """Stamp ``event.data``; returns True when the messageId is a content fingerprint.

        ``received_iso`` is ``iso(received_at)``, formatted once per request.
        """
        data, msg = event.data, event.message
        data.pop("writeKey", None)
        fingerprinted = False
        if msg.message_id is None:
            fingerprinted = self._fingerprints
            data["messageId"] = fingerprint(data) if fingerprinted else new_message_id()
        data["receivedAt"] = received_iso
        given = msg.original_timestamp or msg.timestamp
        if given is None and msg.sent_at is None:
            data["originalTimestamp"] = data["timestamp"] = received_iso
            return fingerprinted
        original = _aware(given) if given is not None else received_at
        timestamp = original
        if msg.sent_at is not None:
            skew = _aware(msg.sent_at) - received_at
            if abs(skew) > self._threshold:
                timestamp = original - skew
            data["sentAt"] = iso(_aware(msg.sent_at))
        timestamp = min(timestamp, received_at)
        data["originalTimestamp"] = received_iso if given is None else iso(original)
        data["timestamp"] = received_iso if timestamp == received_at else iso(timestamp)
        return fingerprinted
