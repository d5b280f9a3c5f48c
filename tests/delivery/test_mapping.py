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


def test_context_fields_fill_hubspots_own_properties_and_other_context_is_ignored() -> None:
    """Contexts without any of the fields are common (a backend's ``traits`` only): they add
    nothing; one with a page and a campaign fills ``hs_*`` properties."""
    mapper = _mapper()
    plain = {"event": "Order Completed", "properties": {"count": 1}, "context": {"traits": {}}}
    visit = {
        "event": "Order Completed",
        "properties": {"count": 1},
        "context": {
            "traits": {},
            "page": {"url": "https://shop.example/p?q=1", "title": "Shop"},
            "campaign": {"source": "news", "name": ""},
            "locale": "de-DE",
        },
    }

    plain_conversion, visit_conversion = mapper.conversion(plain), mapper.conversion(visit)

    assert plain_conversion is not None
    assert visit_conversion is not None
    assert plain_conversion.properties == {"count": "1"}
    assert visit_conversion.properties == {
        "count": "1",
        "hs_page_url": "https://shop.example/p?q=1",
        "hs_page_title": "Shop",
        "hs_language": "de-DE",
        "hs_utm_source": "news",
    }
