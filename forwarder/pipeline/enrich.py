"""Enrich: learn identity links and touches from accepted events, and release what links unlock.

The identity graph learns from each accepted event through ``forwarder.identity.graph``
(``Linker``: an ``identify``, an ``alias``, the email in ``context.traits``, the ``hubspotutk``
cookie), which releases the conversions held for lack of identity that the links unlock.

Every event's campaign touches (``delivery.touches``) are remembered under its anonymousId and
userId, so a conversion sent later (another device, a backend, a browser that lost its storage)
can be attributed from them at delivery (``delivery.attribution``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import msgspec

from forwarder.delivery.touches import TouchReader, touch_fingerprint
from forwarder.identity.graph import Linker
from forwarder.identity.keys import person_keys
from forwarder.storage.base import Item, Key, Touch
from forwarder.storage.roles import IdentityGraph

_MAX_SENT = 65_536
_encode = msgspec.json.Encoder().encode


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
        self._link = Linker(storage, now, on_released)
        self._readers = dict(touch_readers or {})
        """Per portal that remembers touches."""
        self._sent: set[tuple[object, ...]] = set()
        """Touches this process already gave the store: the browser script sends its two touches
        with every event, and the store's first/last could not change from a repeat."""

    async def __call__(self, portal: str, events: Sequence[Mapping[str, Any]]) -> list[Item]:
        """Learn links from ``events`` (already durable); returns the items released."""
        return await self._link(portal, events)

    def linking(
        self, portal: str, events: Sequence[Mapping[str, Any]]
    ) -> Coroutine[Any, Any, list[Item]] | None:
        """What ``__call__`` does, as a coroutine to run; None when ``events`` teach no link."""
        return self._link.learning(portal, events)

    async def learn_touches(
        self, portal: str, events: Sequence[Mapping[str, Any]], sender: str | None = None
    ) -> None:
        """Give the store the touches of ``events`` (sent by the configured source ``sender``)
        that it has not had from this process yet.

        Browser events repeat the script's two touches on every event: comparing their JSON is
        a microsecond, reading them again ten, and the store's first/last could not change from
        a repeat. What was given is marked only once the store took it.
        """
        remembering = self.touching(portal, events, sender)
        if remembering is not None:
            await remembering

    def touching(
        self, portal: str, events: Sequence[Mapping[str, Any]], sender: str | None = None
    ) -> Coroutine[Any, Any, None] | None:
        """What ``learn_touches`` does, as a coroutine to run; None when the store needs none
        of the touches (they are marked given at once, as ``learn_touches`` would)."""
        reader = self._readers.get(portal)
        if reader is None:
            return None
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
        if not seen:
            self._mark(marks)
            return None
        return self._remember(portal, seen, marks)

    async def _remember(
        self, portal: str, seen: list[tuple[Key, Touch]], marks: list[tuple[object, ...]]
    ) -> None:
        await self._storage.remember_touches(portal, seen)
        self._mark(marks)

    def _mark(self, marks: list[tuple[object, ...]]) -> None:
        if not marks:
            return
        if len(self._sent) + len(marks) > _MAX_SENT:
            # Forgetting only costs a repeated, harmless write; it also lets an erased
            # person's touches be learned again from their next events.
            self._sent.clear()
        self._sent.update(marks)
