"""CRM timeline events, up to 100 inputs per batch.

On ``v3``: ``timeline/events/batch/create`` with template ids and tokens (201, or 207 with
per-input errors). On the dated versions: app event occurrences, where ``timeline_template``
names the app event type and the mapped values are its properties; HubSpot accepts the whole
batch or none of it (400, or 409 when an occurrence id already exists: occurrences are
immutable, so a 409 on one input is a replay of something HubSpot has).

Optional per portal (HubSpot opens it only to app partners: docs/hubspot-contract.md,
"Timeline events"): an event goes here
only when its mapping names a ``timeline_template``.
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.destinations import Prepared, Ready, StableUuids
from forwarder.delivery.destinations.mapped import (
    Mapped,
    delivered,
    identity_fields,
    map_and_identify,
    occurred_at,
)
from forwarder.delivery.mapping import Mapper
from forwarder.errors import HubSpotError
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import AppEventOccurrence, TimelineEvent
from forwarder.hubspot.paths import paths_for
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import Item


class Timeline:
    """Maps events to timeline events whose ``id`` is derived from the messageId."""

    name = DestinationName.TIMELINE
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
        self._uuids = StableUuids(portal.portal_id, self.name).many
        paths = paths_for(portal.api_version)
        self.route = paths.timeline_batch
        self._dated = paths.dated_timeline
        self.conflict_is_duplicate = paths.dated_timeline

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        out, mapped = await map_and_identify(
            items,
            self._mapper,
            self._resolver,
            usable=lambda c: c.timeline_template is not None,
            drop_reason="no timeline template mapped for this event",
            attributor=self._attributor,
        )
        ids = self._uuids([m.item.event.message_id for m in mapped])
        for m, event_id in zip(mapped, ids, strict=True):
            event = self._occurrence(m, event_id) if self._dated else self._event(m, event_id)
            out.append(Ready(m.item, event, event_id, outcome=delivered(m.identity)))
        return out

    @staticmethod
    def _event(m: Mapped, event_id: str) -> TimelineEvent:
        assert m.conversion.timeline_template is not None  # checked by ``usable``
        who = identity_fields(m.identity)
        return TimelineEvent(
            event_template_id=m.conversion.timeline_template,
            id=event_id,
            tokens=m.conversion.properties,
            timestamp=occurred_at(m.data),
            email=who.email,
            utk=who.utk,
            object_id=who.object_id,
        )

    @staticmethod
    def _occurrence(m: Mapped, event_id: str) -> AppEventOccurrence:
        assert m.conversion.timeline_template is not None  # checked by ``usable``
        who = identity_fields(m.identity)
        return AppEventOccurrence(
            event_type_name=m.conversion.timeline_template,
            id=event_id,
            properties=m.conversion.properties,
            timestamp=occurred_at(m.data),
            email=who.email,
            utk=who.utk,
            object_id=who.object_id,
        )

    async def preview(self, items: Sequence[Item]) -> list[Prepared]:
        """What ``prepare`` makes of these items now (it has no side effect): for the debugger."""
        return await self.prepare(items)

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        inputs = [r.input for r in ready]
        try:
            if self._dated:
                return (await client.send_app_events(inputs)).response
            return (await client.create_timeline_batch(inputs)).response
        except HubSpotError as exc:
            return exc
