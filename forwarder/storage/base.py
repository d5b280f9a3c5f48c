"""The storage contract every backend implements (SQLite by default, Redis for replicas).

One contract test suite (``tests/storage/test_contract.py``) runs against every backend.

Vocabulary:
    event   an accepted Segment message, kept for the debugger and for replay.
    item    one event's delivery to one destination queue ``(portal, destination)``; every item
            ends in exactly one final state (``delivered``, ``dead``, ``dropped``, ``expired``)
            and is ``pending``, ``leased`` or ``held`` until then.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

import msgspec

from forwarder.storage.outcomes import Outcome, Reason

FinalState = Literal["delivered", "dead", "dropped", "expired"]
OpenState = Literal["pending", "leased", "held"]
ItemState = FinalState | OpenState
FINAL_STATES: tuple[FinalState, ...] = ("delivered", "dead", "dropped", "expired")
OPEN_STATES: tuple[OpenState, ...] = ("pending", "leased", "held")


class NewEvent(msgspec.Struct, frozen=True):
    """An event ready to be stored, with the queues it must be delivered to."""

    portal: str
    message_id: str
    source: str
    type: str
    name: str | None
    received_at: float
    payload: bytes
    """The normalised event as JSON (unknown fields kept)."""
    destinations: tuple[str, ...] = ()
    """Destination queues (``conversions``, ``timeline``, ``contacts``) for this portal."""
    dropped: tuple[tuple[str, str], ...] = ()
    """(destination, why) pairs recorded straight away as ``dropped`` by policy (their outcome:
    ``Reason.POLICY`` with ``why`` as its message)."""
    test: bool = False
    dedup_window_s: float | None = None
    """Overrides the dedup window for this event (content fingerprints use a short one)."""


class Accepted(msgspec.Struct, frozen=True):
    """The event is durable under ``seq``."""

    seq: int


class Duplicate(msgspec.Struct, frozen=True):
    """The ``messageId`` was seen within the dedup window; nothing was stored."""

    seq: int


AppendResult = Accepted | Duplicate


class StoredEvent(msgspec.Struct, frozen=True):
    """An accepted event as stored."""

    seq: int
    portal: str
    message_id: str
    source: str
    type: str
    name: str | None
    received_at: float
    payload: bytes
    test: bool


class Item(msgspec.Struct, frozen=True):
    """A leased delivery item, with its event."""

    id: int
    portal: str
    destination: str
    attempts: int
    event: StoredEvent


class ItemRecord(msgspec.Struct, frozen=True):
    """An item's state, for the debugger and tests."""

    id: int
    event_seq: int
    portal: str
    destination: str
    state: ItemState
    attempts: int
    available_at: float
    updated_at: float
    outcome: Outcome | None
    """What came of it so far (None: nothing yet, a fresh item)."""


class QualityCount(msgspec.Struct, frozen=True):
    """One counter of attribution quality: ``n`` times ``metric`` in one hour for one event
    type of one source (``hour`` is Unix time // 3600; see ``forwarder.storage.quality``)."""

    hour: int
    source: str
    event_type: str
    metric: str
    n: int


QUALITY_RETENTION_H = 8 * 24
"""Hours of quality counters kept: a week plus a day, so "the last week" is always whole."""


class RateCount(msgspec.Struct, frozen=True):
    """HubSpot requests of one minute (Unix time // 60) to one route of one portal, by outcome
    (``ok``, ``throttled``, ``error``), summed over replicas."""

    minute: int
    portal: str
    route: str
    outcome: str
    n: int


RATE_RETENTION_MIN = 25 * 60
"""Minutes of rate history kept: a day and an hour, so "the last 24 hours" is always whole."""

TOTALLED_METRICS = frozenset({"received", "accepted", "duplicate", "rejected"})
"""Quality metrics also kept as all-time totals per source: the ingest funnel every replica's
debugger shows, which outlives restarts and the hourly counters' retention."""


