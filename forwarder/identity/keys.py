"""Identity keys: the identifiers an event carries, and the links it asserts between them.

A key is ``(kind, value)``: ``anonymousId``, ``userId``, ``email``, ``utk`` or ``contactId``.
An event of a person waits on its anonymousId and userId (``person_keys``); an ``identify``
(traits), an ``alias`` (previousId), and any event carrying ``context.traits.email``, the
``hubspotutk`` cookie (``context.hubspotutk``) or ``context.hubspot.contactId`` assert that
their identifiers are one person (``links``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from forwarder.events.payload import Payload
from forwarder.storage.base import Key

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(value: object) -> str | None:
    """Trimmed, lower-cased email, or None when it is not an email."""
    if not isinstance(value, str):
        return None
    # Every event of a known visitor carries their email again: remembered, not matched again
    # (long strings, never a valid email once trimmed unless mostly blanks, are not kept).
    return _normalised(value) if len(value) <= 320 else _normalise(value)


def _normalise(value: str) -> str | None:
    email = value.strip().lower()
    return email if _EMAIL.match(email) and len(email) <= 254 else None


_normalised = functools.lru_cache(maxsize=16_384)(_normalise)


def text_id(value: object) -> str | None:
    """An id as text: Segment ids are strings, numbers are accepted."""
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        return stripped if stripped else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def person_keys(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys an event of a person waits on: its anonymousId and userId."""
    keys: list[tuple[str, str]] = []
    # ``text_id``, inlined for strings: this runs for every event that teaches a link.
    anonymous = data.get("anonymousId")
    if anonymous is not None:
        anonymous = anonymous.strip() if type(anonymous) is str else text_id(anonymous)
        if anonymous:
            keys.append(("anonymousId", anonymous))
    user = data.get("userId")
    if user is not None:
        user = user.strip() if type(user) is str else text_id(user)
        if user:
            keys.append(("userId", user))
    return keys


def payload_keys(payload: Payload) -> list[tuple[str, str]]:
    """``person_keys`` of a leased event (delivery's typed ``Payload``)."""
    keys: list[tuple[str, str]] = []
    anonymous = payload.anonymousId
    if anonymous is not None:
        anonymous = anonymous.strip() if type(anonymous) is str else text_id(anonymous)
        if anonymous:
            keys.append(("anonymousId", anonymous))
    user = payload.userId
    if user is not None:
        user = user.strip() if type(user) is str else text_id(user)
        if user:
            keys.append(("userId", user))
    return keys


def payloads_keys(payloads: Sequence[Payload]) -> list[list[tuple[str, str]]]:
    """``payload_keys`` of each event of a batch; the usual event (a string userId and no
    anonymousId, as backends send) without a call per event."""
    out: list[list[tuple[str, str]]] = []
    append = out.append
    for payload in payloads:
        user = payload.userId
        if payload.anonymousId is None and type(user) is str:
            user = user.strip()
            append([("userId", user)] if user else [])
        else:
            append(payload_keys(payload))
    return out


def links(data: Mapping[str, Any]) -> list[Key]:
    """Every identifier an event asserts belongs to its sender (empty when fewer than two)."""
    context = data.get("context")
    if type(context) is not dict and not isinstance(context, Mapping):  # the ABC check is slow
        context = {}
    kind = data.get("type")
    if (
        kind != "identify"
        and kind != "alias"
        and "traits" not in context
        and "hubspotutk" not in context
        and "hubspot" not in context
    ):
        return []  # the common case: a plain track or page teaches nothing
    keys = person_keys(data)
    traits = data.get("traits") if kind == "identify" else context.get("traits")
    if type(traits) is dict or isinstance(traits, Mapping):
        email = traits.get("email")
        if email is not None:
            # ``normalise_email``: its remembered answer asked at once for a usual string
            usual = type(email) is str and len(email) <= 320
            email = _normalised(email) if usual else normalise_email(email)
            if email is not None:
                keys.append(("email", email))
    utk = context.get("hubspotutk")
    if utk is not None:
        utk = text_id(utk)
        if utk is not None:
            keys.append(("utk", utk))
    hubspot = context.get("hubspot")
    if (
        hubspot is not None  # the ABC check is slow, and most events have none
        and isinstance(hubspot, Mapping)
        and (contact := text_id(hubspot.get("contactId"))) is not None
    ):
        keys.append(("contactId", contact))
    if kind != "alias":
        # Each kind at most once: no key can repeat.
        return keys if len(keys) >= 2 else []
    return _aliased(data, keys)


def _aliased(data: Mapping[str, Any], keys: list[Key]) -> list[Key]:
    """``links`` of an alias: ``keys`` and its previousId."""
    previous = text_id(data.get("previousId"))
    if previous is not None:
        # Segment's alias: previousId is usually the anonymousId the user had before.
        keys += [("anonymousId", previous), ("userId", previous)]
    unique = list(dict.fromkeys(keys))
    return unique if len(unique) >= 2 else []
