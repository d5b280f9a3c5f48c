"""The ingest-time definition check's shortcut never passes what the full check would refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.config import EventMapping, PortalSettings
from forwarder.delivery.mapping import Mapper, problems

PORTAL = PortalSettings(
    portal_id=7,
    base_url="sandbox",
    unmapped_events="auto",
    events=(EventMapping(event="Mapped", custom_event="mapped", properties={"a": "b"}),),
)
MAPPER = Mapper(PORTAL)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**260), max_value=10**260)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300)
)
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=5), scalars)
contexts = st.none() | st.dictionaries(
    st.sampled_from(["library", "ip", "page", "userAgent", "locale", "campaign", "traits"]),
    values | st.dictionaries(st.sampled_from(["url", "title", "source"]), values),
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["Signed Up", "Mapped", "", "  Weird  name!! ", "9lives"]),
    properties=st.none() | st.dictionaries(st.text(max_size=60), values, max_size=55),
    context=contexts,
)
def test_a_surely_valid_event_has_no_problems(
    name: str, properties: dict[str, Any] | None, context: dict[str, Any] | None
) -> None:
    data: dict[str, Any] = {"type": "track", "event": name}
    if properties is not None:
        data["properties"] = properties
    if context is not None:
        data["context"] = context
    if MAPPER.surely_valid(data):
        conversion = MAPPER.conversion(data)  # None (no name): the full check passes it too
        assert conversion is None or problems(conversion, None) == []


def test_the_shortcut_applies_to_a_plain_backend_event_only() -> None:
    plain = {"event": "Signed Up", "properties": {"plan": "pro", "value": 42}}
    assert MAPPER.surely_valid({**plain, "context": {"library": {"name": "analytics-python"}}})
    assert not MAPPER.surely_valid({**plain, "context": {"page": {"url": "https://x"}}})
    assert not MAPPER.surely_valid({**plain, "properties": {"long": "x" * 300}})
    assert not MAPPER.surely_valid({"event": "Mapped", "properties": {}})


MAPPED_PORTAL = PortalSettings(
    portal_id=7,
    base_url="sandbox",
    unmapped_events="reject",
    events=(
        EventMapping(
            event="Order Completed",
            custom_event="order_completed",
            properties={"revenue": "revenue", "currency": "currency", "traits.plan": "plan"},
        ),
    ),
)
MAPPED = Mapper(MAPPED_PORTAL)
KNOWN = {"revenue": "number", "currency": "string", "plan": "enumeration"}


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["Order Completed", "Signed Up", ""]),
    properties=st.none() | st.dictionaries(st.sampled_from(["revenue", "currency", "x"]), values),
    traits=st.none() | st.dictionaries(st.sampled_from(["plan", "email"]), values),
    context=contexts,
    known=st.sampled_from([KNOWN, {**KNOWN, "revenue": "string"}, {"revenue": "number"}, None]),
)
def test_a_surely_valid_mapped_event_has_no_problems(
    name: str,
    properties: dict[str, Any] | None,
    traits: dict[str, Any] | None,
    context: dict[str, Any] | None,
    known: dict[str, str] | None,
) -> None:
    data: dict[str, Any] = {"type": "track", "event": name}
    for key, value in (("properties", properties), ("traits", traits), ("context", context)):
        if value is not None:
            data[key] = value
    if MAPPED.surely_valid_mapped(data, known):
        conversion = MAPPED.conversion(data)
        assert conversion is not None
        assert problems(conversion, known) == []


def test_the_mapped_shortcut_applies_to_plain_values_the_definition_has() -> None:
    order = {"event": "Order Completed", "properties": {"revenue": 42, "currency": "EUR"}}
    assert MAPPED.surely_valid_mapped({**order, "context": {"traits": {"email": "a@x.co"}}}, KNOWN)
    assert not MAPPED.surely_valid_mapped({**order, "context": {"page": {"url": "x"}}}, KNOWN)
    assert not MAPPED.surely_valid_mapped({**order, "properties": {"revenue": "42"}}, KNOWN)
    assert not MAPPED.surely_valid_mapped(order, {"revenue": "number"})  # no currency property
    assert not MAPPED.surely_valid_mapped({"event": "Signed Up"}, KNOWN)  # not mapped
