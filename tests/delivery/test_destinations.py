"""What every destination shares: the deterministic id each input carries."""

from __future__ import annotations

import uuid
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.delivery.destinations import _NAMESPACE, StableUuids, stable_uuid
from forwarder.delivery.destinations.mapped import carries_campaign
from forwarder.events.destinations import DestinationName
from forwarder.events.payload import payload_of


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


def test_stable_uuids_of_a_whole_batch_are_each_event_s_own() -> None:
    """``many`` (the batch formatted at once) gives, in order, the uuid ``of`` gives each
    messageId: every hex digit in every place of a uuid, unicode and empty messageIds, a batch
    of one and none."""
    for destination in ("", DestinationName.TIMELINE):
        make = StableUuids(123456, destination)
        message_ids = [f"m-{n}" for n in range(500)] + ["é-ü-日本", "", "a b\nc"]
        assert make.many(message_ids) == [make.of(m) for m in message_ids]
        assert make.many(message_ids[:1]) == [make.of(message_ids[0])]
        assert make.many([]) == []
        name = f"123456:{destination}:m-7"
        assert make.many(["m-7"]) == [str(uuid.uuid5(_NAMESPACE, name))]


def test_an_event_carries_a_campaign_only_by_its_context_campaign_click_ids_or_page_url() -> None:
    """What attribution quality counts as carrying a campaign, whichever way the context is
    read (a context without any of the fields is answered before any look-up)."""
    cases = [
        ({}, False),
        ({"context": None}, False),
        ({"context": "text"}, False),
        ({"context": {}}, False),
        ({"context": {"traits": {"email": "a@b.c"}, "ip": "1.2.3.4"}}, False),
        ({"context": {"campaign": {"name": "spring"}}}, True),
        ({"context": {"campaign": {}}}, False),
        ({"context": {"clickIds": {"gclid": "x"}}}, True),
        ({"context": {"page": {"url": "https://a.example/?gclid=1"}}}, True),
        ({"context": {"page": {"search": "?fbclid=2"}}}, True),
        ({"context": {"page": {"url": "https://a.example/"}}}, False),
        ({"context": {"page": None, "traits": {}}}, False),
        ({"context": MappingProxyType({"campaign": {"name": "spring"}})}, True),
        ({"context": MappingProxyType({"traits": {}})}, False),
    ]
    assert [carries_campaign(payload_of(data)) for data, _ in cases] == [
        expected for _, expected in cases
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=40), st.integers(1, 10**12))
def test_a_batch_s_uuids_are_the_uuid5_of_each_message_id(
    message_ids: list[str], portal: int
) -> None:
    """Whatever the messageIds (any text, repeated or not) and the portal, ``many`` gives each
    the standard UUIDv5, in order."""
    expected = [str(uuid.uuid5(_NAMESPACE, f"{portal}::{m}")) for m in message_ids]
    assert StableUuids(portal).many(message_ids) == expected
