"""Choice: which identifier a HubSpot request carries, down the configured fallback chain."""

from __future__ import annotations

from forwarder.events.payload import payload_of
from forwarder.identity.choice import Candidates, choose, from_event

ORDER = ("objectId", "email", "utk")
UTK = "a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"


def test_event_carries_its_email_utk_and_contact_id_with_their_paths() -> None:
    event = {
        "properties": {"email": "p@x.io"},
        "context": {"traits": {"email": "t@x.io"}, "hubspotutk": UTK, "hubspotContactId": "9"},
    }
    found = from_event(payload_of(event))
    assert found.email == [("t@x.io", "context.traits.email")]
    assert found.utk == [(UTK, "context.hubspotutk")]
    assert found.objectId == [("9", "context.hubspotContactId")]


def test_invalid_email_is_skipped_for_the_utk() -> None:
    candidates = Candidates(email=[("not an email", "traits.email")], utk=[(UTK, "context")])
    chosen = choose(candidates, ORDER)
    assert (chosen.kind, chosen.value) == ("utk", UTK)


def test_the_configured_order_decides_between_valid_candidates() -> None:
    candidates = Candidates(objectId=[("901", "graph")], email=[("A@X.io", "traits.email")])
    assert choose(candidates, ("email", "objectId")).value == "a@x.io"
    assert choose(candidates, ORDER).value == "901"


def test_nothing_usable_chooses_no_identifier() -> None:
    chosen = choose(Candidates(objectId=[("12ab", "context")], utk=[("short", "context")]), ORDER)
    assert (chosen.kind, chosen.value) == (None, None)
