"""Teaching the identity graph: links from accepted events, merges and deletions from HubSpot.

Links (``keys.links``) of accepted events join their identifiers into one person. Conversions
held for lack of identity wait on their anonymousId/userId; once a link makes them resolvable
they are released at once, keeping their original ``occurredAt`` and uuid.

HubSpot's ``contact.merge`` remaps the losing contact ids to the winner; ``contact.deletion``
and ``contact.privacyDeletion`` erase that person. Deliveries may repeat or arrive out of
order: applying one twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from forwarder.identity.keys import links
from forwarder.storage.base import Item, Key
from forwarder.storage.roles import IdentityGraph
from forwarder.telemetry import get_logger


class Linker:
    """Links the identities of accepted events and releases the conversions the links unlock."""

    def __init__(
        self,
        storage: IdentityGraph,
        now: Callable[[], float],
        on_released: Callable[[str, tuple[str, ...]], None] | None = None,
    ) -> None:
        self._storage = storage
        self._now = now
        self._on_released = on_released

    async def __call__(self, portal: str, events: Sequence[Mapping[str, Any]]) -> list[Item]:
        """Learn links from ``events`` (already durable); returns the items released."""
        learning = self.learning(portal, events)
        return [] if learning is None else await learning

    def learning(
        self, portal: str, events: Sequence[Mapping[str, Any]]
    ) -> Coroutine[Any, Any, list[Item]] | None:
        """What ``__call__`` does, begun now (the storage call is under way), as a coroutine to
        await for its result; None when ``events`` teach no link (most events)."""
        # A link repeated by the events that follow it is given once: a batch from one device
        # asserts its user's link in every event, and learning it again in the same call (same
        # clock) changes nothing. Only the previous link is compared (a list comparison): a
        # set of every link costs more than it saves when the links all differ.
        groups: list[list[Key]] = []
        last: list[Key] | None = None
        for data in events:
            keys = links(data)
            if keys and keys != last:
                groups.append(keys)
                last = keys
        if not groups:
            return None
        # One storage call for the whole request, however many events teach links.
        return self._released(portal, self._storage.learn_soon(portal, groups, now=self._now()))

    async def _released(self, portal: str, learning: Awaitable[list[Item]]) -> list[Item]:
        released = await learning
        if released and self._on_released is not None:
            self._on_released(portal, tuple(sorted({i.destination for i in released})))
        return released


class ContactChanges:
    """HubSpot's word on contacts (merges, deletions), applied to the graph."""

    def __init__(self, storage: IdentityGraph) -> None:
        self._storage = storage
        self._log = get_logger("webhooks")

    async def merged(
        self,
        portal: str,
        *,
        primary: int | None,
        merged: Sequence[int],
        new: int | None,
        now: float,
    ) -> None:
        """Remap the merged contact ids (and a replaced primary) to the winning one."""
        winner = new or primary
        if winner is None:
            return
        losers = [str(i) for i in merged]
        if primary is not None and primary != winner:
            losers.append(str(primary))
        changed = await self._storage.remap_contact(portal, losers, str(winner), now=now)
        self._log.info("contact_merge_applied", portal=portal, remapped=changed)

    async def deleted(self, portal: str, contact_id: int | None, *, now: float) -> None:
        """Erase the person holding ``contact_id`` (nothing when HubSpot gave no id)."""
        if contact_id is None:
            return
        erased = await self._storage.erase(portal, [("contactId", str(contact_id))], now=now)
        self._log.info(
            "contact_deletion_applied", portal=portal, events=erased.events, items=erased.items
        )
