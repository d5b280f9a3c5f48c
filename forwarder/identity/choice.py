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


def _add(found: list[tuple[str, str]], path: str, value: Any) -> bool:
    """Add ``value``, read at ``path``, to ``found`` when it is present; whether it was."""
    if value is None or value == "":
        return False
    found.append((str(value), path))
    return True


def from_event(data: Mapping[str, Any]) -> Candidates:
    """The identifiers an event carries itself (``(value, source path)`` pairs).

    Each kind's paths in order, the first present one wins and the later ones are not read;
    each object on the way is read once (this runs per event)."""
    found = Candidates()
    context = _object(data.get("context"))
    traits = _object(context.get("traits"))
    properties = _object(data.get("properties"))
    email = found.email
    _ = (
        _add(email, "traits.email", _object(data.get("traits")).get("email"))
        or _add(email, "context.traits.email", traits.get("email"))
        or _add(email, "properties.email", properties.get("email"))
    )
    utk = found.utk
    _ = (
        _add(utk, "context.hubspotutk", context.get("hubspotutk"))
        or _add(utk, "context.traits.hubspotutk", traits.get("hubspotutk"))
        or _add(utk, "properties.hubspotutk", properties.get("hubspotutk"))
    )
    contact = _object(context.get("hubspot")).get("contactId")
    _ = _add(found.objectId, "context.hubspot.contactId", contact) or _add(
        found.objectId, "context.hubspotContactId", context.get("hubspotContactId")
    )
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
