"""Rate limits: rolling 10 s window, daily cap, search secondly, event sends.

As docs/hubspot-contract.md, "Rate limits", states them.
"""

from __future__ import annotations

from typing import Any

from forwarder.sandbox import ManualClock

from .conftest import event

READ = "/crm/v3/objects/contacts/batch/read"
BODY = {"inputs": [], "properties": [], "propertiesWithHistory": []}
SEARCH = "/crm/v3/objects/contacts/search"
SEARCH_BODY = {"filterGroups": [], "properties": [], "limit": 10, "after": "0", "sorts": []}


async def test_more_than_the_window_allows_gets_ten_secondly_429(make_client: Any) -> None:
    sandbox, client = make_client(tier="free")
    async with client:
        statuses = [(await client.post(READ, json=BODY)).status_code for _ in range(100)]
        refused = await client.post(READ, json=BODY)
    body = refused.json()
    assert set(statuses) == {200}
    assert refused.status_code == 429
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert sandbox.too_many_requests == 1
    assert sandbox.rate_stats()["peakInTenSecondWindow"] == 101


async def test_success_carries_rate_headers_with_daily_for_private_apps(make_client: Any) -> None:
    _, client = make_client(tier="professional")
    async with client:
        response = await client.post(READ, json=BODY)
    headers = response.headers
    assert (headers["X-HubSpot-RateLimit-Max"], headers["X-HubSpot-RateLimit-Remaining"]) == (
        "190",
        "189",
    )
    assert (
        headers["X-HubSpot-RateLimit-Daily"],
        headers["X-HubSpot-RateLimit-Daily-Remaining"],
    ) == (
        "625000",
        "624999",
    )


async def test_oauth_tier_has_no_daily_headers(make_client: Any) -> None:
    _, client = make_client(tier="oauth")
    async with client:
        response = await client.post(READ, json=BODY)
    assert response.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert "X-HubSpot-RateLimit-Daily" not in response.headers


async def test_window_rolls_as_time_passes(make_client: Any, clock: ManualClock) -> None:
    _, client = make_client(limit_10s=3)
    async with client:
        for _ in range(3):
            await client.post(READ, json=BODY)
            clock.advance(4.0)
        # t=12: the request at t=0 has left the window, those at t=4 and t=8 have not.
        first = await client.post(READ, json=BODY)
        second = await client.post(READ, json=BODY)
    assert (first.status_code, second.status_code) == (200, 429)


async def test_time_scale_shrinks_the_window(make_client: Any, clock: ManualClock) -> None:
    _, client = make_client(limit_10s=1, time_scale=100.0)
    async with client:
        await client.post(READ, json=BODY)
        refused = await client.post(READ, json=BODY)
        clock.advance(0.1)
        admitted = await client.post(READ, json=BODY)
    assert (refused.status_code, admitted.status_code) == (429, 200)
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "100"


async def test_daily_cap_trips_and_resets_next_day(make_client: Any, clock: ManualClock) -> None:
    _, client = make_client(daily=2)
    async with client:
        for _ in range(2):
            await client.post(READ, json=BODY)
        refused = await client.post(READ, json=BODY)
        clock.advance(86_400.0)
        next_day = await client.post(READ, json=BODY)
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "DAILY"
    assert refused.json()["message"] == "You have reached your daily limit."
    assert next_day.status_code == 200


async def test_search_is_limited_per_second_without_rate_headers(
    make_client: Any, clock: ManualClock
) -> None:
    sandbox, client = make_client()
    async with client:
        admitted = [await client.post(SEARCH, json=SEARCH_BODY) for _ in range(5)]
        refused = await client.post(SEARCH, json=SEARCH_BODY)
        clock.advance(1.0)
        later = await client.post(SEARCH, json=SEARCH_BODY)
    assert [r.status_code for r in admitted] == [200] * 5
    assert refused.status_code == 429
    assert refused.json()["message"] == "You have reached your secondly limit."
    assert not [h for h in refused.headers if h.lower().startswith("x-hubspot-ratelimit")]
    assert not [h for h in admitted[0].headers if h.lower().startswith("x-hubspot-ratelimit")]
    assert later.status_code == 200
    assert sandbox.limiter.windows == {}  # search never touched the 10-second window


async def test_event_sends_are_exempt_from_window_but_capped_per_second(
    make_client: Any, clock: ManualClock
) -> None:
    sandbox, client = make_client(limit_10s=1, events_rps=3)
    async with client:
        sent = [await client.post("/events/v3/send", json=event()) for _ in range(3)]
        refused = await client.post("/events/v3/send", json=event())
        clock.advance(1.0)
        later = await client.post("/events/v3/send", json=event())
    assert [r.status_code for r in sent] == [204] * 3
    assert (refused.status_code, later.status_code) == (429, 204)
    assert sandbox.rate_stats()["dailyUsed"] == 0


async def test_competing_app_spends_a_share_of_the_daily_budget(make_client: Any) -> None:
    sandbox, client = make_client(daily=10)
    sandbox.compete(daily_share=0.5)
    async with client:
        statuses = [(await client.post(READ, json=BODY)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


async def test_refused_requests_do_not_spend_the_window(
    make_client: Any, clock: ManualClock
) -> None:
    _, client = make_client(limit_10s=1)
    async with client:
        await client.post(READ, json=BODY)
        for _ in range(4):
            clock.advance(2.0)
            await client.post(READ, json=BODY)
        clock.advance(2.0)
        # t=10: the only admitted request (t=0) has left the window; t=2..8 were refused.
        admitted = await client.post(READ, json=BODY)
    assert admitted.status_code == 200
