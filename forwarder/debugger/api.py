"""The admin JSON API under ``/admin/api/`` (every route needs the admin token)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from forwarder.debugger import events as reading
from forwarder.debugger import overview as funnel
from forwarder.debugger import quality as attribution
from forwarder.debugger.auth import admin_guard
from forwarder.debugger.journey import journey as person_journey
from forwarder.debugger.journey import normalise
from forwarder.debugger.models import (
    DeadLetter,
    DeadLetterDetail,
    Envelopes,
    EraseRequest,
    EraseResult,
    EventDetail,
    EventList,
    EventSummary,
    ItemsRequest,
    ItemsResult,
    Journey,
    Overview,
    Stats,
)
from forwarder.debugger.quality_models import QualityReport, Window
from forwarder.debugger.sent import sent_inputs
from forwarder.debugger.state import Debugger, debugger_of
from forwarder.storage.base import Key, StoredEvent
from forwarder.storage.quality import flush_quality

AnyRequest = Request[Any, Any, Any]
POLL_S = 0.25
KEEPALIVE_S = 15.0
_STREAM_LOOKUP_MAX = 50
"""Above this many new events in one poll the stream skips per-event status look-ups."""


class Filters(msgspec.Struct, frozen=True):
    """The live list's filters; None matches anything."""

    source: str | None = None
    type: str | None = None
    name: str | None = None
    status: str | None = None
    portal: str | None = None

    def matches_event(self, event: StoredEvent) -> bool:
        return (
            (self.source is None or event.source == self.source)
            and (self.type is None or event.type == self.type)
            and (self.name is None or self.name.lower() in (event.name or "").lower())
            and (self.portal is None or event.portal == self.portal)
        )


Query = Annotated[str | None, QueryParameter(required=False)]


async def _summary(d: Debugger, event: StoredEvent, with_items: bool = True) -> EventSummary:
    items = await d.storage.items_of(event.seq) if with_items else []
    return reading.summary(event, reading.decode(event), items, d.masker)


