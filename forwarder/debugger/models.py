"""The admin API's response and request bodies (published in the OpenAPI document).

Times are Unix seconds (``float``); personal values are masked when
``server.mask_personal_data`` is on; no secret is ever part of a body.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Model(msgspec.Struct, rename="camel", kw_only=True):
    """Base: camelCase on the wire, like the ingest API."""


class ItemState(Model):
    """One delivery queue's item of an event."""

    destination: str
    state: str


class EventSummary(Model):
    """One row of the live events list."""

    seq: int
    message_id: str
    portal: str
    source: str
    type: str
    name: str | None
    received_at: float
    test: bool
    identity: str | None
    """The person as the event names them (userId, else email, else anonymousId)."""
    status: str
    """``delivered``, ``pending``, ``held``, ``dead``, ``dropped``, ``expired`` or ``stored``
    (kept for attribution and identity, never sent: a page view, an identify)."""
    items: list[ItemState] = []


class EventList(Model):
    """Newest first; ``before`` pages further back."""

    events: list[EventSummary]
    scanned: int
    """How many stored events were read to answer (the scan is bounded)."""
    before: int | None
    """Pass as ``before`` for the next (older) page; None when the scan reached the start."""


class AttemptView(Model):
    """One HTTP request to HubSpot that carried the item."""

    at: float
    route: str
    status: int
    duration_ms: float
    correlation_id: str | None
    error: str | None
    """HubSpot's message (or what went wrong on the way), when it did not simply succeed."""
    reason: str | None = None
    """What came of it: a ``forwarder.storage.outcomes.Reason`` (None: recorded before
    reasons were kept)."""
    category: str | None = None
    """HubSpot's error category, when it gave one."""


class ItemView(Model):
    """An item with its delivery history and, in plain words, where it stands."""

    id: int
    destination: str
    state: str
    attempts: int
    available_at: float
    updated_at: float
    detail: str | None
    """The outcome in a line, for display (built from the fields below)."""
    explanation: str
    history: list[AttemptView] = []
    reason: str | None = None
    """What came of it so far: a ``forwarder.storage.outcomes.Reason`` (None: nothing yet)."""
    message: str | None = None
    """HubSpot's message for a rejection; otherwise the few words of why."""
    category: str | None = None
    """HubSpot's error category."""
    correlation_id: str | None = None
    """HubSpot's correlationId of the answer."""
    identifier: str | None = None
    """The identifier kind it went with (``objectId``, ``email``, ``utk``)."""


class IdentityView(Model):
    """The identifier a conversion is (or would be) sent with, and why."""

    kind: str | None
    value: str | None
    notes: list[str]
    recorded: bool
    """True: as recorded at delivery; False: as the forwarder would choose it now."""


class SentInput(Model):
    """What one destination sends to HubSpot for the event: the input of its batch."""

    destination: str
    route: str
    input: dict[str, Any] | None
    """The request input, rebuilt from the stored event with the current mapping and identity
    (its id is the one HubSpot got: ids derive from the messageId); secrets removed, personal
    data masked if set. None when nothing would be sent (held, dropped)."""
    note: str
    """Which identifier it carries and why, or why nothing is sent."""


class EventDetail(Model):
    """Everything known about one event."""

    event: EventSummary
    payload: dict[str, Any]
    """The event as received and normalised (secrets removed, personal data masked if set)."""
    validation: str
    dedup: str
    identity: IdentityView | None
    items: list[ItemView]
    final_state: str
    sent: list[SentInput] = []
    """Per destination, what is sent to HubSpot for this event."""
    attribution: AttributionView | None = None
    """For a conversion: its first and last touch, as the forwarder attributes it now."""


class Identifier(Model):
    """One identifier of a person."""

    kind: str
    value: str


class Touch(Model):
    """A campaign touch: UTM fields, ad click ids, landing page, and where it was learned."""

    source: str | None = None
    medium: str | None = None
    name: str | None = None
    term: str | None = None
    content: str | None = None
    click_ids: dict[str, str] = {}
    landing_page: str | None = None
    timestamp: str | None = None
    referrer: str | None = None
    kind: str | None = None
    """``click_id``, ``utm`` or ``referrer``: the strongest evidence the visit carried."""
    origin: str | None = None
    """Where on the event it was read: ``snippet`` (context.attribution, kept by the browser
    script), ``campaign`` (context.campaign/clickIds) or ``referrer`` (context.page.referrer)."""
    message_id: str | None = None
    """The event it was learned from."""
    event_type: str | None = None
    event_name: str | None = None
    device: str | None = None
    """The anonymousId of that event: the browser or device it was seen on."""
    sender: str | None = None
    """The configured source that sent that event."""


class UsedTouch(Model):
    """A touch chosen for a conversion, and why."""

    touch: Touch
    reason: str
    """``on_event`` (the conversion carried it), ``remembered`` (touch memory of the
    conversion's own anonymousId/userId) or ``linked`` (of another identifier of the person)."""
    why: str
    """The same in plain words."""


class AttributionView(Model):
    """The first and last touch a conversion is (or would be) sent with, and why."""

    first: UsedTouch | None
    last: UsedTouch | None
    notes: list[str]
    """What else decided it (a touch outside the window, touch memory turned off)."""


class JourneyStep(Model):
    """One event of the person, with its attribution verdict when it is a conversion."""

    seq: int
    portal: str
    received_at: float
    timestamp: str | None
    type: str
    name: str | None
    test: bool
    status: str
    conversion: bool
    attributed: bool | None
    """None for events that are not conversions."""
    reason: str | None
    """Why (not) attributed, in plain words."""
    attribution: AttributionView | None = None
    """For a conversion: its first and last touch and why."""


