"""Mapping: a Segment event -> a HubSpot custom event name and its string properties.

Follows HubSpot's rules (docs/hubspot-contract.md, "Custom events"): fully qualified names
``pe{portalId}_name``, property names of lowercase letters, digits and underscores starting with a
letter (≤ 50), values up to 256 characters (1,024 when the name contains url, referrer or link), at
most 50 properties. ``problems`` reports, with a field path, what HubSpot would reject at flush so
ingest can refuse it with a reason instead.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from forwarder.config import EventMapping, PortalSettings
from forwarder.events.payload import Payload

MAX_PROPERTIES = 50
MAX_NAME = 50
_QUALIFIED = re.compile(r"^pe\d+_")
_NAME_OK = re.compile(r"^[a-z][a-z0-9_]*$")
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_TOP_LEVEL = ("properties.", "context.", "traits.")
_ROOTS = {"properties": 0, "context": 1, "traits": 2}
"""A mapped source's first part: the index of that field of a ``Payload`` in the roots
``Mapper.conversion_of`` walks from."""
_NAMES_CACHED = 4096

# HubSpot's default event properties filled from Segment's context (docs/hubspot-contract.md,
# "Custom events").
CONTEXT_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("context.page.url", "hs_page_url"),
    ("context.page.title", "hs_page_title"),
    ("context.page.referrer", "hs_referrer"),
    ("context.userAgent", "hs_user_agent"),
    ("context.locale", "hs_language"),
    ("context.campaign.source", "hs_utm_source"),
    ("context.campaign.medium", "hs_utm_medium"),
    ("context.campaign.name", "hs_utm_campaign"),
    ("context.campaign.term", "hs_utm_term"),
    ("context.campaign.content", "hs_utm_content"),
)
CONTEXT_KEYS = frozenset(path.split(".")[1] for path, _ in CONTEXT_DEFAULTS)
"""The context fields HubSpot's default properties are read from."""
_CONTEXT_KEYS = CONTEXT_KEYS
_SHORTEST_LIMIT = 256
_SHORT_NUMBER = 1e200
"""Numbers below this have fewer than 256 characters as HubSpot strings (a float: comparing an
int or a float with it is cheaper than with the int ``10**200``, once per property of every
event)."""
_LOW_NUMBER = -_SHORT_NUMBER


_Rooted = tuple[tuple[int, tuple[str, ...], str], ...]
"""A mapping's property sources for a ``Payload``: (``_ROOTS`` index, rest of the path,
HubSpot property) each."""
_Plan = tuple[tuple[tuple[str, ...], bool], ...]
"""``Mapper._plan``: per mapped property, its source path and whether a string may go there."""


def _context_groups() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    """``CONTEXT_DEFAULTS`` split once and grouped by the key under ``context`` (most events
    carry few of them): key -> ((the rest of the path as parts, HubSpot property), ...)."""
    groups: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {}
    for path, target in CONTEXT_DEFAULTS:
        key, *rest = path.split(".")[1:]
        groups[key] = (*groups.get(key, ()), (tuple(rest), target))
    return groups


_CONTEXT_GROUPS = _context_groups()


