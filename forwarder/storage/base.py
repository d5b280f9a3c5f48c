"""The storage contract every backend implements (SQLite by default, Redis for replicas): the
records it speaks in, and ``Storage``, the union of the roles in ``forwarder.storage.roles``.

One contract test suite (``tests/storage/contract/``, a module per role) runs against every
backend.

Vocabulary:
    event   an accepted Segment message, kept for the debugger and for replay.
    item    one event's delivery to one destination queue ``(portal, destination)``; every item
            ends in exactly one final state (``delivered``, ``dead``, ``dropped``, ``expired``)
            and is ``pending``, ``leased`` or ``held`` until then.
"""

from __future__ import annotations

import enum
from abc import ABC
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

import msgspec

from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.roles import (
    Counters,
    DebugView,
    DeliveryQueue,
    EventLog,
    IdentityGraph,
    Lifecycle,
    Metadata,
    SharedLimits,
)

FinalState = Literal["delivered", "dead", "dropped", "expired"]
OpenState = Literal["pending", "leased", "held"]
ItemState = FinalState | OpenState
FINAL_STATES: tuple[FinalState, ...] = ("delivered", "dead", "dropped", "expired")
OPEN_STATES: tuple[OpenState, ...] = ("pending", "leased", "held")


class NewEvent(msgspec.Struct, frozen=True, gc=False):
    """An event ready to be stored, with the queues it must be delivered to.

    Not tracked by the garbage collector (``gc=False``, as ``Accepted`` and ``Duplicate``):
    ingest makes one per event, alive until its request is answered, and it holds only
    strings, numbers and tuples of strings, which cannot refer back to it.
    """

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


class Accepted(msgspec.Struct, frozen=True, gc=False):
    """The event is durable under ``seq``."""

    seq: int


class Duplicate(msgspec.Struct, frozen=True, gc=False):
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


class Item(msgspec.Struct, frozen=True, gc=False):
    """A leased delivery item, with its event.

    Untracked by the garbage collector (a leased batch lives for a whole HubSpot request and
    would be traversed by every collection meanwhile); its fields cannot form a cycle.
    """

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


class Storage(
    Lifecycle,
    EventLog,
    DeliveryQueue,
    DebugView,
    IdentityGraph,
    Counters,
    SharedLimits,
    Metadata,
    ABC,
):
    """A whole backend: every role of ``forwarder.storage.roles`` at once. Backends implement
    it and the composition root builds it; everything else asks for the role it uses."""