@get("/events", summary="Stored events, newest first, with filters")
async def list_events(
    request: AnyRequest,
    source: Query = None,
    type_: Annotated[str | None, QueryParameter(name="type", required=False)] = None,
    name: Query = None,
    status: Query = None,
    portal: Query = None,
    before: Annotated[int | None, QueryParameter(required=False, ge=1)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> EventList:
    """Filters: ``source``, ``type``, ``name`` (substring), ``status``, ``portal``."""
    d = debugger_of(request.app)
    filters = Filters(source, type_, name, status, portal)
    found: list[EventSummary] = []
    scanned, last_seq = 0, None
    async for event in reading.newest_first(d.storage, before=before):
        scanned, last_seq = scanned + 1, event.seq
        if not filters.matches_event(event):
            continue
        row = await _summary(d, event)
        if status is None or row.status == status:
            found.append(row)
            if len(found) >= limit:
                break
    more = last_seq is not None and last_seq > 1
    return EventList(events=found, scanned=scanned, before=last_seq if more else None)


@get("/events/stream", summary="New events as server-sent events")
async def stream_events(
    request: AnyRequest,
    source: Query = None,
    type_: Annotated[str | None, QueryParameter(name="type", required=False)] = None,
    name: Query = None,
    status: Query = None,
    portal: Query = None,
    after: Annotated[int | None, QueryParameter(required=False, ge=0)] = None,
    timeout_s: Annotated[float | None, QueryParameter(required=False, gt=0)] = None,
) -> ServerSentEvent:
    """``event: event`` messages, ``data`` an ``EventSummary``, ``id`` its seq; starts after
    ``after`` (or ``Last-Event-ID``, or the newest event); ends after ``timeout_s`` if given."""
    d = debugger_of(request.app)
    filters = Filters(source, type_, name, status, portal)
    resume = request.headers.get("last-event-id")
    if after is None and resume and resume.isdigit():
        after = int(resume)
    start = after if after is not None else await reading.latest_seq(d.storage)
    return ServerSentEvent(_stream(d, filters, start, timeout_s))


async def _stream(
    d: Debugger, filters: Filters, after: int, timeout_s: float | None
) -> AsyncIterator[ServerSentEventMessage]:
    clock = d.clock
    deadline = clock.monotonic() + timeout_s if timeout_s is not None else None
    quiet_since = clock.monotonic()
    yield ServerSentEventMessage(comment="connected", retry=2000)
    while deadline is None or clock.monotonic() < deadline:
        chunk = await d.storage.recent_events(after_seq=after, limit=200)
        lookups = len(chunk) <= _STREAM_LOOKUP_MAX
        for event in chunk:
            after = event.seq
            if not filters.matches_event(event):
                continue
            row = await _summary(d, event, with_items=lookups)
            if filters.status is not None and row.status != filters.status:
                continue
            data = msgspec.json.encode(row).decode()
            yield ServerSentEventMessage(data=data, event="event", id=event.seq)
            quiet_since = clock.monotonic()
        if clock.monotonic() - quiet_since > KEEPALIVE_S:
            yield ServerSentEventMessage(comment="keep-alive")
            quiet_since = clock.monotonic()
        if not chunk:
            await clock.sleep(POLL_S)


@get("/events/{seq:int}", summary="One event: payload, identity, attempts, final state")
async def event_detail(request: AnyRequest, seq: Annotated[int, PathParameter()]) -> EventDetail:
    d = debugger_of(request.app)
    event = await d.storage.get_event(seq)
    if event is None:
        raise NotFoundException(f"no stored event {seq}")
    shown = await reading.detail(d.storage, d.settings, d.masker, event)
    items = await d.storage.items_of(seq)
    sent = await sent_inputs(d.engine, d.masker, event, items)
    return msgspec.structs.replace(shown, sent=sent)


@get("/journey", summary="A person's events, touches and attribution verdicts")
async def journey(
    request: AnyRequest,
    email: Query = None,
    user_id: Annotated[str | None, QueryParameter(name="userId", required=False)] = None,
    anonymous_id: Annotated[str | None, QueryParameter(name="anonymousId", required=False)] = None,
    utk: Query = None,
    portal: Query = None,
) -> Journey:
    """Give one of ``email``, ``userId``, ``anonymousId``, ``utk``."""
    d = debugger_of(request.app)
    given = {"email": email, "userId": user_id, "anonymousId": anonymous_id, "utk": utk}
    keys = [(k, v) for k, v in given.items() if v]
    if len(keys) != 1:
        raise ValidationException("give exactly one of email, userId, anonymousId, utk")
    _check_portal(d, portal)
    return await person_journey(d.storage, d.settings, d.masker, keys[0], portal=portal)


@get("/overview", summary="Delivery funnel per portal and queue, conservation, dead letters")
async def delivery_overview(request: AnyRequest) -> Overview:
    d = debugger_of(request.app)
    found = await funnel.overview(d.storage, d.settings, d.engine, d.metrics, d.masker)
    return msgspec.structs.replace(found, delivery_processes=d.delivery_processes)


@get("/stats", summary="Item counts per queue and the conservation check")
async def stats(request: AnyRequest) -> Stats:
    return await funnel.stats(debugger_of(request.app).storage)


@get("/dead-letters", summary="Dead letters, oldest first")
async def list_dead_letters(
    request: AnyRequest,
    portal: Query = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
) -> list[DeadLetter]:
    d = debugger_of(request.app)
    return await funnel.dead_letters(d.storage, d.masker, portal=portal, limit=limit)


@get("/dead-letters/{item_id:int}", summary="One dead letter and its event")
async def show_dead_letter(
    request: AnyRequest, item_id: Annotated[int, PathParameter()]
) -> DeadLetterDetail:
    d = debugger_of(request.app)
    letters = await funnel.dead_letters(d.storage, d.masker, limit=100_000)
    letter = next((x for x in letters if x.id == item_id), None)
    if letter is None:
        raise NotFoundException(f"item {item_id} is not a dead letter")
    event = await d.storage.get_event(letter.event_seq)
    shown = await reading.detail(d.storage, d.settings, d.masker, event) if event else None
    return DeadLetterDetail(dead_letter=letter, event=shown)


@post("/dead-letters/replay", status_code=200, summary="Send dead letters again")
async def replay_dead_letters(
    request: AnyRequest, data: Annotated[ItemsRequest, Body()]
) -> ItemsResult:
    """Safe: each replayed input carries the same uuid, so HubSpot never counts it twice."""
    d = debugger_of(request.app)
    moved = await funnel.replay(
        d.storage, d.engine, data.ids, now=d.clock.now(), everything=data.all, portal=data.portal
    )
    return ItemsResult(moved=moved)


@post("/dead-letters/purge", status_code=200, summary="Drop dead letters for good")
async def purge_dead_letters(
    request: AnyRequest, data: Annotated[ItemsRequest, Body()]
) -> ItemsResult:
    d = debugger_of(request.app)
    moved = await funnel.purge(
        d.storage, data.ids, now=d.clock.now(), everything=data.all, portal=data.portal
    )
    return ItemsResult(moved=moved)


@get("/envelopes", summary="Rate envelope usage per portal over the last hour, and 429s")
async def envelopes(request: AnyRequest) -> Envelopes:
    debugger = debugger_of(request.app)
    rates = debugger.rates
    return Envelopes(
        portals=await rates.view(debugger.storage),
        too_many_requests=rates.too_many_requests(),
        sample_every_s=rates.every_s,
        too_many_requests_by_policy=rates.too_many_requests_by_policy(),
    )


@get("/quality", summary="Attribution quality per event type and source, with a 0-10 score")
async def quality(
    request: AnyRequest,
    window: Annotated[Window, QueryParameter(required=False)] = "day",
) -> QualityReport:
    """``window``: ``hour`` (the current hour and the one before), ``day`` (24 whole hours
    plus the current one) or ``week`` (168 plus the current one). Event types come worst
    score first; ``loweredBy`` says in plain words what takes points off and what to do."""
    d = debugger_of(request.app)
    await flush_quality(d.storage, d.metrics.quality)  # this replica's latest counts too
    return await attribution.quality(d.storage, window, d.clock.now())


@post("/erase", status_code=200, summary="Erase a person (GDPR)")
async def erase(request: AnyRequest, data: Annotated[EraseRequest, Body()]) -> EraseResult:
    """Give one identifier; removes the person from the graph and from held and queued events."""
    d = debugger_of(request.app)
    given = {
        "email": data.email,
        "userId": data.user_id,
        "anonymousId": data.anonymous_id,
        "utk": data.utk,
    }
    keys: list[Key] = [normalise(k, v) for k, v in given.items() if v]
    if not keys:
        raise ValidationException("give one of email, userId, anonymousId, utk")
    _check_portal(d, data.portal)
    return EraseResult(
        erased=await funnel.erase(d.storage, d.settings, keys, data.portal, d.clock.now())
    )


def _check_portal(d: Debugger, portal: str | None) -> None:
    if portal is not None and portal not in d.settings.portals:
        raise NotFoundException(f"no portal {portal!r}")


def admin_api_router() -> Router:
    """Every admin API route, behind the admin guard."""
    return Router(
        path="/admin/api",
        guards=[admin_guard],
        tags=["admin"],
        route_handlers=[
            list_events,
            stream_events,
            event_detail,
            journey,
            delivery_overview,
            stats,
            list_dead_letters,
            show_dead_letter,
            replay_dead_letters,
            purge_dead_letters,
            envelopes,
            quality,
            erase,
        ],
    )
