"""The admin JSON API behind each debugger view, against the in-process sandbox."""

from __future__ import annotations

import msgspec
import pytest

from forwarder.storage.base import FinalState
from forwarder.storage.outcomes import Outcome, Reason
from tests.debugger.conftest import Admin, track
from tests.delivery.harness import until

EMAIL = "jane@example.com"
UTK = "0123456789abcdef0123456789abcdef"


async def _delivered(admin: Admin, seq: int) -> bool:
    detail = await admin.get(f"/admin/api/events/{seq}")
    return bool(detail["finalState"] == "delivered")


async def test_events_list_is_newest_first_and_filters_by_type_and_status(admin: Admin) -> None:
    await admin.send(
        track("m1", userId="u1", context={"traits": {"email": EMAIL}}),
        {"type": "identify", "userId": "u1", "traits": {"email": EMAIL}, "messageId": "m2"},
    )
    await until(lambda: _delivered(admin, 1))

    listed = await admin.get("/admin/api/events")
    identifies = await admin.get("/admin/api/events", type="identify")
    delivered = await admin.get("/admin/api/events", status="delivered")

    assert [e["seq"] for e in listed["events"]] == [2, 1]
    assert [e["messageId"] for e in identifies["events"]] == ["m2"]
    assert [e["messageId"] for e in delivered["events"]] == ["m1"]
    assert listed["events"][1]["identity"] == "u1"


