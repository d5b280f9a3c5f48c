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
from collections.abc import Mapping
from typing import Any

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
    # ``text_id`` only for a present id (it runs per event, and most carry one of the two).
    anonymous = data.get("anonymousId")
    if anonymous is not None and (anonymous := text_id(anonymous)) is not None:
        keys.append(("anonymousId", anonymous))
    user = data.get("userId")
    if user is not None and (user := text_id(user)) is not None:
        keys.append(("userId", user))
    return keys


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
        email = normalise_email(traits.get("email"))
        if email is not None:
            keys.append(("email", email))
    utk = text_id(context.get("hubspotutk"))
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
    previous = text_id(data.get("previousId"))
    if previous is not None:
        # Segment's alias: previousId is usually the anonymousId the user had before.
        keys += [("anonymousId", previous), ("userId", previous)]
    unique = list(dict.fromkeys(keys))
    return unique if len(unique) >= 2 else []
