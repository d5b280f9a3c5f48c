"""Touch memory end to end: touches learned at ingest fill conversions at delivery."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forwarder.config import AttributionSettings, EventMapping, PortalSettings
from tests.delivery.harness import Forwarder, running, until

DAY = 86400.0
ATTRIBUTED = EventMapping(
    event="Order Completed",
    custom_event="order_completed",
    properties={
        "revenue": "revenue",
        "context.attribution.firstTouch.name": "first_touch_campaign",
        "context.attribution.firstTouch.clickIds.gclid": "first_touch_gclid",
        "context.attribution.lastTouch.name": "last_touch_campaign",
    },
)
PORTAL = PortalSettings(portal_id=123456, max_delay_s=0.05, events=(ATTRIBUTED,))
TOUCH_FIELDS = ("first_touch_campaign", "first_touch_gclid", "last_touch_campaign")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def landing(message_id: str, at: float, campaign: str, **ids: Any) -> dict[str, Any]:
    """A page view from a campaign, as a server-side sender records it."""
    context: dict[str, Any] = {
        "campaign": {"source": "google", "medium": "cpc", "name": campaign},
        "page": {"url": f"https://shop.example/?utm_campaign={campaign}"},
    }
    if ids.pop("gclid", None) is not None:
        context["clickIds"] = {"gclid": f"G-{campaign}"}
    return {
        "type": "page",
        "messageId": message_id,
        "timestamp": iso(at),
        "context": context,
        **ids,
    }


def order(message_id: str, at: float, **ids: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "timestamp": iso(at),
        "properties": {"revenue": 10},
        **ids,
    }


def identify(message_id: str, email: str, **ids: Any) -> dict[str, Any]:
    return {"type": "identify", "messageId": message_id, "traits": {"email": email}, **ids}


async def delivered_touches(fw: Forwarder) -> dict[str, Any]:
    async def delivered() -> bool:
        return (await fw.counts()).get("delivered", 0) == 1

    await until(delivered)
    [event] = fw.received()
    return {k: event["properties"].get(k) for k in (*TOUCH_FIELDS, "hs_utm_campaign")}


async def test_second_device_linked_by_identify_gets_the_first_devices_first_touch(
    tmp_path: Path,
) -> None:
    """The held conversion of device B is released by the identify that links B to the
    person, and goes out with device A's first touch and B's own later campaign as last."""
    now = time.time()
    async with running(tmp_path, PORTAL) as fw:
        await fw.send(
            [
                landing("a-land", now - 9 * DAY, "spring", gclid=True, anonymousId="device-A"),
                identify("a-id", "ana@example.com", anonymousId="device-A", userId="U"),
                landing("b-land", now - 2 * DAY, "retarget", anonymousId="device-B"),
                order("b-order", now, anonymousId="device-B"),
            ]
        )

        async def held() -> bool:
            return (await fw.counts()).get("held", 0) == 1

        await until(held)
        await fw.send([identify("b-id", "ana@example.com", anonymousId="device-B", userId="U")])

        assert await delivered_touches(fw) == {
            "first_touch_campaign": "spring",
            "first_touch_gclid": "G-spring",
            "last_touch_campaign": "retarget",
            "hs_utm_campaign": "retarget",
        }


async def test_backend_conversion_for_a_user_id_gets_the_touches_its_browser_sent(
    tmp_path: Path,
) -> None:
    now = time.time()
    first = {"source": "google", "name": "spring", "clickIds": {"gclid": "G-1"}}
    last = {"source": "bing", "name": "autumn", "timestamp": iso(now - DAY)}
    browser_view = {
        "type": "page",
        "messageId": "view",
        "anonymousId": "A",
        "timestamp": iso(now - DAY),
        "context": {
            "campaign": {"source": "bing", "name": "autumn"},
            "attribution": {
                "firstTouch": {**first, "timestamp": iso(now - 20 * DAY)},
                "lastTouch": last,
            },
        },
    }
    async with running(tmp_path, PORTAL) as fw:
        await fw.send(
            [
                browser_view,
                identify("link", "u@example.com", anonymousId="A", userId="U"),
                order("backend-order", now, userId="U"),
            ]
        )
        assert await delivered_touches(fw) == {
            "first_touch_campaign": "spring",
            "first_touch_gclid": "G-1",
            "last_touch_campaign": "autumn",
            "hs_utm_campaign": "autumn",
        }


async def test_touch_older_than_the_window_is_first_touch_but_not_last_touch(
    tmp_path: Path,
) -> None:
    now = time.time()
    portal = PortalSettings(
        portal_id=123456,
        max_delay_s=0.05,
        events=(ATTRIBUTED,),
        attribution=AttributionSettings(last_touch_window_s=7 * DAY),
    )
    async with running(tmp_path, portal) as fw:
        await fw.send(
            [
                landing("land", now - 8 * DAY, "spring", gclid=True, anonymousId="A"),
                identify("id", "a@example.com", anonymousId="A"),
                order("order", now, anonymousId="A"),
            ]
        )
        assert await delivered_touches(fw) == {
            "first_touch_campaign": "spring",
            "first_touch_gclid": "G-spring",
            "last_touch_campaign": None,
            "hs_utm_campaign": None,
        }


async def test_touch_memory_can_be_turned_off(tmp_path: Path) -> None:
    now = time.time()
    portal = PortalSettings(
        portal_id=123456,
        max_delay_s=0.05,
        events=(ATTRIBUTED,),
        attribution=AttributionSettings(remember=False),
    )
    async with running(tmp_path, portal) as fw:
        await fw.send(
            [
                landing("land", now - DAY, "spring", gclid=True, anonymousId="A"),
                identify("id", "a@example.com", anonymousId="A"),
                order("order", now, anonymousId="A"),
            ]
        )
        assert set((await delivered_touches(fw)).values()) == {None}
        assert await fw.storage.touches_of("main", [("anonymousId", "A")]) == {}


async def test_touch_the_browser_sends_again_keeps_the_event_it_was_first_learned_from(
    tmp_path: Path,
) -> None:
    """The script sends its kept touches with every event; the memory keeps the landing's."""
    now = time.time()
    kept = {"name": "spring", "clickIds": {"gclid": "G"}, "timestamp": iso(now - DAY)}
    context = {"attribution": {"firstTouch": kept, "lastTouch": kept}}
    views = [
        {
            "type": "page",
            "messageId": f"view-{i}",
            "anonymousId": "A",
            "timestamp": iso(now - DAY + i),
            "context": context,
        }
        for i in range(3)
    ]
    async with running(tmp_path, PORTAL) as fw:
        await fw.send(views[:1])
        await fw.send(views[1:])
        memory = (await fw.storage.touches_of("main", [("anonymousId", "A")]))[("anonymousId", "A")]
        assert (memory.first.message_id, memory.last.message_id) == ("view-0", "view-0")
        assert (memory.first.name, memory.first.click_ids) == ("spring", {"gclid": "G"})


async def test_erasing_a_person_removes_the_touches_of_all_their_devices(tmp_path: Path) -> None:
    now = time.time()
    async with running(tmp_path, PORTAL) as fw:
        await fw.send(
            [
                landing("a", now - DAY, "spring", gclid=True, anonymousId="phone"),
                landing("b", now - DAY, "autumn", anonymousId="laptop"),
                identify("ia", "e@example.com", anonymousId="phone", userId="U"),
                identify("ib", "e@example.com", anonymousId="laptop", userId="U"),
            ]
        )
        keys = [("anonymousId", "phone"), ("anonymousId", "laptop"), ("userId", "U")]
        assert set(await fw.storage.touches_of("main", keys)) == set(keys[:2])

        await fw.storage.erase("main", [("email", "e@example.com")], now=now)

        assert await fw.storage.touches_of("main", keys) == {}
