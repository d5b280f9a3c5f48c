"""The event detail shows what was sent to HubSpot for the event, secrets scrubbed."""

from __future__ import annotations

from forwarder.delivery.destinations import stable_uuid
from forwarder.hubspot.paths import DEFAULT_API_VERSION, paths_for
from tests.debugger.conftest import Admin, track
from tests.delivery.harness import until
from tests.support import SERVER_KEY


async def _delivered(admin: Admin, seq: int) -> bool:
    detail = await admin.get(f"/admin/api/events/{seq}")
    return bool(detail["finalState"] == "delivered")


async def test_event_detail_shows_the_input_hubspot_got_with_secrets_scrubbed(
    admin: Admin,
) -> None:
    """The producer pasted its write key into a property: the page must not show it."""
    event = track(
        "m1",
        userId="u1",
        properties={"plan": "pro", "note": f"key {SERVER_KEY}"},
        context={"traits": {"email": "jane@example.com"}},
    )
    await admin.send(event)
    await until(lambda: _delivered(admin, 1))

    detail = await admin.get("/admin/api/events/1")

    [sent] = detail["sent"]
    route = paths_for(DEFAULT_API_VERSION).events_send_batch  # the portal's default version
    assert (sent["destination"], sent["route"]) == ("conversions", route)
    assert sent["input"]["uuid"] == stable_uuid(123456, "m1")
    assert sent["input"]["email"] == "jane@example.com"
    assert sent["input"]["properties"]["plan"] == "pro"
    assert SERVER_KEY not in str(detail)
    assert "email" in sent["note"]


async def test_a_held_conversion_shows_that_nothing_was_sent_yet(admin: Admin) -> None:
    await admin.send(track("m1", anonymousId="a1"))

    async def held() -> bool:
        detail = await admin.get("/admin/api/events/1")
        return bool(detail["items"] and detail["items"][0]["state"] == "held")

    await until(held)
    [sent] = (await admin.get("/admin/api/events/1"))["sent"]
    assert sent["input"] is None
    assert sent["note"].startswith("nothing sent yet: held")
