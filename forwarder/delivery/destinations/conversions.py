"""Custom behavioral events ("conversions"): the events ``send/batch`` path, up to 500 inputs."""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Prepared, Ready, StableUuids, in_parts
from forwarder.delivery.destinations.mapped import (
    DELIVERED_OUTCOMES,
    Known,
    Mapped,
    delivered,
    map_and_identify,
    read_batch,
)
from forwarder.delivery.mapping import Mapper
from forwarder.errors import HubSpotError
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion
from forwarder.hubspot.paths import paths_for
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import Item

BATCH_SIZE = 500


class Conversions:
    """Maps events to custom event occurrences with a deterministic uuid each."""

    name = DestinationName.CONVERSIONS
    batch_size = BATCH_SIZE
    expects_results = False
    conflict_is_duplicate = False

    def __init__(
        self,
        portal: PortalSettings,
        mapper: Mapper,
        catalog: DefinitionCatalog,
        resolver: Resolver,
        attributor: Attributor | None = None,
    ) -> None:
        self._portal = portal
        self._uuids = StableUuids(portal.portal_id).many
        self.route = paths_for(portal.api_version).events_send_batch
        self._attributor = attributor
        self._mapper = mapper
        self._catalog = catalog
        self._resolver = resolver

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        # Storage read once for the batch, then mapped in parts of ``PREPARE_PART``: ingest's
        # requests are answered between them.
        parts = await read_batch(items, self._resolver, self._attributor)
        return await in_parts(self._prepare, parts)

    async def _prepare(self, part: Known) -> list[Prepared]:
        out, mapped = await self._map(part.items, part)
        if self._catalog.creates_missing:  # else ``ensure`` does nothing: skip the pass
            shapes: set[tuple[str, ...]] = set()
            for m in mapped:
                # The definition a conversion needs depends on its name and property names
                # only: check each shape once per batch.
                shape = (m.conversion.event_name, *m.conversion.properties)
                if shape not in shapes:
                    shapes.add(shape)
                    await self._catalog.ensure(m.conversion)
        return out + self._inputs(mapped)

    async def preview(self, items: Sequence[Item]) -> list[Prepared]:
        """What ``prepare`` would make of these items now, without touching HubSpot (no
        definition is created): for the debugger."""
        out, mapped = await self._map(items)
        return out + self._inputs(mapped)

    async def _map(
        self, items: Sequence[Item], known: Known | None = None
    ) -> tuple[list[Prepared], list[Mapped]]:
        return await map_and_identify(
            items,
            self._mapper,
            self._resolver,
            usable=None,  # every mapping makes a conversion
            drop_reason="no mapping for this event any more",
            attributor=self._attributor,
            campaigns=True,
            known=known,
        )

    def _inputs(self, mapped: list[Mapped]) -> list[Ready]:
        """Each mapped item's input, with its uuid (made for the whole batch at once).

        One loop, with the per-event work inline rather than a method called per event
        (~700 instructions per event less under callgrind); the campaign flags come with each
        ``Mapped`` (read per batch by ``map_and_identify``) and the outcomes are asked of
        ``delivered``'s cache inline."""
        uuids = self._uuids([m.item.event.message_id for m in mapped])
        outcomes = DELIVERED_OUTCOMES  # ``delivered``'s answers, asked inline first
        out: list[Ready] = []
        append = out.append
        for m, uuid in zip(mapped, uuids, strict=True):
            data, identity, conversion = m.data, m.identity, m.conversion
            kind, value = identity.kind, identity.value  # ``identity_fields``, inline
            at = data.timestamp or data.receivedAt  # ``occurred_at``, inline
            # Positional: per event, and msgspec matches keywords to fields by name.
            event = EventCompletion(
                conversion.event_name,
                conversion.properties,
                uuid,
                value if kind == "email" else None,  # email
                value if kind == "utk" else None,  # utk
                value if kind == "objectId" else None,  # object_id
                at if type(at) is str else str(at),  # occurred_at
            )
            outcome = outcomes.get(identity.notes)
            if outcome is None or outcome.identifier != kind:
                outcome = delivered(identity)
            append(Ready(m.item, event, uuid, outcome, kind, m.campaign))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        try:
            return (await client.send_event_batch([r.input for r in ready])).response
        except HubSpotError as exc:
            return exc
