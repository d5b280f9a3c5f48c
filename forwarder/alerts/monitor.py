"""Takes snapshots of the forwarder, fires each alert condition once, repeats it after the
cooldown while it holds, and sends a resolved message when it clears."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple, Protocol

import msgspec
from prometheus_client import Counter

from forwarder.alerts.rules import Condition, Requests, Snapshot, TypeScore, evaluate
from forwarder.alerts.webhook import Status, WebhookSender, payload
from forwarder.clock import Clock
from forwarder.config import AlertSettings, Settings, secrets_of
from forwarder.debugger.quality import WINDOW_HOURS, percentile_ms, report
from forwarder.delivery.engine import Engine
from forwarder.delivery.envelopes import Envelope
from forwarder.errors import ServiceUnavailableError
from forwarder.storage.base import QualityCount
from forwarder.storage.conservation import balance
from forwarder.storage.roles import Counters, DebugView, Lifecycle
from forwarder.telemetry import Metrics, get_logger

_CHECK_TIMEOUT_S = 2.0


def hubspot_requests(counter: Counter) -> Requests:
    """Totals of requests to HubSpot by outcome, from a counter with a ``status`` label (the
    one place to point at another metric, e.g. one that also has a portal label)."""
    total = throttled = failed = 0
    for metric in counter.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            n, status = int(sample.value), sample.labels.get("status", "")
            total += n
            if status == "429":
                throttled += n
            elif not status.isdigit() or status == "0" or int(status) >= 500:
                failed += n
    return Requests(total, throttled, failed)


class _Active(NamedTuple):
    condition: Condition
    first_at: float
    sent_at: float


class Receiver:
    """One ``[[alerts]]`` entry: its rules, its sender and what it has fired."""

    def __init__(self, settings: AlertSettings, sender: WebhookSender) -> None:
        self.settings = settings
        self.sender = sender
        self.active: dict[str, _Active] = {}

    def step(self, now: Snapshot, then: Snapshot) -> list[tuple[Status, Condition]]:
        """Compare what holds now with what was fired; queue and return the messages."""
        holding = {c.key: c for c in evaluate(now, then, self.settings.rules)}
        sent: list[tuple[Status, Condition]] = []
        for key, condition in holding.items():
            was = self.active.get(key)
            if was is None or now.at - was.sent_at >= self.settings.cooldown_s:
                first = now.at if was is None else was.first_at
                self.active[key] = _Active(condition, first, now.at)
                self._send("firing", condition, now.at, first)
                sent.append(("firing", condition))
            else:
                self.active[key] = was._replace(condition=condition)
        for key in [k for k in self.active if k not in holding]:
            gone = self.active.pop(key)
            self._send("resolved", gone.condition, now.at, gone.first_at)
            sent.append(("resolved", gone.condition))
        return sent

    def _send(self, status: Status, condition: Condition, at: float, since: float) -> None:
        self.sender.submit(payload(status, condition, at=at, since=since))


class WatchedStore(Lifecycle, DebugView, Counters, Protocol):
    """What the alert snapshot reads: writability, item counts and quality counters."""


class AlertMonitor:
    """The snapshot loop shared by every receiver."""

    def __init__(
        self,
        settings: Settings,
        storage: WatchedStore,
        engine: Engine,
        metrics: Metrics,
        clock: Clock,
        receivers: list[Receiver],
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._engine = engine
        self._metrics = metrics
        self._clock = clock
        self.receivers = receivers
        self.every_s = min((r.settings.evaluate_every_s for r in receivers), default=30.0)
        self._keep_s = max((r.settings.rules.window_s for r in receivers), default=600.0)
        self._history: deque[Snapshot] = deque()
        self._log = get_logger("alerts")

    async def snapshot(self) -> Snapshot:
        """What the rules look at, now."""
        at = self._clock.now()
        paused = {f"{p}/{d}": why for (p, d), why in self._engine.paused().items()}
        requests = hubspot_requests(self._metrics.requests_to_hubspot)
        quotas = {}
        for name, portal in self._engine.portals.items():
            quota = portal.envelopes.quota(Envelope.EVENTS)
            if quota is not None:
                quotas[name] = quota.usage()
        base = Snapshot(at=at, paused=paused, requests=requests, quotas=quotas)
        try:
            await asyncio.wait_for(self._storage.check_writable(), _CHECK_TIMEOUT_S)
            counts = await self._storage.counts()
            last = int(at // 3600)
            rows = await self._storage.quality_hours(last - WINDOW_HOURS["day"], last)
        except (ServiceUnavailableError, TimeoutError) as exc:
            return msgspec.structs.replace(base, storage_error=str(exc) or "no answer")
        dead = sum(n for (_, _, s), n in counts.items() if s == "dead")
        return msgspec.structs.replace(
            base,
            dead_total=dead,
            latency_p95_ms=_p95(rows, last),
            scores=_scores(rows, at),
            drift=balance(counts).drift,
        )

    async def check(self) -> list[tuple[Status, Condition]]:
        """Take a snapshot and step every receiver; returns the messages queued."""
        now = await self.snapshot()
        self._history.append(now)
        while self._history and self._history[0].at < now.at - self._keep_s:
            self._history.popleft()
        sent = []
        for receiver in self.receivers:
            window_s = receiver.settings.rules.window_s
            then = next(s for s in self._history if s.at >= now.at - window_s)
            sent += receiver.step(now, then)
        return sent

    async def run(self) -> None:
        """Check forever (cancelled at shutdown)."""
        while True:
            try:
                for status, condition in await self.check():
                    self._log.info("alert_queued", status=status, key=condition.key)
            except Exception:  # a long-lived loop: log and carry on
                self._log.exception("alert_check_failed")
            await self._clock.sleep(self.every_s)


def _p95(rows: list[QualityCount], last: int) -> int | None:
    counts: dict[str, int] = {}
    for r in rows:
        if r.hour >= last - WINDOW_HOURS["hour"] and r.metric.startswith("latency_le:"):
            counts[r.metric] = counts.get(r.metric, 0) + r.n
    return percentile_ms(counts, 0.95)


def _scores(rows: list[QualityCount], at: float) -> dict[str, TypeScore]:
    last = int(at // 3600)
    recent = [r for r in rows if r.hour >= last - WINDOW_HOURS["hour"]]
    day = {q.event_type: q.score for q in report(rows, "day", at).event_types}
    return {
        q.event_type: TypeScore(q.score, day.get(q.event_type, q.score), q.figures.sent)
        for q in report(recent, "hour", at).event_types
    }


def alert_monitor(
    settings: Settings, storage: WatchedStore, engine: Engine, metrics: Metrics, clock: Clock
) -> AlertMonitor | None:
    """The monitor for ``[[alerts]]``; None when no receiver is configured."""
    if not settings.alerts:
        return None
    secrets = secrets_of(settings)
    receivers = [Receiver(a, WebhookSender(a, secrets)) for a in settings.alerts]
    return AlertMonitor(settings, storage, engine, metrics, clock, receivers)
