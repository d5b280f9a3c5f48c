"""Delivery against the sandbox (real HTTP over ASGI): batching, mapping, envelopes, faults."""

from __future__ import annotations

import collections
from pathlib import Path

from forwarder.config import ContactSettings, EventMapping, LimitSettings, PortalSettings
from forwarder.delivery.engine import CONSERVATION_SHARE, CheckPace
from forwarder.sandbox import SandboxConfig
from tests.delivery.harness import running, track, until

MAPPED = PortalSettings(
    portal_id=123456,
    max_delay_s=0.05,
    events=(
        EventMapping(
            event="Order Completed",
            custom_event="order_completed",
            properties={"revenue": "amount", "context.page.url": "hs_page_url"},
        ),
        EventMapping(
            event="Signed Up", custom_event="pe123456_signed_up", properties={"plan": "plan"}
        ),
        EventMapping(event="Trial Started", custom_event="trial_started"),
    ),
)


async def test_10000_events_arrive_once_each_in_batches_of_at_most_500(tmp_path: Path) -> None:
    names = ["Order Completed", "Signed Up", "Trial Started"]
    events = [track(i, names[i % 3], revenue=i, plan="pro") for i in range(10_000)]
    for event in events[::3]:
        event["context"]["page"] = {"url": "https://shop.example.com/checkout"}
    async with running(tmp_path, MAPPED) as fw:
        await fw.send(events)

        async def all_arrived() -> bool:
            return (await fw.counts()).get("delivered", 0) == 10_000

        await until(all_arrived, timeout_s=60)
        received = fw.received()
        assert len(received) == 10_000
        assert len({e["uuid"] for e in received}) == 10_000
        per_request = collections.Counter(e["requestId"] for e in received)
        assert max(per_request.values()) <= 500
        by_name = collections.Counter(e["eventName"] for e in received)
        assert by_name == {
            "pe123456_order_completed": 3334,
            "pe123456_signed_up": 3333,
            "pe123456_trial_started": 3333,
        }
        order = next(e for e in received if e["eventName"] == "pe123456_order_completed")
        assert order["properties"] == {
            "amount": order["properties"]["amount"],
            "hs_page_url": "https://shop.example.com/checkout",
        }
        signup = next(e for e in received if e["eventName"] == "pe123456_signed_up")
        assert signup["properties"] == {"plan": "pro"}
        assert signup["email"].endswith("@example.com")
        assert await fw.counts() == {"accepted": 10_000, "delivered": 10_000}


async def test_batches_fill_to_500_under_backlog(tmp_path: Path) -> None:
    async with running(tmp_path, MAPPED) as fw:
        await fw.send([track(i) for i in range(5_000)], chunk=2500)

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 5_000

        await until(drained, timeout_s=60)
        sizes = collections.Counter(e["requestId"] for e in fw.received()).values()
        assert sum(1 for s in sizes if s == 500) >= 9


CONTACTS = PortalSettings(
    portal_id=123456,
    max_delay_s=0.05,
    contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
    limits=LimitSettings(crm_per_10s=20, time_scale=20.0),
)


def identify(i: int) -> dict[str, object]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"identify-{i}",
        "traits": {"email": f"lead{i}@example.com", "lead_score": i % 100},
    }


def with_lead_score(config: SandboxConfig) -> SandboxConfig:
    import msgspec

    return msgspec.structs.replace(config, contact_properties=("lead_score",))


async def test_small_envelope_is_never_exceeded_when_alone(tmp_path: Path) -> None:
    async with running(tmp_path, CONTACTS, with_lead_score) as fw:
        await fw.send([identify(i) for i in range(4_000)])

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 4_000

        await until(drained, timeout_s=60)
        assert fw.sandbox.too_many_requests == 0
        assert fw.requests("contacts.batch_upsert") == {200: 40}
        assert len(fw.sandbox.contact_list()) == 4_000


async def test_competing_app_spending_half_the_window_costs_under_one_percent_429s(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, CONTACTS, with_lead_score) as fw:
        fw.sandbox.compete(daily_share=0.0, window_share=0.5)
        await fw.send([identify(i) for i in range(6_000)])

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 6_000

        await until(drained, timeout_s=90)
        statuses = fw.requests("contacts.batch_upsert")
        assert statuses.get(429, 0) <= 0.01 * sum(statuses.values())
        assert len(fw.sandbox.contact_list()) == 6_000
        assert await fw.counts() == {"accepted": 6_000, "delivered": 6_000}


def test_a_slow_conservation_check_waits_ten_times_its_duration_before_the_next() -> None:
    pace = CheckPace(CONSERVATION_SHARE)
    assert pace.due(0.0)
    pace.ran(100.0, 107.0)  # a big backlog: counting every open item, paced, took 7 s
    assert not pace.due(110.0)  # the next housekeeping round skips it
    assert not pace.due(169.9)
    assert pace.due(170.1)
    pace.ran(170.1, 170.15)  # the backlog drained: cheap again, due every round
    assert pace.due(180.1)
