"""Choice: which identifier a HubSpot request carries, down the configured fallback chain."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.events.payload import Payload, payload_of
from forwarder.identity.choice import Candidates, choose, from_event, own_email, own_emails

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


_emails = st.none() | st.sampled_from(["", "a@x.io", " B@X.io "]) | st.integers(0, 2)
_holders = st.none() | st.just("x") | st.fixed_dictionaries({}, optional={"email": _emails})
_contexts = st.none() | st.just([]) | st.fixed_dictionaries({}, optional={"traits": _holders})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_holders, _contexts, _holders),
        max_size=6,
    )
)
def test_a_batch_s_own_emails_are_each_event_s(
    fields: list[tuple[object, object, object]],
) -> None:
    """``own_emails`` (with its shortcut for ``context.traits.email``) reads what
    ``own_email`` reads of each event: top-level traits first, then the context's, then
    properties; absent, empty, numbers, not objects."""
    payloads = [Payload(traits=t, context=c, properties=p) for t, c, p in fields]
    assert own_emails(payloads) == [own_email(p) for p in payloads]
