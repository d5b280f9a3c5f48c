"""Fanout: which destination queues of its portal an event goes to, decided at ingest.

Deciding here lets ingest refuse, with a reason, an event that could never be delivered
(an unmapped track under ``unmapped_events = "reject"``), instead of dead-lettering it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from forwarder.config import PortalSettings
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.mapping import Mapper, Problem, problems
from forwarder.events.destinations import DestinationName
from forwarder.events.messages import Identify, Message, Page, Rejected, Screen, Track


class Fanout(msgspec.Struct, frozen=True):
    """Where one event goes."""

    destinations: tuple[DestinationName, ...] = ()
    dropped: tuple[tuple[DestinationName, str], ...] = ()


_NOWHERE = Fanout()
_CONVERSION = Fanout(destinations=(DestinationName.CONVERSIONS,))
_CONVERSION_AND_TIMELINE = Fanout(
    destinations=(DestinationName.CONVERSIONS, DestinationName.TIMELINE)
)
"""Shared, as frozen: a mapped event's fanout is built once, not per event."""


class DefinitionCheck:
    """Refuse at ingest, with a field and a reason, what HubSpot would refuse at flush.

    Uses the portal's mapping and its cached event definitions: an event whose definition
    HubSpot lacks (unless the forwarder creates missing ones), an unknown property, a value of
    the wrong type or too long, too many properties.
    """

    def __init__(self, mapper: Mapper, catalog: DefinitionCatalog) -> None:
        self._mapper = mapper
        self._catalog = catalog
        self._creates = catalog.creates_missing
        self._customs = mapper.mapped_custom_events()

    def __call__(self, data: Mapping[str, Any]) -> Problem | None:
        if self._creates:
            if self._mapper.surely_valid(data):
                return None  # the common backend event: nothing to find, skip building it
        else:
            # A mapped event with plain values: likewise (this runs for every mapped event).
            name = data.get("event") or data.get("name")
            custom = self._customs.get(name) if type(name) is str else None
            if custom is not None:
                known = self._catalog.properties_of(custom)
                # Definitions not loaded (a replica that does not deliver): nothing is known
                # to be missing, only names and values can be wrong.
                if (known is not None or not self._catalog.loaded) and (
                    self._mapper.surely_valid_mapped(data, known)
                ):
                    return None
        conversion = self._mapper.conversion(data)
        if conversion is None:
            return None
        creates = self._creates
        if not creates and self._catalog.exists(conversion.event_name) is False:
            return Problem(
                "$.event", f"custom event {conversion.event_name} is not defined in HubSpot"
            )
        known = None if creates else self._catalog.properties_of(conversion.event_name)
        found = problems(conversion, known)
        return found[0] if found else None


def _attributable(traits: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """An identify that can tie a browser's utk to a contact: it has both."""
    return bool(traits.get("email")) and bool(context.get("hubspotutk"))


def _hubspot_disabled(integrations: Mapping[str, Any]) -> bool:
    flag = integrations.get("HubSpot", integrations.get("hubspot"))
    if flag is None:
        return integrations.get("All") is False
    return flag is False


class Destiner:
    """Per portal: which events map to custom events, timeline and contact upserts."""

    def __init__(
        self,
        portals: Mapping[str, PortalSettings],
        checks: Mapping[str, DefinitionCheck] | None = None,
    ) -> None:
        self._portals = dict(portals)
        self._checks = dict(checks or {})
        self._mapped = {
            name: {m.event: m.timeline_template is not None for m in p.events}
            for name, p in portals.items()
        }
        self._mapped_tracks = {
            name: {
                event: _CONVERSION_AND_TIMELINE if timeline else _CONVERSION
                for event, timeline in mapped.items()
            }
            for name, mapped in self._mapped.items()
        }
        """Per portal, the fanout of a track of each mapped name (what ``_destine`` decides for
        one without ``integrations``)."""

    def __call__(
        self, index: int, portal: str, message: Message, data: Mapping[str, Any]
    ) -> Fanout | Rejected:
        if type(message) is Track and "integrations" not in data:
            # The common event, decided by its name alone: this runs for every event ingested.
            mapped = self._mapped_tracks[portal].get(message.event)
            if mapped is not None:
                check = self._checks.get(portal)
                problem = check(data) if check is not None else None
                return mapped if problem is None else Rejected(index, problem.path, problem.reason)
        fanout = self._destine(index, portal, message, data.get("integrations"))
        check = self._checks.get(portal)
        if (
            isinstance(fanout, Fanout)
            and DestinationName.CONVERSIONS in fanout.destinations
            and check is not None
        ):
            problem = check(data)
            if problem is not None:
                return Rejected(index, problem.path, problem.reason)
        return fanout

    def _destine(
        self, index: int, portal: str, message: Message, integrations: object
    ) -> Fanout | Rejected:
        settings = self._portals[portal]
        if (
            integrations is not None  # the ABC check of Mapping is slow: skip it when absent
            and isinstance(integrations, dict | Mapping)
            and _hubspot_disabled(integrations)
        ):
            return _NOWHERE
        match message:
            case Track(event=name):
                return self._conversion(index, portal, settings, name, explicit=True)
            case Page(name=name) | Screen(name=name) if name is not None:
                return self._conversion(index, portal, settings, name, explicit=False)
            case Identify(traits=traits, context=context):
                destinations: tuple[DestinationName, ...] = (
                    (DestinationName.CONTACTS,) if settings.contacts.upsert else ()
                )
                if settings.forms_guid is not None and _attributable(traits, context):
                    destinations += (DestinationName.FORMS,)
                return Fanout(destinations=destinations) if destinations else _NOWHERE
        return _NOWHERE

    def _conversion(
        self, index: int, portal: str, settings: PortalSettings, name: str, *, explicit: bool
    ) -> Fanout | Rejected:
        timeline = self._mapped[portal].get(name)
        if timeline is not None:
            return _CONVERSION_AND_TIMELINE if timeline else _CONVERSION
        if not explicit:
            return _NOWHERE  # an unmapped page view is kept for attribution, not sent
        match settings.unmapped_events:
            case "auto":
                return _CONVERSION
            case "drop":
                return Fanout(
                    dropped=((DestinationName.CONVERSIONS, f"no mapping for event {name!r}"),)
                )
        return Rejected(
            index,
            "$.event",
            f"no mapping for event {name!r} in portal {portal!r} and unmapped_events is 'reject'",
        )
