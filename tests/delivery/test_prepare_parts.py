"""A batch's preparation shares the event loop with ingest: it yields between parts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from forwarder.config import AttributionSettings, EventMapping, PortalSettings
from forwarder.delivery.attribution import Attributor
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.destinations import PREPARE_PART, Prepared, Ready, in_parts
from forwarder.delivery.destinations.conversions import Conversions
from forwarder.delivery.destinations.mapped import Known, read_batch
from forwarder.delivery.mapping import Mapper
from forwarder.identity.resolve import Resolver
from forwarder.storage.base import (
    Item,
    Key,
    StoredEvent,
    Touch,
    TouchKind,
    TouchMemory,
    TouchOrigin,
)

PORTAL = PortalSettings(
    portal_id=123456,
    events=(EventMapping(event="Order Completed", custom_event="order_completed"),),
)


class _Graph:
    """An identity graph that answers at once (no await inside: it never yields), recording
    how many events' keys each look-up asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def people_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
        self.asked.append(len(keys))
        return {}


def _items(n: int) -> list[Item]:
    items = []
    for i in range(n):
        body = (
            b'{"type":"track","event":"Order Completed","messageId":"m-%d","userId":"u%d",'
            b'"timestamp":"2026-12-06T09:00:00Z","context":{"traits":{"email":"u%d@x.io"}}}'
        ) % (i, i, i)
        event = StoredEvent(
            i, "main", f"m-{i}", "web", "track", "Order Completed", 1.0, body, False
        )
        items.append(Item(i, "main", "conversions", 0, event))
    return items


def _conversions(graph: _Graph) -> Conversions:
    catalog = DefinitionCatalog("main", None, None, create_missing=False)  # type: ignore[arg-type]
    resolver = Resolver("main", ("email",), graph)  # type: ignore[arg-type]
    return Conversions(PORTAL, Mapper(PORTAL), catalog, resolver)


async def _turns_during(work: asyncio.Future[list[Prepared]] | asyncio.Task[list[Prepared]]) -> int:
    """How many turns a concurrent coroutine (an ingest request, say) got while ``work`` ran."""
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    ticker = asyncio.create_task(other())
    await asyncio.sleep(0)  # the ticker is running
    started = turns
    await work
    ticker.cancel()
    return turns - started


async def test_a_batch_s_preparation_lets_other_coroutines_run_between_its_parts() -> None:
    """500 events take ~7 ms of CPU to prepare: the loop's other work (ingest's requests) runs
    between parts of ``PREPARE_PART`` while they are decoded and while they are mapped, even
    when storage answers without yielding."""
    work = asyncio.ensure_future(_conversions(_Graph()).prepare(_items(500)))
    turns = await _turns_during(work)
    assert turns >= 2 * (500 // PREPARE_PART - 1)


async def test_a_batch_s_identity_graph_is_read_once_for_all_its_parts() -> None:
    """One graph read for the whole batch (every event's keys), not one per part: each read is
    a round trip to Redis."""
    graph = _Graph()
    await _conversions(graph).prepare(_items(500))
    assert graph.asked == [500]  # one key (userId) an event


async def test_a_batch_prepared_in_parts_is_what_one_part_makes_of_it() -> None:
    """Parts change when the loop runs, not what is prepared: the same inputs, uuids, outcomes,
    in the same order, as the whole batch prepared at once."""
    items = _items(250)
    conversions = _conversions(_Graph())
    parted = await conversions.prepare(items)
    resolver = conversions._resolver
    whole = await in_parts(
        conversions._prepare, await read_batch(items, resolver, None, len(items))
    )
    assert [type(p) for p in parted] == [Ready] * len(items)
    assert parted == whole


async def test_a_batch_no_larger_than_a_part_is_prepared_in_one_go() -> None:
    """A timeline-sized batch (100) or smaller is one part; a larger one is cut in parts of
    ``PREPARE_PART``, prepared in order."""
    resolver = Resolver("main", ("email",), _Graph())  # type: ignore[arg-type]
    calls: list[int] = []

    async def prepare(part: Known) -> list[Prepared]:
        calls.append(len(part.items))
        return []

    for n in (PREPARE_PART, PREPARE_PART * 2 + 1):
        await in_parts(prepare, await read_batch(_items(n), resolver, None))
    assert calls == [PREPARE_PART, PREPARE_PART, PREPARE_PART, 1]


class _TouchGraph(_Graph):
    """Every userId linked to an anonymousId; every third anonymousId remembers a touch."""

    def __init__(self) -> None:
        super().__init__()
        self.touches_asked: list[int] = []

    async def people_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
        self.asked.append(len(keys))
        return {k: [("anonymousId", f"a{k[1][1:]}"), k] for k in keys if k[0] == "userId"}

    async def touches_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, TouchMemory]:
        self.touches_asked.append(len(keys))
        found = {}
        for kind, value in keys:
            if kind == "anonymousId" and int(value[1:]) % 3 == 0:
                touch = Touch(
                    1.0e9, TouchKind.UTM, TouchOrigin.SNIPPET, f"t-{value}", "page", source=value
                )
                found[(kind, value)] = TouchMemory(first=touch, last=touch)
        return found


def _attributed(graph: _TouchGraph) -> Conversions:
    portal = PortalSettings(
        portal_id=123456,
        events=(
            EventMapping(
                event="Order Completed",
                custom_event="order_completed",
                properties={"context.attribution.firstTouch.source": "first_source"},
            ),
        ),
    )
    catalog = DefinitionCatalog("main", None, None, create_missing=False)  # type: ignore[arg-type]
    resolver = Resolver("main", ("email",), graph)  # type: ignore[arg-type]
    attributor = Attributor("main", AttributionSettings(), graph)  # type: ignore[arg-type]
    return Conversions(portal, Mapper(portal), catalog, resolver, attributor)


async def test_a_batch_s_touches_are_read_once_and_attribute_each_part_as_the_whole() -> None:
    """The touch memory of the whole batch's people is read once (one round trip), and each
    part's events are attributed as when the batch is prepared in one part."""
    graph = _TouchGraph()
    conversions = _attributed(graph)
    items = _items(250)
    parted = await conversions.prepare(items)
    assert graph.asked == [250]
    assert graph.touches_asked == [500]  # every userId and its linked anonymousId
    resolver, attributor = conversions._resolver, conversions._attributor
    whole = await in_parts(
        conversions._prepare, await read_batch(items, resolver, attributor, len(items))
    )
    assert parted == whole
    sources = [p.input.properties.get("first_source") for p in parted if isinstance(p, Ready)]
    assert sources == [f"a{i}" if i % 3 == 0 else None for i in range(250)]
