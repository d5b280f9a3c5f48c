"""The delivery engine: runs per portal a client, envelopes, definitions and one worker per
queue (built by the composition root, ``forwarder/compose.py``).

Also the housekeeping a queue needs: expiring held conversions, and the continuous
conservation check (accepted = delivered + dead + dropped + expired + pending).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from forwarder.clock import Clock
from forwarder.config import PortalSettings
from forwarder.delivery.backlog import QueueGauges
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.envelopes import PortalEnvelopes
from forwarder.delivery.mapping import Mapper
from forwarder.delivery.quality import ATTRIBUTED, DeliveryTally
from forwarder.delivery.worker import QueueWorker
from forwarder.hubspot.client import HubSpotClient
from forwarder.storage.base import FINAL_STATES, OPEN_STATES, Storage
from forwarder.storage.conservation import balance
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.telemetry import Metrics, get_logger

HOUSEKEEPING_S = 10.0
CONSERVATION_SHARE = 0.1
"""At most this share of the time goes to the conservation check. It counts every open item, a
scan of the items table on the monitoring reader (SQLite: ~0.1 s of CPU at 150,000 items,
0.6 s at 1.3 million, paced there at a tenth of a core, ``SCAN_SHARE``, so ten times that
long), whose CPU the event loop and the writer share: with a big backlog it runs less often
than every ``HOUSEKEEPING_S``, about 1 % of a core."""


class CheckPace:
    """When a costly periodic check is due again: ``took / share`` after it last started."""

    def __init__(self, share: float) -> None:
        self._share = share
        self._next = float("-inf")

    def due(self, now: float) -> bool:
        return now >= self._next

    def ran(self, started: float, finished: float) -> None:
        self._next = started + (finished - started) / self._share


class Portal:
    """Everything one portal's deliveries share."""

    def __init__(
        self,
        name: str,
        settings: PortalSettings,
        client: HubSpotClient,
        catalog: DefinitionCatalog,
        envelopes: PortalEnvelopes,
        mapper: Mapper,
    ) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self.catalog = catalog
        self.envelopes = envelopes
        self.mapper = mapper


class Engine:
    """Starts and stops every worker; ``notify`` routes accept-time wake-ups."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        metrics: Metrics,
        portals: Mapping[str, Portal],
        workers: Mapping[tuple[str, str], QueueWorker],
    ) -> None:
        """Take the portals and workers the composition root built (``forwarder/compose.py``).

        Args:
            portals: per portal name, what its deliveries share.
            workers: per (portal, destination), the worker of that queue.
        """
        self._storage = storage
        self._clock = clock
        self._metrics = metrics
        self._log = get_logger("delivery")
        self.portals: dict[str, Portal] = dict(portals)
        self.workers: dict[tuple[str, str], QueueWorker] = dict(workers)
        self._tasks: list[asyncio.Task[None]] = []

    def notify(self, portal: str, destinations: tuple[str, ...]) -> None:
        """Wake the workers of queues that just received items."""
        for destination in destinations:
            worker = self.workers.get((portal, destination))
            if worker is not None:
                worker.notify()

    def paused(self) -> dict[tuple[str, str], str]:
        """Destinations paused for credentials or scopes, with the reason."""
        return {k: w.paused_reason for k, w in self.workers.items() if w.paused_reason}

    async def load_definitions(self) -> None:
        """Load every portal's definitions (cached copy when HubSpot is unreachable)."""
        for link in self.portals.values():
            await link.catalog.load()

    async def start(self) -> None:
        """Load definitions, then start workers."""
        await self.load_definitions()
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
        conservation = CheckPace(CONSERVATION_SHARE)
        while True:
            await self._clock.sleep(HOUSEKEEPING_S)
            try:
                await self.expire_held()
                if conservation.due(started := self._clock.monotonic()):
                    await self.check_conservation()
                    conservation.ran(started, self._clock.monotonic())
            except Exception:  # a long-lived loop: log, count, carry on
                self._log.exception("housekeeping_failed")
                self._metrics.errors.labels("housekeeping", "loop").inc()

    async def expire_held(self) -> int:
        """Held conversions whose hold ran out end as expired (never identified)."""
        now = self._clock.now()
        held = await self._storage.items_in_state("held", limit=1000)
        due = [h.id for h in held if h.available_at <= now]
        if due:
            unidentified = Outcome(Reason.UNIDENTIFIED)
            await self._storage.finish(due, "expired", now=now, outcome=unidentified)
            self._metrics.discarded.labels("expired_unidentified", "false").inc(len(due))
            seqs = {
                h.event_seq for h in held if h.available_at <= now and h.destination == ATTRIBUTED
            }
            events = [e for s in seqs if (e := await self._storage.get_event(s)) is not None]
            DeliveryTally(self._metrics.quality).expired(events, now)
        return len(due)

    async def check_conservation(self) -> int:
        """accepted - (final + open) over every queue; exported and logged when not 0."""
        counts = await self._storage.counts()
        for portal, destination in {(p, d) for p, d, _ in counts}:
            for state in (*FINAL_STATES, *OPEN_STATES):
                self._metrics.items.labels(portal, destination, state).set(
                    counts.get((portal, destination, state), 0)
                )
        drift = balance(counts).drift
        self._metrics.conservation_drift.set(drift)
        if drift:
            self._log.error("conservation_drift_detected", drift=drift)
        return drift