class Journey(Model):
    """Every event of one person in time order, and their first and last campaign touch."""

    query: Identifier
    portal: str | None
    identifiers: list[Identifier]
    steps: list[JourneyStep]
    first_touch: Touch | None
    last_touch: Touch | None
    scanned: int
    complete: bool
    """False when the bounded scan stopped before the oldest stored event."""
    touches_from: str | None = None
    """``memory`` (the forwarder's touch memory of the person) or ``events`` (read from the
    events found, for people whose events came before touch memory existed)."""


class QueueFunnel(Model):
    """One (portal, destination) queue: accepted items by state, with its conservation."""

    destination: str
    accepted: int
    pending: int
    delivered: int
    dead: int
    dropped: int
    expired: int
    drift: int
    """accepted - (final + open); anything but 0 means an item was lost."""
    paused: str | None = None


class PortalFunnel(Model):
    """Received (per source of the portal) and each queue's funnel."""

    portal: str
    received: int
    queues: list[QueueFunnel]


class IngestFunnel(Model):
    """What ingest saw since this process started (Prometheus counters)."""

    received: int
    accepted: int
    rejected: int
    duplicates: int


class DeadLetter(Model):
    """A dead-lettered item and HubSpot's reason."""

    id: int
    event_seq: int
    portal: str
    destination: str
    message_id: str | None
    name: str | None
    reason: str
    """HubSpot's message."""
    correlation_id: str | None
    updated_at: float
    category: str | None = None
    """HubSpot's error category."""


class DeadLetterDetail(Model):
    """One dead letter and its event."""

    dead_letter: DeadLetter
    event: EventDetail | None


class Conservation(Model):
    """``accepted = delivered + dead + dropped + expired + pending`` over every queue."""

    accepted: int
    final: int
    open: int
    drift: int
    ok: bool


class Overview(Model):
    """The delivery overview page."""

    ingest: IngestFunnel
    portals: list[PortalFunnel]
    conservation: Conservation
    dead_letters: list[DeadLetter]
    delivery_processes: int = 0
    """Delivery runs in this many processes of their own (0: in the server). Then paused
    queues are not shown: they are known only to the delivery processes (see their logs)."""


class QueueCounts(Model):
    """Items of one queue by state (plus ``accepted``)."""

    portal: str
    destination: str
    counts: dict[str, int]


class Stats(Model):
    """``GET /admin/api/stats``: counts and the conservation check."""

    queues: list[QueueCounts]
    conservation: Conservation


class EnvelopeUsage(Model):
    """One envelope now: what is spent against the forwarder's allowance."""

    envelope: str
    """``crm_10s``, ``crm_daily``, ``search_1s``, ``events_1s``, ``events_monthly``."""
    used: int
    """Spent in the window or period (ours plus what other apps spent, from the headers)."""
    limit: int
    """The forwarder's allowance (HubSpot's number times ``safety``)."""
    hubspot_limit: int | None
    window_s: float | None
    """Rolling window length (as HubSpot declared it, once it did); None for calendar quotas."""
    allowance: int | None = None
    """Requests per window allowed now: ``limit`` until a 429 cut it (AIMD)."""
    rate_per_s: float | None = None
    """Requests per second pacing allows now (our share once other apps' spend is off)."""
    declared_max: int | None = None
    """HubSpot's last ``X-HubSpot-RateLimit-Max``."""
    declared_remaining: int | None = None
    """HubSpot's last ``X-HubSpot-RateLimit-Remaining``."""
    declared_window_s: float | None = None
    """HubSpot's last ``X-HubSpot-RateLimit-Interval-Milliseconds``, in seconds."""


class EnvelopeSample(Model):
    """Share of each envelope in use at one moment (0..1, may exceed 1 after a correction)."""

    at: float
    shares: dict[str, float]
    too_many_requests: int
    """429s seen so far (process total), to chart when they happened."""


class MinuteRequests(Model):
    """HubSpot requests of one minute, summed over every replica (from the store)."""

    at: float
    """Start of the minute (Unix time)."""
    ok: int
    throttled: int
    """Answered 429."""
    errors: int
    """Any other refusal, or no answer."""


class PortalEnvelopes(Model):
    """One portal's envelopes now and over the last hour, and its requests over the last day."""

    portal: str
    now: list[EnvelopeUsage]
    samples: list[EnvelopeSample]
    history: list[MinuteRequests] = []
    """Requests per minute over the last 24 hours, every replica's, across restarts."""
    breakers: dict[str, str] = {}
    """Destination -> its circuit breaker: ``closed``, ``half_open`` or ``open``."""


class Envelopes(Model):
    """Rate envelopes per portal, and the 429s HubSpot answered (per route)."""

    portals: list[PortalEnvelopes]
    too_many_requests: dict[str, int]
    sample_every_s: float
    too_many_requests_by_policy: dict[str, int] = {}
    """429s since start by the policy HubSpot named (``TEN_SECONDLY_ROLLING``, ``DAILY``...)."""


class EraseRequest(Model):
    """Erase one person (give one identifier); ``portal`` defaults to every portal."""

    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    utk: str | None = None
    portal: str | None = None


class Erased(Model):
    """What one portal's erasure removed (no personal data is kept)."""

    portal: str
    identifiers: int
    events: int
    items: int


class EraseResult(Model):
    """Per portal erasures."""

    erased: list[Erased]


class ItemsRequest(Model):
    """Dead letters to replay or purge: ``ids``, or ``all`` (optionally of one ``portal``)."""

    ids: list[int] = []
    all: bool = False
    portal: str | None = None


class ItemsResult(Model):
    """How many items moved."""

    moved: int
