"""Reading events back for the debugger: newest-first scans, summaries and the full detail.

The storage contract reads forward (``recent_events(after_seq)``); the newest sequence number is
found by a binary search over it (a few cheap indexed reads), and scans go backwards page by
page, bounded by ``max_scan`` so a filter matching nothing cannot read the whole store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import msgspec

from forwarder.config import Settings
from forwarder.debugger.explain import explain
from forwarder.debugger.masking import Masker
from forwarder.debugger.models import (
    AttemptView,
    EventDetail,
    EventSummary,
    IdentityView,
    ItemState,
    ItemView,
)
from forwarder.debugger.touches import conversion_attribution
from forwarder.events.destinations import DestinationName
from forwarder.events.payload import payload_of
from forwarder.identity.choice import Identity
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import Attempt, ItemRecord, StoredEvent
from forwarder.storage.outcomes import Reason, describe
from forwarder.storage.roles import DebugView, IdentityGraph

PAGE = 200
_OPEN_ORDER = (("held", "held"), ("pending", "pending"), ("leased", "pending"))
_FINAL_ORDER = ("dead", "expired", "dropped")


class HistoryStore(DebugView, IdentityGraph, Protocol):
    """Events and items read back together with the people they belong to."""


async def _has_after(storage: DebugView, seq: int) -> bool:
    return bool(await storage.recent_events(after_seq=seq, limit=1))


async def latest_seq(storage: DebugView) -> int:
    """The highest stored sequence number (0: none), by exponential then binary search."""
    if not await _has_after(storage, 0):
        return 0
    low, high = 0, 1024  # invariant: some seq > low
    while await _has_after(storage, high):
        low, high = high, high * 2
    while high - low > 1:  # some seq > low, none > high
        mid = (low + high) // 2
        if await _has_after(storage, mid):
            low = mid
        else:
            high = mid
    return high


async def newest_first(
    storage: DebugView, *, before: int | None = None, max_scan: int = 5000
) -> AsyncIterator[StoredEvent]:
    """Stored events with ``seq < before`` (default: all), newest first, at most ``max_scan``."""
    top = before - 1 if before is not None else await latest_seq(storage)
    scanned = 0
    while top > 0 and scanned < max_scan:
        start = max(0, top - PAGE)
        chunk = [
            e for e in await storage.recent_events(after_seq=start, limit=PAGE) if e.seq <= top
        ]
        for event in reversed(chunk):
            scanned += 1
            yield event
            if scanned >= max_scan:
                return
        top = start


def decode(event: StoredEvent) -> dict[str, Any]:
    """The stored payload as a dict (an erased event is ``{"erased": true}``)."""
    try:
        data = msgspec.json.decode(event.payload)
    except msgspec.DecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def status_of(items: Sequence[ItemRecord]) -> str:
    """One word for an event: its most telling item state (``stored`` when never sent)."""
    if not items:
        return "stored"
    states = {i.state for i in items}
    for state, word in _OPEN_ORDER:
        if state in states:
            return word
    for state in _FINAL_ORDER:
        if state in states:
            return state
    return "delivered"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def person_label(data: dict[str, Any]) -> tuple[str, str] | None:
    """How the event names its person: userId, else an email, else anonymousId."""
    traits = _dict(data.get("traits"))
    ctx_traits = _dict(_dict(data.get("context")).get("traits"))
    for kind, value in (
        ("userId", data.get("userId")),
        ("email", traits.get("email") or ctx_traits.get("email")),
        ("anonymousId", data.get("anonymousId")),
    ):
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return kind, str(value)
    return None


def summary(
    event: StoredEvent, data: dict[str, Any], items: Sequence[ItemRecord], masker: Masker
) -> EventSummary:
    """A live-list row."""
    label = person_label(data)
    return EventSummary(
        seq=event.seq,
        message_id=event.message_id,
        portal=event.portal,
        source=event.source,
        type=event.type,
        name=event.name,
        received_at=event.received_at,
        test=event.test,
        identity=masker.identifier(*label) if label else None,
        status=status_of(items),
        items=[ItemState(destination=i.destination, state=i.state) for i in items],
    )


async def identity_now(
    storage: IdentityGraph, settings: Settings, portal: str, data: dict[str, Any]
) -> Identity:
    """The identifier the forwarder would send this event with now (graph, no HubSpot look-up)."""
    order = settings.portals[portal].identity_order if portal in settings.portals else ()
    [identity] = await Resolver(portal, order, storage).identities([payload_of(data)])
    return identity


def _attempt(a: Attempt, masker: Masker) -> AttemptView:
    return AttemptView(
        at=a.at,
        route=a.route,
        status=a.status,
        duration_ms=a.duration_ms,
        correlation_id=a.correlation_id,
        error=masker.text(a.error),
        reason=a.reason,
        category=a.category,
    )


def _identity_view(
    items: Sequence[ItemRecord], now: Identity, masker: Masker
) -> IdentityView | None:
    conversion = next((i for i in items if i.destination == DestinationName.CONVERSIONS), None)
    if conversion is None:
        return None
    recorded = conversion.outcome
    notes = list(recorded.notes) if recorded else []
    if conversion.state == "held" and notes:
        return IdentityView(kind=None, value=None, notes=notes, recorded=True)
    if (
        conversion.state == "delivered"
        and recorded
        and recorded.reason is Reason.DELIVERED
        and notes
    ):
        used = recorded.identifier
        value = now.value if now.kind == used else None
        return IdentityView(
            kind=used, value=masker.identifier(used, value), notes=notes, recorded=True
        )
    return IdentityView(
        kind=now.kind,
        value=masker.identifier(now.kind, now.value),
        notes=list(now.notes),
        recorded=False,
    )


async def detail(
    storage: HistoryStore, settings: Settings, masker: Masker, event: StoredEvent
) -> EventDetail:
    """Everything the debugger shows for one event."""
    data = decode(event)
    items = await storage.items_of(event.seq)
    attempts = await storage.attempts_of([i.id for i in items]) if items else []
    now = await identity_now(storage, settings, event.portal, data)
    views = []
    for item in items:
        _, why = explain(item, data, now.kind)
        outcome = item.outcome
        history = [_attempt(a, masker) for a in attempts if item.id in a.item_ids]
        views.append(
            ItemView(
                id=item.id,
                destination=item.destination,
                state=item.state,
                attempts=item.attempts,
                available_at=item.available_at,
                updated_at=item.updated_at,
                detail=masker.text(describe(outcome)),
                explanation=masker.text(why) or why,
                history=history,
                reason=outcome.reason if outcome else None,
                message=masker.text(outcome.message) if outcome else None,
                category=outcome.category if outcome else None,
                correlation_id=outcome.correlation_id if outcome else None,
                identifier=outcome.identifier if outcome else None,
            )
        )
    target = "the sandbox only (test event)" if event.test else "HubSpot"
    attribution = None
    if any(i.destination == DestinationName.CONVERSIONS for i in items):
        attribution = await conversion_attribution(storage, settings, masker, event, data)
    return EventDetail(
        event=summary(event, data, items, masker),
        payload=masker.payload(data),
        validation="valid: it passed validation at ingest (invalid events are refused there, "
        "with a reason, and never stored)",
        dedup=f"first of messageId {event.message_id!r} within the dedup window "
        f"(repeats are answered as duplicates and not stored); delivered to {target}",
        identity=_identity_view(items, now, masker),
        items=views,
        final_state=status_of(items),
        attribution=attribution,
    )
