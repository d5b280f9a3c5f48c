"""The storage contract cut into roles, each named for its job; a consumer depends on the smallest
role it needs, and a backend (``forwarder.storage.base.Storage``) is all of them.

========================  ==============================================================
``Lifecycle``              open, close, is a write possible now
``EventLog``               accept events durably (dedup), the backlog size, forget old rows
``DeliveryQueue``          the workers' side of the queues: lease, finish, retry, hold ...
``DebugView``              read back events, items, attempts and per-queue counts
``IdentityGraph``          who is who, held items waiting on identity, touch memory, erasure
``Counters``               counters every replica adds to: quality, ingest totals, rates
``SharedLimits``           quotas and the coordination replicas of one store share
``Metadata``               small persisted values
========================  ==============================================================

The record types the roles speak in (``NewEvent``, ``Item``, ``ItemRecord`` ...) live in
``forwarder.storage.base``; they are imported here for annotations only, so ``base`` can build
``Storage`` from these roles without an import cycle.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from forwarder.storage.base import (
        AppendResult,
        Attempt,
        Coordination,
        Erasure,
        FinalState,
        Item,
        ItemRecord,
        ItemState,
        Key,
        NewEvent,
        QualityCount,
        RateCount,
        StoredEvent,
        Touch,
        TouchMemory,
    )
    from forwarder.storage.outcomes import Outcome


class Lifecycle(Protocol):
    """Connecting, closing, and whether the store takes writes now (readiness)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create what is missing; raise ``StorageUnavailableError`` if it cannot."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release resources."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise ``StorageUnavailableError`` unless a write would succeed now."""


class EventLog(Protocol):
    """The durable log of accepted events, written by ingest."""

    @abstractmethod
    async def append(
        self, events: Sequence[NewEvent], *, now: float, dedup_window_s: float
    ) -> list[AppendResult]:
        """Store new events durably, suppressing duplicates by ``(portal, message_id)``.

        A ``messageId`` seen less than ``dedup_window_s`` ago (or the event's own window;
        including earlier in the same call) is a ``Duplicate``. Returns only once the
        accepted events are durable.
        """

    @abstractmethod
    async def pending_count(self) -> int:
        """Items not yet in a final state (cheap: used on every request for the backlog cap)."""

    @abstractmethod
    async def purge(self, *, dedup_before: float, events_before: float) -> int:
        """Forget dedup keys older than ``dedup_before`` and finished events older than
        ``events_before``; returns how many rows went."""


class DeliveryQueue(Protocol):
    """The queues ``(portal, destination)`` as the delivery workers (and operators) move them."""

    @abstractmethod
    async def lease(
        self, portal: str, destination: str, *, limit: int, now: float, lease_s: float
    ) -> list[Item]:
        """Take up to ``limit`` ready items of one queue, oldest first, for ``lease_s``.

        Ready: pending and due, or leased with an expired lease (a crashed worker's).
        """

    @abstractmethod
    async def finish(
        self, ids: Sequence[int], state: FinalState, *, now: float, outcome: Outcome | None = None
    ) -> None:
        """Record a final state for items (idempotent)."""

    @abstractmethod
    async def retry(
        self,
        ids: Sequence[int],
        *,
        available_at: float,
        now: float,
        outcome: Outcome | None = None,
        count_attempt: bool = True,
    ) -> None:
        """Put leased items back, due at ``available_at``.

        ``count_attempt`` is False when the failure was the destination's (a 5xx, a timeout, a
        429), not the items' own: their attempt count then stays as it was.
        """

    @abstractmethod
    async def expedite(self, portal: str, destination: str, *, now: float) -> int:
        """Pending items of a queue that wait out a retry backoff become due now.

        Called when HubSpot answers again after an outage, so the backlog drains at envelope
        speed instead of each item sitting out its own (up to minutes-long) backoff.
        """

    @abstractmethod
    async def requeue(self, ids: Sequence[int], *, state: FinalState, now: float) -> int:
        """Items in final ``state`` (dead letters) back to pending, due now, with the outcome
        ``Reason.REPLAYED``; how many moved.

        Safe because every request carries an id derived from the messageId.
        """

    @abstractmethod
    async def hold(
        self,
        ids: Sequence[int],
        *,
        until: float,
        now: float,
        outcome: Outcome | None = None,
        keys: Sequence[Key] = (),
    ) -> None:
        """Park items that wait for identity until ``until`` (or a release by ``keys``, see
        ``IdentityGraph.release_for``)."""

    @abstractmethod
    async def ready_at(self, portal: str, destination: str) -> float | None:
        """When the next item of a queue becomes ready (None: nothing pending)."""

    @abstractmethod
    async def queue_depth(self, portal: str, destination: str, *, now: float) -> tuple[int, float]:
        """Items of one queue waiting to be sent (pending or leased, not held) and the age in
        seconds of the oldest since it was received (0 when none wait).

        Cheap enough to ask every few seconds under load: no scan of the queue.
        """

    @abstractmethod
    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Keep delivery attempts for the debugger."""


