"""What the conversions and timeline destinations share: attribute each event from the person's
touch memory, map it, choose its identity, and sort out what cannot go (no mapping: dropped;
no identity yet: held)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter, is_not
from typing import NamedTuple

import msgspec

from forwarder.delivery.attribution import TOUCH_FIELDS, Attribution, Attributor, apply
from forwarder.delivery.destinations import PREPARE_PART, Drop, Hold, Prepared, turn
from forwarder.delivery.mapping import CONTEXT_KEYS, Conversion, Mapper
from forwarder.events.payload import Payload, decode_payload
from forwarder.identity.choice import OBJECT_ID_FIELDS, Identity
from forwarder.identity.keys import payload_keys
from forwarder.identity.resolve import People, Resolver
from forwarder.storage.base import Item, Key, TouchMemory
from forwarder.storage.outcomes import Outcome, Reason


class Mapped(msgspec.Struct, frozen=True, gc=False):
    """An item that can be sent: its event, identity and mapping.

    A Struct, not a NamedTuple: one is made per event, and a NamedTuple's ``__new__`` runs in
    Python (3,200 instructions a call under callgrind, against 800). Untracked by the garbage
    collector, like ``Ready``: nothing it holds refers back to it.
    """

    item: Item
    data: Payload
    """The fields of the event delivery reads (attribution written in)."""
    identity: Identity
    conversion: Conversion
    campaign: bool = False
    """The event carries a campaign or a click id (``carries_campaign``): set only when
    ``map_and_identify`` is asked for ``campaigns``."""


class Known(NamedTuple):
    """A part of a batch with what storage knows of it, read for the whole batch at once
    (``read_batch``)."""

    items: Sequence[Item]
    datas: list[Payload]
    """Each item's decoded event."""
    people: People
    """The part's keys, with the whole batch's graph and its member kinds (``People.part``)."""
    memory: Mapping[Key, TouchMemory] | None
    """The touch memory of the whole batch's people (None: no attribution)."""


async def read_batch(
    items: Sequence[Item],
    resolver: Resolver,
    attributor: Attributor | None,
    part: int = PREPARE_PART,
) -> list[Known]:
    """A batch decoded, and its identity graph and touch memory read with one storage call
    each, then cut in parts of ``part`` items to map one at a time. The event loop gets a
    turn between decoded parts and after each read, as between mapped parts."""
    if not items:
        return [Known(items, [], People([], {}), None)]  # as one part: nothing to read
    datas: list[Payload] = []
    own: list[list[Key]] = []
    for start in range(0, len(items), part):
        if start:
            await turn()
        decoded = [decode_payload(item.event.payload) for item in items[start : start + part]]
        datas += decoded
        own += resolver.keys_of(decoded)
    people = (await resolver.graph_of(own)).gathered()  # its kinds gathered once, not per part
    await turn()  # the graph's reply was decoded in this stretch
    memory = None
    if attributor is not None:
        memory = await attributor.memory(people)
        await turn()  # and the touches' here
    return [
        Known(items[s : s + part], datas[s : s + part], people.part(s, s + part), memory)
        for s in range(0, len(items), part)
    ]


async def map_and_identify(
    items: Sequence[Item],
    mapper: Mapper,
    resolver: Resolver,
    *,
    usable: Callable[[Conversion], bool] | None,
    drop_reason: str,
    attributor: Attributor | None = None,
    campaigns: bool = False,
    known: Known | None = None,
) -> tuple[list[Prepared], list[Mapped]]:
    """Drops and holds, and the items that are ready to be turned into inputs; ``usable``:
    which mappings this destination can send (None: every one); ``campaigns``: set each
    ``Mapped.campaign``; ``known``: what ``read_batch`` read of these items (else read here)."""
    memory = None
    if known is None:
        # Straight into the fields delivery reads: the rest of each event is skipped, not built.
        datas = [decode_payload(item.event.payload) for item in items]
        people = await resolver.people(datas)  # one graph look-up, shared with attribution
    else:
        datas, people, memory = known.datas, known.people, known.memory
    # Most batches (backend events) carry no context field past the traits: then no step
    # below looks at a context for one (objectId, touches, default properties, campaign).
    plain = plain_contexts(datas)
    identities = await resolver.identities(datas, people, plain_contexts=plain)
    if attributor is not None:
        # Plain contexts carry no touch, so no touch's sender is read.
        senders = () if plain else [item.event.source for item in items]
        found = await attributor.attribute(datas, senders, people, memory, plain_contexts=plain)
        if not _nothing_to_write(found):
            attributed = [
                data if a.first is None and a.last is None else apply(data, a)  # most have none
                for data, a in zip(datas, found, strict=True)
            ]
            if plain and any(map(is_not, attributed, datas)):
                plain = plain_contexts(attributed)  # a remembered touch was written in
            datas = attributed
    settled: list[Prepared] = []
    mapped: list[Mapped] = []
    conversions = mapper.conversions_of(datas, plain)
    # Attribution may have written a campaign in: read from the events as they go.
    flags = campaign_flags(datas) if campaigns and not plain else [False] * len(datas)
    for item, data, identity, conversion, campaign in zip(
        items, datas, identities, conversions, flags, strict=True
    ):
        if conversion is None or (usable is not None and not usable(conversion)):
            settled.append(Drop(item, drop_reason))
        elif identity.kind is None:
            settled.append(Hold(item, identity.notes, payload_keys(data)))
        else:
            mapped.append(Mapped(item, data, identity, conversion, campaign))
    return settled, mapped


