"""Resolve: the best identity for each event, from the event itself and what the graph knows.

Order of candidates within a kind: the event's own identifier first (it is the most recent),
then the identity graph (learned from identify, alias, the utk cookie, webhooks), then, for
a userId, the contact that holds it in the configured unique property (batch read, cached).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

from forwarder.events.payload import Payload
from forwarder.identity.choice import (
    BATCH_READERS,
    NOTHING_KNOWN,
    OWN,
    Candidate,
    Candidates,
    Identity,
    any_carries_object_id,
    check,
    from_event,
    used,
)
from forwarder.identity.keys import payloads_keys
from forwarder.identity.lookup import ContactLookup
from forwarder.storage.base import Key
from forwarder.storage.roles import IdentityGraph

_GRAPH_KINDS = {"email": "email", "utk": "utk", "contactId": "objectId"}
_KIND_OF = itemgetter(0)


_FIRSTS_CACHED = 16_384
"""Identities remembered for the first valid candidate of a kind (a few per known visitor)."""


class People(NamedTuple):
    """What the identity graph knows of a batch's senders, read once and shared (identity
    choice and attribution both need it)."""

    own: list[list[Key]]
    """Per event, the keys it waits on (``person_keys``, ``payload_keys``)."""
    graph: Mapping[Key, list[Key]]
    """Per known key, every key of its person, least recently seen first."""
    keys: dict[Key, None] | None = None
    """Every key of ``own``, once, in order (as asked of the graph): attribution copies it
    rather than hash each key again."""
    kinds: frozenset[str] | None = None
    """The kinds of the graph's members (``member_kinds``), when already gathered."""

    def gathered(self) -> People:
        """These people with the kinds of their graph gathered (``member_kinds``)."""
        return self if self.kinds is not None else self._replace(kinds=member_kinds(self.graph))

    def part(self, start: int, stop: int) -> People:
        """The events ``start:stop``, sharing the whole graph and its kinds (``gathered``
        first, to gather them once: the kinds of the whole batch's people may hold more than
        the part's, and a kind without a candidate in an event's graph is skipped the same
        way, without a note). Touch memory is read for the whole batch, so the part carries no
        ``keys``."""
        return People(self.own[start:stop], self.graph, kinds=self.kinds)


def member_kinds(people: Mapping[Key, list[Key]]) -> frozenset[str]:
    """The kinds of every member of the graph, as candidates' kinds (``_GRAPH_KINDS``; ``""``
    for kinds that make none)."""
    # Gathered in C (a comprehension over a batch's graph cost a third of choosing its
    # identities); the few distinct ones mapped after.
    known = set(map(_KIND_OF, chain.from_iterable(people.values())))
    return frozenset(_GRAPH_KINDS.get(kind, "") for kind in known)


