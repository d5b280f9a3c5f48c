"""Custom event definitions per portal: fetched at start, cached in storage, refreshed.

Ingest uses them to refuse what HubSpot would refuse at flush. If HubSpot is unreachable at
start the last cached definitions serve. With ``unmapped_events = "auto"`` (and for mapped
events on the sandbox) missing definitions and properties are created on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from forwarder.delivery.mapping import Conversion
from forwarder.errors import HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.definitions import (
    EventDefinition,
    new_definition,
    new_property,
)
from forwarder.storage.roles import Metadata
from forwarder.telemetry import get_logger

Known = dict[str, dict[str, str]]
"""Fully qualified event name -> property name -> type."""

_CACHE = msgspec.json.Decoder(Known)


def _known(definitions: list[EventDefinition]) -> Known:
    return {
        d.fully_qualified_name: {p.name: p.type for p in d.properties}
        for d in definitions
        if not d.archived
    }


class DefinitionCatalog:
    """What HubSpot knows of one portal's custom events."""

    def __init__(
        self,
        portal: str,
        client: HubSpotClient,
        storage: Metadata,
        *,
        create_missing: bool,
        spend: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Args:
        spend: waits for room in the portal's CRM envelope before each request (definition
            calls count against the 10-second window and the daily cap like any other).
        """
        self._spend = spend
        self._portal = portal
        self._client = client
        self._storage = storage
        self._create = create_missing
        self._known: Known | None = None
        self._lock = asyncio.Lock()
        self._log = get_logger("definitions").bind(portal=portal)

    async def _wait_for_room(self) -> None:
        if self._spend is not None:
            await self._spend()

    @property
    def loaded(self) -> bool:
        """True once definitions came from HubSpot or from the cache."""
        return self._known is not None

    def properties_of(self, event_name: str) -> dict[str, str] | None:
        """The properties of a definition; None when unknown or not loaded."""
        return None if self._known is None else self._known.get(event_name)

    def exists(self, event_name: str) -> bool | None:
        """Whether HubSpot has this definition (None: we do not know yet)."""
        return None if self._known is None else event_name in self._known

    @property
    def creates_missing(self) -> bool:
        """Whether missing definitions are created on first use."""
        return self._create

    async def load(self) -> None:
        """Fetch from HubSpot; on failure fall back to the stored copy."""
        key = f"definitions:{self._portal}"
        try:
            await self._wait_for_room()
            self._known = _known(await self._client.list_event_definitions())
            await self._storage.set_meta(key, msgspec.json.encode(self._known))
            self._log.info("definitions_loaded", count=len(self._known))
        except HubSpotError as exc:
            cached = await self._storage.get_meta(key)
            if cached is not None:
                self._known = _CACHE.decode(cached)
            self._log.warning(
                "definitions_fetch_failed",
                error=str(exc),
                cached=cached is not None,
                count=len(self._known or {}),
            )

    async def ensure(self, conversion: Conversion) -> None:
        """Create the definition and any property a conversion needs (when allowed)."""
        if not self._create:
            return
        known = self._known if self._known is not None else {}
        current = known.get(conversion.event_name)
        wanted = [n for n in conversion.properties if not n.startswith("hs_")]
        if current is not None and all(n in current for n in wanted):
            return
        async with self._lock:
            try:
                await self._create_missing(conversion, wanted)
            except HubSpotError as exc:  # the send will fail with HubSpot's reason
                self._log.warning("definition_create_failed", error=str(exc))
                if exc.status == 409:  # created meanwhile (another replica): learn it once
                    await self.load()

    async def _create_missing(self, conversion: Conversion, wanted: list[str]) -> None:
        known = self._known = self._known if self._known is not None else {}
        current = known.get(conversion.event_name)
        if current is None:
            await self._wait_for_room()
            definition = await self._client.create_event_definition(
                new_definition(conversion.event_name, wanted)
            )
            known[definition.fully_qualified_name] = {p.name: p.type for p in definition.properties}
            known.setdefault(conversion.event_name, {n: "string" for n in wanted})
            self._log.info("definition_created", event_name=conversion.event_name)
            return
        for name in wanted:
            if name not in current:
                await self._wait_for_room()
                await self._client.create_event_property(conversion.event_name, new_property(name))
                current[name] = "string"
