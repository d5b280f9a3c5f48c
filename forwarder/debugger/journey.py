"""A person's journey: their identifiers, every event in time order, campaign touches, and for
each conversion whether it reached a contact in HubSpot, or why not.

The first and last touch come from the store's touch memory of all the person's identifiers
(each says which event and device it was learned from); for people whose events predate touch
memory they are read from the events found.

Events are found by scanning the newest stored events (bounded: ``max_scan``) for any of the
person's identifiers; the identity graph (``people_of``) widens one identifier to all of them.
"""

from __future__ import annotations

from typing import Any

from forwarder.config import Settings
from forwarder.debugger.events import (
    HistoryStore,
    decode,
    identity_now,
    newest_first,
    status_of,
)
from forwarder.debugger.explain import explain
from forwarder.debugger.masking import Masker
from forwarder.debugger.models import Identifier, Journey, JourneyStep, Touch
from forwarder.debugger.touches import conversion_attribution, remembered
from forwarder.events.destinations import DestinationName
from forwarder.identity.keys import normalise_email, text_id
from forwarder.storage.base import ItemRecord, Key, StoredEvent

KINDS = ("email", "userId", "anonymousId", "utk")


def normalise(kind: str, value: str) -> Key:
    """An identifier as the graph stores it (emails trimmed and lower-cased)."""
    if kind == "email":
        return kind, normalise_email(value) or value.strip().lower()
    return kind, value.strip()


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def keys_of(data: dict[str, Any]) -> set[Key]:
    """The identifiers one event carries."""
    keys: set[Key] = set()
    for kind in ("anonymousId", "userId"):
        value = text_id(data.get(kind))
        if value is not None:
            keys.add((kind, value))
    for path in ("traits.email", "context.traits.email", "properties.email"):
        email = normalise_email(_get(data, path))
        if email is not None:
            keys.add(("email", email))
    for path in ("context.hubspotutk", "context.traits.hubspotutk"):
        utk = _get(data, path)
        if isinstance(utk, str) and utk:
            keys.add(("utk", utk))
    return keys


def _touch(raw: Any) -> Touch | None:
    if not isinstance(raw, dict) or not raw:
        return None
    found = raw.get("clickIds")
    clicks: dict[str, Any] = found if isinstance(found, dict) else {}
    fields = ("source", "medium", "name", "term", "content", "landingPage", "timestamp")
    text = {f: str(raw[f]) for f in fields if isinstance(raw.get(f), str | int)}
    return Touch(
        source=text.get("source"),
        medium=text.get("medium"),
        name=text.get("name"),
        term=text.get("term"),
        content=text.get("content"),
        click_ids={str(k): str(v) for k, v in clicks.items()},
        landing_page=text.get("landingPage"),
        timestamp=text.get("timestamp"),
    )


def _campaign_touch(data: dict[str, Any]) -> Touch | None:
    """A touch from ``context.campaign`` and ``context.clickIds`` (no attribution object)."""
    campaign = _get(data, "context.campaign")
    clicks = _get(data, "context.clickIds")
    if not campaign and not clicks:
        return None
    raw = {**(campaign if isinstance(campaign, dict) else {}), "clickIds": clicks or {}}
    raw["landingPage"] = _get(data, "context.page.url")
    raw["timestamp"] = data.get("timestamp")
    return _touch({k: v for k, v in raw.items() if v is not None})


def touches(datas: list[dict[str, Any]]) -> tuple[Touch | None, Touch | None]:
    """(first touch, last touch) over a person's events in time order."""
    first = last = None
    for data in datas:
        recorded = _get(data, "context.attribution")
        if isinstance(recorded, dict) and recorded:  # the browser snippet keeps both touches
            first = first or _touch(recorded.get("firstTouch"))
            last = _touch(recorded.get("lastTouch")) or last
        elif (seen := _campaign_touch(data)) is not None:  # other senders: the campaign seen
            first = first or seen
            last = seen
    return first, last


async def _step(
    storage: HistoryStore,
    settings: Settings,
    masker: Masker,
    event: StoredEvent,
    data: dict[str, Any],
) -> JourneyStep:
    items = await storage.items_of(event.seq)
    conversion_item = next((i for i in items if i.destination == DestinationName.CONVERSIONS), None)
    attributed: bool | None = None
    reason: str | None = None
    attribution = None
    if conversion_item is not None:
        kind = None
        if conversion_item.state in ("pending", "leased"):
            kind = (await identity_now(storage, settings, event.portal, data)).kind
        attributed, reason = explain(conversion_item, data, kind)
        attribution = await conversion_attribution(storage, settings, masker, event, data)
    elif event.type == "track" and "erased" not in data:
        attributed, reason = False, _unsent_track(items)
    return JourneyStep(
        seq=event.seq,
        portal=event.portal,
        received_at=event.received_at,
        timestamp=str(data["timestamp"]) if data.get("timestamp") else None,
        type=event.type,
        name=event.name,
        test=event.test,
        status=status_of(items),
        conversion=attributed is not None,
        attributed=attributed,
        reason=reason,
        attribution=attribution,
    )


def _unsent_track(items: list[ItemRecord]) -> str:
    if items:
        return (
            "dropped by policy: it is not sent as a custom event (only to "
            + ", ".join(sorted({i.destination for i in items}))
            + ")"
        )
    return "dropped by policy: HubSpot is turned off for this event (integrations)"


async def journey(
    storage: HistoryStore,
    settings: Settings,
    masker: Masker,
    query: Key,
    *,
    portal: str | None = None,
    max_scan: int = 20_000,
) -> Journey:
    """The person behind ``query`` and their events (see module docstring)."""
    portals = [portal] if portal is not None else list(settings.portals)
    wanted: set[Key] = {normalise(*query)}
    for name in portals:
        for keys in (await storage.people_of(name, list(wanted))).values():
            wanted.update((k, v) for k, v in keys)
    found: list[tuple[StoredEvent, dict[str, Any]]] = []
    scanned = 0
    async for event in newest_first(storage, max_scan=max_scan):
        scanned += 1
        if event.portal not in portals:
            continue
        data = decode(event)
        if keys_of(data) & wanted:
            found.append((event, data))
    found.sort(key=lambda pair: (str(pair[1].get("timestamp") or ""), pair[0].seq))
    steps = [await _step(storage, settings, masker, e, d) for e, d in found]
    memory = await remembered(storage, portals, sorted(wanted), masker)
    first, last = memory or touches([d for _, d in found])
    return Journey(
        query=Identifier(kind=query[0], value=masker.identifier(*query) or ""),
        portal=portal,
        identifiers=[
            Identifier(kind=k, value=masker.identifier(k, v) or "") for k, v in sorted(wanted)
        ],
        steps=steps,
        first_touch=first,
        last_touch=last,
        scanned=scanned,
        complete=scanned < max_scan,
        touches_from="memory" if memory else ("events" if first or last else None),
    )
