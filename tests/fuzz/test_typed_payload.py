"""Delivery decodes a stored event into ``Payload`` (only the fields it reads): for any
Segment-like event, ``map_and_identify`` decides exactly what the dict of the whole event
decided (drop, hold and its keys, or the identity, conversion, time and campaign flag), through
attribution written in or not."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from forwarder.config import AttributionSettings, EventMapping, PortalSettings
from forwarder.delivery.attribution import Attribution, Attributor, _person, _touch_keys
from forwarder.delivery.destinations import Drop, Hold
from forwarder.delivery.destinations.mapped import carries_campaign, map_and_identify
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.touches import UTM_FIELDS, epoch
from forwarder.events.payload import Payload, decode_payload, payload_of
from forwarder.identity.choice import Identity, choose
from forwarder.identity.keys import payload_keys, person_keys
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import (
    Item,
    Key,
    StoredEvent,
    Touch,
    TouchKind,
    TouchMemory,
    TouchOrigin,
)
from tests.fuzz.test_identity_shortcut import reference_from_event

T0 = "2026-11-01T10:00:00.000Z"
AT0 = epoch(T0) or 0.0
UTK = "a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
ORDER = ("objectId", "email", "utk")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**21), 10**21)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "EUR", "a@x.io", " A@X.io ", UTK, "901", "12ab", "u1", "A"])
)
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.just("a"), scalars)
times = (
    st.none()
    | st.integers(0, 3)
    | st.sampled_from([T0, "2026-11-01T09:00:00Z", "2026-11-01T10:00:00", "soon"])
)
urls = st.none() | st.sampled_from(
    ["https://shop.example/p?gclid=1", "https://shop.example/p", "https://other.example/", "x"]
)


def objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A JSON object with some of ``fields``, or something that is not an object."""
    return st.none() | st.just("text") | st.just([]) | st.fixed_dictionaries({}, optional=fields)


touch = objects(
    {
        "source": values,
        "medium": values,
        "name": values,
        "clickIds": objects({"gclid": values}),
        "landingPage": urls,
        "referrer": urls,
        "timestamp": times,
    }
)
context_fields: dict[str, st.SearchStrategy[Any]] = dict(
    {
        "traits": objects({"email": values, "hubspotutk": values, "plan": values}),
        "hubspotutk": values,
        "hubspot": objects({"contactId": values}),
        "hubspotContactId": values,
        "campaign": objects({f: values for f in UTM_FIELDS}),
        "clickIds": objects({"gclid": values, "fbclid": values}),
        "page": objects({"url": urls, "referrer": urls, "title": values, "search": values}),
        "attribution": objects({"firstTouch": touch, "lastTouch": touch}),
        "userAgent": values,
        "locale": values,
    }
)
context = objects(context_fields) | st.sampled_from([3, 1.5, True, ["page"], ["x"], [{"a": 1}]])
"""Besides objects, contexts no reader takes for one (``plain_contexts`` must not mistake
them): numbers, lists of names or of objects."""
ids = st.none() | st.sampled_from(["u1", "u2", " ", "A", "B"]) | st.integers(0, 3) | st.booleans()
event_names = st.none() | st.integers(0, 2) | st.sampled_from(["Order Completed", "Signed Up", ""])
optional_fields: dict[str, st.SearchStrategy[Any]] = dict(
    {
        "type": st.sampled_from(["track", "page", "screen", "identify"]) | st.none(),
        "event": event_names,
        "name": event_names,
        "userId": ids,
        "anonymousId": ids,
        "messageId": st.none() | st.sampled_from(["m1", ""]) | st.integers(0, 2),
        "timestamp": times,
        "receivedAt": times,
        "originalTimestamp": times,
        "properties": objects(
            {"revenue": values, "email": values, "hubspotutk": values, "nested": values}
        ),
        "context": context,
        "traits": objects({"email": values, "plan": values}),
        "integrations": objects({"All": values}),
    },
)
any_events = st.fixed_dictionaries({}, optional=optional_fields)
sendable = st.fixed_dictionaries(  # mapped (or auto) with an identity more often than not
    {
        "type": st.just("track"),
        "event": st.sampled_from(["Order Completed", "Signed Up"]),
        "anonymousId": st.sampled_from(["A", "B", "u1"]),
        "timestamp": st.just(T0) | times,
        "context": st.fixed_dictionaries(
            {"traits": st.fixed_dictionaries({"email": st.just("a@x.io") | values})},
            optional={k: v for k, v in context_fields.items() if k != "traits"},
        ),
    },
    optional={
        k: v
        for k, v in optional_fields.items()
        if k not in ("type", "event", "anonymousId", "timestamp", "context")
    },
)
events = any_events | sendable
keys = st.tuples(st.sampled_from(["anonymousId", "userId"]), st.sampled_from(["u1", "A", "B"]))
members = st.lists(
    st.tuples(
        st.sampled_from(["email", "utk", "contactId", "userId", "anonymousId"]),
        st.sampled_from(["a@x.io", "b", UTK, "901", "u1", "B"]),
    ),
    max_size=3,
)
remembered = st.builds(
    Touch,
    at=st.floats(AT0 - 40 * 86400, AT0 + 100),
    kind=st.sampled_from(list(TouchKind)),
    origin=st.just(TouchOrigin.CAMPAIGN),
    message_id=st.just("r"),
    event_type=st.just("page"),
    source=st.none() | st.just("ads"),
    name=st.none() | st.just("spring"),
    click_ids=st.dictionaries(st.just("gclid"), st.just("g"), max_size=1),
)
memories = st.dictionaries(keys, st.builds(TouchMemory, remembered, remembered), max_size=2)


