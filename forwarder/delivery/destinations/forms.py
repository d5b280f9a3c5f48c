"""Attribution-preserving identify: ``forms/.../secure/submit`` with the visitor's ``hutk``.

A contact created or updated by the CRM API looks "offline"-sourced; HubSpot ties a browser's
page views to a contact through a form submission that carries the ``hubspotutk`` cookie
(docs/hubspot-contract.md, "Forms submissions"). One submission per request (the endpoint
takes one).
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.clock import Clock
from forwarder.config import PortalSettings, portal_uses_sandbox
from forwarder.delivery.destinations import Drop, Prepared, Ready, decode
from forwarder.delivery.mapping import lookup
from forwarder.errors import HubSpotError
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import FormContext, FormField, FormSubmission
from forwarder.hubspot.paths import FORMS_SUBMIT
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.identity.keys import normalise_email
from forwarder.storage.base import Item

FORMS_HOST = "https://api.hsforms.com"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class Forms:
    """Submits identify email + hutk to the portal's configured form."""

    name = DestinationName.FORMS
    route = FORMS_SUBMIT
    batch_size = 1
    expects_results = False
    conflict_is_duplicate = False

    def __init__(self, portal: PortalSettings, clock: Clock) -> None:
        self._clock = clock
        host = "" if portal_uses_sandbox(portal) else FORMS_HOST
        self._url = f"{host}{self.route}/{portal.portal_id}/{portal.forms_guid}"

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        out: list[Prepared] = []
        for item in items:
            data = decode(item)
            email = normalise_email(lookup(data, "traits.email"))
            hutk = _text(lookup(data, "context.hubspotutk"))
            if email is None or hutk is None:
                out.append(Drop(item, "identify needs a valid traits.email and context.hubspotutk"))
                continue
            context = FormContext(
                hutk=hutk,
                ip_address=_text(lookup(data, "context.ip")),
                page_uri=_text(lookup(data, "context.page.url")),
                page_name=_text(lookup(data, "context.page.title")),
            )
            submission = FormSubmission(
                fields=[FormField("email", email)],
                submitted_at=str(
                    int(item.event.received_at * 1000) or int(self._clock.now() * 1000)
                ),
                context=context,
            )
            out.append(Ready(item, submission, email))
        return out

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        [one] = ready
        try:
            return (await client.submit_form(self._url, one.input)).response
        except HubSpotError as exc:
            return exc
