"""Destinations, named after the HubSpot API they call: conversions, timeline, contacts.

Each turns leased items into request inputs (``prepare``) and sends one batch (``send``). The
worker around them owns leasing, envelopes, retries and final states.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import uuid
from binascii import hexlify
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from forwarder.errors import HubSpotError
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.responses import HubSpotResponse
from forwarder.storage.base import Item
from forwarder.storage.outcomes import Outcome, Reason

try:  # CPython's own SHA-1 (see ``_sha1_of``); typeshed has no stub for the module
    from _sha1 import sha1 as _builtin_sha1  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - a Python built without it: OpenSSL's
    _builtin_sha1 = None

_NAMESPACE = uuid.UUID("5b0c3d1e-8f0a-4b8e-9d2c-2f7c0e3a9b11")


_NAMESPACE_BYTES = _NAMESPACE.bytes


def stable_uuid(portal_id: int, message_id: str, destination: str = "") -> str:
    """UUIDv5 of portal and messageId: a retry or a replay sends the same id again.

    ``uuid.uuid5`` by hand (SHA-1 of namespace and name, version and variant set in the hex
    digits), without building a ``UUID`` object: it runs per delivered event.
    """
    name = f"{portal_id}:{destination}:{message_id}".encode()
    x = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).hexdigest()
    # Version 5 is the 13th hex digit; the RFC 4122 variant keeps two bits of the 17th.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _sha1_of(data: bytes) -> Any:
    """A SHA-1 object to copy per event: CPython's built-in one where there is one.

    Copying OpenSSL's (``hashlib``) allocates an EVP context, and its ``hexdigest`` copies it
    again: 5,200 instructions per event under callgrind, against 3,500 for the built-in one,
    whose copy is a memcpy of its state. Both compute the same SHA-1."""
    if _builtin_sha1 is not None:
        return _builtin_sha1(data)
    return hashlib.sha1(data, usedforsecurity=False)


class StableUuids:
    """``stable_uuid`` of one portal and destination, for a batch of messageIds.

    The SHA-1 of the namespace and the ``portal:destination:`` prefix is taken once and copied
    per event, which then hashes only its messageId (a third less per event)."""

    def __init__(self, portal_id: int, destination: str = "") -> None:
        prefix = _NAMESPACE_BYTES + f"{portal_id}:{destination}:".encode()
        self._prefix = _sha1_of(prefix)

    def __call__(self, message_id: str) -> str:
        return self.of(message_id)

    def of(self, message_id: str) -> str:
        """The uuid of one messageId (what a call gives; per event, callers keep this bound
        method: calling the instance goes through a slot, 600 instructions more)."""
        digest = self._prefix.copy()
        digest.update(message_id.encode())
        # The groups cut out of the hex digits by one C call, not five slices (each ~700
        # instructions in 3.11): 11.2k -> 10.5k per uuid under callgrind.
        a, b, c, variant, d, e = _GROUPS(hexlify(digest.digest()))
        return (b"%b-%b-5%b-%b%b-%b" % (a, b, c, _VARIANT_BYTES[variant], d, e)).decode()

    def many(self, message_ids: Sequence[str]) -> list[str]:
        """The uuids of a batch's messageIds, in order: what ``of`` gives each, formatted for
        the whole batch at once.

        Per event only the SHA-1 (copy, update, digest); the digests are joined and turned to
        hex by one call, and each of a uuid's digits is moved into place for every event by one
        strided copy (``_MOVES``), the variant's through a translation table: per
        event 9.0k -> 5.0k instructions under callgrind, against ``of`` in a loop."""
        if not message_ids:
            return []
        prefix = self._prefix
        digests = []
        for message_id in message_ids:
            digest = prefix.copy()
            digest.update(message_id.encode())
            digests.append(digest.digest())
        hexes = hexlify(b"".join(digests))
        out = bytearray(_TEMPLATE * len(message_ids))
        for to, at in _MOVES:
            out[to::_UUID_LINE] = hexes[at::_SHA1_HEX]
        out[_VARIANT_AT::_UUID_LINE] = hexes[16::_SHA1_HEX].translate(_HEX_TO_VARIANT)
        return out.decode().split()


_TEMPLATE = b"00000000-0000-5000-0000-000000000000\n"
"""One uuid's line in ``many``'s buffer: dashes, the version's digit and the line's end are
set here; the other digits are copied in."""
_UUID_LINE = len(_TEMPLATE)
_SHA1_HEX = 40
_VARIANT_AT = 19
_MOVES = tuple(
    zip(
        [p for p in range(36) if p not in (8, 13, 14, 18, _VARIANT_AT, 23)],
        [q for q in range(32) if q not in (12, 16)],  # the version's and the variant's digits
        strict=True,
    )
)
"""(where in a uuid, where in SHA-1's hex digits) of the 30 digits copied as they are."""
_HEX_TO_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")
"""The RFC 4122 variant keeps two bits of its digit (``_VARIANT``)."""

_GROUPS = struct.Struct("8s4sx3s1s3s12s8x").unpack
"""A uuid's groups in SHA-1's 40 hex digits: 8, 4, the version's digit skipped, 3, the
variant's digit, 3, 12, and the 8 digits a uuid does not use."""
_VARIANT_BYTES = {d.encode(): v.encode() for d, v in _VARIANT.items()}


class Ready(msgspec.Struct, gc=False):
    """An item turned into one request input.

    Untracked by the garbage collector (``gc=False``), like ``Hold`` and ``Drop``: a batch's
    live for a whole HubSpot request, and every tracked object that survives a young
    collection is traversed again by the older ones. None can be part of a cycle: their
    fields are an item, its input, strings and shared outcomes.
    """

    item: Item
    input: Any
    key: str
    """What HubSpot echoes in per-input errors (email, id) to map them back."""
    outcome: Outcome = Outcome(Reason.DELIVERED)
    """What its item records once HubSpot takes it (for a conversion: the identity used)."""
    identifier: str | None = None
    """For attribution quality: the identifier kind a conversion went with (objectId, email,
    utk); None for inputs that are not conversions."""
    campaign: bool = False
    """For attribution quality: the event carries a campaign or a click id."""


class Hold(msgspec.Struct, gc=False):
    """An item that cannot go yet (no identity): park it until an identify releases it."""

    item: Item
    notes: tuple[str, ...]
    """Why no identity is usable yet, in plain words (candidates skipped, none known)."""
    keys: list[tuple[str, str]] = []
    """The identifiers whose linking releases it (anonymousId, userId)."""


class Drop(msgspec.Struct, gc=False):
    """An item that will never be sendable (by policy), with the reason."""

    item: Item
    reason: str


Prepared = Ready | Hold | Drop


class Destination(Protocol):
    """One HubSpot API a queue delivers to."""

    name: DestinationName
    route: str
    """The path it posts to (its portal's API version), for metrics and attempt records."""
    batch_size: int
    expects_results: bool
    conflict_is_duplicate: bool
    """A 409 on one input means HubSpot already has it (immutable, idempotent ids)."""

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        """Map leased items to inputs, holds and drops."""
        ...

    async def send(
        self, client: HubSpotClient, ready: Sequence[Ready]
    ) -> HubSpotResponse | HubSpotError:
        """Send one batch; HubSpot errors raised by the client are returned, not raised."""
        ...


PREPARE_PART = 100
"""The most items prepared between two turns of the event loop. Delivery shares the loop with
ingest: a whole batch of 500 held every request that arrived meanwhile for stretches of 2-3 ms
of CPU between its storage reads; in parts of 100, under 1 ms (``benchmarks/prepare_turns.py``).
Storage is read once for the whole batch before its parts (``mapped.read_batch``): each read
is a round trip whose client side costs ~0.3 M instructions however few keys it asks."""

T = TypeVar("T")


async def turn() -> None:
    """Let what waits for the event loop run before this task goes on. A task that yields with
    ``sleep(0)`` is queued before the callbacks that became ready while it ran (requests read,
    timers due): they would run only after its next stretch. Yielding twice, its first step
    back is only the second yield, and they run before it goes on."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def in_parts(
    prepare: Callable[[T], Awaitable[list[Prepared]]], parts: Sequence[T]
) -> list[Prepared]:
    """``prepare`` of each part in order, yielding to the event loop between parts so that
    requests waiting for it are answered in between."""
    out: list[Prepared] = []
    for n, part in enumerate(parts):
        if n:
            await turn()  # what arrived meanwhile runs first
        out += await prepare(part)
    return out


def decode(item: Item) -> dict[str, Any]:
    """The stored event as a dict."""
    data: dict[str, Any] = msgspec.json.decode(item.event.payload)
    return data
