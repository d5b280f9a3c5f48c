"""Custom event definitions (reference §1.5): what HubSpot accepts for each event name."""

from __future__ import annotations

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


class EventDefinitionInput(Wire):
    """Body of ``POST /events/v3/event-definitions``."""

    label: str
    name: str | None = None
    description: str | None = None
    primary_object: str = "CONTACT"
    include_default_properties: bool = True
    property_definitions: list[EventPropertyDefinition] = msgspec.field(default_factory=list)


class EventDefinitionPage(Wire):
    """One page of ``GET /events/v3/event-definitions``."""

    results: list[EventDefinition] = msgspec.field(default_factory=list)
    total: int | None = None
    paging: Paging | None = None
