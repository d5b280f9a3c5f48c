"""What every destination shares: the deterministic id each input carries."""

from __future__ import annotations

import uuid

from forwarder.delivery.destinations import _NAMESPACE, stable_uuid


def test_stable_uuid_is_the_uuid5_of_portal_destination_and_message_id() -> None:
    """A retry or a replay must send the id HubSpot already saw: the standard UUIDv5, whatever
    the digits of the hash (every variant digit occurs across these ids)."""
    for n in range(200):
        message_id = f"m-{n}"
        for destination in ("", "timeline"):
            name = f"123456:{destination}:{message_id}"
            expected = str(uuid.uuid5(_NAMESPACE, name))
            assert stable_uuid(123456, message_id, destination) == expected
