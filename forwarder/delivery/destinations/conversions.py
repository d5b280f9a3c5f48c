"""Custom behavioral events ("conversions"): ``POST /events/v3/send/batch``, up to 500 inputs."""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Drop, Hold, Prepared, Ready, decode, stable_uuid
from forwarder.delivery.identity import Identity, person_keys
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.stitch import Resolver
from forwarder.errors import HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Item

BATCH_SIZE = 500


def completion(
    event_name: str, properties: dict[str, str], identity: Identity, uuid: str, occurred_at: str
) -> EventCompletion:
    """One occurrence carrying exactly the chosen identifier."""
    return EventCompletion(
        event_name=event_name,
        properties=properties,
        uuid=uuid,
        occurred_at=occurred_at,
        email=identity.value if identity.kind == "email" else None,
        utk=identity.value if identity.kind == "utk" else None,
        object_id=identity.value if identity.kind == "objectId" else None,
    )


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
    ) -> None:
        self._portal = portal
        self._mapper = mapper
        self._catalog = catalog
        self._resolver = resolver

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        datas = [decode(item) for item in items]
        identities = await self._resolver.identities(datas)
        out: list[Prepared] = []
        for item, data, identity in zip(items, datas, identities, strict=True):
            conversion = self._mapper.conversion(data)
            if conversion is None:
                out.append(Drop(item, "no mapping for this event any more"))
                continue
            if identity.kind is None:
                out.append(Hold(item, "; ".join(identity.notes), person_keys(data)))
                continue
            await self._catalog.ensure(conversion)
            uuid = stable_uuid(self._portal.portal_id, item.event.message_id)
            occurred = str(data.get("timestamp") or data.get("receivedAt"))
            event = completion(
                conversion.event_name, conversion.properties, identity, uuid, occurred
            )
            out.append(Ready(item, event, uuid, note="; ".join(identity.notes)))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        try:
            return (await client.send_event_batch([r.input for r in ready])).response
        except HubSpotError as exc:
            return exc
