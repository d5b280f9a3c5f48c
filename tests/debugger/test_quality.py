"""Attribution quality from a known mix of events, against the in-process sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from forwarder.config import PortalSettings
from forwarder.debugger.quality import percentile_ms, report
from forwarder.storage.base import QualityCount
from forwarder.tallies import LATENCY_BOUNDS_MS
from tests.debugger.conftest import ADMIN, Admin, admin_settings, running_admin
from tests.delivery.harness import AUTH, until

UTK = "0123456789abcdef0123456789abcdef"


def purchase(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Purchase", "messageId": message_id, **fields}


@pytest.fixture
async def short_holds(tmp_path: Path) -> AsyncIterator[Admin]:
    """Delivery on; a conversion without identity is held for one second only."""
    base = admin_settings(tmp_path)
    portal = PortalSettings(portal_id=123456, unmapped_events="auto", hold_s=1.0)
    settings = msgspec.structs.replace(base, portals={"main": portal})
    async with running_admin(settings) as running:
        yield running


async def _states(admin: Admin) -> dict[str, int]:
    counts = await admin.storage.counts()
    return {s: n for (p, d, s), n in counts.items() if d == "conversions"}


async def test_quality_figures_of_a_known_mix_match_hand_counts(short_holds: Admin) -> None:
    """6 Purchases received: 1 rejected, 1 duplicate, 4 accepted; of those 2 sent at once
    (email with a campaign, utk), 2 held: 1 released by an identify (then sent by email), 1
    expired. Plus 1 page view."""
    admin = short_holds
    campaign = {"campaign": {"name": "spring", "source": "google"}}
    await admin.send(
        purchase("p1", userId="u1", context={"traits": {"email": "a@example.com"}, **campaign}),
        purchase("p2", anonymousId="a2", context={"hubspotutk": UTK}),
        purchase("p3", anonymousId="a3"),
        purchase("p4", anonymousId="a4"),
        {"type": "page", "name": "Home", "anonymousId": "a2", "messageId": "v1"},
    )
    response = await admin.client.post(
        "/v1/batch",
        json={"batch": [purchase("p1", userId="u1"), purchase("p5")]},  # a duplicate; no id
        headers=AUTH,
    )
    assert response.json()["duplicates"] == 1
    await until(lambda: _has(admin, "held", 2))
    identify = {"type": "identify", "anonymousId": "a3", "userId": "u3", "messageId": "i3",
                "traits": {"email": "c@example.com"}}  # fmt: skip
    await admin.send(identify)
    await until(lambda: _has(admin, "delivered", 3))
    await asyncio.sleep(1.1)  # p4's hold runs out
    assert await admin.app.state.engine.expire_held() == 1

    body = await admin.get("/admin/api/quality", window="hour")

    kinds = {q["eventType"]: q for q in body["eventTypes"]}
    f = kinds["Purchase"]["figures"]
    assert (f["received"], f["accepted"], f["duplicates"], f["rejected"]) == (6, 4, 1, 1)
    assert f["topRejections"] == [
        {"reason": "$.userId: userId or anonymousId is required", "count": 1}
    ]
    assert f["sent"] == 3
    assert f["sentWith"] == {"objectId": 0.0, "email": 0.6667, "utk": 0.3333}
    assert f["resolved"] == 0.6667
    assert (f["held"], f["released"], f["expiredUnidentified"]) == (2, 1, 1)
    assert f["campaignCoverage"] == 0.3333
    assert f["latencyP50Ms"] in LATENCY_BOUNDS_MS
    assert f["latencyP95Ms"] >= f["latencyP50Ms"]
    assert [s["source"] for s in kinds["Purchase"]["sources"]] == ["backend"]
    assert kinds["page"]["figures"]["received"] == 1
    # 10 - 3 x 1/3 (utk only) - 2 x 1/2 (expired) - 2 x 1/6 (rejected) - 1/6 (duplicates)
    #    - 0.5 x 2/3 (no campaign) = 7.17
    assert kinds["Purchase"]["score"] == 7.2
    assert kinds["Purchase"]["loweredBy"][1] == (
        "33 % of Purchase events had no email or contact id when sent (only a utk): add an "
        "identify before Purchase so HubSpot ties it to a contact"
    )
    assert len(kinds["Purchase"]["loweredBy"]) == 5


async def _has(admin: Admin, state: str, n: int) -> bool:
    return (await _states(admin)).get(state, 0) >= n


def test_latency_percentiles_are_the_bucket_bounds_they_fall_in() -> None:
    counts = {"latency_le:250": 90, "latency_le:5000": 5, "latency_le:60000": 5}
    assert percentile_ms(counts, 0.5) == 250
    assert percentile_ms(counts, 0.95) == 5000
    assert percentile_ms(counts, 0.96) == 60000
    assert percentile_ms({}, 0.5) is None


def test_a_perfect_event_type_scores_ten_with_nothing_lowering_it() -> None:
    hour = 500_000
    rows = [
        QualityCount(hour, "backend", "Signup", metric, n)
        for metric, n in (("received", 4), ("accepted", 4), ("sent", 4), ("sent:email", 4),
                          ("resolved", 4), ("campaign", 4), ("latency_le:250", 4))
    ]  # fmt: skip
    [signup] = report(rows, "day", hour * 3600.0).event_types
    assert (signup.score, signup.lowered_by) == (10.0, [])


def test_counts_of_several_sources_add_up_per_event_type() -> None:
    hour = 500_000
    rows = [
        QualityCount(hour, "backend", "Signup", "received", 3),
        QualityCount(hour - 3, "website", "Signup", "received", 2),
        QualityCount(hour, "website", "Signup", "rejected", 1),
    ]
    [signup] = report(rows, "day", hour * 3600.0).event_types
    assert signup.figures.received == 5
    assert [(s.source, s.figures.received) for s in signup.sources] == [
        ("backend", 3),
        ("website", 2),
    ]


async def test_an_unknown_window_is_refused_with_the_field_named(admin: Admin) -> None:
    response = await admin.client.get(
        "/admin/api/quality", params={"window": "month"}, headers=ADMIN
    )
    assert response.status_code == 400
    assert "window" in response.text
