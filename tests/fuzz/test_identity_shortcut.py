"""Delivery's lazy identity choice picks what the whole candidate list would, notes and all."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from forwarder.events.payload import decode_payload
from forwarder.identity.choice import Candidates, _object, choose, from_event
from forwarder.identity.keys import person_keys
from forwarder.identity.resolve import Resolver, later_kinds
from forwarder.storage.base import Key

UTK = "a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
# Valid and invalid values of every kind, and values that look like another kind's.
identifiers = st.sampled_from(
    ["a@x.io", " A@X.io ", "b@y.org", "not an email", "", UTK, "short", "901", "12ab", "7"]
) | st.integers(min_value=0, max_value=10**21)
maybe = st.none() | identifiers
ids = st.none() | st.sampled_from(["u1", "u2", " ", "a1"]) | st.integers(0, 3)
graph_kinds = st.sampled_from(["email", "utk", "contactId", "userId", "anonymousId"])
members = st.lists(st.tuples(graph_kinds, st.sampled_from(["a@x.io", "x", UTK, "901", "9z"])))
orders = st.lists(st.sampled_from(["objectId", "email", "utk", "phone"]), max_size=4)


def objects(fields: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A JSON object with some of ``fields``, or something that is not an object."""
    return st.none() | st.just("text") | st.fixed_dictionaries({}, optional=fields)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    hubspot = objects({"contactId": maybe})
    traits = objects({"email": maybe, "hubspotutk": maybe})
    context = objects(
        {"traits": traits, "hubspotutk": maybe, "hubspot": hubspot, "hubspotContactId": maybe}
    )
    event: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {"type": st.just("track")},
            optional={
                "userId": ids,
                "anonymousId": ids,
                "traits": traits,
                "properties": objects({"email": maybe, "hubspotutk": maybe}),
                "context": context,
            },
        )
    )
    return event


@settings(max_examples=1000, deadline=None)
@example(  # an invalid contact id skipped, then the event's own email: both notes kept
    data={"type": "track", "context": {"hubspotContactId": "12ab", "traits": {"email": "a@x.io"}}},
    order=["objectId", "email"],
    graph={},
    contacts={},
)
@example(  # a contact look-up that found an empty id: skipped with a note, like any other
    data={"type": "track", "userId": "u1", "traits": {"email": "a@x.io"}},
    order=["objectId", "email"],
    graph={},
    contacts={"u1": ""},
)
@given(
    data=events(),
    order=orders,
    graph=st.dictionaries(st.sampled_from(["u1", "u2", "a1", "0", "1"]), members),
    contacts=st.dictionaries(st.sampled_from(["u1", "u2", "1"]), st.none() | identifiers),
)
def test_lazy_identity_choice_equals_the_choice_among_every_candidate(
    data: dict[str, Any],
    order: list[str],
    graph: dict[str, list[Key]],
    contacts: dict[str, Any],
) -> None:
    resolver = Resolver("main", order, storage=None)  # type: ignore[arg-type]
    keys = person_keys(data)
    people = {key: graph[key[1]] for key in keys if key[1] in graph}
    found = {k: None if v is None else str(v) for k, v in contacts.items()}
    payload = decode_payload(msgspec.json.encode(data))  # as delivery decodes a stored event
    expected = choose(resolver.candidates(payload, keys, people, found), order)
    later = later_kinds(people, found)
    assert expected == resolver._choose(payload, keys, people, found, later)
    assert expected == resolver._choose(payload, keys, people, found, later)  # remembered


def _add(found: list[tuple[str, str]], path: str, value: Any) -> bool:
    if value is None or value == "":
        return False
    found.append((str(value), path))
    return True


def reference_from_event(data: dict[str, Any]) -> Candidates:
    """``from_event`` as it was before each kind got its own reader (the first present path
    of each kind wins)."""
    found = Candidates()
    context = _object(data.get("context"))
    traits = _object(context.get("traits"))
    properties = _object(data.get("properties"))
    email = found.email
    _ = (
        _add(email, "traits.email", _object(data.get("traits")).get("email"))
        or _add(email, "context.traits.email", traits.get("email"))
        or _add(email, "properties.email", properties.get("email"))
    )
    utk = found.utk
    _ = (
        _add(utk, "context.hubspotutk", context.get("hubspotutk"))
        or _add(utk, "context.traits.hubspotutk", traits.get("hubspotutk"))
        or _add(utk, "properties.hubspotutk", properties.get("hubspotutk"))
    )
    contact = _object(context.get("hubspot")).get("contactId")
    _ = _add(found.objectId, "context.hubspot.contactId", contact) or _add(
        found.objectId, "context.hubspotContactId", context.get("hubspotContactId")
    )
    return found


@settings(max_examples=1000, deadline=None)
@given(data=events())
def test_an_events_own_identifiers_are_read_from_the_first_present_path_of_each_kind(
    data: dict[str, Any],
) -> None:
    assert from_event(decode_payload(msgspec.json.encode(data))) == reference_from_event(data)
