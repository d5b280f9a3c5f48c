"""Segment-spec wire types: the published contract of the ingest API.

Tagged on ``type`` like the Segment spec (https://segment.com/docs/connections/spec/). Unknown
fields are tolerated here and kept by the pipeline, which stores the event as received plus
the fields it derives. ``schemas/`` is generated from these structs (``forwarder schemas``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

# One type for a refused event: the error that carries them (errors.py) sits below this layer.
from forwarder.errors import Rejected as Rejected

MAX_MESSAGE_ID = 128
"""Longest ``messageId`` accepted (UUIDs are 36; some SDKs prefix them)."""

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | int
"""Segment ids are strings; numbers are accepted and kept as sent."""
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MESSAGE_ID)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Object = dict[str, Any]


class Common(msgspec.Struct, rename="camel", kw_only=True):
    """Fields every call shares."""

    message_id: MessageId | None = None
    """Unique per message; repeats within the dedup window are dropped. Assigned when missing."""
    user_id: Id | None = None
    """Your database id of the user. ``userId`` or ``anonymousId`` is required (``""`` is none)."""
    anonymous_id: Id | None = None
    """A pseudo-unique id (cookie) for a visitor not yet identified."""
    timestamp: datetime | None = None
    """When the event happened (ISO-8601); derived from ``originalTimestamp`` when missing."""
    original_timestamp: datetime | None = None
    """The device's clock when the call was made."""
    sent_at: datetime | None = None
    """The device's clock when the request was sent (used to correct clock skew)."""
    context: Object = {}
    """Extra information: ``page``, ``campaign``, ``traits``, ``ip``, ``userAgent``, ``test``..."""
    integrations: Object = {}
    """Per-destination switches; ``{"HubSpot": false}`` skips delivery."""
    write_key: str | None = None
    """Browsers may put the write key in the body instead of a header."""


class Track(Common, tag_field="type", tag="track"):
    """A user did something."""

    event: Name
    """The action, e.g. ``Order Completed``."""
    properties: Object = {}
    """Free-form properties of the action."""


class Identify(Common, tag_field="type", tag="identify"):
    """Who the user is."""

    traits: Object = {}
    """Traits of the user: ``email``, ``firstName``, custom scores..."""


class Page(Common, tag_field="type", tag="page"):
    """A web page view."""

    name: str | None = None
    """Page name."""
    category: str | None = None
    """Page category."""
    properties: Object = {}
    """``url``, ``path``, ``referrer``, ``title``, ``search``..."""


class Screen(Common, tag_field="type", tag="screen"):
    """A mobile screen view."""

    name: str | None = None
    """Screen name."""
    category: str | None = None
    """Screen category."""
    properties: Object = {}
    """Free-form properties."""


class Group(Common, tag_field="type", tag="group"):
    """The user belongs to a group (account, company)."""

    group_id: Id
    """The group's id."""
    traits: Object = {}
    """Traits of the group."""


class Alias(Common, tag_field="type", tag="alias"):
    """Two ids are the same person."""

    previous_id: Id
    """The id the user had before (often the anonymousId)."""


Message = Track | Identify | Page | Screen | Group | Alias
"""Any single Segment call."""

MESSAGE_TYPES: dict[str, type[Message]] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}


class Batch(msgspec.Struct, rename="camel", kw_only=True):
    """``POST /v1/batch``: many calls in one request."""

    batch: list[Message]
    """The calls; each is validated on its own and rejected alone when invalid."""
    sent_at: datetime | None = None
    """The device's clock when the batch was sent (applies to calls without their own)."""
    context: Object = {}
    """Context merged under every call's own ``context``."""
    integrations: Object = {}
    """Integrations merged under every call's own."""
    write_key: str | None = None
    """Write key in the body (browsers)."""


class IngestResponse(msgspec.Struct, frozen=True):
    """The answer to an ingest request."""

    success: bool
    """True when at least one event was accepted or was a duplicate."""
    accepted: int
    """Events stored durably by this request."""
    duplicates: int
    """Events whose ``messageId`` was already seen within the window."""
    rejected: list[Rejected] = []
    """Events refused, with where and why."""


class ErrorResponse(msgspec.Struct, frozen=True):
    """The answer when the whole request is refused."""

    success: bool
    """Always false."""
    error: str
    """What is wrong, in words."""
    field: str | None = None
    """The header, limit or JSON path concerned, when there is one."""
    rejected: list[Rejected] = []
    """Per-event reasons when every event of the request was invalid."""