Key = tuple[str, str]
"""An identifier: ``(kind, value)`` with kind ``anonymousId``, ``userId``, ``email``, ``utk`` or
``contactId`` (values normalised by the caller: emails trimmed and lower-cased)."""


class TouchKind(enum.StrEnum):
    """What makes a visit a campaign touch (the strongest evidence it carries)."""

    CLICK_ID = "click_id"
    """An ad click id (``gclid``, ``fbclid``, ``msclkid`` ...)."""
    UTM = "utm"
    """UTM campaign fields."""
    REFERRER = "referrer"
    """Only a referrer from another site."""


class TouchOrigin(enum.StrEnum):
    """Where on an event a touch was read."""

    SNIPPET = "snippet"
    """``context.attribution``: the touches the browser script kept and sent along."""
    CAMPAIGN = "campaign"
    """``context.campaign`` / ``context.clickIds`` of the event itself."""
    REFERRER = "referrer"
    """``context.page.referrer`` of the event (a plain referrer touch)."""


class Touch(msgspec.Struct, frozen=True, omit_defaults=True):
    """One campaign touch and the event (and device) it was learned from."""

    at: float
    """When the touch happened (seconds since the epoch)."""
    kind: TouchKind
    origin: TouchOrigin
    message_id: str
    """The event it was learned from."""
    event_type: str
    source: str | None = None
    medium: str | None = None
    name: str | None = None
    term: str | None = None
    content: str | None = None
    click_ids: dict[str, str] = {}
    referrer: str | None = None
    landing_page: str | None = None
    event_name: str | None = None
    device: str | None = None
    """The anonymousId of the event: the browser or device the touch was seen on."""
    sender: str | None = None
    """The configured source that sent the event (a browser source or a backend)."""


class TouchMemory(msgspec.Struct, frozen=True):
    """What the store remembers for one identifier: its earliest and its latest touch."""

    first: Touch
    last: Touch


class Erasure(msgspec.Struct, frozen=True):
    """What an erasure removed (the record kept of it holds no personal data)."""

    identifiers: int
    events: int
    items: int


class Attempt(msgspec.Struct, frozen=True):
    """One HTTP request to HubSpot carrying some items, for the debugger."""

    item_ids: tuple[int, ...]
    at: float
    route: str
    status: int
    duration_ms: float
    correlation_id: str | None = None
    error: str | None = None
    """HubSpot's message (or what went wrong on the way), when it did not simply succeed."""
    reason: Reason | None = None
    """What came of it (None in attempts recorded before reasons were kept)."""
    category: str | None = None
    """HubSpot's error category, when it gave one."""


class SharedWindow(Protocol):
    """One rolling-window log shared by every replica (times are the store's own clock)."""

    async def try_acquire(
        self, n: int, limit: int, window_s: float, *, interval_s: float = 0.0, burst: int = 1
    ) -> float:
        """Log ``n`` acquisitions and return 0 if they fit now; else the seconds to wait.

        With ``interval_s`` the acquisitions are also paced (GCRA): after ``burst`` back to
        back, one per ``interval_s``, whichever replica asks.
        """
        ...

    async def observe(self, spent: int, limit: int, window_s: float) -> None:
        """HubSpot says ``spent`` of the window is used: log what our entries do not explain."""
        ...

    async def block_for(self, seconds: float) -> None:
        """Refuse every acquisition for ``seconds`` from now (later calls only extend it)."""
        ...

    async def counts(self, window_s: float) -> tuple[int, int]:
        """(ours, phantoms) inside the window ending now."""
        ...


class SharedTokens(Protocol):
    """One portal's current OAuth tokens, shared by replicas: (access token, refresh token,
    refresh due at in wall-clock seconds)."""

    async def load(self) -> tuple[str, str, float] | None:
        """The tokens the last refresh stored, if any."""
        ...

    async def save(self, record: tuple[str, str, float]) -> None:
        """Store the tokens a refresh just got."""
        ...

    async def drop(self, access_token: str) -> None:
        """Forget the stored tokens if their access token is ``access_token``."""
        ...


