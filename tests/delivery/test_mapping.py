"""Mapping: an event's values become HubSpot's string forms (``coerce``), on every path."""

from __future__ import annotations

from forwarder.config import EventMapping, PortalSettings
from forwarder.delivery.mapping import Mapper


def _mapper() -> Mapper:
    properties = {name: name for name in ("count", "flag", "whole", "ratio", "text", "empty")}
    properties |= {"nothing": "nothing", "nested": "nested", "big": "big"}
    event = EventMapping(
        event="Order Completed", custom_event="order_completed", properties=properties
    )
    return Mapper(PortalSettings(portal_id=123456, events=(event,)))


def test_mapped_values_are_sent_in_hubspots_string_forms() -> None:
    """Integers and strings (the common cases, read without a coercion call) come out as the
    other kinds do through ``coerce``: booleans lower-case, whole floats without a point,
    objects as JSON; null and empty values are left out."""
    data = {
        "event": "Order Completed",
        "properties": {
            "count": 25,
            "big": 10**30,
            "flag": True,
            "whole": 2.0,
            "ratio": 2.5,
            "text": "EUR",
            "empty": "",
            "nothing": None,
            "nested": {"a": 1},
        },
    }

    conversion = _mapper().conversion(data)

    assert conversion is not None
    assert conversion.properties == {
        "count": "25",
        "big": "1" + "0" * 30,
        "flag": "true",
        "whole": "2",
        "ratio": "2.5",
        "text": "EUR",
        "nested": '{"a":1}',
    }