def _nothing_to_write(found: list[Attribution]) -> bool:
    """Whether a batch's attributions are one answer without a touch (the usual batch: told
    in C by ``list.count``, the answers being one shared object), so nothing is written in."""
    one = found[0] if found else None
    return (
        one is not None
        and one.first is None
        and one.last is None
        and found.count(one) == len(found)
    )


PLAIN_CONTEXT = CONTEXT_KEYS | TOUCH_FIELDS | OBJECT_ID_FIELDS | {"page", "clickIds"}
"""The context fields any step of ``map_and_identify`` past identity's own email and utk reads
(default properties, touches and a page's referrer, objectId, campaign flags): a context with
none of them is read by none of those steps."""


def plain_contexts(datas: Sequence[Payload]) -> bool:
    """Whether no event's context has a field of ``PLAIN_CONTEXT``: checked in C for the
    batch, so that no step asks each event again.

    A context that is not an object is read by none of those steps either: a string or a list
    counts as plain unless it holds one of the names (a list with ``"page"``: not plain, to be
    safe), and one that cannot be iterated (a number) or holds objects makes the batch not
    plain (``isdisjoint`` raises)."""
    try:
        return all(map(PLAIN_CONTEXT.isdisjoint, filter(None, map(_CONTEXT_OF, datas))))
    except TypeError:
        return False


def delivered(identity: Identity) -> Outcome:
    """Delivered with this identity: which identifier was used and why (sources, never
    values)."""
    # A handful of distinct outcomes per portal: one shared value each, not one per event.
    # Keyed by the notes alone: they name the kind used (``used email from ...``), or say
    # that none was (kind None).
    notes = identity.notes
    found = _DELIVERED.get(notes)
    if found is None or found.identifier != identity.kind:
        if len(_DELIVERED) >= _DELIVERED_CACHED:
            _DELIVERED.clear()
        found = _DELIVERED[notes] = Outcome(Reason.DELIVERED, identifier=identity.kind, notes=notes)
    return found


_DELIVERED: dict[tuple[str, ...], Outcome] = {}
_DELIVERED_CACHED = 256
DELIVERED_OUTCOMES: Mapping[tuple[str, ...], Outcome] = _DELIVERED
"""``delivered``'s answers by notes, for a loop that asks them inline (a hit whose
``identifier`` is the identity's kind is ``delivered(identity)``; else call it)."""


class IdentityFields(NamedTuple):
    """The one identifier HubSpot gets, in its ``email``, ``utk`` or ``objectId`` field."""

    email: str | None
    utk: str | None
    object_id: str | None


def identity_fields(identity: Identity) -> IdentityFields:
    """Place the chosen identifier in its field; the others stay empty."""
    value, kind = identity.value, identity.kind
    return IdentityFields(
        email=value if kind == "email" else None,
        utk=value if kind == "utk" else None,
        object_id=value if kind == "objectId" else None,
    )


_CLICK_PARAMS = ("gclid=", "gbraid=", "wbraid=", "fbclid=", "msclkid=", "li_fat_id=", "ttclid=")


_CAMPAIGN_KEYS = frozenset(("campaign", "clickIds", "page"))
"""The context fields ``carries_campaign`` reads: a context with none of them carries none
(all in ``PLAIN_CONTEXT``)."""


_CONTEXT_OF = attrgetter("context")


def campaign_flags(datas: Sequence[Payload]) -> list[bool]:
    """``carries_campaign`` of each event, for a batch: when every context is a dict, those
    with none of its fields (most) are told apart in C, without a call per event."""
    contexts = list(map(_CONTEXT_OF, datas))
    if contexts and set(map(type, contexts)) == {dict}:
        plain = list(map(_CAMPAIGN_KEYS.isdisjoint, contexts))
        if all(plain):
            return [False] * len(plain)
        return [not p and carries_campaign(d) for d, p in zip(datas, plain, strict=True)]
    return [carries_campaign(data) for data in datas]


def carries_campaign(data: Payload) -> bool:
    """The event carries a campaign (``context.campaign``) or an ad click id (``clickIds``,
    or a click parameter in the page URL)."""
    context = data.context
    if type(context) is dict and _CAMPAIGN_KEYS.isdisjoint(context):
        return False  # most events: one C call instead of three look-ups
    # Decoded JSON is made of dicts: test for dict first, the ABC check is slow.
    if type(context) is not dict and (context is None or not isinstance(context, Mapping)):
        return False
    if context.get("campaign") or context.get("clickIds"):
        return True
    page = context.get("page")
    if page is None or (type(page) is not dict and not isinstance(page, Mapping)):
        return False
    url = page.get("url") or page.get("search")
    return isinstance(url, str) and any(p in url for p in _CLICK_PARAMS)


def occurred_at(data: Payload) -> str:
    """When the event happened (its stamped timestamp)."""
    return str(data.timestamp or data.receivedAt)
