"""The checks of one portal, in the order a fix is most useful: reachability and the API version,
the credential, each feature's scopes, then what the mappings name (definitions, properties).

A 401 or an unsupported version stops a portal's checks: every later call would fail the same
way and the report would only repeat it.
"""

from __future__ import annotations

from typing import Any

from forwarder.config import PortalSettings
from forwarder.delivery.mapping import qualified
from forwarder.errors import HubSpotAuthError, HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.definitions import (
    EventDefinition,
    new_definition,
    new_property,
)
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.preflight.items import Item, Verdict
from forwarder.preflight.limits import credential_kind, envelope_items, version_item

FILLABLE = {"string": "text", "number": "numbers"}
"""Event property types the forwarder's text values fill as they are."""
NEEDS_CARE = {
    "enumeration": "values must be one of the property's options",
    "datetime": "values must be timestamps",
    "bool": "values must be true or false",
}


class Stop(Exception):
    """A finding that makes every later check of this portal moot."""


class PortalCheck:
    """Runs the checks of one portal with its own client (credential and API version)."""

    def __init__(
        self, name: str, portal: PortalSettings, client: HubSpotClient, *, create_missing: bool
    ) -> None:
        self._name = name
        self._portal = portal
        self._client = client
        self._paths = client.paths
        self._create = create_missing
        self._items: list[Item] = []

    def _add(self, what: str, verdict: Verdict, detail: str) -> None:
        self._items.append(Item(self._name, what, verdict, detail))

    async def run(self) -> list[Item]:
        """Every item of this portal."""
        self._items.append(version_item(self._name, self._portal))
        self._items.extend(envelope_items(self._name, self._portal))
        try:
            definitions = await self._credential_and_definitions()
            await self._scopes()
            if definitions is not None:
                await self._events(definitions)
            await self._contact_properties()
            self._timeline_templates()
        except Stop:
            pass
        except HubSpotError as exc:
            self._add("HubSpot", Verdict.MISSING, f"{exc}; check base_url and try again")
        return self._items

    async def _call(self, method: str, path: str, body: Any = None) -> HubSpotResponse:
        try:
            if body is None:
                return await self._client.request(method, path, params={"limit": "1"})
            return await self._client.request(method, path, body)
        except HubSpotAuthError as exc:
            fix = "install the app again for a new refresh token, or check client_id/secret"
            self._add("credential (OAuth app)", Verdict.MISSING, f"refresh refused: {exc}: {fix}")
            raise Stop from exc
        except HubSpotError as exc:
            where = self._portal.base_url
            self._add("HubSpot reachable", Verdict.MISSING, f"{where}: {exc}; check base_url")
            raise Stop from exc

    async def _credential_and_definitions(self) -> list[EventDefinition] | None:
        kind = credential_kind(self._portal)
        response = await self._call("GET", self._paths.event_definitions)
        if response.status == 401:
            why = response.error.message if response.error else "refused"
            fix = "create a new one in HubSpot and update the config"
            self._add(f"credential ({kind})", Verdict.MISSING, f"401 {why}: {fix}")
            raise Stop
        self._stop_if_unsupported(response)
        self._add(f"credential ({kind})", Verdict.OK, "accepted")
        if self._portal.service_key is not None:
            self._add(
                "webhooks (merges, deletions)",
                Verdict.NOTE,
                "service keys cannot receive webhooks: identity merges and GDPR deletions "
                "need an app (set webhook_secret or OAuth client_secret)",
            )
        if not self._scope_item("event definitions", response):
            return None
        return await self._client.list_event_definitions()

    def _stop_if_unsupported(self, response: HubSpotResponse) -> None:
        if response.status == 410:
            message = response.error.message if response.error else "gone"
            fix = 'set api_version = "2026-03" (or "2026-09")'
            self._add(
                f"API version {self._paths.version} served", Verdict.MISSING, f"{message}: {fix}"
            )
            raise Stop

    def _scope_item(self, feature: str, response: HubSpotResponse, *, needed: bool = True) -> bool:
        """Add the scope line of one feature from a probe's answer; True when allowed."""
        self._stop_if_unsupported(response)
        what = f"scope: {feature}"
        if response.status == 403:
            scopes = ", ".join(_required_scopes(response)) or "the scope this API needs"
            verdict = Verdict.MISSING if needed else Verdict.NOTE
            self._add(what, verdict, f"missing {scopes}: grant it to the app or key, re-run")
            return False
        if response.status == 429 or response.status >= 500:
            self._add(what, Verdict.MISSING, f"HubSpot answered {response.status}; re-run later")
            return False
        self._add(what, Verdict.OK, "granted")
        return True

    async def _scopes(self) -> None:
        paths = self._paths
        probe = self._client.probe_empty_batch
        self._scope_item("custom event sends", await probe(paths.events_send_batch))
        if self._portal.contacts.upsert:
            self._scope_item("contact upserts", await probe(paths.contacts_batch_upsert))
        if any(m.timeline_template for m in self._portal.events):
            self._scope_item("timeline events", await probe(paths.timeline_batch))
        if self._portal.forms_guid is not None:
            self._add(
                "scope: form submissions",
                Verdict.NOTE,
                "not probed (forms live on api.hsforms.com): the app needs the forms scope",
            )

    async def _events(self, definitions: list[EventDefinition]) -> None:
        known = {d.fully_qualified_name: d for d in definitions if not d.archived}
        creates_itself = (
            self._portal.unmapped_events == "auto" or self._portal.base_url == "sandbox"
        )
        for mapping in self._portal.events:
            name = qualified(self._portal.portal_id, mapping.custom_event)
            wanted = [p for p in mapping.properties.values() if not p.startswith("hs_")]
            found = known.get(name)
            if found is None and self._create:
                found = await self._create_definition(name, wanted)
            if found is None:
                verdict = Verdict.NOTE if creates_itself else Verdict.MISSING
                fix = (
                    "the forwarder creates it on first use"
                    if creates_itself
                    else "define it in HubSpot or run forwarder check --create-missing"
                )
                self._add(f"event {name}", verdict, f"not defined: {fix}")
                continue
            self._add(f"event {name}", Verdict.OK, "defined")
            types = {p.name: p.type for p in found.properties}
            for prop in wanted:
                await self._event_property(name, prop, types)

    async def _create_definition(self, name: str, wanted: list[str]) -> EventDefinition | None:
        try:
            created = await self._client.create_event_definition(new_definition(name, wanted))
        except HubSpotError as exc:
            self._add(f"event {name}", Verdict.MISSING, f"could not create it: {exc}")
            return None
        self._add(f"event {name}", Verdict.OK, "created by --create-missing")
        return created

    async def _event_property(self, event: str, prop: str, types: dict[str, str]) -> None:
        what = f"  property {prop}"
        kind = types.get(prop)
        if kind is None and self._create:
            kind = await self._create_property(event, prop)
        if kind is None:
            fix = "add it to the event in HubSpot or run forwarder check --create-missing"
            self._add(what, Verdict.MISSING, f"not on {event}: {fix}")
        elif kind in FILLABLE:
            self._add(what, Verdict.OK, f"{kind}: takes {FILLABLE[kind]}")
        elif kind in NEEDS_CARE:
            self._add(what, Verdict.NOTE, f"{kind}: the forwarder sends text; {NEEDS_CARE[kind]}")
        else:
            self._add(what, Verdict.MISSING, f"type {kind!r} cannot take text: make it a string")

    async def _create_property(self, event: str, prop: str) -> str | None:
        try:
            made = await self._client.create_event_property(event, new_property(prop))
        except HubSpotError as exc:
            self._add(f"  property {prop}", Verdict.MISSING, f"could not create it: {exc}")
            return None
        return made.type

    async def _contact_properties(self) -> None:
        contacts = self._portal.contacts
        named = list(contacts.properties.values())
        if contacts.user_id_property is not None:
            named.append(contacts.user_id_property)
        if not named:
            return
        reply = await self._client.list_contact_properties()
        lookups = contacts.user_id_property is not None
        if not self._scope_item("contact reads", reply.response, needed=lookups):
            return
        existing = {p.name for p in reply.data.results} if reply.data else set()
        for prop in dict.fromkeys(named):
            if prop in existing:
                self._add(f"contact property {prop}", Verdict.OK, "exists")
            else:
                fix = "create it in HubSpot (Settings > Properties > Contact properties)"
                self._add(f"contact property {prop}", Verdict.MISSING, f"not found: {fix}")

    def _timeline_templates(self) -> None:
        kind = "event type" if self._paths.dated_timeline else "template"
        templates = {m.timeline_template for m in self._portal.events if m.timeline_template}
        for template in sorted(t for t in templates if t is not None):
            if self._paths.dated_timeline and template.isdigit():
                # A number is a v3 template id: dated versions name the event type instead.
                fix = 'use the app\'s event type name, or api_version = "v3"'
                self._add(
                    f"timeline {kind} {template}", Verdict.MISSING, f"a v3 template id: {fix}"
                )
                continue
            self._add(
                f"timeline {kind} {template}",
                Verdict.NOTE,
                "not readable with an account credential: make sure the app defines it",
            )


def _required_scopes(response: HubSpotResponse) -> list[str]:
    found: list[str] = []
    for detail in response.error.errors if response.error else []:
        scopes = detail.context.get("requiredGranularScopes", [])
        found.extend([scopes] if isinstance(scopes, str) else scopes)
    return found
