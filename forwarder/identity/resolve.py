"""Resolve: the best identity for each event, from the event itself and what the graph knows.

Order of candidates within a kind: the event's own identifier first (it is the most recent),
then the identity graph (learned from identify, alias, the utk cookie, webhooks), then, for
a userId, the contact that holds it in the configured unique property (batch read, cached).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from forwarder.identity.choice import Candidates, Identity, choose, from_event
from forwarder.identity.keys import person_keys
from forwarder.identity.lookup import ContactLookup
from forwarder.storage.base import Key
from forwarder.storage.roles import IdentityGraph

_GRAPH_KINDS = {"email": "email", "utk": "utk", "contactId": "objectId"}


class People(NamedTuple):
    """What the identity graph knows of a batch's senders, read once and shared (identity
    choice and attribution both need it)."""

    own: list[list[Key]]
    """Per event, the keys it waits on (``person_keys``)."""
    graph: Mapping[Key, list[Key]]
    """Per known key, every key of its person, least recently seen first."""


class Resolver:
    """Per portal: fallback order and sources, decided once; ``identities`` runs per batch."""

    def __init__(
        self,
        portal: str,
        order: Sequence[str],
        storage: IdentityGraph,
        lookup: ContactLookup | None = None,
    ) -> None:
        self._portal = portal
        self._order = tuple(order)
        self._storage = storage
        self._lookup = lookup

    async def people(self, events: Sequence[Mapping[str, Any]]) -> People:
        """The graph's knowledge of these events' senders: one look-up for the batch."""
        own = [person_keys(data) for data in events]
        graph = await self._storage.people_of(
            self._portal, list(dict.fromkeys(k for keys in own for k in keys))
        )
        return People(own, graph)

    async def identities(
        self, events: Sequence[Mapping[str, Any]], known: People | None = None
    ) -> list[Identity]:
        """One identity per event (kind None when nothing usable is known yet); ``known``:
        ``people(events)`` when the caller already has it."""
        own, people = known if known is not None else await self.people(events)
        contacts: dict[str, str | None] = {}
        if self._lookup is not None:
            user_ids = [v for keys in own for kind, v in keys if kind == "userId"]
            if user_ids:
                contacts = await self._lookup.resolve(user_ids)
        out = []
        order, add_graph = self._order, self._add_graph
        for data, keys in zip(events, own, strict=True):
            candidates = from_event(data)
            for key in keys:
                members = people.get(key)
                if members:
                    add_graph(candidates, key[0], members)
            for kind, value in keys if contacts else ():
                contact = contacts.get(value) if kind == "userId" else None
                if contact is not None:
                    candidates.objectId.append((contact, "contact lookup by userId"))
            out.append(choose(candidates, order))
        return out

    @staticmethod
    def _add_graph(candidates: Candidates, via: str, members: list[Key]) -> None:
        """The graph's identifiers of the person a key (of kind ``via``) belongs to."""
        for kind, value in reversed(members):  # most recently seen first
            target = _GRAPH_KINDS.get(kind)
            if target is not None:
                found = getattr(candidates, target)
                for known, _ in found:
                    if known == value:
                        break
                else:
                    found.append((value, f"identity graph via {via}"))
