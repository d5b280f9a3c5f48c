"""Identity for delivery: which identifier a HubSpot request carries, and why.

HubSpot links an occurrence to a contact by ``objectId``, ``email`` or ``utk`` (see
docs/hubspot-contract.md, "Custom events"); an invalid email fails the whole event even when a
valid utk is present, so each
candidate is checked and skipped with a recorded reason, down a configurable fallback chain.
The identity graph (stitching anonymousId/userId to what HubSpot knows) feeds ``known``.
"""

from __future__ import annotations

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


Paths = tuple[tuple[str, tuple[str, ...]], ...]


def _paths(*paths: str) -> Paths:
    """Dotted paths, split once at import: ``_first`` runs per event."""
    return tuple((path, tuple(path.split("."))) for path in paths)


_EMAIL_PATHS = _paths("traits.email", "context.traits.email", "properties.email")
_UTK_PATHS = _paths("context.hubspotutk", "context.traits.hubspotutk", "properties.hubspotutk")
_CONTACT_PATHS = _paths("context.hubspot.contactId", "context.hubspotContactId")


def _first(data: Mapping[str, Any], paths: Paths) -> tuple[str, Any] | None:
    for path, parts in paths:
        node: Any = data
        for part in parts:
            # Decoded JSON is made of dicts: test for dict first, the ABC check is slow.
            if type(node) is not dict and not isinstance(node, Mapping):
                node = None
                break
            node = node.get(part)
        if node is not None and node != "":
            return path, node
    return None


def from_event(data: Mapping[str, Any]) -> Candidates:
    """The identifiers an event carries itself (``(value, source path)`` pairs)."""
    found = Candidates()
    email = _first(data, _EMAIL_PATHS)
    if email is not None:
        found.email.append((str(email[1]), email[0]))
    utk = _first(data, _UTK_PATHS)
    if utk is not None:
        found.utk.append((str(utk[1]), utk[0]))
    contact = _first(data, _CONTACT_PATHS)
    if contact is not None:
        found.objectId.append((str(contact[1]), contact[0]))
    return found


def _check(kind: str, value: str) -> str | None:
    if kind == "email":
        return normalise_email(value)
    if kind == "utk":
        return value if _UTK.match(value) else None
    return value if _OBJECT_ID.match(value) else None


def choose(candidates: Candidates, order: Sequence[str]) -> Identity:
    """Walk the fallback chain; invalid candidates are skipped with a note."""
    notes: list[str] = []
    for kind in order:
        for value, source in getattr(candidates, kind, []):
            valid = _check(kind, value)
            if valid is None:
                notes.append(f"skipped {kind} from {source}: not a valid {kind}")
                continue
            notes.append(f"used {kind} from {source}")
            return Identity(kind, valid, tuple(notes))
    notes.append("no objectId, email or utk known for this person yet")
    return Identity(None, None, tuple(notes))
