"""CRM timeline events: ``POST /crm/v3/timeline/events/batch/create``, up to 100 inputs.

Optional per portal (HubSpot opens it only to app partners with existing templates, reference
§2.1): an event goes here only when its mapping names a ``timeline_template``.
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.destinations import Drop, Hold, Prepared, Ready, decode, stable_uuid
from forwarder.delivery.identity import person_keys
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.stitch import Resolver
from forwarder.errors import HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import TimelineEvent
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Item


class Timeline:
    """Maps events to timeline events whose ``id`` is derived from the messageId."""

    name = "timeline"
    route = "/crm/v3/timeline/events/batch/create"
    batch_size = 100
    expects_results = True

    def __init__(self, portal: PortalSettings, mapper: Mapper, resolver: Resolver) -> None:
        self._portal = portal
        self._mapper = mapper
        self._resolver = resolver

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        datas = [decode(item) for item in items]
        identities = await self._resolver.identities(datas)
        out: list[Prepared] = []
        for item, data, identity in zip(items, datas, identities, strict=True):
            conversion = self._mapper.conversion(data)
            if conversion is None or conversion.timeline_template is None:
                out.append(Drop(item, "no timeline template mapped for this event"))
                continue
            if identity.kind is None:
                out.append(Hold(item, "; ".join(identity.notes), person_keys(data)))
                continue
            event_id = stable_uuid(self._portal.portal_id, item.event.message_id, self.name)
            event = TimelineEvent(
                event_template_id=conversion.timeline_template,
                id=event_id,
                tokens=conversion.properties,
                email=identity.value if identity.kind == "email" else None,
                utk=identity.value if identity.kind == "utk" else None,
                object_id=identity.value if identity.kind == "objectId" else None,
                timestamp=str(data.get("timestamp") or data.get("receivedAt")),
            )
            out.append(Ready(item, event, event_id))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        try:
            return (await client.create_timeline_batch([r.input for r in ready])).response
        except HubSpotError as exc:
            return exc