async def test_stream_sends_new_events_as_server_sent_events(admin: Admin) -> None:
    await admin.send(track("m1", userId="u1"), {"type": "page", "name": "Home", "userId": "u1"})

    response = await admin.client.get(
        "/admin/api/events/stream",
        params={"after": 0, "timeout_s": 0.6, "type": "track"},
        headers={"Authorization": admin.client.headers.get("Authorization", "")}
        | {"Authorization": "Bearer admin-token-0123456789"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    datas = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
    events = [msgspec.json.decode(d) for d in datas if d.strip()]
    assert [(e["seq"], e["type"]) for e in events] == [(1, "track")]
    assert "id: 1" in response.text


async def test_event_detail_has_payload_identity_attempt_and_final_state(admin: Admin) -> None:
    await admin.send(track("m1", userId="u1", context={"traits": {"email": EMAIL}}))
    await until(lambda: _delivered(admin, 1))

    detail = await admin.get("/admin/api/events/1")

    assert detail["payload"]["messageId"] == "m1"
    assert detail["payload"]["context"]["traits"]["email"] == EMAIL
    assert detail["identity"] == {
        "kind": "email",
        "value": EMAIL,
        "notes": ["used email from context.traits.email"],
        "recorded": True,
    }
    [item] = detail["items"]
    assert (item["reason"], item["identifier"]) == ("delivered", "email")
    [attempt] = item["history"]
    assert attempt["reason"] == "delivered"
    assert attempt["route"] == "/events/2026-03/send/batch"
    assert attempt["status"] in (200, 204)
    assert attempt["correlationId"]
    assert item["explanation"].startswith("delivered to HubSpot")
    assert detail["finalState"] == "delivered"


async def test_unknown_event_is_404(admin: Admin) -> None:
    response = await admin.client.get(
        "/admin/api/events/99", headers={"Authorization": "Bearer admin-token-0123456789"}
    )
    assert response.status_code == 404


async def test_journey_finds_the_person_by_any_identifier_with_touches(admin: Admin) -> None:
    attribution = {
        "firstTouch": {"source": "newsletter", "name": "spring", "clickIds": {"gclid": "G-1"}},
        "lastTouch": {"source": "google", "medium": "cpc", "name": "retarget"},
    }
    await admin.send(
        {
            "type": "page",
            "name": "Landing",
            "anonymousId": "a1",
            "messageId": "p1",
            "context": {
                "hubspotutk": UTK,
                "campaign": {"source": "newsletter"},
                "attribution": {"firstTouch": attribution["firstTouch"]},
            },
        },
        {
            "type": "identify",
            "anonymousId": "a1",
            "userId": "u1",
            "traits": {"email": EMAIL},
            "messageId": "i1",
        },
        track("t1", anonymousId="a1", context={"attribution": attribution}),
        track("other", userId="someone-else"),
    )
    await until(lambda: _delivered(admin, 3))

    by_email = await admin.get("/admin/api/journey", email=" Jane@Example.com ")
    by_utk = await admin.get("/admin/api/journey", utk=UTK)

    assert [s["seq"] for s in by_email["steps"]] == [1, 2, 3]
    assert [s["seq"] for s in by_utk["steps"]] == [1, 2, 3]
    kinds = {i["kind"] for i in by_email["identifiers"]}
    assert {"email", "userId", "anonymousId"} <= kinds
    assert by_email["firstTouch"]["name"] == "spring"
    assert by_email["firstTouch"]["clickIds"] == {"gclid": "G-1"}
    assert by_email["lastTouch"]["name"] == "retarget"
    conversion = by_email["steps"][2]
    assert conversion["conversion"] is True
    assert conversion["attributed"] is True
    assert by_email["steps"][0]["conversion"] is False


async def test_journey_needs_exactly_one_identifier(admin: Admin) -> None:
    response = await admin.client.get(
        "/admin/api/journey", headers={"Authorization": "Bearer admin-token-0123456789"}
    )
    assert response.status_code == 400


async def _reason(admin: Admin, user: str) -> tuple[bool, str]:
    journey = await admin.get("/admin/api/journey", userId=user)
    [step] = [s for s in journey["steps"] if s["conversion"]]
    return step["attributed"], step["reason"]


async def test_held_conversion_is_not_attributed_awaiting_identify(admin: Admin) -> None:
    await admin.send(track("m1", anonymousId="anon-1"))

    async def held() -> bool:
        return bool((await admin.get("/admin/api/events/1"))["finalState"] == "held")

    await until(held)
    journey = await admin.get("/admin/api/journey", anonymousId="anon-1")

    [step] = journey["steps"]
    assert step["attributed"] is False
    assert step["reason"].startswith("held awaiting identify")


async def test_queued_conversion_without_identity_says_no_identity_yet(idle: Admin) -> None:
    await idle.send(track("m1", userId="nobody"))

    attributed, reason = await _reason(idle, "nobody")

    assert attributed is False
    assert reason.startswith("no identity yet")


async def test_queued_conversion_with_identity_is_still_queued(idle: Admin) -> None:
    await idle.send(track("m1", userId="u1", context={"traits": {"email": EMAIL}}))

    attributed, reason = await _reason(idle, "u1")

    assert (attributed, reason) == (False, "still queued: waiting for the next batch")


async def test_declined_consent_is_consent_absent(idle: Admin) -> None:
    consent = {"consent": {"categoryPreferences": {"analytics": False}}, "traits": {"email": EMAIL}}
    await idle.send(track("m1", userId="u1", context=consent))

    attributed, reason = await _reason(idle, "u1")

    assert attributed is False
    assert reason.startswith("consent absent")


@pytest.mark.parametrize(
    ("state", "outcome", "expected"),
    [
        (
            "dead",
            Outcome(
                Reason.REJECTED,
                "Event name 'pe1_x' is not the fully qualified name of an existing event"
                " definition",
                "EVENT_DEFINITION_NOT_FOUND",
                "c-1",
            ),
            "definition missing: HubSpot has no such event",
        ),
        (
            "dead",
            Outcome(Reason.REJECTED, "Property values were not valid", "VALIDATION_ERROR", "c-2"),
            "rejected by HubSpot: Property values were not valid (correlationId c-2)",
        ),
        ("expired", Outcome(Reason.UNIDENTIFIED), "expired: no identify linked this visitor"),
        (
            "dropped",
            Outcome(Reason.POLICY, "no mapping for this event any more"),
            "dropped by policy: no mapping",
        ),
    ],
)
async def test_final_states_explain_why_not_attributed(
    idle: Admin, state: FinalState, outcome: Outcome, expected: str
) -> None:
    await idle.send(track("m1", userId="u1", context={"traits": {"email": EMAIL}}))
    await idle.finish_conversion(1, state, outcome)

    attributed, reason = await _reason(idle, "u1")

    assert attributed is False
    assert reason.startswith(expected), reason


async def test_dead_letters_are_listed_replayed_and_purged(idle: Admin) -> None:
    await idle.send(
        track("m1", userId="u1", context={"traits": {"email": EMAIL}}),
        track("m2", userId="u2", context={"traits": {"email": "b@example.com"}}),
    )
    await idle.finish_conversion(1, "dead", Outcome(Reason.REJECTED, "bad", "C1", "c-9"))
    await idle.finish_conversion(2, "dead", Outcome(Reason.REJECTED, "worse", None, "c-8"))

    overview = await idle.get("/admin/api/overview")
    [queue] = [q for q in overview["portals"][0]["queues"] if q["destination"] == "conversions"]
    letters = overview["deadLetters"]
    replayed = await idle.post("/admin/api/dead-letters/replay", {"ids": [letters[0]["id"]]})
    purged = await idle.post("/admin/api/dead-letters/purge", {"all": True})
    stats = await idle.get("/admin/api/stats")

    assert [(d["reason"], d["correlationId"], d["category"]) for d in letters] == [
        ("bad", "c-9", "C1"),
        ("worse", "c-8", None),
    ]
    assert (queue["accepted"], queue["dead"], queue["drift"]) == (2, 2, 0)
    assert overview["ingest"]["received"] == 2
    assert replayed == {"moved": 1}
    assert purged == {"moved": 1}
    [counts] = [q["counts"] for q in stats["queues"] if q["destination"] == "conversions"]
    assert counts["dropped"] == 1
    assert counts.get("dead", 0) == 0
    assert stats["conservation"]["ok"] is True
    detail = await idle.get("/admin/api/events/2")
    assert detail["items"][0]["explanation"] == "purged by operator"
    assert detail["items"][0]["reason"] == "purged"


async def test_overview_counts_rejected_and_duplicates_at_ingest(idle: Admin) -> None:
    await idle.send(track("m1", userId="u1"))
    await idle.send(track("m1", userId="u1"))
    response = await idle.client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "userId": "u1"}, track("m3", userId="u1")]},
        headers={"Authorization": "Bearer srv_test_key_0123456789"},
    )
    assert response.status_code == 200

    ingest = (await idle.get("/admin/api/overview"))["ingest"]

    assert ingest == {"received": 4, "accepted": 2, "rejected": 1, "duplicates": 1}


