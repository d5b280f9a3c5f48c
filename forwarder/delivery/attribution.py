"""Attribution at delivery: a conversion's first and last touch, from the person's touch memory
merged with what the event carries.

Rules, in order:

* **First touch** is the earliest touch known for the person: on the event itself, or remembered
  for any of their identifiers (every anonymousId and userId the identity graph links to the
  event's own), so a second device or a backend conversion gets the first device's campaign.
* **Last touch** is the event's own latest touch when it carries one (it is the newest evidence,
  and the sender chose it); otherwise the latest remembered touch of the person that happened
  before the conversion, if it is inside ``attribution.last_touch_window_s``.
* Touches remembered after the conversion happened are never used for it (a held conversion
  released days later keeps the attribution it had when it happened).

``apply`` writes the result where the snippet puts it (``context.attribution.firstTouch`` /
``.lastTouch``; ``context.campaign`` and ``context.clickIds`` when the event has none), so
mappings of those paths fill the HubSpot properties.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import msgspec

from forwarder.config import AttributionSettings
from forwarder.delivery.touches import UTM_FIELDS, TouchReader, epoch
from forwarder.events.payload import Payload
from forwarder.identity.keys import payload_keys
from forwarder.identity.resolve import People
from forwarder.storage.base import Key, Touch, TouchMemory
from forwarder.storage.roles import IdentityGraph

_TOUCH_KINDS = ("anonymousId", "userId")
"""The identifiers touches are remembered under."""


TOUCH_FIELDS = frozenset(("attribution", "campaign", "clickIds"))
"""The context fields an event's touches are read from (``TouchReader``; a page view's
``page`` too, when referrers are counted)."""
_TOUCH_FIELDS = TOUCH_FIELDS
_NO_TOUCHES: list[Touch] = []
"""What ``TouchReader`` reads off an event that carries none (shared: never changed)."""


class TouchReason(enum.StrEnum):
    """Why a touch was used for a conversion."""

    ON_EVENT = "on_event"
    """The conversion carried it."""
    REMEMBERED = "remembered"
    """Remembered for one of the conversion's own identifiers (its anonymousId or userId)."""
    LINKED = "linked"
    """Remembered for another identifier the identity graph links to the same person."""


class UsedTouch(msgspec.Struct, frozen=True):
    """A touch chosen for a conversion, and why."""

    touch: Touch
    reason: TouchReason
    via: str | None = None
    """The kind of identifier whose memory held it (``anonymousId``, ``userId``)."""


class Attribution(msgspec.Struct, frozen=True):
    """The first and last touch of one conversion."""

    first: UsedTouch | None
    last: UsedTouch | None
    window_s: float
    outside_window: Touch | None = None
    """The latest remembered touch when it was too old to be the last touch."""


_ORDER = {TouchReason.ON_EVENT: 0, TouchReason.REMEMBERED: 1, TouchReason.LINKED: 2}


def _earliest(used: Sequence[UsedTouch]) -> UsedTouch | None:
    return min(used, key=lambda u: (u.touch.at, _ORDER[u.reason]), default=None)


def _latest(used: Sequence[UsedTouch]) -> UsedTouch | None:
    # Of equal times the later in the list wins: a last touch is listed after its first.
    ranked = enumerate(used)
    best = max(ranked, key=lambda p: (p[1].touch.at, -_ORDER[p[1].reason], p[0]), default=None)
    return None if best is None else best[1]


def _person(keys: list[Key], people: Mapping[Key, list[Key]]) -> list[Key]:
    """An event's own keys, then every other key the graph links to them, each once."""
    if len(keys) == 1:  # the common case: one identifier, its person read once
        return list(dict.fromkeys([keys[0], *people.get(keys[0], ())]))
    return list(dict.fromkeys(k for key in keys for k in [key, *people.get(key, ())]))


def _touch_keys(
    own: list[list[Key]],
    people: Mapping[Key, list[Key]],
    unique: dict[Key, None] | None = None,
) -> list[Key]:
    """The keys touches may be remembered under, of every event's whole person, each once
    (what ``_person`` gives each event, without a list per event): the events' own keys
    (anonymousId and userId, ``payload_keys``), then the graph's other keys of those kinds;
    ``unique``: ``own``'s keys once each, in order (``People.keys``), when known."""
    if unique is None:
        unique = dict.fromkeys(chain.from_iterable(own))  # in C
    wanted = unique.copy()  # a copy of a dict does not hash its keys again
    # Each person's keys looked up once; keys the graph does not know skipped in C.
    for linked in filter(None, map(people.get, unique)):
        for other in linked:
            if other[0] in _TOUCH_KINDS:
                wanted[other] = None
    return list(wanted)


