"""Timestamps: Segment's clock-skew rule only beyond a threshold; never in the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from forwarder.events.messages import Message
from forwarder.pipeline.stamp import Stamper, iso
from forwarder.pipeline.validate import Valid

RECEIVED = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def stamp(fields: dict[str, Any], threshold_s: float = 300) -> dict[str, Any]:
    data = {"type": "track", "userId": "u", "event": "E", **fields}
    event = Valid(0, msgspec.convert(data, Message), data)  # type: ignore[arg-type]
    Stamper(threshold_s)(event, RECEIVED, iso(RECEIVED))
    return data


def test_transit_time_does_not_shift_the_timestamp() -> None:
    original = RECEIVED - timedelta(seconds=5)
    data = stamp({"timestamp": iso(original), "sentAt": iso(RECEIVED - timedelta(seconds=2))})
    assert data["timestamp"] == iso(original)
    assert data["originalTimestamp"] == iso(original)
    assert data["receivedAt"] == iso(RECEIVED)


def test_device_clock_far_off_is_corrected_by_the_skew() -> None:
    # The device clock runs one hour behind: it says it sent at 11:00 what we got at 12:00.
    device_now = RECEIVED - timedelta(hours=1)
    data = stamp({"timestamp": iso(device_now - timedelta(minutes=3)), "sentAt": iso(device_now)})
    assert data["timestamp"] == iso(RECEIVED - timedelta(minutes=3))
    assert data["originalTimestamp"] == iso(device_now - timedelta(minutes=3))


def test_timestamp_in_the_future_is_clamped_to_received_at() -> None:
    data = stamp({"timestamp": iso(RECEIVED + timedelta(days=2))})
    assert data["timestamp"] == iso(RECEIVED)


def test_missing_timestamp_is_the_received_time_and_message_id_is_assigned() -> None:
    data = stamp({})
    assert data["timestamp"] == iso(RECEIVED)
    assert len(data["messageId"]) == 36


def test_historical_timestamp_without_sent_at_is_kept() -> None:
    old = RECEIVED - timedelta(days=30)
    assert stamp({"timestamp": iso(old)})["timestamp"] == iso(old)


def test_fingerprint_ids_are_equal_for_equal_content() -> None:
    def fingerprinted() -> str:
        data = {"type": "track", "userId": "u", "event": "E", "timestamp": iso(RECEIVED)}
        event = Valid(0, msgspec.convert(data, Message), data)  # type: ignore[arg-type]
        assert Stamper(300, fingerprints=True)(event, RECEIVED, iso(RECEIVED))
        return str(data["messageId"])

    assert fingerprinted() == fingerprinted()
    assert fingerprinted().startswith("fp-")