async def test_envelopes_report_usage_and_samples(admin: Admin) -> None:
    await admin.send(track("m1", userId="u1", context={"traits": {"email": EMAIL}}))
    await until(lambda: _delivered(admin, 1))

    envelopes = await admin.get("/admin/api/envelopes")

    [portal] = envelopes["portals"]
    names = {u["envelope"] for u in portal["now"]}
    assert names == {"crm_10s", "search_1s", "events_1s", "crm_daily", "events_monthly"}
    monthly = next(u for u in portal["now"] if u["envelope"] == "events_monthly")
    assert monthly["used"] == 1
    assert portal["samples"]
    assert envelopes["tooManyRequests"] == {}
    assert envelopes["tooManyRequestsByPolicy"] == {}
    assert portal["breakers"]["conversions"] == "closed"
    crm = next(u for u in portal["now"] if u["envelope"] == "crm_10s")
    assert crm["allowance"] == crm["limit"]
    assert crm["ratePerS"] > 0


async def test_erase_removes_the_person_from_the_journey(idle: Admin) -> None:
    await idle.send(
        {"type": "identify", "userId": "u1", "traits": {"email": EMAIL}, "messageId": "i1"},
        track("m1", userId="u1"),
    )

    erased = await idle.post("/admin/api/erase", {"email": EMAIL})
    journey = await idle.get("/admin/api/journey", email=EMAIL)

    assert erased["erased"][0]["events"] == 2
    assert journey["steps"] == []


async def test_personal_data_is_masked_when_configured(tmp_path: object) -> None:
    from pathlib import Path

    from tests.debugger.conftest import admin_settings, running_admin

    settings = admin_settings(Path(str(tmp_path)), delivery=False, mask_personal_data=True)
    async with running_admin(settings) as admin:
        await admin.send(track("m1", userId="user-42", context={"traits": {"email": EMAIL}}))
        detail = await admin.get("/admin/api/events/1")
        journey = await admin.get("/admin/api/journey", email=EMAIL)
        text = msgspec.json.encode([detail, journey]).decode()
        assert EMAIL not in text
        assert "user-42" not in text
        assert detail["payload"]["context"]["traits"]["email"] == "j***@example.com"
        assert detail["payload"]["event"] == "Order Completed"


async def test_journey_and_event_detail_say_where_each_touch_came_from(admin: Admin) -> None:
    """A backend conversion attributed from the touches a browser sent on another device."""
    landing = {
        "type": "page",
        "anonymousId": "phone-1",
        "messageId": "land-1",
        "timestamp": "2026-11-20T09:00:00.000Z",
        "context": {"campaign": {"name": "spring"}, "clickIds": {"gclid": "G-9"}},
    }
    link = {"type": "identify", "anonymousId": "phone-1", "userId": "u9", "messageId": "id-1"}
    await admin.send(
        landing, link, track("buy-1", userId="u9", context={"traits": {"email": EMAIL}})
    )
    await until(lambda: _delivered(admin, 3))

    journey = await admin.get("/admin/api/journey", userId="u9")
    detail = await admin.get("/admin/api/events/3")

    first = journey["firstTouch"]
    assert journey["touchesFrom"] == "memory"
    assert (first["name"], first["clickIds"], first["kind"], first["origin"]) == (
        "spring",
        {"gclid": "G-9"},
        "click_id",
        "campaign",
    )
    assert (first["messageId"], first["device"], first["sender"]) == (
        "land-1",
        "phone-1",
        "backend",
    )
    used = detail["attribution"]["first"]
    assert (used["touch"]["messageId"], used["reason"]) == ("land-1", "linked")
    assert "linked anonymousId" in used["why"]
    assert "'phone-1'" in used["why"]
    assert detail["attribution"]["last"]["reason"] == "linked"
