"""Delivery, built for the composition root (``forwarder/app.py``): per portal its client,
envelopes, definition catalog, identity resolver, destinations and one worker per queue, test
routing included, handed to the ``Engine`` ready. Nothing is patched after it is built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import httpx

from forwarder.clock import Clock
from forwarder.config import PortalSettings, Settings, portal_uses_sandbox
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Destination
from forwarder.delivery.destinations.contacts import Contacts
from forwarder.delivery.destinations.conversions import Conversions
from forwarder.delivery.destinations.forms import Forms
from forwarder.delivery.destinations.timeline import Timeline
from forwarder.delivery.engine import Engine, Portal
from forwarder.delivery.envelopes import PortalEnvelopes
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.quotas import StoredQuota
from forwarder.delivery.testmode import LazyTestSandbox
from forwarder.delivery.worker import IDLE_POLL_S, QueueWorker, TestSandbox, WorkerSettings
from forwarder.hubspot.auth import LockFactory
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.connect import portal_client, sandbox_client
from forwarder.identity.lookup import ContactLookup
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import Coordination, SharedWindow, Storage
from forwarder.telemetry import Metrics

TransportFor = Callable[[str], httpx.AsyncBaseTransport]
"""Per real portal name, the transport to the simulator taking its test events."""


class DeliveryWiring:
    """What every portal's parts share; ``engine()`` builds them all."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        clock: Clock,
        metrics: Metrics,
        *,
        sandbox_token: str,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        """Args:
        sandbox_token: the token a simulator accepts (sandbox portals without their own
            ``access_token``, and every real portal's test simulator).
        idle_poll_s: how often an idle queue looks for due items (short in a delivery
            process, which ingest's wake-ups do not reach).
        """
        self._idle_poll_s = idle_poll_s
        self._settings = settings
        self._storage = storage
        self._clock = clock
        self._metrics = metrics
        self._token = sandbox_token
        self._shared = storage.coordination()  # replicas on Redis share windows and tokens

    def engine(
        self, transports: Mapping[str, httpx.AsyncBaseTransport], test_transport: TransportFor
    ) -> Engine:
        """Every portal and worker, ready to run.

        Args:
            transports: per sandbox portal, the transport to its simulator (others: network).
            test_transport: makes the test simulator of a real portal (on its first test event).
        """
        portals: dict[str, Portal] = {}
        workers: dict[tuple[str, str], QueueWorker] = {}
        for name, settings in self._settings.portals.items():
            link = portals[name] = self.portal(name, settings, transports.get(name))
            sandbox = (
                None if portal_uses_sandbox(settings) else self.test_sandbox(link, test_transport)
            )
            for destination in self.destinations(link):
                workers[(name, destination.name)] = self.worker(link, destination, sandbox)
        return Engine(self._storage, self._clock, self._metrics, portals, workers)

    def portal(
        self, name: str, settings: PortalSettings, transport: httpx.AsyncBaseTransport | None
    ) -> Portal:
        """One portal's client, envelopes, definition catalog and mapper."""
        client = portal_client(
            settings,
            transport=transport,
            clock=self._clock,
            sandbox_token=self._token,
            lock_factory=_refresh_lock(self._shared, name),
            token_store=self._shared.tokens(name) if self._shared is not None else None,
        )
        envelopes = PortalEnvelopes.from_portal(
            settings,
            self._clock,
            _windows(self._shared, name),
            ledgers=functools.partial(StoredQuota, self._storage, name),
        )
        catalog = DefinitionCatalog(
            name,
            client,
            self._storage,
            create_missing=settings.unmapped_events == "auto" or portal_uses_sandbox(settings),
            spend=functools.partial(envelopes.acquire, "lookups"),
        )
        return Portal(name, settings, client, catalog, envelopes, Mapper(settings))

    def destinations(self, link: Portal) -> list[Destination]:
        """The queues one portal delivers, each with its identity resolver and attribution."""
        settings = link.settings
        lookup = None
        if settings.contacts.user_id_property is not None:
            lookup = ContactLookup(
                link.client, link.envelopes, self._clock, settings.contacts.user_id_property
            )
        resolver = Resolver(link.name, settings.identity_order, self._storage, lookup)
        attributor = None
        if settings.attribution.remember:
            attributor = Attributor(link.name, settings.attribution, self._storage)
        destinations: list[Destination] = [
            Conversions(settings, link.mapper, link.catalog, resolver, attributor),
            Timeline(settings, link.mapper, resolver, attributor),
            Contacts(settings),
        ]
        if settings.forms_guid is not None:
            destinations.append(Forms(settings, self._clock))
        return destinations

    def worker(
        self, link: Portal, destination: Destination, test_sandbox: TestSandbox | None
    ) -> QueueWorker:
        """The worker of one queue."""
        return QueueWorker(
            link.name,
            destination,
            storage=self._storage,
            client=link.client,
            envelopes=link.envelopes,
            settings=WorkerSettings.of(link.settings, idle_poll_s=self._idle_poll_s),
            clock=self._clock,
            metrics=self._metrics,
            test_sandbox=test_sandbox,
        )

    def test_sandbox(self, link: Portal, transport_for: TransportFor) -> LazyTestSandbox:
        """Where a real portal's test events go: its own simulator, made on first use."""

        def connect() -> HubSpotClient:
            return sandbox_client(
                link.settings.api_version,
                transport=transport_for(link.name),
                clock=self._clock,
                token=self._token,
            )

        return LazyTestSandbox(link.name, connect, self._storage)


def _refresh_lock(shared: Coordination | None, portal: str) -> LockFactory | None:
    if shared is None:
        return None
    return lambda: shared.lock(f"oauth-refresh:{portal}", ttl_s=30.0)


def _windows(shared: Coordination | None, portal: str) -> Callable[[str], SharedWindow] | None:
    if shared is None:
        return None
    return lambda envelope: shared.window(portal, envelope)
