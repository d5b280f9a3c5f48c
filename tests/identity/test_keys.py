"""Identity keys: what an event carries, and which of its identifiers it asserts are one person."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.events.payload import Payload
from forwarder.identity.keys import (
    links,
    normalise_email,
    payload_keys,
    payloads_keys,
    person_keys,
)


def test_plain_track_asserts_no_links() -> None:
    assert links({"type": "track", "anonymousId": "A", "userId": "u1", "event": "Paid"}) == []


def test_identify_links_its_ids_with_the_normalised_email() -> None:
    identify = {"type": "identify", "anonymousId": "A", "traits": {"email": " Ana@Example.COM "}}
    assert links(identify) == [("anonymousId", "A"), ("email", "ana@example.com")]


def test_track_with_the_utk_cookie_and_a_contact_id_links_both() -> None:
    track = {
        "type": "track",
        "userId": 42,
        "context": {"hubspotutk": "a3b1c2d3e4f5a6b7", "hubspot": {"contactId": 901}},
    }
    assert links(track) == [("userId", "42"), ("utk", "a3b1c2d3e4f5a6b7"), ("contactId", "901")]


def test_alias_links_the_previous_id_as_anonymous_id_and_user_id() -> None:
    alias = {"type": "alias", "userId": "u1", "previousId": "A"}
    assert links(alias) == [("userId", "u1"), ("anonymousId", "A"), ("userId", "A")]


def test_identify_with_an_invalid_email_and_one_id_links_nothing() -> None:
    assert links({"type": "identify", "userId": "u1", "traits": {"email": "not-an-email"}}) == []


def test_person_keys_take_numbers_as_text_and_skip_blanks_and_booleans() -> None:
    assert person_keys({"anonymousId": "  ", "userId": 7}) == [("userId", "7")]
    assert person_keys({"anonymousId": True}) == []


def test_overlong_email_is_not_an_email() -> None:
    assert normalise_email("a" * 250 + "@x.io") is None


_ids = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", " ", "u1", " u2 "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ids, _ids), max_size=8))
def test_a_batch_s_keys_are_each_event_s_own(ids: list[tuple[object, object]]) -> None:
    """``payloads_keys`` of a batch (with its shortcut for a string userId alone) gives what
    ``payload_keys`` gives each event: ids as strings, numbers, booleans, blank or absent."""
    payloads = [Payload(anonymousId=a, userId=u) for a, u in ids]
    assert payloads_keys(payloads) == [payload_keys(p) for p in payloads]