class DebugView(Protocol):
    """Reading back what happened, for the debugger, alerts and the conservation check."""

    @abstractmethod
    async def get_event(self, seq: int) -> StoredEvent | None:
        """One accepted event."""

    @abstractmethod
    async def recent_events(self, *, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Events with ``seq > after_seq``, newest last."""

    @abstractmethod
    async def items_of(self, seq: int) -> list[ItemRecord]:
        """The delivery items of one event."""

    @abstractmethod
    async def items_in_state(
        self, state: ItemState, *, portal: str | None = None, limit: int = 100
    ) -> list[ItemRecord]:
        """Items in one state (dead letters, held), oldest first."""

    @abstractmethod
    async def attempts_of(self, item_ids: Sequence[int]) -> list[Attempt]:
        """Delivery attempts that carried any of these items."""

    @abstractmethod
    async def counts(self) -> dict[tuple[str, str, str], int]:
        """Items per ``(portal, destination, state)``, plus ``accepted`` per queue.

        Final states and ``accepted`` are running totals that survive purges, so
        ``accepted == sum(final) + sum(open)`` always holds unless an item was lost.
        """


class IdentityGraph(Protocol):
    """Which identifiers are one person, per portal; what waits on them; what they touched."""

    @abstractmethod
    async def link(self, portal: str, keys: Sequence[Key], *, now: float) -> None:
        """These identifiers are one person: merge the people they belonged to (idempotent)."""

    @abstractmethod
    async def people_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
        """For each known key, every identifier of its person (unknown keys are left out)."""

    @abstractmethod
    async def release_for(self, portal: str, keys: Sequence[Key], *, now: float) -> list[Item]:
        """Held items waiting on any of ``keys``: made pending and due now; returned."""

    @abstractmethod
    async def learn(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> list[Item]:
        """What one request teaches, in one storage call: ``link`` every group, then
        ``release_for`` every identifier of the people the groups now belong to; returns the
        items released (oldest first).

        The same result as those calls one after another; one transaction (SQLite) or one
        script (Redis), so ingest pays a constant number of round trips per request.
        """

    def learn_soon(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> Awaitable[list[Item]]:
        """``learn``, begun now and awaited later: ingest queues it beside its ``append``
        without a task of its own where the backend can (SQLite queues the job at once; Redis
        carries it in the script of the ``append`` that follows in the same turn of the loop,
        or learns it alone at the next turn)."""
        return asyncio.ensure_future(self.learn(portal, groups, now=now))

    @abstractmethod
    async def remap_contact(
        self, portal: str, old_ids: Sequence[str], new_id: str, *, now: float
    ) -> int:
        """A HubSpot merge: contact ids ``old_ids`` are now ``new_id``; returns rows changed."""

    @abstractmethod
    async def erase(self, portal: str, keys: Sequence[Key], *, now: float) -> Erasure:
        """Remove a person: their identifiers, their touch memory, and their events' personal
        data; open items of those events end as ``dropped`` (``Reason.ERASED``). A record without
        personal data remains."""

    @abstractmethod
    async def remember_touches(self, portal: str, seen: Sequence[tuple[Key, Touch]]) -> None:
        """Per identifier, keep the earliest and the latest touch seen (bounded: two each).

        Of touches with equal times the first to arrive stays first and the last to arrive
        becomes last (the snippet sends its first touch before its last); replaying the same
        touches changes nothing. Kept until the identifier is erased.
        """

    @abstractmethod
    async def touches_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, TouchMemory]:
        """The touch memory of each key that has one (keys without touches are left out)."""


class Counters(Protocol):
    """Counters every replica adds to: attribution quality per hour, all-time ingest totals,
    and HubSpot requests per minute."""

    @abstractmethod
    async def add_quality(self, counts: Sequence[QualityCount]) -> None:
        """Add to the hourly quality counters (shared by replicas), and the counts of
        ``TOTALLED_METRICS`` to the all-time totals, in one write; hours older than
        ``QUALITY_RETENTION_H`` before the newest given are forgotten."""

    @abstractmethod
    async def ingest_totals(self) -> dict[tuple[str, str], int]:
        """All-time totals of ``TOTALLED_METRICS``: ``(source, metric) -> n``, summed over
        replicas and restarts."""

    @abstractmethod
    async def quality_hours(self, first: int, last: int) -> list[QualityCount]:
        """Every quality counter of the hours ``first`` to ``last`` (inclusive), summed over
        replicas."""

    @abstractmethod
    async def add_rates(self, counts: Sequence[RateCount]) -> None:
        """Add to the per-minute request counts (shared by replicas); minutes older than
        ``RATE_RETENTION_MIN`` before the newest given are forgotten."""

    @abstractmethod
    async def rate_minutes(self, first: int, last: int) -> list[RateCount]:
        """Every request count of the minutes ``first`` to ``last`` (inclusive)."""


class SharedLimits(Protocol):
    """Limits every process on one store keeps together: quotas, and for replicas the rate
    windows, locks and OAuth tokens of ``coordination``."""

    def coordination(self) -> Coordination | None:
        """Shared windows and locks for replicas of this storage; None: one process only."""
        return None

    @abstractmethod
    async def spend_quota(
        self, portal: str, name: str, period: str, n: int, cap: int
    ) -> tuple[bool, int]:
        """Add ``n`` to one quota's count for ``period`` unless that passes ``cap``, atomically
        for every process on this store; the count outlives restarts.

        Returns:
            Whether ``n`` was added, and the count after the call.
        """

    @abstractmethod
    async def raise_quota(self, portal: str, name: str, period: str, used: int) -> int:
        """Make one quota's count for ``period`` at least ``used`` (what HubSpot says the
        account spent); return the count."""


class Metadata(Protocol):
    """Small persisted values (definitions cache, development key)."""

    @abstractmethod
    async def get_meta(self, key: str) -> bytes | None:
        """The value stored under ``key``, if any."""

    @abstractmethod
    async def set_meta(self, key: str, value: bytes) -> None:
        """Store a small value durably."""
