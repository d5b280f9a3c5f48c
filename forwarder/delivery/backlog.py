"""The backlog gauges: per queue, the items waiting to be sent and the age of the oldest.

``forwarder_queue_depth`` and ``forwarder_queue_oldest_age_seconds`` (docs/operations.md) are
sampled from the store every few seconds, so every replica exports what the shared queues hold,
not only what its own workers saw.
"""

from __future__ import annotations

from collections.abc import Sequence

from forwarder.clock import Clock
from forwarder.storage.roles import DeliveryQueue
from forwarder.telemetry import Metrics, get_logger

QUEUE_GAUGES_S = 2.0
"""Seconds between samples while sampling is cheap (a small backlog, or Redis)."""
BUSY_SHARE = 0.2
"""At most this share of the time goes to sampling: on SQLite a sample reads an index entry per
waiting item (beside the writer thread, not on it: about 20 ms of CPU per 100,000 on the
reference machine, paced there at a tenth of a core, ``SCAN_SHARE``, so ten times that long),
so a huge backlog is sampled less often instead of costing a core: about 2 % of one."""


class QueueGauges:
    """Samples the queues of the configured workers into the backlog gauges."""

    def __init__(
        self,
        storage: DeliveryQueue,
        queues: Sequence[tuple[str, str]],
        metrics: Metrics,
        clock: Clock,
        *,
        every_s: float = QUEUE_GAUGES_S,
    ) -> None:
        self._storage = storage
        self._queues = tuple(queues)
        self._metrics = metrics
        self._clock = clock
        self._every_s = every_s
        self._log = get_logger("delivery")

    async def sample(self) -> None:
        """Set both gauges of every queue from the store, now."""
        now = self._clock.now()
        for portal, destination in self._queues:
            depth, age_s = await self._storage.queue_depth(portal, destination, now=now)
            self._metrics.queue_depth.labels(portal, destination).set(depth)
            self._metrics.queue_age.labels(portal, destination).set(age_s)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            started = self._clock.monotonic()
            try:
                await self.sample()
            except Exception:  # a long-lived loop: log, count, carry on
                self._log.exception("queue_gauges_failed")
                self._metrics.errors.labels("queue_gauges", "loop").inc()
            spent = self._clock.monotonic() - started
            await self._clock.sleep(max(self._every_s, spent / BUSY_SHARE - spent))
