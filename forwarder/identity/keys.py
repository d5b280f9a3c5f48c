"""Identity keys: the identifiers an event carries, and the links it asserts between them.

A key is ``(kind, value)``: ``anonymousId``, ``userId``, ``email``, ``utk`` or ``contactId``.
An event of a person waits on its anonymousId and userId (``person_keys``); an ``identify``
(traits), an ``alias`` (previousId), and any event carrying ``context.traits.email``, the
``hubspotutk`` cookie (``context.hubspotutk``) or ``context.hubspot.contactId`` assert that
their identifiers are one person (``links``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from forwarder.storage.base import Key

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ASSERTING = ("traits", "hubspotutk", "hubspot")


def normalise_email(value: object) -> str | None:
    """Trimmed, lower-cased email, or None when it is not an email."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) and len(email) <= 254 else None


def text_id(value: object) -> str | None:
    """An id as text: Segment ids are strings, numbers are accepted."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def person_keys(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys an event of a person waits on: its anonymousId and userId."""
    keys: list[tuple[str, str]] = []
    for kind in ("anonymousId", "userId"):
        value = text_id(data.get(kind))
        if value is not None:
            keys.append((kind, value))
    return keys


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
    utk = text_id(context.get("hubspotutk"))
    if utk is not None:
        keys.append(("utk", utk))
    hubspot = context.get("hubspot")
    if isinstance(hubspot, Mapping) and text_id(hubspot.get("contactId")) is not None:
        keys.append(("contactId", str(text_id(hubspot.get("contactId")))))
    if data.get("type") == "alias":
        previous = text_id(data.get("previousId"))
        if previous is not None:
            # Segment's alias: previousId is usually the anonymousId the user had before.
            keys += [("anonymousId", previous), ("userId", previous)]
    unique = list(dict.fromkeys(keys))
    return unique if len(unique) >= 2 else []
