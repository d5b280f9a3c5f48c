"""Worker: one per (portal, destination) queue: lease -> prepare -> send -> ack / retry.

A batch flushes when it is full, when its oldest event has waited ``max_delay_s``, or at
shutdown. Each request first waits for its envelope, so no worker ever exceeds HubSpot's
limits; the answer goes through the pure classifier, and every item ends in one recorded state.

Transient failures (5xx, timeouts, 429) go to the destination's breaker (``health``): the items
wait for it without their attempt count growing, and the first success makes every backed-off
item of the queue due again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol, cast

import msgspec

from forwarder.clock import Clock
from forwarder.config import PortalSettings
from forwarder.delivery.destinations import Destination, Drop, Hold, Prepared, Ready
from forwarder.delivery.envelopes import PortalEnvelopes
from forwarder.delivery.health import BREAKER_BASE_S, BREAKER_CAP_S, DestinationHealth, Ticket
from forwarder.delivery.quality import DeliveryTally
from forwarder.delivery.retry import (
    AlreadyDone,
    Done,
    GiveUp,
    Pause,
    RefreshAuth,
    Retry,
    RetryPartial,
    Split,
    classify,
)
from forwarder.delivery.retry import Outcome as Action
from forwarder.errors import HubSpotError, StorageUnavailableError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Attempt, Item
from forwarder.storage.outcomes import Outcome, Reason, describe
from forwarder.storage.roles import DeliveryQueue
from forwarder.telemetry import Metrics, get_logger

LEASE_S = 120.0
IDLE_POLL_S = 5.0


_ATTEMPT_REASONS: dict[type[Action], Reason] = {
    Done: Reason.DELIVERED,
    AlreadyDone: Reason.DELIVERED,
    Retry: Reason.RETRYING,
    RetryPartial: Reason.PARTIAL,
    Split: Reason.SPLIT,
    GiveUp: Reason.REJECTED,
    Pause: Reason.PAUSED,
    RefreshAuth: Reason.REAUTHORIZED,
}
"""What each answer of the classifier makes of the attempt, as recorded."""


_ALL_READY = {Ready}


def _sorted_out(prepared: Sequence[Prepared]) -> tuple[list[Ready], list[Hold], list[Drop]]:
    """What can go, what waits for an identity, what is dropped: one pass over the batch."""
    if set(map(type, prepared)) == _ALL_READY:  # the usual batch, told in C
        return cast(list[Ready], list(prepared)), [], []
    ready: list[Ready] = []
    holds: list[Hold] = []
    drops: list[Drop] = []
    for p in prepared:
        if isinstance(p, Ready):
            ready.append(p)
        elif isinstance(p, Hold):
            holds.append(p)
        else:
            drops.append(p)
    return ready, holds, drops


def _by_outcome(ready: Sequence[Ready]) -> list[tuple[Outcome, list[int]]]:
    """The items' ids grouped by the outcome each records, in order of first appearance.

    Most batches record one outcome (the destinations share one per identity kind and notes):
    that is checked in C (``list.count``, identity first), 1,000 -> 300 instructions per
    event under callgrind. Otherwise grouped by the outcome object (hashing a struct per item
    is not free); equal outcomes apart only cost a statement."""
    outcomes = [r.outcome for r in ready]
    if not outcomes:
        return []
    if outcomes.count(outcomes[0]) == len(outcomes):
        return [(outcomes[0], [r.item.id for r in ready])]
    by_outcome: dict[int, tuple[Outcome, list[int]]] = {}
    for r in ready:
        group = by_outcome.get(id(r.outcome))
        if group is None:
            group = by_outcome[id(r.outcome)] = (r.outcome, [])
        group[1].append(r.item.id)
    return list(by_outcome.values())


class WorkerSettings(msgspec.Struct, frozen=True):
    """How one queue flushes."""

    max_delay_s: float = 1.0
    max_event_age_s: float = 7 * 86400.0
    hold_s: float = 30 * 86400.0
    concurrency: int = 4
    oauth: bool = False
    paused_retry_s: float = 60.0
    time_scale: float = 1.0
    request_timeout_s: float = 10.0
    idle_poll_s: float = IDLE_POLL_S
    """An idle queue looks for due items this often, besides ``notify`` (which another
    process's ingest cannot call)."""

    @classmethod
    def of(cls, portal: PortalSettings, *, idle_poll_s: float = IDLE_POLL_S) -> WorkerSettings:
        return cls(
            idle_poll_s=idle_poll_s,
            max_delay_s=portal.max_delay_s,
            max_event_age_s=portal.max_event_age_s,
            hold_s=portal.hold_s,
            concurrency=portal.concurrency,
            oauth=portal.refresh_token is not None,
            paused_retry_s=portal.paused_retry_s,
            time_scale=portal.limits.time_scale,
            request_timeout_s=portal.request_timeout_s,
        )


class TestSandbox(Protocol):
    """Where a portal's test events go instead of HubSpot (its sandbox)."""

    async def client_for(self, ready: Sequence[Ready]) -> HubSpotClient:
        """A client of the sandbox, ready to take these inputs (definitions created)."""
        ...


class QueueWorker:
    """Delivers one queue; ``notify`` wakes it when new items arrive."""

    def __init__(
        self,
        portal: str,
        destination: Destination,
        *,
        storage: DeliveryQueue,
        client: HubSpotClient,
        envelopes: PortalEnvelopes,
        settings: WorkerSettings,
        clock: Clock,
        metrics: Metrics,
        test_sandbox: TestSandbox | None = None,
    ) -> None:
        self.portal = portal
        self.destination = destination
        self._storage = storage
        self._client = client
        self._envelopes = envelopes
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.paused_reason: str | None = None
        self._backing_off = False
        """True after a retryable failure: the next success makes backed-off items due."""
        scale = settings.time_scale
        self.health = DestinationHealth(
            clock,
            base_s=BREAKER_BASE_S / scale,
            cap_s=BREAKER_CAP_S / scale,
            probe_timeout_s=2 * settings.request_timeout_s,
        )
        self.test_sandbox = test_sandbox
        """Set for a portal that is not the sandbox: its test events go there instead."""
        self._log = get_logger("delivery").bind(portal=portal, destination=destination.name)
        self._quality = DeliveryTally(metrics.quality)

    def notify(self) -> None:
        """New items were accepted for this queue."""
        self._wake.set()

    async def run(self) -> None:
        """Form batches and send them until ``stop``; a long-lived loop that never dies."""
        while not self._stopping:
            try:
                if (wait := self.health.wait_s()) > 0:
                    await self._wait(wait)  # the breaker is open: leave the items in storage
                    continue
                batch = await self._form_batch()
                if batch:
                    await self._slots.acquire()
                    if self._stopping:
                        # ``stop`` no longer waits for new sends (the client may be closed):
                        # the batch stays leased, durable, and a restart resumes it.
                        self._slots.release()
                        break
                    task = asyncio.create_task(self._deliver_and_release(batch))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            except asyncio.CancelledError:
                raise
            except StorageUnavailableError as exc:
                # Storage failing, locked or full: an outage, not a bug. One line without a
                # traceback; the items stay stored and the loop looks again.
                self._log.warning("delivery_storage_unavailable", error=exc.reason)
                self._metrics.errors.labels("delivery", "storage").inc()
                await self._clock.sleep(1.0)
            except Exception:
                self._log.exception("delivery_loop_failed")
                self._metrics.errors.labels("delivery", "loop").inc()
                await self._clock.sleep(1.0)

    async def stop(self, deadline_s: float) -> None:
        """Stop forming batches; let in-flight sends finish within the deadline."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._inflight), deadline_s)

    async def _wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, timeout_s))
        self._wake.clear()

    async def _form_batch(self) -> list[Item]:
        items: list[Item] = []
        size = self.destination.batch_size
        while not self._stopping or items:
            now = self._clock.now()
            if len(items) < size and not self._stopping:
                try:
                    items += await self._storage.lease(
                        self.portal,
                        self.destination.name,
                        limit=size - len(items),
                        now=now,
                        lease_s=LEASE_S,
                    )
                except StorageUnavailableError:
                    if not items:
                        raise
                    return items  # send what is already leased rather than strand it
            if len(items) >= size or (items and self._stopping):
                return items
            if items:
                oldest = min(i.event.received_at for i in items)
                wait = oldest + self._settings.max_delay_s - now
                if wait <= 0:
                    return items
                await self._wait(wait)
            else:
                ready = await self._storage.ready_at(self.portal, self.destination.name)
                poll_s = self._settings.idle_poll_s
                await self._wait(poll_s if ready is None else min(poll_s, ready - now))
        return items

    async def _deliver_and_release(self, batch: list[Item]) -> None:
        try:
            await self._deliver(batch)
        except StorageUnavailableError as exc:
            # Storage failing, locked, full or out of connections: an outage, not a bug. One
            # line without a traceback; the batch is taken again (each input keeps its uuid).
            self._log.warning(
                "batch_delivery_storage_unavailable", items=len(batch), error=exc.reason
            )
            self._metrics.errors.labels("delivery", "storage").inc()
            await self._retry_soon(batch)
        except Exception:
            self._log.exception("batch_delivery_failed", items=len(batch))
            self._metrics.errors.labels("delivery", "batch").inc()
            await self._retry_soon(batch)
        finally:
            self._slots.release()

    async def _retry_soon(self, batch: list[Item]) -> None:
        """A failed batch back in 5 s; if storage refuses that too, its lease runs out and
        the items come back then."""
        now = self._clock.now()
        with contextlib.suppress(StorageUnavailableError):
            await self._storage.retry([i.id for i in batch], available_at=now + 5, now=now)

    async def _deliver(self, batch: list[Item]) -> None:
        prepared = await self.destination.prepare(batch)
        now = self._clock.now()
        ready, holds, drops = _sorted_out(prepared)
        self._quality.held(holds, now)
        for hold in holds:
            until = hold.item.event.received_at + self._settings.hold_s
            await self._storage.hold(
                [hold.item.id],
                until=until,
                now=now,
                outcome=Outcome(Reason.AWAITING_IDENTITY, notes=hold.notes),
                keys=hold.keys,
            )
        for drop in drops:
            policy = Outcome(Reason.POLICY, drop.reason)
            await self._storage.finish([drop.item.id], "dropped", now=now, outcome=policy)
        if drops:
            self._metrics.discarded.labels("policy", "true").inc(len(drops))
            self._quality.dropped(drops, now)
        if self.test_sandbox is not None and any([r.item.event.test for r in ready]):
            tests = [r for r in ready if r.item.event.test]  # never to a real portal
            ready = [r for r in ready if not r.item.event.test]
            await self._send(tests, await self.test_sandbox.client_for(tests))
        if ready:
            await self._send(ready)

    async def _send(self, ready: list[Ready], sandbox: HubSpotClient | None = None) -> None:
        """Send one batch to HubSpot, or with ``sandbox`` to the test sandbox (which spends
        none of the portal's envelopes)."""
        sent = [r for r in ready if r.input is not None]
        attempt = 1 + max([r.item.attempts for r in ready])  # a list: per event, no generator
        ticket = sent_at = None
        if sandbox is None:
            sent_at = await self._envelopes.acquire(self.destination.name, len(sent))
            if (ticket := self.health.ticket()) is None:  # opened while we waited our turn
                at = self._clock.now() + self.health.wait_s()
                await self._retry(ready, at, Outcome(Reason.RETRYING), own=False)
                return
        result = await self.destination.send(sandbox or self._client, sent)
        if sent_at is not None:  # HubSpot has counted it by now: the window counts from here
            self._envelopes.answered(self.destination.name, sent_at)
        outcome = classify(
            result,
            batch_size=len(sent),
            attempt=attempt,
            expected_results=self.destination.expects_results,
            oauth=self._settings.oauth,
            conflict_is_duplicate=self.destination.conflict_is_duplicate,
            input_keys=[r.key for r in sent],
            daily_reset_in_s=self._envelopes.seconds_until_daily_reset(),
        )
        await self._record(ready, result, outcome, observe=sandbox is None)
        await self._apply(ready, sent, outcome, sandbox, ticket)

    async def _record(
        self,
        ready: list[Ready],
        result: HubSpotResponse | HubSpotError,
        outcome: Action,
        *,
        observe: bool = True,
    ) -> None:
        if isinstance(result, HubSpotResponse):
            if observe:
                self._envelopes.observe(self.destination.name, result.rate_limit)
                self._export_envelope()
            status, duration = result.status, result.duration_ms
            correlation = result.correlation_id
            error = None if result.ok else (result.error.message if result.error else None)
            category = None if result.ok or not result.error else result.error.category
        else:
            status, duration, correlation, error = (
                result.status,
                0.0,
                result.correlation_id,
                str(result),
            )
            category = result.category
        self._metrics.requests_to_hubspot.labels(self.destination.route, str(status)).inc()
        if observe:
            route = self.destination.route
            self._metrics.hubspot_responses.labels(self.portal, route, str(status)).inc()
            self._metrics.rates.add(self._clock.now(), self.portal, route, status)
            if isinstance(outcome, Retry) and outcome.policy is not None:
                self._metrics.hubspot_rate_limited.labels(self.portal, route, outcome.policy).inc()
        attempt = Attempt(
            item_ids=tuple([r.item.id for r in ready]),
            at=self._clock.now(),
            route=self.destination.route,
            status=status,
            duration_ms=duration,
            correlation_id=correlation,
            error=error or None,
            reason=_ATTEMPT_REASONS[type(outcome)],
            category=category or None,
        )
        await self._storage.record_attempts([attempt])

    async def _apply(  # noqa: C901 - one case per classifier outcome: read as a table
        self,
        ready: list[Ready],
        sent: list[Ready],
        outcome: Action,
        sandbox: HubSpotClient | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        now = self._clock.now()
        if not (isinstance(outcome, Retry) and not outcome.own) and ticket is not None:
            await self._answered()
        match outcome:
            case Done() | AlreadyDone():
                await self._delivered(ready, now)
            case Retry(own=True, after_s=after, reason=reason):
                self._backing_off = True
                await self._retry(ready, now + after, Outcome(Reason.RETRYING, reason))
            case Retry(after_s=after, reason=reason, until_room=True) if sandbox is None:
                at = now + self._window_full(after)
                await self._retry(ready, at, Outcome(Reason.RETRYING, reason), own=False)
            case Retry(after_s=after, reason=reason, policy=policy):
                self._backing_off = True
                at = self._unwell(after, policy, ticket)
                await self._retry(ready, at, Outcome(Reason.RETRYING, reason), own=False)
            case RetryPartial(failed=failed, dead=dead, after_s=after, reason=reason):
                failed_keys = {sent[i].key for i in failed}
                dead_keys = {sent[i].key for i in dead}
                correlation = outcome.correlation_id
                again = Outcome(Reason.RETRYING, reason, correlation_id=correlation)
                refused = Outcome(Reason.REJECTED, reason, correlation_id=correlation)
                await self._retry([r for r in ready if r.key in failed_keys], now + after, again)
                await self._dead([r for r in ready if r.key in dead_keys], refused, now)
                done = [r for r in ready if r.key not in failed_keys | dead_keys]
                await self._delivered(done, now)
            case Split():
                half = len(sent) // 2
                for part in (sent[:half], sent[half:]):
                    keys = {r.key for r in part}
                    await self._send([r for r in ready if r.key in keys], sandbox)
            case GiveUp(reason=reason, correlation_id=correlation, category=category):
                await self._dead(
                    ready, Outcome(Reason.REJECTED, reason, category, correlation), now
                )
            case Pause(reason=reason, category=category):
                if sandbox is None:  # the test sandbox's answer says nothing of the portal
                    self._pause(f"{category}: {reason}")
                paused = Outcome(Reason.PAUSED, reason, category)
                await self._retry(ready, now + self._settings.paused_retry_s, paused)
            case RefreshAuth():
                await self._retry(ready, now, Outcome(Reason.REAUTHORIZED))

    def _window_full(self, after_s: float) -> float:
        """A rolling-window 429 that named no wait: seconds until the envelope has room.

        The envelope decides, not the breaker, and not a whole interval (``after_s`` is the
        most it waits): HubSpot answered, so the destination is well (a probe's 429 closes the
        breaker rather than leave it half-open), only its window is full.
        """
        self._backing_off = True
        if self.health.succeeded():
            self._export_breaker()
        return min(after_s, self._envelopes.throttled(self.destination.name))

    def _unwell(self, after_s: float, policy: str | None, ticket: Ticket | None) -> float:
        """A transient failure: slow the envelope (429) or the destination; when to try again."""
        now = self._clock.now()
        name = self.destination.name
        if policy is not None:
            self._envelopes.penalize(name, after_s)
            if policy == "DAILY":  # the day's budget, not the destination's health
                return now + after_s
            self._envelopes.throttled(name)
        if ticket is None:  # the test sandbox's failures say nothing of the portal
            return now + after_s
        failures = self.health.failures
        until = self.health.failed(ticket, floor_s=after_s if policy is not None else 0.0)
        self._export_breaker()
        wait_s = max(0.0, until - self._clock.monotonic())
        if self.health.failures != failures:  # not a request that left before it opened
            self._log.warning(
                "destination_breaker_opened", failures=self.health.failures, wait_s=round(wait_s, 2)
            )
        return now + wait_s

    async def _answered(self) -> None:
        """HubSpot answered (anything but a transient failure): the destination is well."""
        self._envelopes.succeeded(self.destination.name)
        if self.health.succeeded():
            self._log.info("destination_breaker_closed")
            self._export_breaker()
            self._backing_off = True
        if self._backing_off:
            # HubSpot answers again: what waits out a backoff may go now (the envelope still
            # paces it), so an outage's backlog drains at envelope speed.
            self._backing_off = False
            now = self._clock.now()
            expedited = await self._storage.expedite(self.portal, self.destination.name, now=now)
            if expedited:
                self._log.info("backlog_expedited", items=expedited)
                self.notify()

    def _export_breaker(self) -> None:
        gauge = self._metrics.breaker_state.labels(self.portal, self.destination.name)
        gauge.set(int(self.health.state))

    def _export_envelope(self) -> None:
        envelope = self._envelopes.envelope_for(self.destination.name)
        limiter = self._envelopes.limiter(envelope)
        labels = (self.portal, envelope.value)
        self._metrics.envelope_allowance.labels(*labels).set(limiter.allowance)
        self._metrics.envelope_window.labels(*labels).set(limiter.window_s)
        self._metrics.envelope_rate.labels(*labels).set(limiter.rate_per_s())
        declared = self._envelopes.declared.get(envelope)
        if declared is not None and declared.remaining is not None:
            self._metrics.envelope_remaining.labels(*labels).set(declared.remaining)

    async def _delivered(self, ready: Sequence[Ready], now: float) -> None:
        if not ready:
            return
        if self.paused_reason is not None:
            self._log.info("destination_resumed")
            self.paused_reason = None
            self._metrics.paused.labels(self.portal, self.destination.name).set(0)
            # What waited out the pause may go now (the envelope still paces it).
            if await self._storage.expedite(self.portal, self.destination.name, now=now):
                self.notify()
        for outcome, ids in _by_outcome(ready):
            # The identity used and why, for the debugger (notes name sources, never values).
            await self._storage.finish(ids, "delivered", now=now, outcome=outcome)
        self._metrics.sent.labels(self.destination.name).inc(len(ready))
        self._quality.delivered(ready, now)
        self._log.info("batch_delivered", items=len(ready))

    async def _retry(
        self, ready: Sequence[Ready], at: float, outcome: Outcome, *, own: bool = True
    ) -> None:
        """Put items back due at ``at``; ``own``: the failure was theirs (counts an attempt)."""
        if not ready:
            return
        now = self._clock.now()
        expired = [
            r for r in ready if r.item.event.received_at + self._settings.max_event_age_s < at
        ]
        live = [r for r in ready if r not in expired]
        if expired:
            too_old = msgspec.structs.replace(
                outcome, reason=Reason.TOO_OLD, message=describe(outcome) or ""
            )
            ids = [r.item.id for r in expired]
            await self._storage.finish(ids, "expired", now=now, outcome=too_old)
            self._metrics.discarded.labels("expired", "false").inc(len(expired))
            self._quality.failed([r.item.event for r in expired], too_old, now)
        if live:
            await self._storage.retry(
                [r.item.id for r in live],
                available_at=at,
                now=now,
                outcome=outcome,
                count_attempt=own,
            )
            self._log.info(
                "batch_retry_scheduled",
                items=len(live),
                after_s=round(at - now, 2),
                reason=describe(outcome) or "",
            )
            self._wake.set()  # an idle loop sleeps until the next due item: this may be sooner

    async def _dead(self, ready: Sequence[Ready], outcome: Outcome, now: float) -> None:
        if not ready:
            return
        await self._storage.finish([r.item.id for r in ready], "dead", now=now, outcome=outcome)
        self._metrics.discarded.labels("dead_letter", "false").inc(len(ready))
        self._quality.failed([r.item.event for r in ready], outcome, now)
        self._log.warning(
            "batch_dead_lettered",
            items=len(ready),
            reason=outcome.message,
            category=outcome.category,
            correlation_id=outcome.correlation_id,
        )

    def _pause(self, reason: str) -> None:
        if self.paused_reason is None:
            self._log.error(
                "destination_paused",
                reason=reason,
                action="fix the token or scopes; events stay queued",
            )
        self.paused_reason = reason
        self._metrics.paused.labels(self.portal, self.destination.name).set(1)