class Graph:
    """What the identity graph and touch memory know (only what is asked for is answered)."""

    def __init__(self, people: Mapping[Key, list[Key]], memory: Mapping[Key, TouchMemory]):
        self._people, self._memory = people, memory

    async def people_of(self, portal: str, asked: Sequence[Key]) -> dict[Key, list[Key]]:
        return {k: self._people[k] for k in asked if k in self._people}

    async def touches_of(self, portal: str, asked: Sequence[Key]) -> dict[Key, TouchMemory]:
        return {k: self._memory[k] for k in asked if k in self._memory}


def _mapper(auto: bool) -> Mapper:
    sources = {"revenue": "revenue", "properties.nested.a": "nested_a", "traits.plan": "plan"}
    sources |= {"context.page.url": "landing", "context.traits.plan": "ctx_plan"}
    sources |= {"context.attribution.firstTouch.source": "first_source"}
    mapping = EventMapping(
        event="Order Completed", custom_event="order_completed", properties=sources
    )
    return Mapper(
        PortalSettings(portal_id=1, events=(mapping,), unmapped_events="auto" if auto else "reject")
    )


def apply_to_dict(data: dict[str, Any], attribution: Attribution) -> dict[str, Any]:
    """``attribution.apply`` as it was on the dict of a whole event."""
    from forwarder.delivery.attribution import TouchReason, wire

    first, last = attribution.first, attribution.last
    carried = TouchReason.ON_EVENT
    if (first is None or first.reason is carried) and (last is None or last.reason is carried):
        return data
    replaced = {
        field: used.touch
        for field, used in (("firstTouch", first), ("lastTouch", last))
        if used is not None and used.reason is not TouchReason.ON_EVENT
    }
    context = dict(data.get("context") or {})
    kept = context.get("attribution")
    touches = dict(kept) if isinstance(kept, dict) else {}
    touches.update({field: wire(touch) for field, touch in replaced.items()})
    context["attribution"] = touches
    latest = replaced.get("lastTouch")
    if latest is not None and "campaign" not in context and "clickIds" not in context:
        campaign = {f: v for f in UTM_FIELDS if (v := getattr(latest, f)) is not None}
        if campaign:
            context["campaign"] = campaign
        if latest.click_ids:
            context["clickIds"] = dict(latest.click_ids)
    return {**data, "context": context}


def campaign_of_dict(data: dict[str, Any]) -> bool:
    """``carries_campaign`` as it was on the dict of a whole event."""
    return carries_campaign(payload_of(data))  # it reads ``context`` alone


def touch_keys_of(own: list[list[Key]], people: Mapping[Key, list[Key]]) -> list[Key]:
    """Every event's whole person (``_person``), each key of a kind touches are remembered
    under, once: what the touch memory is asked for."""
    every = (k for keys in own for k in _person(keys, people))
    return list(dict.fromkeys(k for k in every if k[0] in ("anonymousId", "userId")))


