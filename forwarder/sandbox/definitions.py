"""Custom event definitions : ``pe{portalId}_{name}`` and their properties."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import msgspec

from forwarder.sandbox.responses import ApiError, iso_now, validation_error

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,49}")
MAX_DEFINITIONS = 500
MAX_CUSTOM_PROPERTIES = 50
PROPERTY_TYPES = frozenset({"string", "number", "enumeration", "datetime", "bool", "date"})
DEFAULT_PROPERTIES = frozenset(
    [
        "hs_browser",
        "hs_city",
        "hs_country",
        "hs_device_type",
        "hs_element_class",
        "hs_element_id",
        "hs_element_text",
        "hs_language",
        "hs_link_href",
        "hs_page_content_type",
        "hs_page_id",
        "hs_page_title",
        "hs_page_url",
        "hs_region",
        "hs_referrer",
        "hs_user_agent",
        "hs_utm_campaign",
        "hs_utm_medium",
        "hs_utm_source",
        "hs_utm_content",
        "hs_utm_term",
        "hs_operating_system",
        "hs_operating_version",
        "hs_screen_height",
        "hs_screen_width",
        "hs_asset_description",
        "hs_asset_type",
        "hs_campaign_id",
        "hs_device_name",
        "hs_touchpoint_source",
        "hs_tracking_name",
        "hs_parent_module_id",
    ]
)


class PropertyEgg(msgspec.Struct, rename="camel"):
    """A property in a definition request."""

    name: str
    label: str = ""
    type: str = "string"
    description: str = ""
    options: list[dict[str, Any]] = msgspec.field(default_factory=list)


class MatchingRule(msgspec.Struct, rename="camel"):
    target_object_property_name: str
    event_property_name: str


class CustomMatchingId(msgspec.Struct, rename="camel"):
    primary_object_rule: MatchingRule


class DefinitionEgg(msgspec.Struct, rename="camel"):
    """``POST /events/v3/event-definitions`` body."""

    label: str
    name: str | None = None
    description: str = ""
    primary_object: str = "CONTACT"
    property_definitions: list[PropertyEgg] = msgspec.field(default_factory=list)
    include_default_properties: bool = True
    custom_matching_id: CustomMatchingId | None = None


class DefinitionPatch(msgspec.Struct, rename="camel"):
    label: str | None = None
    description: str | None = None


@dataclass(slots=True)
class Definition:
    """A stored event definition; ``allowed`` is every property name a send may use."""

    id: str
    name: str
    fully_qualified_name: str
    label: str
    description: str
    primary_object: str
    include_default_properties: bool
    properties: dict[str, PropertyEgg]
    matching_property: str | None
    created_at: str
    updated_at: str
    allowed: frozenset[str] = field(default_factory=frozenset)

    def refresh(self) -> None:
        """Recompute ``allowed`` after the properties changed."""
        defaults = DEFAULT_PROPERTIES if self.include_default_properties else frozenset()
        self.allowed = defaults | frozenset(self.properties)
        self.updated_at = iso_now()

    def to_json(self) -> dict[str, Any]:
        """The ``ExternalBehavioralEventTypeDefinition`` body."""
        return {
            "id": self.id,
            "name": self.name,
            "fullyQualifiedName": self.fully_qualified_name,
            "labels": {"singular": self.label, "plural": None},
            "description": self.description,
            "primaryObject": self.primary_object,
            "objectTypeId": "0-1" if self.primary_object == "CONTACT" else "",
            "trackingType": "MANUAL",
            "archived": False,
            "associations": [],
            "properties": [_property_json(p) for p in self.properties.values()],
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def _property_json(prop: PropertyEgg) -> dict[str, Any]:
    return {
        "name": prop.name,
        "label": prop.label or prop.name,
        "type": prop.type,
        "fieldType": "text",
        "groupName": "custom_event_properties",
        "description": prop.description,
        "options": prop.options,
    }


def _check_property(prop: PropertyEgg) -> ApiError | None:
    if not NAME_RE.fullmatch(prop.name):
        return validation_error(
            f"Property name '{prop.name}' must start with a letter, be at most 50 characters and"
            " contain only lowercase letters, numbers and underscores"
        )
    if prop.type not in PROPERTY_TYPES:
        return validation_error(
            f"Property type '{prop.type}' is not one of {sorted(PROPERTY_TYPES)}"
        )
    if prop.type == "enumeration" and not prop.options:
        return validation_error(f"Enumeration property '{prop.name}' needs at least one option")
    return None


class DefinitionStore:
    """Definitions of one portal, keyed by fully qualified name."""

    def __init__(self, portal_id: int) -> None:
        self.portal_id = portal_id
        self.by_name: dict[str, Definition] = {}
        self.deleted: set[str] = set()
        self._ids = count(22036509)

    def find(self, name: str) -> Definition | None:
        """By fully qualified (``pe123_x``) or short (``x``) name."""
        found = self.by_name.get(name)
        return found or self.by_name.get(f"pe{self.portal_id}_{name}")

    def create(self, egg: DefinitionEgg) -> Definition | ApiError:
        """Create a definition, enforcing the guide's naming and count rules."""
        name = egg.name or re.sub(r"[^a-z0-9_]+", "_", egg.label.lower()).strip("_")
        if not NAME_RE.fullmatch(name):
            return validation_error(
                f"Event name '{name}' must start with a letter, be at most 50 characters and"
                " contain only lowercase letters, numbers and underscores"
            )
        if len(egg.label) > 100:
            return validation_error("Event label must be at most 100 characters")
        fqn = f"pe{self.portal_id}_{name}"
        if fqn in self.by_name:
            return ApiError(409, "CONFLICT", f"An event definition named '{name}' already exists")
        if fqn in self.deleted:
            return validation_error(f"The event name '{name}' was deleted and cannot be used again")
        if len(self.by_name) >= MAX_DEFINITIONS:
            return validation_error("There is a limit of 500 unique event definitions per account")
        if len(egg.property_definitions) > MAX_CUSTOM_PROPERTIES:
            return validation_error("An event definition can have at most 50 custom properties")
        for prop in egg.property_definitions:
            if (problem := _check_property(prop)) is not None:
                return problem
        rule = egg.custom_matching_id
        now = iso_now()
        definition = Definition(
            id=str(next(self._ids)),
            name=name,
            fully_qualified_name=fqn,
            label=egg.label,
            description=egg.description,
            primary_object=egg.primary_object,
            include_default_properties=egg.include_default_properties,
            properties={p.name: p for p in egg.property_definitions},
            matching_property=rule.primary_object_rule.event_property_name if rule else None,
            created_at=now,
            updated_at=now,
        )
        definition.refresh()
        self.by_name[fqn] = definition
        return definition

    def define(
        self, name: str, properties: Iterable[str] | Mapping[str, str] = ()
    ) -> Definition | ApiError:
        """Shortcut for seeding: properties as names (all ``string``) or name -> type."""
        types = (
            properties if isinstance(properties, Mapping) else dict.fromkeys(properties, "string")
        )
        eggs = [PropertyEgg(name=n, label=n, type=t) for n, t in types.items()]
        return self.create(DefinitionEgg(label=name, name=name, property_definitions=eggs))

    def delete(self, name: str) -> bool:
        """Delete a definition; its name can never be used again."""
        found = self.find(name)
        if found is None:
            return False
        del self.by_name[found.fully_qualified_name]
        self.deleted.add(found.fully_qualified_name)
        return True

    def add_property(self, definition: Definition, prop: PropertyEgg) -> ApiError | None:
        """Add one custom property to a definition."""
        if (problem := _check_property(prop)) is not None:
            return problem
        if prop.name in definition.properties:
            return ApiError(409, "CONFLICT", f"Property '{prop.name}' already exists")
        if len(definition.properties) >= MAX_CUSTOM_PROPERTIES:
            return validation_error("An event definition can have at most 50 custom properties")
        definition.properties[prop.name] = prop
        definition.refresh()
        return None