@functools.lru_cache(maxsize=4096)
def snake_name(text: str) -> str:
    """A HubSpot-safe internal name: ``Order Completed`` -> ``order_completed``."""
    name = _NOT_NAME.sub("_", text.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"e_{name}"
    return name[:MAX_NAME].rstrip("_")


def qualified(portal_id: int, name: str) -> str:
    """``pe{portalId}_{name}`` unless ``name`` is already fully qualified."""
    return name if _QUALIFIED.match(name) else f"pe{portal_id}_{name}"


@functools.lru_cache(maxsize=4096)
def value_limit(name: str) -> int:
    """Longest value HubSpot takes for a property of this name."""
    return 1024 if any(word in name for word in ("url", "referrer", "link")) else 256


def _source_path(source: str) -> str:
    """A mapping's property source as a path in the event (bare names are under properties)."""
    return source if source.startswith(_TOP_LEVEL) else f"properties.{source}"


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path (``context.page.url``), or None."""
    return _walk(data, path.split("."))


def _walk(node: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        # Decoded JSON is made of dicts: test for dict first, the ABC check is slow.
        if type(node) is not dict and (node is None or not isinstance(node, Mapping)):
            return None
        node = node.get(part)
    return node


def coerce(value: Any) -> str | None:
    """A property value as HubSpot's string form, or None to leave it out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | str):
        return str(value)
    return msgspec.json.encode(value).decode()


class Conversion(msgspec.Struct, frozen=True, gc=False):
    """What a Segment event becomes at the custom events endpoint (one per delivered event:
    untracked by the garbage collector: strings and a dict of strings, no cycle)."""

    event_name: str
    properties: dict[str, str]
    timeline_template: str | None = None


class Problem(msgspec.Struct, frozen=True):
    """Something HubSpot would reject, with the event field it comes from."""

    path: str
    reason: str


class Mapper:
    """Per portal: compiled mappings; ``conversion`` runs per event."""

    def __init__(self, portal: PortalSettings) -> None:
        self._portal_id = portal.portal_id
        self._auto = portal.unmapped_events == "auto"
        self._mappings: dict[str, EventMapping] = {m.event: m for m in portal.events}
        self._sources: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
            m.event: tuple(
                (tuple(_source_path(source).split(".")), target)
                for source, target in m.properties.items()
            )
            for m in portal.events
        }
        """Per mapped event: its property sources as split paths, and their HubSpot names."""
        self._compiled: dict[str, tuple[_Rooted, str, str | None]] = {
            event: (
                tuple((_ROOTS[parts[0]], parts[1:], target) for parts, target in sources),
                qualified(self._portal_id, self._mappings[event].custom_event),
                self._mappings[event].timeline_template,
            )
            for event, sources in self._sources.items()
        }
        """Per mapped event, what ``conversions_of`` needs, found by one look-up: ``_sources``
        for a ``Payload`` (each path's top-level field, its ``_ROOTS`` index, apart from the
        rest of it), the custom event's name, the timeline template."""
        self._names: dict[str, str] = {}
        """Segment event name -> custom event name ("" for none), computed once per name."""
        self._plans: dict[str, tuple[Mapping[str, str] | None, _Plan | None]] = {}
        """Per mapped event: the definition's properties last checked, and what
        ``surely_valid_mapped`` checks of each event against them (None: the definition lacks
        a property the mapping names, every event gets the full check)."""

    def mapped_custom_events(self) -> dict[str, str]:
        """Each mapped Segment event name and the fully qualified custom event it maps to."""
        return {
            name: qualified(self._portal_id, m.custom_event) for name, m in self._mappings.items()
        }

    def custom_event_for(self, name: str) -> str | None:
        """The fully qualified custom event a Segment event name maps to."""
        found = self._names.get(name)
        if found is None:
            if len(self._names) >= _NAMES_CACHED:
                self._names.clear()
            found = self._names[name] = self._custom_event_for(name)
        return found or None

    def _custom_event_for(self, name: str) -> str:
        mapping = self._mappings.get(name)
        if mapping is not None:
            return qualified(self._portal_id, mapping.custom_event)
        return qualified(self._portal_id, snake_name(name)) if self._auto else ""

    def conversion(self, data: Mapping[str, Any]) -> Conversion | None:
        """Map one stored event (``track``, or a named ``page``/``screen``)."""
        name = data.get("event") or data.get("name")
        if not isinstance(name, str):
            return None
        mapping = self._mappings.get(name)
        if mapping is None and not self._auto:
            return None
        if mapping is not None:
            properties = self._mapped_properties(mapping, data)
        else:
            properties = self._auto_properties(data)
        template = mapping.timeline_template if mapping is not None else None
        return self._conversion_of(name, properties, data.get("context"), template)

    def conversion_of(self, payload: Payload) -> Conversion | None:
        """``conversion`` of a leased event (delivery's typed ``Payload``)."""
        return self.conversions_of((payload,))[0]

    def conversions_of(
        self, payloads: Sequence[Payload], plain_contexts: bool = False
    ) -> list[Conversion | None]:
        """``conversion_of`` of each event of a batch, in one loop (per event, no method call
        for a mapped event); ``plain_contexts``: no event's context has a field of
        ``CONTEXT_KEYS`` (checked by the caller for the batch), so no context is looked at."""
        out: list[Conversion | None] = []
        append = out.append
        compiled = self._compiled
        for payload in payloads:
            name = payload.event or payload.name
            mapped = compiled.get(name) if isinstance(name, str) else None
            if mapped is None:
                append(self._auto_conversion_of(payload, name))
                continue
            rooted, event_name, template = mapped
            roots = (payload.properties, payload.context, payload.traits)
            properties: dict[str, str] = {}
            for root, parts, target in rooted:
                value: Any = roots[root]  # ``_walk``, inline: per event and property
                for part in parts:
                    if type(value) is not dict and (
                        value is None or not isinstance(value, Mapping)
                    ):
                        value = None
                        break
                    value = value.get(part)
                kind = type(value)
                if kind is str:  # the common cases: nothing to coerce, or an int's text
                    if value:
                        properties[target] = value
                elif kind is int:
                    properties[target] = str(value)
                else:
                    self._put(properties, target, value)
            if not plain_contexts:
                self._defaults_of(properties, payload.context)
            append(Conversion(event_name, properties, template))
        return out

    def _auto_conversion_of(self, payload: Payload, name: Any) -> Conversion | None:
        """``conversion_of`` of an event no mapping names (``unmapped_events = "auto"``)."""
        if not self._auto or not isinstance(name, str):
            return None
        properties = self._auto_properties({"properties": payload.properties})
        return self._conversion_of(name, properties, payload.context, None)

    def _conversion_of(
        self, name: str, properties: dict[str, str], context: Any, template: str | None
    ) -> Conversion:
        """The conversion of an event of this name, with HubSpot's default properties from
        its context added to its mapped ones."""
        self._defaults_of(properties, context)
        event_name = self._names.get(name) or self.custom_event_for(name)
        assert event_name is not None
        return Conversion(event_name, properties, template)

    def _defaults_of(self, properties: dict[str, str], context: Any) -> None:
        """``_context_defaults`` of an event's context, when it is an object with a field of
        ``CONTEXT_KEYS`` (most have none: told by one C call)."""
        if (type(context) is dict or (context is not None and isinstance(context, Mapping))) and (
            not _CONTEXT_KEYS.isdisjoint(context)
        ):
            self._context_defaults(properties, context)

    def _context_defaults(self, properties: dict[str, str], context: Mapping[str, Any]) -> None:
        """HubSpot's default properties filled from the context, where not mapped already."""
        for key, defaults in _CONTEXT_GROUPS.items():
            if key not in context:
                continue
            for rest, target in defaults:
                if target not in properties:
                    self._put(properties, target, _walk(context[key], rest))

    def _mapped_properties(self, mapping: EventMapping, data: Mapping[str, Any]) -> dict[str, str]:
        """The event's properties as its mapping names them."""
        properties: dict[str, str] = {}
        for parts, target in self._sources[mapping.event]:
            value: Any = data  # ``_walk``, inline: per event and property
            for part in parts:
                if type(value) is not dict and (value is None or not isinstance(value, Mapping)):
                    value = None
                    break
                value = value.get(part)
            kind = type(value)
            if kind is str:  # the common cases: nothing to coerce, or an int's text
                if value:
                    properties[target] = value
            elif kind is int:
                properties[target] = str(value)
            else:
                self._put(properties, target, value)
        return properties

    def _auto_properties(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Every scalar property of an unmapped event (``unmapped_events = "auto"``)."""
        properties: dict[str, str] = {}
        own = data.get("properties")
        if isinstance(own, Mapping):
            for key, value in own.items():
                if not isinstance(value, dict | list | Mapping):
                    self._put(properties, snake_name(str(key)), value)
        return properties

    def surely_valid(self, data: Mapping[str, Any]) -> bool:
        """A quick, conservative test for the ingest-time check of an auto-created event.

        True only when ``problems(self.conversion(data), None)`` is certainly empty: an unmapped
        event (``unmapped_events = "auto"``, whose property names ``snake_name`` always makes
        valid) with at most 40 scalar properties, each short enough for any property, and no
        context fields that map to HubSpot's own properties. Anything else gets the full check.
        """
        if not self._auto or (data.get("event") or data.get("name")) in self._mappings:
            return False
        own = data.get("properties")
        if own is not None:
            if type(own) is not dict or len(own) > MAX_PROPERTIES - len(CONTEXT_DEFAULTS):
                return False
            for value in own.values():
                kind = type(value)
                if kind is str:
                    if len(value) > _SHORTEST_LIMIT:
                        return False
                elif kind is int or kind is float:
                    if not _LOW_NUMBER < value < _SHORT_NUMBER:
                        return False
                elif (
                    kind is not bool and value is not None and kind is not dict and kind is not list
                ):
                    return False
        context = data.get("context")
        return not context or (type(context) is dict and _CONTEXT_KEYS.isdisjoint(context))

    def surely_valid_mapped(self, data: Mapping[str, Any], known: Mapping[str, str] | None) -> bool:
        """The quick test of ``surely_valid`` for a mapped event whose definition HubSpot has
        (``known``: its property types; None when they are not known, as on a replica that
        does not deliver). True only when ``problems(self.conversion(data), known)`` is
        certainly empty: every mapped property a valid name the definition has, each value a
        short scalar (a string only where no number is expected), and no context fields that
        map to HubSpot's own properties. Anything else gets the full check.

        This runs for every mapped event ingested: what depends on the event's name and the
        definition alone is decided once per definition (``_plan``).
        """
        name = data.get("event") or data.get("name")
        decided = self._plans.get(name) if type(name) is str else None
        if decided is None or decided[0] is not known:
            mapping = self._mappings.get(name) if type(name) is str else None
            if mapping is None:
                return False
            decided = self._plans[mapping.event] = (known, self._plan(mapping.event, known))
        plan = decided[1]
        if plan is None or not _plain_values(data, plan):
            return False
        context = data.get("context")
        return not context or (type(context) is dict and _CONTEXT_KEYS.isdisjoint(context))

    def _plan(self, event: str, known: Mapping[str, str] | None) -> _Plan | None:
        """Per property ``event`` maps: its source path, and whether a string (or a bool) may
        go there (not where the definition expects a number); None unless every property is a
        valid name ``known`` has (any valid name when ``known`` is None)."""
        sources = self._sources[event]
        targets = [target for _, target in sources]
        if len(targets) > MAX_PROPERTIES or not all(
            _valid_name(t) and (known is None or t in known) for t in targets
        ):
            return None
        return tuple(
            (parts, known is None or known[target] != "number") for parts, target in sources
        )

    @staticmethod
    def _put(properties: dict[str, str], name: str, value: Any) -> None:
        text = coerce(value)
        if text is not None and text != "":
            properties[name] = text


def _plain_values(data: Mapping[str, Any], plan: _Plan) -> bool:
    """Whether every property ``plan`` maps is absent or a short scalar of a type it may have."""
    for parts, text_ok in plan:
        value: Any = data
        for part in parts:  # ``_walk``, inlined: once per mapped property of every event
            if type(value) is not dict and (value is None or not isinstance(value, Mapping)):
                value = None
                break
            value = value.get(part)
        kind = type(value)
        if kind is int or kind is float:
            if not _LOW_NUMBER < value < _SHORT_NUMBER:  # NaN fails both
                return False
        elif kind is str or kind is bool:
            if not text_ok or (kind is str and len(value) > _SHORTEST_LIMIT):
                return False
        elif value is not None:
            return False
    return True


def problems(conversion: Conversion, known: Mapping[str, str] | None) -> list[Problem]:
    """What HubSpot would reject in a conversion; ``known`` = the definition's property types."""
    found: list[Problem] = []
    custom = [n for n in conversion.properties if not n.startswith("hs_")]
    if len(conversion.properties) > MAX_PROPERTIES:
        found.append(
            Problem("$.properties", f"{len(conversion.properties)} properties; HubSpot takes 50")
        )
    for name in custom:
        if not _valid_name(name):
            found.append(Problem(f"$.properties.{name}", "not a valid HubSpot property name"))
        elif known is not None and name not in known:
            found.append(
                Problem(f"$.properties.{name}", f"{conversion.event_name} has no property {name!r}")
            )
    for name, value in conversion.properties.items():
        if len(value) > value_limit(name):
            found.append(
                Problem(
                    f"$.properties.{name}",
                    f"value is {len(value)} characters; HubSpot takes {value_limit(name)}",
                )
            )
        kind = (known or {}).get(name)
        if kind == "number" and _not_number(value):
            found.append(Problem(f"$.properties.{name}", f"{value!r} is not a number"))
    return found


@functools.lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and _NAME_OK.match(name) is not None


def _not_number(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return True
