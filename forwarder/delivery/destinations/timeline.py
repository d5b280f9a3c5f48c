"""CRM timeline events: ``POST /crm/v3/timeline/events/batch/create``, up to 100 inputs.

Optional per portal (HubSpot opens it only to app partners with existing templates, reference
§2.1): an event goes here only when its mapping names a ``timeline_template``.
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.attribution import Attributor
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
from forwarder.hubspot.models import TimelineEvent
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Item


class Timeline:
    """Maps events to timeline events whose ``id`` is derived from the messageId."""

    name = "timeline"
    route = "/crm/v3/timeline/events/batch/create"
    batch_size = 100
    expects_results = True

    def __init__(
        self,
        portal: PortalSettings,
        mapper: Mapper,
        resolver: Resolver,
        attributor: Attributor | None = None,
    ) -> None:
        self._portal = portal
        self._attributor = attributor
        self._mapper = mapper
        self._resolver = resolver

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        out, mapped = await map_and_identify(
            items,
            self._mapper,
            self._resolver,
            usable=lambda c: c.timeline_template is not None,
            drop_reason="no timeline template mapped for this event",
            attributor=self._attributor,
        )
        for m in mapped:
            assert m.conversion.timeline_template is not None  # checked by ``usable``
            event_id = stable_uuid(self._portal.portal_id, m.item.event.message_id, self.name)
            who = identity_fields(m.identity)
            event = TimelineEvent(
                event_template_id=m.conversion.timeline_template,
                id=event_id,
                tokens=m.conversion.properties,
                timestamp=occurred_at(m.data),
                email=who.email,
                utk=who.utk,
                object_id=who.object_id,
            )
            out.append(Ready(m.item, event, event_id, note=note(m.identity)))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        try:
            return (await client.create_timeline_batch([r.input for r in ready])).response
        except HubSpotError as exc:
            return exc