def later_kinds(
    people: Mapping[Key, list[Key]],
    contacts: Mapping[str, str | None],
    members: frozenset[str] | None = None,
) -> set[str]:
    """The kinds a batch may have candidates of beyond the events' own: those the graph knows
    of its senders (``members``: ``member_kinds(people)`` when already gathered), and objectId
    when a contact look-up found any."""
    kinds = set(member_kinds(people) if members is None else members)
    if any(contact is not None for contact in contacts.values()):
        kinds.add("objectId")
    return kinds


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
        self._readers = tuple((kind, OWN.get(kind)) for kind in self._order)
        """Per kind of the order, what reads an event's own identifier of it."""
        self._storage = storage
        self._lookup = lookup
        self._firsts: dict[str, dict[Candidate, Identity]] = {kind: {} for kind in self._order}
        """``_first_valid``'s answers, by kind, then candidate (one dict per kind: no
        ``(kind, candidate)`` tuple made and hashed per event)."""

    async def people(self, events: Sequence[Payload]) -> People:
        """The graph's knowledge of these events' senders: one look-up for the batch."""
        return await self.graph_of(self.keys_of(events))

    @staticmethod
    def keys_of(events: Sequence[Payload]) -> list[list[Key]]:
        """Per event, the keys it waits on (``People.own``)."""
        return payloads_keys(events)

    async def graph_of(self, own: list[list[Key]]) -> People:
        """``people`` of the events whose keys are ``own`` (``keys_of``)."""
        keys = dict.fromkeys(chain.from_iterable(own))  # each key once, in C
        graph = await self._storage.people_of(self._portal, list(keys))
        return People(own, graph, keys)

    async def identities(
        self,
        events: Sequence[Payload],
        known: People | None = None,
        *,
        plain_contexts: bool = False,
    ) -> list[Identity]:
        """One identity per event (kind None when nothing usable is known yet); ``known``:
        ``people(events)`` when the caller already has it; ``plain_contexts``: the caller found
        that no event's context has a field ``own_object_id`` reads (``OBJECT_ID_FIELDS``)."""
        found = known if known is not None else await self.people(events)
        own, people, members = found.own, found.graph, found.kinds
        contacts: dict[str, str | None] = {}
        if self._lookup is not None:
            user_ids = [v for keys in own for kind, v in keys if kind == "userId"]
            if user_ids:
                contacts = await self._lookup.resolve(user_ids)
        later = later_kinds(people, contacts, members)
        readers = self._readers
        if "objectId" not in later and (plain_contexts or not any_carries_object_id(events)):
            # No objectId anywhere in the batch (the common case for most senders): no event
            # reads its context for one; it would find none, and skip the kind without a note.
            readers = tuple(reader for reader in readers if reader[0] != "objectId")
        choose_one = self._choose
        out: list[Identity] = []
        append = out.append
        # ``_choose``'s first step, inline: most events carry an identifier of the order's
        # first kind that was seen (and found valid) before.
        kind, read = readers[0] if readers else ("", None)
        firsts = self._firsts.get(kind, {})
        if read is None:
            firsts_read: Sequence[Candidate | None] = [None] * len(events)
        elif (batch_read := BATCH_READERS.get(read)) is not None:
            firsts_read = batch_read(events)
        else:
            firsts_read = [read(data) for data in events]
        for data, keys, first in zip(events, own, firsts_read, strict=True):
            if first is not None:
                chosen = firsts.get(first)
                if chosen is not None:
                    append(chosen)
                    continue
            append(choose_one(data, keys, people, contacts, later, readers))
        return out

    def _choose(
        self,
        data: Payload,
        keys: list[Key],
        people: Mapping[Key, list[Key]],
        contacts: Mapping[str, str | None],
        later: Container[str],
        readers: tuple[tuple[str, Callable[[Payload], Candidate | None] | None], ...] | None = None,
    ) -> Identity:
        """``choose(self.candidates(...), order)``, reading candidates only until one is valid:
        the event's own identifier of a kind, then the graph's, then the contact look-up's,
        kind after kind down the order (most events stop at their first candidate); ``later``:
        ``later_kinds`` of the batch; ``readers``: the kinds of the order to read (all of them
        by default), each with its reader of the event's own identifier."""
        notes: list[str] | None = None  # made for the rare event that skips a candidate
        for kind, own in self._readers if readers is None else readers:
            first = own(data) if own is not None else None
            if first is not None and notes is None:
                # ``_first_valid``'s remembered answer asked inline (per event), then itself
                chosen = self._firsts[kind].get(first) or self._first_valid(kind, first)
                if chosen is not None:
                    return chosen
            if kind in later:
                found = self._later(kind, keys, people, contacts, first)
            elif first is None:
                continue  # the common case: nothing of this kind anywhere
            else:
                found = []
            for value, source in (first, *found) if first is not None else found:
                valid = check(kind, value)
                if valid is None:
                    notes = notes or []
                    notes.append(f"skipped {kind} from {source}: not a valid {kind}")
                    continue
                if not notes:
                    return Identity(kind, valid, used(kind, source))
                notes.append(f"used {kind} from {source}")
                return Identity(kind, valid, tuple(notes))
        return Identity(None, None, (*(notes or ()), NOTHING_KNOWN))

    def _first_valid(self, kind: str, first: Candidate) -> Identity | None:
        """The identity an event's own identifier makes when it is the first candidate and
        valid (None when it is not valid). Remembered per ``(value, path)``: a known
        visitor's events carry the same email again and again."""
        firsts = self._firsts[kind]
        known = firsts.get(first)
        if known is not None:
            return known
        valid = check(kind, first[0])
        if valid is None:
            return None
        if len(firsts) >= _FIRSTS_CACHED:
            firsts.clear()
        chosen = firsts[first] = Identity(kind, valid, used(kind, first[1]))
        return chosen

    @staticmethod
    def _later(
        kind: str,
        keys: list[Key],
        people: Mapping[Key, list[Key]],
        contacts: Mapping[str, str | None],
        first: tuple[str, str] | None,
    ) -> list[tuple[str, str]]:
        """A kind's candidates after the event's own (``first``): the graph's, most recently
        seen first, each value once, then (objectId) the contact that holds a userId."""
        found: list[tuple[str, str]] = []
        seen = {first[0]} if first is not None else set()
        for key in keys:
            for member_kind, member in reversed(people.get(key) or ()):
                if _GRAPH_KINDS.get(member_kind) == kind and member not in seen:
                    seen.add(member)
                    found.append((member, f"identity graph via {key[0]}"))
        if contacts and kind == "objectId":
            for via, value in keys:
                contact = contacts.get(value) if via == "userId" else None
                if contact is not None:
                    found.append((contact, "contact lookup by userId"))
        return found

    def candidates(
        self,
        data: Payload,
        keys: list[Key],
        people: Mapping[Key, list[Key]],
        contacts: Mapping[str, str | None],
    ) -> Candidates:
        """Every candidate of one event, by kind (``_choose`` reads them lazily; this is the
        whole list it stands for, kept as the reference the tests compare it with)."""
        candidates = from_event(data)
        for key in keys:
            members = people.get(key)
            if members:
                self._add_graph(candidates, key[0], members)
        for kind, value in keys if contacts else ():
            contact = contacts.get(value) if kind == "userId" else None
            if contact is not None:
                candidates.objectId.append((contact, "contact lookup by userId"))
        return candidates

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
