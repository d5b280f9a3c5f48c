"""The delivery engine: per portal a client, envelopes, definitions and one worker per queue.

Also the housekeeping a queue needs: expiring held conversions, and the continuous
conservation check (accepted = delivered + dead + dropped + expired + pending).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping

import httpx

from forwarder.clock import Clock
from forwarder.config import PortalSettings, Secret, Settings, portal_uses_sandbox
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.backlog import QueueGauges
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import Destination
from forwarder.delivery.destinations.contacts import Contacts
from forwarder.delivery.destinations.conversions import Conversions
from forwarder.delivery.destinations.forms import Forms
from forwarder.delivery.destinations.timeline import Timeline
from forwarder.delivery.envelopes import PortalEnvelopes
from forwarder.delivery.lookup import ContactLookup
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.quality import ATTRIBUTED, DeliveryTally
from forwarder.delivery.quotas import StoredQuota
from forwarder.delivery.stitch import Resolver
from forwarder.delivery.worker import QueueWorker, WorkerSettings
from forwarder.hubspot.auth import (
    LockFactory,
    OAuthTokens,
    StaticToken,
    TokenProvider,
    TokenStore,
)
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.paths import paths_for
from forwarder.storage.base import FINAL_STATES, OPEN_STATES, Coordination, SharedWindow, Storage
from forwarder.telemetry import Metrics, get_logger

HOUSEKEEPING_S = 10.0


class Portal:
    """Everything one portal's deliveries share."""

    def __init__(
        self,
        name: str,
        settings: PortalSettings,
        client: HubSpotClient,
        catalog: DefinitionCatalog,
        envelopes: PortalEnvelopes,
    ) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self.catalog = catalog
        self.envelopes = envelopes
        self.mapper = Mapper(settings)


def token_provider(
    portal: PortalSettings,
    *,
    transport: httpx.AsyncBaseTransport | None,
    base_url: str,
    clock: Clock,
    sandbox_token: str,
    lock_factory: LockFactory | None = None,
    store: TokenStore | None = None,
) -> TokenProvider:
    """OAuth when a refresh token is configured, else the static token or service key (both
    are sent as ``Authorization: Bearer``)."""
    if portal.refresh_token is not None and portal.client_secret is not None:
        return OAuthTokens(
            portal.client_id or "",
            portal.client_secret,
            portal.refresh_token,
            base_url=base_url,
            transport=transport,
            clock=clock,
            lock_factory=lock_factory,
            store=store,
        )
    return StaticToken(portal.access_token or portal.service_key or Secret(sandbox_token))


def _refresh_lock(shared: Coordination | None, portal: str) -> LockFactory | None:
    if shared is None:
        return None
    return lambda: shared.lock(f"oauth-refresh:{portal}", ttl_s=30.0)


def _windows(shared: Coordination | None, portal: str) -> Callable[[str], SharedWindow] | None:
    if shared is None:
        return None
    return lambda envelope: shared.window(portal, envelope)


