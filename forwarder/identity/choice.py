"""Identity for delivery: which identifier a HubSpot request carries, and why.

HubSpot links an occurrence to a contact by ``objectId``, ``email`` or ``utk`` (see
docs/hubspot-contract.md, "Custom events"); an invalid email fails the whole event even when a
valid utk is present, so each
candidate is checked and skipped with a recorded reason, down a configurable fallback chain.
The identity graph (stitching anonymousId/userId to what HubSpot knows) feeds ``known``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import msgspec

from forwarder.events.payload import Payload
from forwarder.identity.keys import normalise_email

_UTK = re.compile(r"^[A-Za-z0-9]{16,64}$")
_OBJECT_ID = re.compile(r"^\d{1,20}$")


class Identity(msgspec.Struct, frozen=True, gc=False):
    """The identifier chosen for one request, and the trail of why (one per delivered event:
    untracked by the garbage collector, it holds only strings)."""

    kind: str | None
    """``objectId``, ``email``, ``utk``, or None when nothing usable is known."""
    value: str | None
    notes: tuple[str, ...] = ()
    """Skipped candidates and where the chosen one came from, in plain words."""


class Candidates(msgspec.Struct):
    """Identifiers seen on an event or learned by the graph, by kind."""

    objectId: list[tuple[str, str]] = []
    email: list[tuple[str, str]] = []
    utk: list[tuple[str, str]] = []


_NOTHING: Mapping[str, Any] = {}


def _object(value: Any) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else (a path through it finds nothing)."""
    if type(value) is dict:  # decoded JSON is made of dicts: the ABC check is slow
        return value
    return value if value is not None and isinstance(value, Mapping) else _NOTHING


Candidate = tuple[str, str]
"""An identifier and where it was read: ``(value, source path)``."""


def _first(*found: tuple[Any, str]) -> Candidate | None:
    """The first present ``(value, path)`` of a kind's paths (in order), as text."""
    for value, path in found:
        if value is not None and value != "":
            return str(value), path
    return None


def own_email(data: Payload) -> Candidate | None:
    """The email an event carries itself, and its path (the first present one wins)."""
    # Absent objects are skipped before any call, and dicts before the ABC check: per event.
    traits = data.traits
    if traits is not None:
        found = (traits if type(traits) is dict else _object(traits)).get("email")
        if found is not None and found != "":
            return (found if type(found) is str else str(found)), "traits.email"
    context = data.context
    if context is not None:
        traits = (context if type(context) is dict else _object(context)).get("traits")
        if traits is not None:
            found = (traits if type(traits) is dict else _object(traits)).get("email")
            if found is not None and found != "":
                return (found if type(found) is str else str(found)), _CONTEXT_TRAITS_EMAIL
    properties = data.properties
    if properties is None:
        return None
    return _first((_object(properties).get("email"), "properties.email"))


_CONTEXT_TRAITS_EMAIL = "context.traits.email"


def own_emails(datas: Sequence[Payload]) -> list[Candidate | None]:
    """``own_email`` of each event of a batch; the usual one (no top-level traits, an email
    string in ``context.traits``) read without a call."""
    out: list[Candidate | None] = []
    append = out.append
    for data in datas:
        context = data.context
        if data.traits is None and type(context) is dict:
            traits = context.get("traits")
            if type(traits) is dict:
                found = traits.get("email")
                if type(found) is str and found:
                    append((found, _CONTEXT_TRAITS_EMAIL))
                    continue
        append(own_email(data))
    return out


def own_utk(data: Payload) -> Candidate | None:
    """The ``hubspotutk`` cookie an event carries itself, and its path."""
    context = _object(data.context)
    return _first(
        (context.get("hubspotutk"), "context.hubspotutk"),
        (_object(context.get("traits")).get("hubspotutk"), "context.traits.hubspotutk"),
        (_object(data.properties).get("hubspotutk"), "properties.hubspotutk"),
    )


def own_object_id(data: Payload) -> Candidate | None:
    """The HubSpot contact id an event carries itself, and its path."""
    context = data.context
    if type(context) is not dict:  # decoded JSON is made of dicts: the ABC check is slow
        context = _object(context)
    if not context:
        return None  # the common case for a backend event: no context to read
    hubspot = context.get("hubspot")
    found = None if hubspot is None else _object(hubspot).get("contactId")
    if found is not None and found != "":
        return str(found), "context.hubspot.contactId"
    found = context.get("hubspotContactId")  # most events carry neither: no tuple of paths
    if found is not None and found != "":
        return str(found), "context.hubspotContactId"
    return None


OBJECT_ID_FIELDS = frozenset(("hubspot", "hubspotContactId"))
"""The context fields ``own_object_id`` reads."""
_OBJECT_ID_FIELDS = OBJECT_ID_FIELDS


def carries_object_id(data: Payload) -> bool:
    """Whether ``own_object_id`` may find a contact id on the event: False when its context has
    neither field (answered by one C call, without reading either)."""
    context = data.context
    if type(context) is dict:
        return not _OBJECT_ID_FIELDS.isdisjoint(context)
    return context is not None and isinstance(context, Mapping)


_CONTEXT_OF = attrgetter("context")


def any_carries_object_id(events: Sequence[Payload]) -> bool:
    """``any(map(carries_object_id, events))``: when every context is a dict (decoded JSON),
    answered in C, without a call per event."""
    contexts = list(map(_CONTEXT_OF, events))
    if set(map(type, contexts)) == {dict}:
        return not all(map(_OBJECT_ID_FIELDS.isdisjoint, contexts))
    return any(map(carries_object_id, events))


BATCH_READERS: Mapping[Callable[[Payload], Candidate | None], Callable[..., Any]] = {
    own_email: own_emails
}
"""Readers of an event's own identifier that have a version for a whole batch."""

OWN: Mapping[str, Callable[[Payload], Candidate | None]] = {
    "objectId": own_object_id,
    "email": own_email,
    "utk": own_utk,
}
"""Per kind, what reads an event's own identifier of that kind (each kind's paths in order,
the first present one wins and the later ones are not read)."""


def from_event(data: Payload) -> Candidates:
    """The identifiers an event carries itself (``(value, source path)`` pairs)."""
    found = Candidates()
    for kind, read in OWN.items():
        own = read(data)
        if own is not None:
            getattr(found, kind).append(own)
    return found


def check(kind: str, value: str) -> str | None:
    """The identifier in the form HubSpot takes, or None when it is not a valid ``kind``."""
    if kind == "email":
        return normalise_email(value)
    if kind == "utk":
        return value if _UTK.match(value) else None
    return value if _OBJECT_ID.match(value) else None


NOTHING_KNOWN = "no objectId, email or utk known for this person yet"
"""The last note of an identity that found nothing usable."""


@functools.lru_cache(maxsize=256)
def used(kind: str, source: str) -> tuple[str, ...]:
    # A few (kind, source) pairs per portal: one shared notes tuple each, not one per event.
    return (f"used {kind} from {source}",)


def choose(candidates: Candidates, order: Sequence[str]) -> Identity:
    """Walk the fallback chain; invalid candidates are skipped with a note."""
    notes: list[str] = []
    for kind in order:
        for value, source in getattr(candidates, kind, []):
            valid = check(kind, value)
            if valid is None:
                notes.append(f"skipped {kind} from {source}: not a valid {kind}")
                continue
            if not notes:  # the common case: the first candidate is valid
                return Identity(kind, valid, used(kind, source))
            notes.append(f"used {kind} from {source}")
            return Identity(kind, valid, tuple(notes))
    notes.append(NOTHING_KNOWN)
    return Identity(None, None, tuple(notes))