class Attributor:
    """Per portal: the window and the kinds that count, decided once; ``attribute`` per batch."""

    def __init__(self, portal: str, settings: AttributionSettings, storage: IdentityGraph) -> None:
        self._portal = portal
        self._window_s = settings.last_touch_window_s
        self._reader = TouchReader(settings.touches)
        self._storage = storage

    async def memory(self, known: People) -> Mapping[Key, TouchMemory]:
        """The touch memory of these events' people (their own keys and the graph's others
        of the kinds touches are remembered under): one look-up."""
        return await self._storage.touches_of(
            self._portal, _touch_keys(known.own, known.graph, known.keys)
        )

    async def attribute(
        self,
        events: Sequence[Payload],
        senders: Sequence[str | None] = (),
        known: People | None = None,
        memory: Mapping[Key, TouchMemory] | None = None,
        *,
        plain_contexts: bool = False,
    ) -> list[Attribution]:
        """One attribution per event, from the touch memory of each event's whole person;
        ``known``: what the identity graph knows of these events (read once per batch);
        ``memory``: the touch memory of at least their people (``memory(known)``; else read
        here); ``plain_contexts``: the caller found that no event's context has a field touches
        are read from (``TOUCH_FIELDS``, ``page``)."""
        people: Mapping[Key, list[Key]]
        unique = None
        if known is None:
            own = [payload_keys(data) for data in events]
            people = await self._storage.people_of(
                self._portal, list(dict.fromkeys(k for keys in own for k in keys))
            )
        else:
            own, people, unique = known.own, known.graph, known.keys
        if memory is None:
            memory = await self._storage.touches_of(self._portal, _touch_keys(own, people, unique))
        nothing = Attribution(None, None, self._window_s)
        if plain_contexts and not memory:
            return [nothing] * len(events)  # no touch on any event, none remembered
        out = []
        read = self._reader.of_payload
        pages = self._reader.counts_referrers  # a page view's referrer may be a touch
        for i, data in enumerate(events):
            context = data.context
            if context is None or (
                type(context) is dict
                and _TOUCH_FIELDS.isdisjoint(context)
                and not (pages and data.type == "page")
            ):
                on_event = _NO_TOUCHES  # what ``read`` finds on most events, asked inline
            else:
                on_event = read(data, senders[i] if i < len(senders) else None)
            if not on_event and not memory:
                out.append(nothing)  # the common case: no touch anywhere, nothing to decide
                continue
            everyone = _person(own[i], people)  # only for an event with something to decide
            if not on_event and all(k not in memory for k in everyone):
                out.append(nothing)
                continue
            out.append(self.decide(data, on_event, set(own[i]), everyone, memory))
        return out

    def decide(
        self,
        data: Payload,
        on_event: Sequence[Touch],
        own: set[Key],
        everyone: Sequence[Key],
        memory: Mapping[Key, TouchMemory],
    ) -> Attribution:
        """The rules of the module docstring for one event."""
        carried = [UsedTouch(t, TouchReason.ON_EVENT) for t in on_event]
        remembered: list[UsedTouch] = []
        at_most = math.inf
        if memory and any(key in memory for key in everyone):  # else no time to parse
            happened = epoch(data.timestamp)
            at_most = math.inf if happened is None else happened
        for key in everyone:
            found = memory.get(key)
            if found is None:
                continue
            reason = TouchReason.REMEMBERED if key in own else TouchReason.LINKED
            for touch in (found.first, found.last):
                if touch.at <= at_most:
                    remembered.append(UsedTouch(touch, reason, key[0]))
        first = _earliest([*carried, *remembered])
        if carried:
            return Attribution(first, _latest(carried), self._window_s)
        latest = _latest(remembered)
        if latest is not None and at_most - latest.touch.at > self._window_s:
            return Attribution(first, None, self._window_s, outside_window=latest.touch)
        return Attribution(first, latest, self._window_s)


def wire(touch: Touch) -> dict[str, Any]:
    """A touch in the snippet's shape (``context.attribution.firstTouch``)."""
    out: dict[str, Any] = {f: v for f in UTM_FIELDS if (v := getattr(touch, f)) is not None}
    if touch.click_ids:
        out["clickIds"] = dict(touch.click_ids)
    if touch.landing_page is not None:
        out["landingPage"] = touch.landing_page
    if touch.referrer is not None:
        out["referrer"] = touch.referrer
    out["timestamp"] = datetime.fromtimestamp(touch.at, UTC).isoformat(timespec="milliseconds")
    return out


def apply(data: Payload, attribution: Attribution) -> Payload:
    """``data`` with the attribution written in (a new payload and context; touches the event
    carried stay exactly as it sent them), or ``data`` itself when there is nothing to write."""
    first, last = attribution.first, attribution.last
    carried = TouchReason.ON_EVENT
    if (first is None or first.reason is carried) and (last is None or last.reason is carried):
        return data  # the common case: no remembered touch to write in
    replaced = {
        field: used.touch
        for field, used in (("firstTouch", first), ("lastTouch", last))
        if used is not None and used.reason is not TouchReason.ON_EVENT
    }
    context = dict(data.context or {})
    kept = context.get("attribution")
    touches = dict(kept) if isinstance(kept, dict) else {}
    touches.update({field: wire(touch) for field, touch in replaced.items()})
    context["attribution"] = touches
    latest = replaced.get("lastTouch")
    if latest is not None and "campaign" not in context and "clickIds" not in context:
        campaign = {f: v for f in UTM_FIELDS if (v := getattr(latest, f)) is not None}
        if campaign:
            context["campaign"] = campaign
        if latest.click_ids:
            context["clickIds"] = dict(latest.click_ids)
    return msgspec.structs.replace(data, context=context)