class Coordination(Protocol):
    """What replicas sharing one storage also share: rate windows, locks and OAuth tokens."""

    def tokens(self, portal: str) -> SharedTokens:
        """The shared OAuth tokens of one portal."""
        ...

    def window(self, portal: str, envelope: str) -> SharedWindow:
        """The shared log of one portal's envelope."""
        ...

    def lock(self, name: str, *, ttl_s: float) -> AbstractAsyncContextManager[object]:
        """A lock held by one replica at a time; it expires after ``ttl_s`` if its owner dies."""
        ...


class Storage(ABC):
    """Durable event log, dedup keys, delivery queues with leases, and small metadata."""

    def coordination(self) -> Coordination | None:
        """Shared windows and locks for replicas of this storage; None: one process only."""
        return None

    @abstractmethod
    async def open(self) -> None:
        """Connect and create what is missing; raise ``StorageUnavailableError`` if it cannot."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release resources."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise ``StorageUnavailableError`` unless a write would succeed now."""

    # -- ingest ---------------------------------------------------------------------------
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

    # -- delivery -------------------------------------------------------------------------
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
        """Park items that wait for identity until ``until`` (or a release by ``keys``)."""

    @abstractmethod
    async def release_held(self, ids: Sequence[int], *, now: float) -> None:
        """Make held items pending and due now."""

    @abstractmethod
    async def ready_at(self, portal: str, destination: str) -> float | None:
        """When the next item of a queue becomes ready (None: nothing pending)."""

    @abstractmethod
    async def queue_depth(self, portal: str, destination: str, *, now: float) -> tuple[int, float]:
        """Ready items of one queue and the age in seconds of the oldest."""

    @abstractmethod
    async def counts(self) -> dict[tuple[str, str, str], int]:
        """Items per ``(portal, destination, state)``, plus ``accepted`` per queue.

        Final states and ``accepted`` are running totals that survive purges, so
        ``accepted == sum(final) + sum(open)`` always holds unless an item was lost.
        """

    @abstractmethod
    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Keep delivery attempts for the debugger."""

    # -- identity -------------------------------------------------------------------------
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
    async def remap_contact(self, portal: str, old_ids: Sequence[str], new_id: str) -> int:
        """A HubSpot merge: contact ids ``old_ids`` are now ``new_id``; returns rows changed."""

    @abstractmethod
    async def erase(self, portal: str, keys: Sequence[Key], *, now: float) -> Erasure:
        """Remove a person: their identifiers, their touch memory, and their events' personal
        data; open items of those events end as ``dropped`` (``Reason.ERASED``). A record without
        personal data remains."""

    # -- touch memory ---------------------------------------------------------------------
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

    # -- reading back ---------------------------------------------------------------------
    @abstractmethod
    async def get_event(self, seq: int) -> StoredEvent | None:
        """One accepted event."""

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
    async def recent_events(self, *, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Events with ``seq > after_seq``, newest last."""

    # -- attribution quality --------------------------------------------------------------
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

    # -- rate history -------------------------------------------------------------------
    @abstractmethod
    async def add_rates(self, counts: Sequence[RateCount]) -> None:
        """Add to the per-minute request counts (shared by replicas); minutes older than
        ``RATE_RETENTION_MIN`` before the newest given are forgotten."""

    @abstractmethod
    async def rate_minutes(self, first: int, last: int) -> list[RateCount]:
        """Every request count of the minutes ``first`` to ``last`` (inclusive)."""

    # -- quotas ---------------------------------------------------------------------------
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

    # -- metadata -------------------------------------------------------------------------
    @abstractmethod
    async def get_meta(self, key: str) -> bytes | None:
        """Small persisted values (definitions cache, development key)."""

    @abstractmethod
    async def set_meta(self, key: str, value: bytes) -> None:
        """Store a small value durably."""
