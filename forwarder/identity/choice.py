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
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from forwarder.identity.keys import normalise_email

_UTK = re.compile(r"^[A-Za-z0-9]{16,64}$")
_OBJECT_ID = re.compile(r"^\d{1,20}$")


class Identity(msgspec.Struct, frozen=True):
    """The identifier chosen for one request, and the trail of why."""

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


def _first(found: list[tuple[str, str]], candidates: tuple[tuple[str, Any], ...]) -> None:
    """Add the first present ``(source path, value)`` of ``candidates`` to ``found``."""
    for path, value in candidates:
        if value is not None and value != "":
            found.append((str(value), path))
            return


def from_event(data: Mapping[str, Any]) -> Candidates:
    """The identifiers an event carries itself (``(value, source path)`` pairs).

    Each kind's paths in order, each object on the way read once (this runs per event)."""
    found = Candidates()
    context = _object(data.get("context"))
    traits = _object(context.get("traits"))
    properties = _object(data.get("properties"))
    email = (
        ("traits.email", _object(data.get("traits")).get("email")),
        ("context.traits.email", traits.get("email")),
        ("properties.email", properties.get("email")),
    )
    _first(found.email, email)
    utk = (
        ("context.hubspotutk", context.get("hubspotutk")),
        ("context.traits.hubspotutk", traits.get("hubspotutk")),
        ("properties.hubspotutk", properties.get("hubspotutk")),
    )
    _first(found.utk, utk)
    contact = (
        ("context.hubspot.contactId", _object(context.get("hubspot")).get("contactId")),
        ("context.hubspotContactId", context.get("hubspotContactId")),
    )
    _first(found.objectId, contact)
    return found


def _check(kind: str, value: str) -> str | None:
    if kind == "email":
        return normalise_email(value)
    if kind == "utk":
        return value if _UTK.match(value) else None
    return value if _OBJECT_ID.match(value) else None


@functools.lru_cache(maxsize=256)
def _used(kind: str, source: str) -> tuple[str, ...]:
    # A few (kind, source) pairs per portal: one shared notes tuple each, not one per event.
    return (f"used {kind} from {source}",)


def choose(candidates: Candidates, order: Sequence[str]) -> Identity:
    """Walk the fallback chain; invalid candidates are skipped with a note."""
    notes: list[str] = []
    for kind in order:
        for value, source in getattr(candidates, kind, []):
            valid = _check(kind, value)
            if valid is None:
                notes.append(f"skipped {kind} from {source}: not a valid {kind}")
                continue
            if not notes:  # the common case: the first candidate is valid
                return Identity(kind, valid, _used(kind, source))
            notes.append(f"used {kind} from {source}")
            return Identity(kind, valid, tuple(notes))
    notes.append("no objectId, email or utk known for this person yet")
    return Identity(None, None, tuple(notes))