async def dict_path(
    data: dict[str, Any], graph: Graph, mapper: Mapper, attributor: Attributor
) -> tuple[Any, ...]:
    """What delivery decided from the dict of the whole event (the readers of dicts)."""
    own = person_keys(data)
    people = await graph.people_of("main", own)
    candidates = reference_from_event(data)
    for key in own:
        if people.get(key):
            Resolver._add_graph(candidates, key[0], people[key])
    identity = choose(candidates, ORDER)
    on_event = attributor._reader(data, "backend")
    memory = await graph.touches_of("main", touch_keys_of([own], people))
    everyone = _person(own, people) if on_event or memory else []
    if on_event or any(k in memory for k in everyone):
        found = attributor.decide(payload_of(data), on_event, set(own), everyone, memory)
        data = apply_to_dict(data, found)
    conversion = mapper.conversion(data)
    if conversion is None:
        return ("drop",)
    if identity.kind is None:
        return ("hold", identity.notes, own)
    at = data.get("timestamp") or data.get("receivedAt")
    return ("send", identity, conversion, at, campaign_of_dict(data))


async def payload_path(
    stored: bytes, graph: Graph, mapper: Mapper, attributor: Attributor
) -> tuple[Any, ...]:
    """What ``map_and_identify`` decides now, from the same stored bytes."""
    event = StoredEvent(1, "main", "m1", "backend", "track", None, 0.0, stored, False)
    resolver = Resolver("main", ORDER, graph)  # type: ignore[arg-type]
    settled, mapped = await map_and_identify(
        [Item(1, "main", "conversions", 0, event)],
        mapper,
        resolver,
        usable=None,
        drop_reason="no mapping",
        attributor=attributor,
        campaigns=True,
    )
    if mapped:
        [m] = mapped
        at = m.data.timestamp or m.data.receivedAt  # as ``Conversions._ready`` reads it
        return ("send", m.identity, m.conversion, at, m.campaign)
    [done] = settled
    if isinstance(done, Drop):
        return ("drop",)
    assert isinstance(done, Hold)
    return ("hold", done.notes, done.keys)


def outcome(path: Coroutine[Any, Any, tuple[Any, ...]]) -> tuple[Any, ...]:
    """A path's decision, or the error it stopped on (a context that is no object cannot take
    a remembered touch, on either path: ingest's validation keeps such events out)."""
    try:
        return asyncio.run(path)
    except (ValueError, TypeError) as exc:
        return ("error", type(exc))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # a remembered touch written in, read by a mapping of the attribution's path
    data={"type": "track", "event": "Order Completed", "anonymousId": "A", "timestamp": T0},
    people={},
    memory={
        ("anonymousId", "A"): TouchMemory(
            Touch(AT0 - 5, TouchKind.UTM, TouchOrigin.CAMPAIGN, "r", "page", source="ads"),
            Touch(AT0 - 5, TouchKind.UTM, TouchOrigin.CAMPAIGN, "r", "page", source="ads"),
        )
    },
    auto=False,
)
@given(
    data=events,
    people=st.dictionaries(keys, members, max_size=3),
    memory=memories,
    auto=st.booleans(),
)
def test_a_stored_event_decoded_as_its_payload_is_delivered_as_its_whole_dict_was(
    data: dict[str, Any],
    people: dict[Key, list[Key]],
    memory: dict[Key, TouchMemory],
    auto: bool,
) -> None:
    stored = msgspec.json.encode(data)
    whole = msgspec.json.decode(stored)  # what delivery read before: the dict of it all
    graph = Graph(people, memory)
    mapper = _mapper(auto)
    settings_ = AttributionSettings(touches=("click_id", "utm", "referrer"))
    attributor = Attributor("main", settings_, graph)  # type: ignore[arg-type]
    expected = outcome(dict_path(whole, graph, mapper, attributor))
    assert expected == outcome(payload_path(stored, graph, mapper, attributor))


@settings(max_examples=500, deadline=None)
@given(data=events)
def test_a_payload_holds_every_field_delivery_reads_as_the_dict_held_it(
    data: dict[str, Any],
) -> None:
    stored = msgspec.json.encode(data)
    whole, payload = msgspec.json.decode(stored), decode_payload(stored)
    assert payload == payload_of(whole)
    assert payload_keys(payload) == person_keys(whole)
    assert isinstance(payload, Payload)


def test_identity_is_the_shared_value_for_a_known_email() -> None:
    """A smoke check that the typed path keeps the shared ``Identity`` of a repeated email."""
    resolver = Resolver("main", ORDER, Graph({}, {}))  # type: ignore[arg-type]
    event = decode_payload(b'{"userId":"u1","context":{"traits":{"email":"a@x.io"}}}')
    first = asyncio.run(resolver.identities([event, event]))
    assert first[0] is first[1]
    assert first[0] == Identity("email", "a@x.io", ("used email from context.traits.email",))