class Engine:
    """Starts and stops every worker; ``notify`` routes accept-time wake-ups."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        clock: Clock,
        metrics: Metrics,
        transports: Mapping[str, httpx.AsyncBaseTransport],
        sandbox_token: str,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._clock = clock
        self._metrics = metrics
        self._log = get_logger("delivery")
        self.portals: dict[str, Portal] = {}
        self.workers: dict[tuple[str, str], QueueWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        shared = storage.coordination()  # replicas on Redis share windows and token refreshes
        for name, portal in settings.portals.items():
            transport = transports.get(name)
            base_url = "http://sandbox" if portal_uses_sandbox(portal) else portal.base_url
            provider = token_provider(
                portal,
                transport=transport,
                base_url=base_url,
                clock=clock,
                sandbox_token=sandbox_token,
                lock_factory=_refresh_lock(shared, name),
                store=shared.tokens(name) if shared is not None else None,
            )
            client = HubSpotClient(
                base_url,
                provider,
                transport=transport,
                clock=clock,
                timeout_s=portal.request_timeout_s,
                paths=paths_for(portal.api_version),
            )
            create = portal.unmapped_events == "auto" or portal_uses_sandbox(portal)
            envelopes = PortalEnvelopes.from_portal(
                portal,
                clock,
                _windows(shared, name),
                ledgers=functools.partial(StoredQuota, storage, name),
            )
            catalog = DefinitionCatalog(
                name,
                client,
                storage,
                create_missing=create,
                spend=functools.partial(envelopes.acquire, "lookups"),
            )
            self.portals[name] = Portal(name, portal, client, catalog, envelopes)
            lookup = None
            if portal.contacts.user_id_property is not None:
                lookup = ContactLookup(client, envelopes, clock, portal.contacts.user_id_property)
            resolver = Resolver(name, portal.identity_order, storage, lookup)
            mapper = self.portals[name].mapper
            attributor = None
            if portal.attribution.remember:
                attributor = Attributor(name, portal.attribution, storage)
            destinations: list[Destination] = [
                Conversions(portal, mapper, catalog, resolver, attributor),
                Timeline(portal, mapper, resolver, attributor),
                Contacts(portal),
            ]
            if portal.forms_guid is not None:
                destinations.append(Forms(portal))
            for destination in destinations:
                self.workers[(name, destination.name)] = QueueWorker(
                    name,
                    destination,
                    storage=storage,
                    client=client,
                    envelopes=envelopes,
                    settings=WorkerSettings.of(portal),
                    clock=clock,
                    metrics=metrics,
                )

    def notify(self, portal: str, destinations: tuple[str, ...]) -> None:
        """Wake the workers of queues that just received items."""
        for destination in destinations:
            worker = self.workers.get((portal, destination))
            if worker is not None:
                worker.notify()

    def paused(self) -> dict[tuple[str, str], str]:
        """Destinations paused for credentials or scopes, with the reason."""
        return {k: w.paused_reason for k, w in self.workers.items() if w.paused_reason}

    async def start(self) -> None:
        """Load definitions (cached copy when HubSpot is unreachable), then start workers."""
        for link in self.portals.values():
            await link.catalog.load()
        for (portal, destination), worker in self.workers.items():
            self._tasks.append(
                asyncio.create_task(worker.run(), name=f"deliver:{portal}:{destination}")
            )
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        gauges = QueueGauges(self._storage, list(self.workers), self._metrics, self._clock)
        self._tasks.append(asyncio.create_task(gauges.run(), name="queue-gauges"))

    async def stop(self, deadline_s: float) -> None:
        """Flush what the envelopes allow within the deadline; the rest stays durable."""
        await asyncio.gather(*(w.stop(deadline_s) for w in self.workers.values()))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for link in self.portals.values():
            await link.client.aclose()

    async def _housekeeping(self) -> None:
        while True:
            await self._clock.sleep(HOUSEKEEPING_S)
            try:
                await self.expire_held()
                await self.check_conservation()
            except Exception:  # a long-lived loop: log, count, carry on
                self._log.exception("housekeeping_failed")
                self._metrics.errors.labels("housekeeping", "loop").inc()

    async def expire_held(self) -> int:
        """Held conversions whose hold ran out end as expired (never identified)."""
        now = self._clock.now()
        held = await self._storage.items_in_state("held", limit=1000)
        due = [h.id for h in held if h.available_at <= now]
        if due:
            await self._storage.finish(due, "expired", now=now, detail="expired-unidentified")
            self._metrics.discarded.labels("expired_unidentified", "false").inc(len(due))
            seqs = {
                h.event_seq for h in held if h.available_at <= now and h.destination == ATTRIBUTED
            }
            events = [e for s in seqs if (e := await self._storage.get_event(s)) is not None]
            DeliveryTally(self._metrics.quality).expired(events, now)
        return len(due)

    async def check_conservation(self) -> int:
        """accepted - (final + open) per queue, summed; exported and logged when not 0."""
        counts = await self._storage.counts()
        queues = {(p, d) for p, d, _ in counts}
        drift = 0
        for portal, destination in queues:
            accepted = counts.get((portal, destination, "accepted"), 0)
            accounted = sum(
                counts.get((portal, destination, s), 0) for s in (*FINAL_STATES, *OPEN_STATES)
            )
            drift += accepted - accounted
            for state in (*FINAL_STATES, *OPEN_STATES):
                self._metrics.items.labels(portal, destination, state).set(
                    counts.get((portal, destination, state), 0)
                )
        self._metrics.conservation_drift.set(drift)
        if drift:
            self._log.error("conservation_drift_detected", drift=drift)
        return drift
