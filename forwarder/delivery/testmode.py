"""Test mode: events flagged ``test`` (``context.test`` or a test source) of a portal that is
not the sandbox are delivered to an in-process sandbox made for that portal, never to HubSpot.

The sandbox is made on the first test event (most portals never see one); custom event
definitions it lacks are created there on first use, like for a sandbox portal. The
composition root (``forwarder/compose.py``) gives each such portal's workers their test sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Ready
from forwarder.delivery.mapping import Conversion
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion
from forwarder.storage.roles import Metadata


class LazyTestSandbox:
    """One real portal's test sandbox: its client made on first use."""

    def __init__(
        self, portal: str, connect: Callable[[], HubSpotClient], storage: Metadata
    ) -> None:
        """Set up the sandbox; nothing is made until the first test event.

        Args:
            portal: the real portal whose test events this sandbox takes.
            connect: makes the sandbox (on first call) and a client of it.
            storage: where the sandbox's definition catalog is cached.
        """
        self._portal = portal
        self._connect = connect
        self._storage = storage
        self._client: HubSpotClient | None = None
        self._catalog: DefinitionCatalog | None = None

    async def client_for(self, ready: Sequence[Ready]) -> HubSpotClient:
        """The sandbox client, with the definitions these inputs need created."""
        if self._client is None or self._catalog is None:
            self._client = self._connect()
            self._catalog = DefinitionCatalog(
                f"test:{self._portal}", self._client, self._storage, create_missing=True
            )
        for r in ready:
            if isinstance(r.input, EventCompletion):
                await self._catalog.ensure(Conversion(r.input.event_name, r.input.properties))
        return self._client
