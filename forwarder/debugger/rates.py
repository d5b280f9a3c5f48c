"""Rate envelope usage per portal, sampled every few seconds into a one-hour ring buffer."""

from __future__ import annotations

from collections import deque

from forwarder.clock import Clock
from forwarder.debugger.models import (
    EnvelopeSample,
    EnvelopeUsage,
    MinuteRequests,
    PortalEnvelopes,
)
from forwarder.debugger.overview import counter_total
from forwarder.delivery.engine import Engine
from forwarder.delivery.envelopes import Envelope
from forwarder.delivery.envelopes import PortalEnvelopes as Budgets
from forwarder.storage.quality import flush_rates
from forwarder.storage.roles import Counters
from forwarder.telemetry import Metrics, get_logger

SAMPLE_EVERY_S = 5.0
HISTORY_S = 3600.0
HISTORY_MIN = 24 * 60
"""Minutes of shared request history the view returns."""


def usage(budgets: Budgets) -> list[EnvelopeUsage]:
    """Every envelope of one portal now: rolling windows, then the daily and monthly quotas."""
    limits = budgets.limits
    windows: tuple[tuple[str, Envelope, int], ...] = (
        ("crm_10s", Envelope.CRM, limits.crm_per_10s),
        ("search_1s", Envelope.SEARCH, limits.search_per_s),
        ("events_1s", Envelope.EVENTS, limits.events_per_s),
    )
    out = []
    for name, envelope, hubspot in windows:
        limiter = budgets.limiter(envelope)
        ours, phantoms = limiter.counts()
        declared = budgets.declared.get(envelope)
        interval_ms = declared.interval_ms if declared else None
        out.append(
            EnvelopeUsage(
                envelope=name,
                used=ours + phantoms,
                limit=limiter.limit,
                hubspot_limit=hubspot,
                window_s=limiter.window_s,
                allowance=limiter.allowance,
                rate_per_s=round(limiter.rate_per_s(), 3),
                declared_max=declared.max if declared else None,
                declared_remaining=declared.remaining if declared else None,
                declared_window_s=interval_ms / 1000 if interval_ms else None,
            )
        )
    quotas: tuple[tuple[str, Envelope, int | None], ...] = (
        ("crm_daily", Envelope.CRM, limits.crm_daily),
        ("events_monthly", Envelope.EVENTS, limits.events_monthly),
    )
    for name, envelope, cap in quotas:
        quota = budgets.quota(envelope)
        if quota is not None:
            out.append(
                EnvelopeUsage(
                    envelope=name,
                    used=quota.used,
                    limit=quota.cap,
                    hubspot_limit=cap,
                    window_s=None,
                )
            )
    return out


class RateHistory:
    """Samples the engine's envelopes; ``run`` is the long-lived loop, ``view`` reads."""

    def __init__(
        self, engine: Engine, metrics: Metrics, clock: Clock, every_s: float = SAMPLE_EVERY_S
    ) -> None:
        self.every_s = every_s
        self._clock = clock
        self._engine = engine
        self._metrics = metrics
        size = int(HISTORY_S / every_s) + 1
        self._samples: dict[str, deque[EnvelopeSample]] = {
            name: deque(maxlen=size) for name in engine.portals
        }
        self._log = get_logger("debugger")

    def too_many_requests(self) -> dict[str, int]:
        """429s HubSpot answered since start, per route (the metric has no portal label)."""
        per_route: dict[str, int] = {}
        for metric in self._metrics.requests_to_hubspot.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("status") == "429":
                    route = sample.labels.get("route", "")
                    per_route[route] = per_route.get(route, 0) + int(sample.value)
        return per_route

    def sample(self) -> None:
        """Record one sample per portal now."""
        now = self._clock.now()
        throttled = counter_total(self._metrics.requests_to_hubspot, status="429")
        for name, portal in self._engine.portals.items():
            shares = {u.envelope: round(u.used / u.limit, 4) for u in usage(portal.envelopes)}
            self._samples[name].append(
                EnvelopeSample(at=now, shares=shares, too_many_requests=throttled)
            )

    async def run(self) -> None:
        """Sample forever (cancelled at shutdown)."""
        while True:
            try:
                self.sample()
            except Exception:  # a long-lived loop: log and carry on
                self._log.exception("rate_sample_failed")
            await self._clock.sleep(self.every_s)

    async def view(self, storage: Counters) -> list[PortalEnvelopes]:
        """Per portal: usage now, the last hour of samples, each destination's breaker, and the
        last day's requests per minute from the store (every replica's; this one's latest
        counts are added first)."""
        await flush_rates(storage, self._metrics.rates)
        last = int(self._clock.now() // 60)
        history: dict[str, dict[int, dict[str, int]]] = {}
        for count in await storage.rate_minutes(last - HISTORY_MIN + 1, last):
            minute = history.setdefault(count.portal, {}).setdefault(count.minute, {})
            minute[count.outcome] = minute.get(count.outcome, 0) + count.n
        return [
            PortalEnvelopes(
                portal=name,
                now=usage(portal.envelopes),
                samples=list(self._samples[name]),
                history=[
                    MinuteRequests(
                        at=minute * 60.0,
                        ok=c.get("ok", 0),
                        throttled=c.get("throttled", 0),
                        errors=c.get("error", 0),
                    )
                    for minute, c in sorted(history.get(name, {}).items())
                ],
                breakers={
                    destination: worker.health.state.name.lower()
                    for (owner, destination), worker in self._engine.workers.items()
                    if owner == name
                },
            )
            for name, portal in self._engine.portals.items()
        ]

    def too_many_requests_by_policy(self) -> dict[str, int]:
        """429s HubSpot answered since start, per policy."""
        per_policy: dict[str, int] = {}
        for metric in self._metrics.hubspot_rate_limited.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    policy = sample.labels.get("policy", "")
                    per_policy[policy] = per_policy.get(policy, 0) + int(sample.value)
        return per_policy