@settings(max_examples=500, deadline=None)
@given(
    own=st.lists(st.lists(keys, max_size=2, unique=True), max_size=4),
    people=st.dictionaries(keys, members, max_size=3),
)
def test_the_touch_memory_is_asked_for_each_key_of_every_events_person_once(
    own: list[list[Key]], people: dict[Key, list[Key]]
) -> None:
    found = _touch_keys(own, people)
    assert len(found) == len(set(found))
    assert set(found) == set(touch_keys_of(own, people))


def touch_keys_looped(own: list[list[Key]], people: Mapping[Key, list[Key]]) -> list[Key]:
    """``_touch_keys`` as a loop over every graph member in Python (before it ran in C)."""
    wanted = dict.fromkeys(k for keys in own for k in keys)
    for key in list(wanted):
        for other in people.get(key) or ():
            if other[0] in ("anonymousId", "userId"):
                wanted[other] = None
    return list(wanted)


@settings(max_examples=500, deadline=None)
@given(
    own=st.lists(st.lists(keys, max_size=2, unique=True), max_size=4),
    people=st.dictionaries(keys, members, max_size=3),
)
def test_the_touch_memory_keys_come_in_the_order_the_loop_over_graph_members_gave(
    own: list[list[Key]], people: dict[Key, list[Key]]
) -> None:
    """Whether the events' own keys come once each from ``People.keys`` or not."""
    expected = touch_keys_looped(own, people)
    assert _touch_keys(own, people) == expected
    assert _touch_keys(own, people, dict.fromkeys(k for keys in own for k in keys)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(events, min_size=1, max_size=5),
    people=st.dictionaries(keys, members, max_size=3),
    memory=memories,
)
def test_a_batch_is_mapped_and_identified_as_each_of_its_events_alone(
    batch: list[dict[str, Any]],
    people: dict[Key, list[Key]],
    memory: dict[Key, TouchMemory],
) -> None:
    """What one event alone decides (compared with the dict of the whole event above), it
    decides in any batch: whether the batch's contexts are all plain (no step reads them) or
    not, with touches remembered or not."""
    graph = Graph(people, memory)
    settings_ = AttributionSettings(touches=("click_id", "utm", "referrer"))
    attributor = Attributor("main", settings_, graph)  # type: ignore[arg-type]
    mapper = _mapper(False)

    def decided(datas: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        items = [
            Item(
                n,
                "main",
                "conversions",
                0,
                StoredEvent(
                    n,
                    "main",
                    f"m{n}",
                    "backend",
                    "track",
                    None,
                    0.0,
                    msgspec.json.encode(data),
                    False,
                ),
            )
            for n, data in enumerate(datas)
        ]
        resolver = Resolver("main", ORDER, graph)  # type: ignore[arg-type]
        settled, mapped = asyncio.run(
            map_and_identify(
                items,
                mapper,
                resolver,
                usable=None,
                drop_reason="no mapping",
                attributor=attributor,
                campaigns=True,
            )
        )
        out: dict[int, tuple[Any, ...]] = {}
        for m in mapped:
            at = m.data.timestamp or m.data.receivedAt
            out[m.item.id] = ("send", m.identity, m.conversion, at, m.campaign)
        for done in settled:
            if isinstance(done, Hold):
                out[done.item.id] = ("hold", done.notes, done.keys)
            else:
                out[done.item.id] = ("drop",)
        return [out[n] for n in range(len(datas))]

    try:
        together = decided(batch)
    except (ValueError, TypeError):
        return  # a context no remembered touch can be written into: ingest keeps it out
    assert together == [decided([data])[0] for data in batch]


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(events, max_size=5),
    people=st.dictionaries(keys, members, max_size=3),
    order=st.lists(st.sampled_from(ORDER), max_size=3, unique=True),
)
def test_a_batch_s_identities_are_each_event_s_choice_among_all_its_candidates(
    batch: list[dict[str, Any]], people: dict[Key, list[Key]], order: list[str]
) -> None:
    """Whether the batch skips reading objectIds or not."""
    resolver = Resolver("main", order, Graph(people, {}))  # type: ignore[arg-type]
    payloads = [decode_payload(msgspec.json.encode(data)) for data in batch]
    expected = [
        choose(resolver.candidates(p, payload_keys(p), people, {}), order) for p in payloads
    ]
    assert expected == asyncio.run(resolver.identities(payloads))
