"""The delivery overview: the funnel per portal and queue, the conservation check, dead letters
(list, replay, purge) and erasure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from prometheus_client import Counter

from forwarder.config import Settings
from forwarder.debugger.explain import hubspot_reason
from forwarder.debugger.masking import Masker
from forwarder.debugger.models import (
    Conservation,
    DeadLetter,
    Erased,
    IngestFunnel,
    Overview,
    PortalFunnel,
    QueueCounts,
    QueueFunnel,
    Stats,
)
from forwarder.delivery.engine import Engine
from forwarder.storage.base import Key
from forwarder.storage.conservation import Counts, balance
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.quality import flush_quality
from forwarder.storage.roles import Counters, DebugView, DeliveryQueue, IdentityGraph
from forwarder.telemetry import Metrics

_MAX_BULK = 100_000


class FunnelStore(DebugView, Counters, Protocol):
    """The overview's reads: item counts and dead letters, and the shared ingest totals."""


class DeadLetterStore(DebugView, DeliveryQueue, Protocol):
    """Dead letters found, then replayed or purged."""


def counter_total(counter: Counter, **labels: str) -> int:
    """Sum of a Prometheus counter's ``_total`` samples whose labels match ``labels``."""
    total = 0.0
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return int(total)


def conservation(counts: Counts) -> Conservation:
    """accepted vs final + open over every queue."""
    b = balance(counts)
    return Conservation(
        accepted=b.accepted, final=b.final, open=b.open, drift=b.drift, ok=b.drift == 0
    )


async def stats(storage: DebugView) -> Stats:
    """Counts per queue and the conservation check."""
    counts = await storage.counts()
    queues: dict[tuple[str, str], dict[str, int]] = {}
    for (portal, destination, state), n in sorted(counts.items()):
        queues.setdefault((portal, destination), {})[state] = n
    return Stats(
        queues=[QueueCounts(portal=p, destination=d, counts=c) for (p, d), c in queues.items()],
        conservation=conservation(counts),
    )


def _funnel(counts: Counts, portal: str, destination: str, paused: str | None) -> QueueFunnel:
    def of(state: str) -> int:
        return counts.get((portal, destination, state), 0)

    queue = balance(counts, (portal, destination))
    return QueueFunnel(
        destination=destination,
        accepted=queue.accepted,
        pending=queue.open,
        delivered=of("delivered"),
        dead=of("dead"),
        dropped=of("dropped"),
        expired=of("expired"),
        drift=queue.drift,
        paused=paused,
    )


async def dead_letters(
    storage: DebugView, masker: Masker, *, portal: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Dead-lettered items, oldest first, with HubSpot's reason."""
    out = []
    for item in await storage.items_in_state("dead", portal=portal, limit=limit):
        event = await storage.get_event(item.event_seq)
        message, correlation, category = hubspot_reason(item.outcome)
        out.append(
            DeadLetter(
                id=item.id,
                event_seq=item.event_seq,
                portal=item.portal,
                destination=item.destination,
                message_id=event.message_id if event else None,
                name=event.name if event else None,
                reason=masker.text(message) or "",
                correlation_id=correlation,
                category=category,
                updated_at=item.updated_at,
            )
        )
    return out


async def overview(
    storage: FunnelStore, settings: Settings, engine: Engine, metrics: Metrics, masker: Masker
) -> Overview:
    """The funnel: received -> rejected -> duplicates -> per queue states, and dead letters.

    Every figure comes from the store, so every replica shows the same ones, across restarts:
    the ingest counts are the all-time totals the replicas add to (this replica's latest
    counts are added first), the queue states the store's own counts.
    """
    await flush_quality(storage, metrics.quality)
    totals = await storage.ingest_totals()
    counts = await storage.counts()
    paused = engine.paused()
    queues = sorted({(p, d) for p, d, _ in counts} | set(engine.workers))

    def total(metric: str, sources: Collection[str] | None = None) -> int:
        return sum(
            n for (s, m), n in totals.items() if m == metric and (sources is None or s in sources)
        )

    portals = []
    for name in settings.portals:
        sources = {s.name for s in settings.sources if s.portal == name}
        portals.append(
            PortalFunnel(
                portal=name,
                received=total("received", sources),
                queues=[_funnel(counts, p, d, paused.get((p, d))) for p, d in queues if p == name],
            )
        )
    ingest = IngestFunnel(
        received=total("received"),
        accepted=total("accepted"),
        rejected=total("rejected"),
        duplicates=total("duplicate"),
    )
    return Overview(
        ingest=ingest,
        portals=portals,
        conservation=conservation(counts),
        dead_letters=await dead_letters(storage, masker),
    )


async def _dead_ids(
    storage: DebugView, ids: Sequence[int], everything: bool, portal: str | None
) -> list[int]:
    """The chosen ids that are dead letters now (a purge must never touch a live item)."""
    dead = [i.id for i in await storage.items_in_state("dead", portal=portal, limit=_MAX_BULK)]
    if everything:
        return dead
    wanted = set(ids)
    return [i for i in dead if i in wanted]


async def replay(
    storage: DeadLetterStore,
    engine: Engine,
    ids: Sequence[int],
    *,
    now: float,
    everything: bool = False,
    portal: str | None = None,
) -> int:
    """Dead letters back to their queue (safe: each carries the same uuid as before)."""
    chosen = await _dead_ids(storage, ids, everything, portal)
    moved = await storage.requeue(chosen, state="dead", now=now) if chosen else 0
    for worker_portal, destination in engine.workers:
        engine.notify(worker_portal, (destination,))
    return moved


async def purge(
    storage: DeadLetterStore,
    ids: Sequence[int],
    *,
    now: float,
    everything: bool = False,
    portal: str | None = None,
) -> int:
    """Dead letters end as dropped (``Reason.PURGED``).

    The contract moves final items only back to pending, so a purge is a requeue immediately
    followed by a finish; the workers are not woken in between, and they poll a queue at most
    every few seconds, so the item is not sent again.
    """
    chosen = await _dead_ids(storage, ids, everything, portal)
    if not chosen:
        return 0
    moved = await storage.requeue(chosen, state="dead", now=now)
    await storage.finish(chosen, "dropped", now=now, outcome=Outcome(Reason.PURGED))
    return moved


async def erase(
    storage: IdentityGraph,
    settings: Settings,
    keys: Sequence[Key],
    portal: str | None,
    now: float,
) -> list[Erased]:
    """Remove a person from the graph and from held and queued events, per portal."""
    out = []
    for name in [portal] if portal is not None else list(settings.portals):
        record = await storage.erase(name, keys, now=now)
        out.append(
            Erased(
                portal=name,
                identifiers=record.identifiers,
                events=record.events,
                items=record.items,
            )
        )
    return out
