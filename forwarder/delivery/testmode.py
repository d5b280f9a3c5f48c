"""Test mode: events flagged ``test`` (``context.test`` or a test source) of a portal that is
not the sandbox are delivered to an in-process sandbox made for that portal, never to HubSpot.

The sandbox is made on the first test event (most portals never see one); custom event
definitions it lacks are created there on first use, like for a sandbox portal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import httpx

from forwarder.clock import Clock
from forwarder.config import Secret, Settings, portal_uses_sandbox
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Ready
from forwarder.delivery.engine import Engine
from forwarder.delivery.mapping import Conversion
from forwarder.hubspot.auth import StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion
from forwarder.hubspot.paths import ApiPaths, paths_for
from forwarder.storage.roles import Metadata


class SandboxRoute:
    """One real portal's test sandbox: a client made on first use."""

    def __init__(
        self,
        portal: str,
        transport: Callable[[], httpx.AsyncBaseTransport],
        storage: Metadata,
        clock: Clock,
        token: str,
        paths: ApiPaths,
    ) -> None:
        self._portal = portal
        self._paths = paths  # the portal's version: inputs are built in its shapes
        self._transport = transport
        self._storage = storage
        self._clock = clock
        self._token = token
        self._client: HubSpotClient | None = None
        self._catalog: DefinitionCatalog | None = None

    async def client_for(self, ready: Sequence[Ready]) -> HubSpotClient:
        """The sandbox client, with the definitions these inputs need created."""
        if self._client is None or self._catalog is None:
            self._client = HubSpotClient(
                "http://sandbox",
                StaticToken(Secret(self._token)),
                transport=self._transport(),
                clock=self._clock,
                paths=self._paths,
            )
            self._catalog = DefinitionCatalog(
                f"test:{self._portal}", self._client, self._storage, create_missing=True
            )
        for r in ready:
            if isinstance(r.input, EventCompletion):
                await self._catalog.ensure(Conversion(r.input.event_name, r.input.properties))
        return self._client


def route_test_events(
    engine: Engine,
    settings: Settings,
    storage: Metadata,
    clock: Clock,
    transport_for: Callable[[str], httpx.AsyncBaseTransport],
    token: str,
) -> None:
    """Give every worker of a non-sandbox portal its portal's test route."""
    for name, portal in settings.portals.items():
        if portal_uses_sandbox(portal):
            continue  # already delivers to the sandbox
        made = functools.partial(transport_for, name)
        paths = paths_for(portal.api_version)
        route = SandboxRoute(name, made, storage, clock, token, paths)
        for (worker_portal, _), worker in engine.workers.items():
            if worker_portal == name:
                worker.test_route = route
