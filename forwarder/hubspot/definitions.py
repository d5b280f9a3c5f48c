"""Custom event definitions: what HubSpot accepts for each event name.

The rules are in docs/hubspot-contract.md, "Custom events".
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from forwarder.hubspot.models import Paging, Wire


class PropertyOption(Wire):
    """One option of an enumeration property."""

    label: str
    value: str
    display_order: int | None = None
    hidden: bool | None = None
    description: str | None = None


class EventPropertyDefinition(Wire):
    """A property of a custom event definition (create body and response item)."""

    name: str
    label: str | None = None
    type: str = "string"
    field_type: str | None = None
    description: str | None = None
    group_name: str | None = None
    options: list[PropertyOption] = msgspec.field(default_factory=list)


class EventLabels(Wire):
    """Singular and plural label of an event definition."""

    singular: str | None = None
    plural: str | None = None


class EventDefinition(Wire):
    """An event definition as HubSpot returns it."""

    id: str
    name: str
    fully_qualified_name: str
    labels: EventLabels = msgspec.field(default_factory=EventLabels)
    description: str | None = None
    primary_object: str | None = None
    object_type_id: str | None = None
    archived: bool = False
    properties: list[EventPropertyDefinition] = msgspec.field(default_factory=list)


class EventPropertyInput(Wire):
    """Body of ``POST .../event-definitions/{eventName}/property`` and an item of
    ``propertyDefinitions``: HubSpot's spec requires ``label`` and ``type``, so both are always
    sent (a default would be left out by ``omit_defaults``)."""

    name: str
    label: str
    type: str
    description: str | None = None


class EventDefinitionInput(Wire):
    """Body of ``POST /events/v3/event-definitions``.

    ``includeDefaultProperties`` and ``propertyDefinitions`` are required by HubSpot's spec (the
    guide calls the first optional, default true), so neither has a default here and both are
    always on the wire; the caller chooses ``include_default_properties`` deliberately.
    """

    label: str
    include_default_properties: bool
    property_definitions: list[EventPropertyInput]
    name: str | None = None
    description: str | None = None
    primary_object: str = "CONTACT"


class EventDefinitionPage(Wire):
    """One page of ``GET /events/v3/event-definitions``."""

    results: list[EventDefinition] = msgspec.field(default_factory=list)
    total: int | None = None
    paging: Paging | None = None


def new_definition(event_name: str, properties: Sequence[str]) -> EventDefinitionInput:
    """What the forwarder creates for a missing event: its label from the short name, every
    property a string.

    ``includeDefaultProperties`` is true on purpose: the mapping fills HubSpot's default
    ``hs_*`` properties (page URL, title, referrer, UTM, user agent, language), and a send that
    names a property the definition lacks is refused.

    Args:
        event_name: the fully qualified name (``pe{portal}_{short}``).
        properties: the custom properties to define.
    """
    short = event_name.split("_", 1)[1]
    return EventDefinitionInput(
        label=short.replace("_", " ").title()[:100],
        name=short,
        include_default_properties=True,
        property_definitions=[new_property(n) for n in properties],
    )


def new_property(name: str) -> EventPropertyInput:
    """A string property named and labelled ``name``."""
    return EventPropertyInput(name=name, label=name, type="string")
