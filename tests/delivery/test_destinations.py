"""What every destination shares: the deterministic id each input carries."""

from __future__ import annotations

import uuid

from forwarder.delivery.destinations import _NAMESPACE, StableUuids, stable_uuid
from forwarder.events.destinations import DestinationName


def test_stable_uuid_is_the_uuid5_of_portal_destination_and_message_id() -> None:
    """A retry or a replay must send the id HubSpot already saw: the standard UUIDv5, whatever
    the digits of the hash (every variant digit occurs across these ids)."""
    for n in range(200):
        message_id = f"m-{n}"
        for destination in ("", "timeline"):
            name = f"123456:{destination}:{message_id}"
            expected = str(uuid.uuid5(_NAMESPACE, name))
            assert stable_uuid(123456, message_id, destination) == expected


def test_stable_uuids_of_a_batch_are_the_uuid5_a_single_event_gets() -> None:
    """The per-batch maker (prefix hashed once) gives the same ids as ``stable_uuid``, for the
    conversions and the timeline destinations alike, unicode messageIds included."""
    for destination in ("", DestinationName.TIMELINE):
        make = StableUuids(123456, destination)
        for message_id in [f"m-{n}" for n in range(200)] + ["é-ü-日本", ""]:
            name = f"123456:{destination}:{message_id}"
            assert make(message_id) == str(uuid.uuid5(_NAMESPACE, name))
            assert make(message_id) == stable_uuid(123456, message_id, destination)
