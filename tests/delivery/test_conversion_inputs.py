"""The output side of a conversions batch: the inputs made from mapped items, the body bytes
HubSpot gets, and the outcomes the worker records for them."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.config import PortalSettings
from forwarder.delivery.destinations import Ready, StableUuids
from forwarder.delivery.destinations.conversions import Conversions
from forwarder.delivery.destinations.mapped import Mapped, carries_campaign, delivered
from forwarder.delivery.mapping import Conversion
from forwarder.delivery.worker import _by_outcome
from forwarder.events.payload import payload_of
from forwarder.hubspot.models import BatchInput, EventCompletion
from forwarder.identity.choice import Identity
from forwarder.storage.base import Item, StoredEvent
from forwarder.storage.outcomes import Outcome, Reason

PORTAL_ID = 123456


def conversions() -> Conversions:
    portal = PortalSettings(portal_id=PORTAL_ID)
    return Conversions(portal, None, None, None)  # type: ignore[arg-type] # _inputs uses none


def item(n: int, message_id: str) -> Item:
    event = StoredEvent(
        seq=n,
        portal="main",
        message_id=message_id,
        source="backend",
        type="track",
        name="Order Completed",
        received_at=1_800_000_000.0 + n,
        payload=b"{}",
        test=False,
    )
    return Item(id=n, portal="main", destination="conversions", attempts=0, event=event)


def one_by_one(m: Mapped, uuid: str) -> Ready:
    """What a mapped item became before the batch loop: each field placed by keyword."""
    kind, value = m.identity.kind, m.identity.value
    at = m.data.timestamp or m.data.receivedAt
    event = EventCompletion(
        event_name=m.conversion.event_name,
        properties=m.conversion.properties,
        uuid=uuid,
        email=value if kind == "email" else None,
        utk=value if kind == "utk" else None,
        object_id=value if kind == "objectId" else None,
        occurred_at=at if isinstance(at, str) else str(at),
    )
    return Ready(m.item, event, uuid, delivered(m.identity), kind, carries_campaign(m.data))


texts = st.text(max_size=12)
timestamps = st.one_of(
    st.none(), texts, st.integers(0, 2**40), st.floats(allow_nan=False, allow_infinity=False)
)
identities = st.sampled_from(["email", "utk", "objectId"]).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        texts,
        st.sampled_from([(f"used {kind} from traits.{kind}",), ("skipped utk", "used it")]),
    )
)


_ABSENT = object()
contexts = st.sampled_from(
    [
        _ABSENT,
        None,
        "x",
        [],
        {},
        {"traits": {"email": "a@x.io"}},
        {"campaign": {"name": "spring"}},
        {"campaign": {}},
        {"clickIds": {"gclid": "1"}},
        {"page": {"url": "https://shop.example/p?gclid=1"}},
        {"page": {"url": "https://shop.example/p"}},
        {"page": {"search": "?fbclid=2"}},
        {"page": "x"},
    ]
)
"""Contexts with and without the fields ``carries_campaign`` reads, and not objects at all: a
batch of dicts only is flagged in C, any other batch event by event."""


@st.composite
def mapped_items(draw: Any) -> list[Mapped]:
    out = []
    for n in range(draw(st.integers(0, 12))):
        data: dict[str, Any] = {}
        if (at := draw(timestamps)) is not None:
            data["timestamp"] = at
        data["receivedAt"] = draw(texts)
        context = draw(contexts)
        if context is not _ABSENT:
            data["context"] = context
        kind, value, notes = draw(identities)
        properties = draw(st.dictionaries(texts, texts, max_size=3))
        conversion = Conversion(draw(st.sampled_from(["pe1_a", "pe1_b"])), properties)
        identity = Identity(kind, value, notes)
        payload = payload_of(data)
        flag = carries_campaign(payload)  # what ``map_and_identify`` sets
        out.append(Mapped(item(n, draw(texts)), payload, identity, conversion, flag))
    return out


@settings(max_examples=200, deadline=None)
@given(mapped_items())
def test_a_batch_s_inputs_and_body_bytes_are_those_each_event_makes_alone(
    mapped: list[Mapped],
) -> None:
    """Whatever the identity kind, timestamp (text, number, missing: receivedAt), campaign and
    properties, the batch loop makes the inputs, outcomes and body bytes each item made on
    its own."""
    uuids = StableUuids(PORTAL_ID).many([m.item.event.message_id for m in mapped])
    expected = [one_by_one(m, u) for m, u in zip(mapped, uuids, strict=True)]
    ready = conversions()._inputs(mapped)
    assert ready == expected
    encode = msgspec.json.encode
    assert encode(BatchInput([r.input for r in ready])) == encode(
        BatchInput([r.input for r in expected])
    )


def ready_with(outcomes: list[Outcome]) -> list[Ready]:
    return [Ready(item(n, f"m-{n}"), None, f"u-{n}", o) for n, o in enumerate(outcomes)]


def test_a_batch_with_one_outcome_finishes_every_item_with_it_in_order() -> None:
    used = Outcome(Reason.DELIVERED, identifier="email", notes=("used email from traits",))
    assert _by_outcome(ready_with([used] * 5)) == [(used, [0, 1, 2, 3, 4])]
    assert _by_outcome([]) == []


def test_a_batch_with_several_outcomes_finishes_each_item_with_its_own() -> None:
    """Grouped in order of first appearance; equal outcomes made apart may share a group
    (they record the same values)."""
    email = Outcome(Reason.DELIVERED, identifier="email", notes=("used email from traits",))
    utk = Outcome(Reason.DELIVERED, identifier="utk", notes=("used utk from cookie",))
    groups = _by_outcome(ready_with([email, utk, email, utk, utk]))
    assert groups == [(email, [0, 2]), (utk, [1, 3, 4])]
    again = msgspec.structs.replace(email)
    merged: dict[Outcome, list[int]] = {}
    for outcome, ids in _by_outcome(ready_with([email, again, utk])):
        merged.setdefault(outcome, []).extend(ids)
    assert merged == {email: [0, 1], utk: [2]}


class Catalog:
    """A definition catalog that records what it was asked to ensure."""

    def __init__(self, *, creates_missing: bool) -> None:
        self.creates_missing = creates_missing
        self.ensured: list[Conversion] = []

    async def ensure(self, conversion: Conversion) -> None:
        self.ensured.append(conversion)


class Mapped3(Conversions):
    """Conversions whose items are already mapped: one shape twice, another once."""

    async def _map(self, items: Any, known: Any = None) -> tuple[list[Any], list[Mapped]]:
        shapes = [("pe1_a", {"x": "1"}), ("pe1_a", {"x": "2"}), ("pe1_a", {"y": "3"})]
        identity = Identity("email", "a@b.io", ("used email from traits.email",))
        return [], [
            Mapped(item(n, f"m-{n}"), payload_of({}), identity, Conversion(name, properties))
            for n, (name, properties) in enumerate(shapes)
        ]


async def test_each_definition_shape_is_ensured_once_per_batch_when_missing_ones_are_created() -> (
    None
):
    catalog = Catalog(creates_missing=True)
    destination = Mapped3(PortalSettings(portal_id=PORTAL_ID), None, catalog, None)  # type: ignore[arg-type]
    assert len(await destination.prepare([])) == 3
    assert [(c.event_name, list(c.properties)) for c in catalog.ensured] == [
        ("pe1_a", ["x"]),
        ("pe1_a", ["y"]),
    ]


async def test_a_portal_that_creates_no_definitions_checks_none_per_event() -> None:
    """``ensure`` would do nothing: the per-event pass over the batch is skipped."""
    catalog = Catalog(creates_missing=False)
    destination = Mapped3(PortalSettings(portal_id=PORTAL_ID), None, catalog, None)  # type: ignore[arg-type]
    assert len(await destination.prepare([])) == 3
    assert catalog.ensured == []
