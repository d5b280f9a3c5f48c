"""Custom behavioral events ("conversions"): ``POST /events/v3/send/batch``, up to 500 inputs."""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Prepared, Ready, stable_uuid
from forwarder.delivery.destinations.mapped import (
    identity_fields,
    map_and_identify,
    note,
    occurred_at,
)
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.stitch import Resolver
from forwarder.errors import HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Item

BATCH_SIZE = 500


class Conversions:
    """Maps events to custom event occurrences with a deterministic uuid each."""

    name = "conversions"
    route = "/events/v3/send/batch"
    batch_size = BATCH_SIZE
    expects_results = False

    def __init__(
        self,
        portal: PortalSettings,
        mapper: Mapper,
        catalog: DefinitionCatalog,
        resolver: Resolver,
        attributor: Attributor | None = None,
    ) -> None:
        self._portal = portal
        self._attributor = attributor
        self._mapper = mapper
        self._catalog = catalog
        self._resolver = resolver

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        out, mapped = await map_and_identify(
            items,
            self._mapper,
            self._resolver,
            usable=lambda _: True,
            drop_reason="no mapping for this event any more",
            attributor=self._attributor,
        )
        for m in mapped:
            await self._catalog.ensure(m.conversion)
            uuid = stable_uuid(self._portal.portal_id, m.item.event.message_id)
            who = identity_fields(m.identity)
            event = EventCompletion(
                event_name=m.conversion.event_name,
                properties=m.conversion.properties,
                uuid=uuid,
                occurred_at=occurred_at(m.data),
                email=who.email,
                utk=who.utk,
                object_id=who.object_id,
            )
            out.append(Ready(m.item, event, uuid, note=note(m.identity)))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        try:
            return (await client.send_event_batch([r.input for r in ready])).response
        except HubSpotError as exc:
            return exc
