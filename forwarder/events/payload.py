"""A stored event as delivery reads it: only the top-level fields delivery looks at.

Delivery decodes each leased event's stored JSON (the stored format is the whole Segment event,
unchanged) straight into ``Payload``: msgspec skips the fields no delivery step reads
(``messageId`` aside, ``originalTimestamp``, ``sentAt``, ``integrations``, ...) without
building them, and the readers (identity keys and candidates, attribution, mapping, the
request's time and campaign flag) read attributes instead of looking keys up in a dict.

A field that is absent is None, as ``dict.get`` answered for the dict this replaces; the
nested objects (``properties``, ``context``, ``traits``) stay the dicts (or whatever JSON
values) the event carried, since mappings may name any path inside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class Payload(msgspec.Struct, gc=False):
    """The top-level fields of a stored event that delivery reads (absent: None).

    Untracked by the garbage collector: one is made per leased event, and it cannot be part of
    a cycle (what it holds is decoded JSON, which never refers back to it).
    """

    type: Any = None
    event: Any = None
    """A track's name."""
    name: Any = None
    """A page's or screen's name."""
    userId: Any = None
    anonymousId: Any = None
    messageId: Any = None
    """Read only for a touch the event carries (``Touch.message_id``)."""
    timestamp: Any = None
    receivedAt: Any = None
    properties: Any = None
    context: Any = None
    traits: Any = None


FIELDS = Payload.__struct_fields__
"""Every key of an event a ``Payload`` keeps."""

decode_payload = msgspec.json.Decoder(Payload).decode
"""A stored event's JSON as a ``Payload`` (one decoder, built once)."""


def payload_of(data: Mapping[str, Any]) -> Payload:
    """The ``Payload`` of an event already decoded as a dict (the debugger's, tests'): what
    ``decode_payload`` makes of that dict's JSON."""
    return Payload(*[data.get(field) for field in FIELDS])


def as_dict(payload: Payload) -> dict[str, Any]:
    """A ``Payload`` as a dict of its fields (absent ones None): for readers written for the
    dict of a whole event that read only top-level keys a ``Payload`` keeps, on rare paths."""
    return msgspec.structs.asdict(payload)
