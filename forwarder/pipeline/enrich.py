"""Enrich: learn identity links and touches from accepted events, and release what links unlock.

An ``identify`` (traits), an ``alias`` (previousId), and any event carrying
``context.traits.email`` or the ``hubspotutk`` cookie (``context.hubspotutk``) teach the graph
that its identifiers are one person. Conversions held for lack of identity wait on their
anonymousId/userId; once a link makes them resolvable they are released at once, keeping their
original ``occurredAt`` and uuid.

Every event's campaign touches (``delivery.touches``) are remembered under its anonymousId and
userId, so a conversion sent later (another device, a backend, a browser that lost its storage)
can be attributed from them at delivery (``delivery.attribution``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from forwarder.delivery.identity import normalise_email, person_keys
from forwarder.delivery.identity import text_id as _text
from forwarder.delivery.touches import TouchReader, touch_fingerprint
from forwarder.storage.base import Item, Key, Touch
from forwarder.storage.roles import IdentityGraph

_ASSERTING = ("traits", "hubspotutk", "hubspot")
_MAX_SENT = 65_536
_encode = msgspec.json.Encoder().encode


def links(data: Mapping[str, Any]) -> list[Key]:
    """Every identifier an event asserts belongs to its sender (empty when fewer than two)."""
    context = data.get("context")
    if not isinstance(context, dict | Mapping):  # dict first: the ABC check is slow
        context = {}
    kind = data.get("type")
    if kind not in ("identify", "alias") and not any(k in context for k in _ASSERTING):
        return []  # the common case: a plain track or page teaches nothing
    keys = person_keys(data)
    traits = data.get("traits") if data.get("type") == "identify" else context.get("traits")
    if isinstance(traits, Mapping):
        email = normalise_email(traits.get("email"))
        if email is not None:
            keys.append(("email", email))
    utk = _text(context.get("hubspotutk"))
    if utk is not None:
        keys.append(("utk", utk))
    hubspot = context.get("hubspot")
    if isinstance(hubspot, Mapping) and _text(hubspot.get("contactId")) is not None:
        keys.append(("contactId", str(_text(hubspot.get("contactId")))))
    if data.get("type") == "alias":
        previous = _text(data.get("previousId"))
        if previous is not None:
            # Segment's alias: previousId is usually the anonymousId the user had before.
            keys += [("anonymousId", previous), ("userId", previous)]
    unique = list(dict.fromkeys(keys))
    return unique if len(unique) >= 2 else []


class Enricher:
    """Links identities of accepted events, remembers their touches, releases held conversions."""

    def __init__(
        self,
        storage: IdentityGraph,
        now: Callable[[], float],
        on_released: Callable[[str, tuple[str, ...]], None] | None = None,
        touch_readers: Mapping[str, TouchReader] | None = None,
    ) -> None:
        self._storage = storage
        self._now = now
        self._on_released = on_released
        self._readers = dict(touch_readers or {})
        """Per portal that remembers touches."""
        self._sent: set[tuple[object, ...]] = set()
        """Touches this process already gave the store: the browser script sends its two touches
        with every event, and the store's first/last could not change from a repeat."""

    async def __call__(self, portal: str, events: Sequence[Mapping[str, Any]]) -> list[Item]:
        """Learn links from ``events`` (already durable); returns the items released."""
        groups = [keys for data in events if (keys := links(data))]
        if not groups:
            return []
        now = self._now()
        await asyncio.gather(*(self._storage.link(portal, keys, now=now) for keys in groups))
        people = await self._storage.people_of(portal, [keys[0] for keys in groups])
        everyone = list(dict.fromkeys(k for person in people.values() for k in person))
        released = await self._storage.release_for(portal, everyone, now=now)
        if released and self._on_released is not None:
            self._on_released(portal, tuple(sorted({i.destination for i in released})))
        return released

    async def learn_touches(
        self, portal: str, events: Sequence[Mapping[str, Any]], sender: str | None = None
    ) -> None:
        """Give the store the touches of ``events`` (sent by the configured source ``sender``)
        that it has not had from this process yet.

        Browser events repeat the script's two touches on every event: comparing their JSON is
        a microsecond, reading them again ten, and the store's first/last could not change from
        a repeat. What was given is marked only once the store took it.
        """
        reader = self._readers.get(portal)
        if reader is None:
            return
        marks: list[tuple[object, ...]] = []
        seen: list[tuple[Key, Touch]] = []
        for data in events:
            context = data.get("context")
            kept = context.get("attribution") if type(context) is dict else None
            if kept:
                mark = (portal, data.get("anonymousId"), data.get("userId"), _encode(kept))
                if mark in self._sent:
                    continue
                marks.append(mark)
            for touch in reader(data, sender):
                for key in person_keys(data):
                    given = (portal, key, touch_fingerprint(touch))
                    if given not in self._sent:
                        marks.append(given)
                        seen.append((key, touch))
        if seen:
            await self._storage.remember_touches(portal, seen)
        if len(self._sent) + len(marks) > _MAX_SENT:
            # Forgetting only costs a repeated, harmless write; it also lets an erased
            # person's touches be learned again from their next events.
            self._sent.clear()
        self._sent.update(marks)
