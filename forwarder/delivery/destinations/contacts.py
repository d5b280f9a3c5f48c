"""Contact updates from ``identify``: ``contacts/batch/upsert`` by email, up to 100 inputs.

Two inputs for the same email in one batch make HubSpot reject the batch (docs/hubspot-contract.md,
"Contacts"), so
they are merged first: the last write of each property wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.config import PortalSettings
from forwarder.delivery.destinations import Drop, Prepared, Ready, decode
from forwarder.delivery.mapping import coerce, lookup
from forwarder.errors import HubSpotError
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import UpsertInput
from forwarder.hubspot.paths import paths_for
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.identity.keys import normalise_email
from forwarder.storage.base import Item
from forwarder.storage.outcomes import Outcome, Reason

_MERGED = Outcome(Reason.MERGED)


class Contacts:
    """Maps identify traits to contact properties (``[portals.NAME.contacts]``)."""

    name = DestinationName.CONTACTS
    batch_size = 100
    expects_results = True
    conflict_is_duplicate = False

    def __init__(self, portal: PortalSettings) -> None:
        self.route = paths_for(portal.api_version).contacts_batch_upsert
        self._properties = dict(portal.contacts.properties)

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        out: list[Prepared] = []
        merged: dict[str, Ready] = {}
        for item in items:
            data = decode(item)
            email = normalise_email(lookup(data, "traits.email"))
            if email is None:
                out.append(Drop(item, "identify has no valid traits.email to upsert by"))
                continue
            properties = {}
            for trait, prop in self._properties.items():
                value = coerce(lookup(data, f"traits.{trait}"))
                if value is not None and prop != "email":
                    properties[prop] = value
            earlier = merged.get(email)
            if earlier is not None:
                # Same contact twice in one batch: merge, later values win; one input goes.
                properties = {**earlier.input.properties, **properties}
                out.append(Ready(earlier.item, None, email, outcome=_MERGED))
            merged[email] = Ready(
                item, UpsertInput(id=email, id_property="email", properties=properties), email
            )
        return out + list(merged.values())

    async def preview(self, items: Sequence[Item]) -> list[Prepared]:
        """What ``prepare`` makes of these items now (it has no side effect): for the debugger."""
        return await self.prepare(items)

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        inputs = [r.input for r in ready if r.input is not None]
        try:
            return (await client.batch_upsert_contacts(inputs)).response
        except HubSpotError as exc:
            return exc
