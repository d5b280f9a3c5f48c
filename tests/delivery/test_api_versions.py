"""Delivery on each HubSpot API version, against the sandbox routing every version its own way."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from forwarder.config import ContactSettings, EventMapping, PortalSettings
from forwarder.delivery.retry import UNSUPPORTED_VERSION, VALIDATION_RULE
from forwarder.sandbox import DEFAULT_TOKEN, SandboxConfig
from tests.delivery.harness import AUTH, Forwarder, running, track, until
from tests.delivery.test_faults import assert_counts_add_up, final_outcomes, remote_received
from tests.support import SERVER_KEY, ServerProcess, free_port, sandbox_process, serve_config

PORTAL_ID = 123456


def portal(version: str, **extra: Any) -> PortalSettings:
    return PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.05,
        api_version=version,  # type: ignore[arg-type]
        events=(EventMapping(event="Order Completed", custom_event="order_completed"),),
        contacts=ContactSettings(upsert=True, properties={"plan": "plan_tier"}),
        **extra,
    )


def identify(i: int, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"id-{i}",
        "traits": {"email": f"user{i}@example.com", **traits},
    }


async def delivered_all(fw: Forwarder, n: int) -> None:
    async def done() -> bool:
        return (await fw.counts()).get("delivered", 0) >= n

    await until(done, timeout_s=20)


async def send(fw: Forwarder, events: list[dict[str, Any]]) -> None:
    response = await fw.client.post("/v1/batch", json={"batch": events}, headers=AUTH)
    assert response.status_code == 200, response.text


async def test_default_portal_sends_every_call_on_the_2026_03_paths(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(portal("2026-03"), api_version="2026-03")
    assert PortalSettings().api_version == "2026-03"
    async with running(tmp_path, settings) as fw:
        await send(fw, [track(1, amount=5), identify(1, plan="pro")])
        await delivered_all(fw, 2)

        assert set(fw.sandbox.versions) == {"2026-03"}
        assert len(fw.received()) == 1
        assert fw.sandbox.contacts.find("user1@example.com", "email") is not None


async def test_legacy_v3_portal_still_delivers_on_numbered_paths(tmp_path: Path) -> None:
    async with running(tmp_path, portal("v3")) as fw:
        await send(fw, [track(1, amount=5), identify(1, plan="pro")])
        await delivered_all(fw, 2)

        assert set(fw.sandbox.versions) == {"v3"}
        assert await assert_counts_add_up(fw.storage) == {"accepted": 2, "delivered": 2}


async def test_2026_09_portal_delivers_on_the_custom_events_paths(tmp_path: Path) -> None:
    async with running(tmp_path, portal("2026-09")) as fw:
        await send(fw, [track(1, amount=5), identify(1, plan="pro")])
        await delivered_all(fw, 2)

        assert set(fw.sandbox.versions) == {"2026-09"}
        assert [e["eventName"] for e in fw.received()] == [f"pe{PORTAL_ID}_order_completed"]


async def test_dated_portal_is_unaffected_when_the_sandbox_has_sunset_v3(tmp_path: Path) -> None:
    def sunset(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, unsupported_versions=("v3",))

    async with running(tmp_path, portal("2026-03"), sunset) as fw:
        await send(fw, [track(i) for i in range(3)])
        await delivered_all(fw, 3)

        assert fw.sandbox.statuses.get(("events.send_batch", 410), 0) == 0


async def test_v3_portal_pauses_instead_of_dead_lettering_after_the_sunset(tmp_path: Path) -> None:
    def sunset(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, unsupported_versions=("v3",))

    async with running(tmp_path, portal("v3"), sunset) as fw:
        await send(fw, [track(1)])
        engine = fw.client.app.state.engine

        async def paused() -> bool:
            return ("main", "conversions") in engine.paused()

        await until(paused, timeout_s=10)
        assert UNSUPPORTED_VERSION in engine.paused()[("main", "conversions")]
        assert (await fw.counts()).get("dead", 0) == 0


async def test_2026_09_write_refused_by_a_validation_rule_is_dead_lettered_with_its_reason(
    tmp_path: Path,
) -> None:
    def rules(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, required_contact_properties=("plan_tier",))

    async with running(tmp_path, portal("2026-09"), rules) as fw:
        await send(fw, [identify(1, plan="pro"), identify(2)])

        async def finished() -> bool:
            counts = await fw.counts()
            return counts.get("delivered", 0) + counts.get("dead", 0) >= 2

        await until(finished, timeout_s=20)
        dead = await final_outcomes(fw.storage, "dead")
        assert list(dead) == ["id-2"]
        outcome = dead["id-2"]
        assert outcome.category == VALIDATION_RULE
        assert "MISSING_REQUIRED_PROPERTY: A value for plan_tier must be provided" in (
            outcome.message or ""
        )
        assert fw.sandbox.contacts.find("user1@example.com", "email") is not None


async def test_the_same_write_on_2026_03_ignores_the_validation_rules(tmp_path: Path) -> None:
    def rules(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, required_contact_properties=("plan_tier",))

    async with running(tmp_path, portal("2026-03"), rules) as fw:
        await send(fw, [identify(2)])
        await delivered_all(fw, 1)


def timeline_portal(version: str) -> PortalSettings:
    mapping = EventMapping(
        event="Order Completed",
        custom_event="order_completed",
        properties={"amount": "amount"},
        timeline_template="order_placed",
    )
    return msgspec.structs.replace(portal(version), events=(mapping,))


def with_event_type(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, seed_templates={"order_placed": ("amount",)})


async def test_dated_timeline_sends_app_event_occurrences(tmp_path: Path) -> None:
    async with running(tmp_path, timeline_portal("2026-03"), with_event_type) as fw:
        await send(fw, [track(i, amount=i) for i in range(3)])
        await delivered_all(fw, 6)  # conversions + timeline

        stored = list(fw.sandbox.timeline.events.values())
        assert sorted(e["properties"]["amount"] for e in stored) == ["0", "1", "2"]
        assert {e["eventTypeName"] for e in stored} == {"order_placed"}
        assert fw.requests("timeline.batch_create") == {200: 1}


async def test_dated_timeline_replay_of_an_existing_occurrence_counts_as_delivered(
    tmp_path: Path,
) -> None:
    """All-or-nothing: a 409 for the batch is bisected; a 409 on one input is a replay."""
    async with running(tmp_path, timeline_portal("2026-03"), with_event_type) as fw:
        await send(fw, [track(1, amount=1)])
        await delivered_all(fw, 2)
        items = await fw.storage.items_in_state("delivered", limit=10)
        timeline_item = next(i for i in items if i.destination == "timeline")
        assert await fw.storage.requeue([timeline_item.id], state="delivered", now=0.0) == 1
        await send(fw, [track(2, amount=2)])

        async def settled() -> bool:
            counts = await fw.counts()
            return counts.get("delivered", 0) >= 4 and counts.get("pending", 0) == 0

        await until(settled, timeout_s=20)
        assert fw.requests("timeline.batch_create").get(409, 0) >= 1
        assert len(fw.sandbox.timeline.events) == 2
        assert (await fw.counts()).get("dead", 0) == 0


def test_served_forwarder_on_the_default_version_delivers_to_a_sandbox_past_the_v3_sunset(
    tmp_path: Path,
) -> None:
    """Real processes on loopback: `forwarder sandbox --unsupported v3` and `forwarder serve`."""
    with sandbox_process("--unsupported", "v3") as sandbox:
        refused = httpx.post(
            f"{sandbox.url}/events/v3/send/batch",
            json={"inputs": []},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            timeout=5,
        )
        assert refused.status_code == 410
        port = free_port()
        server = ServerProcess(tmp_path, serve_config(tmp_path / "f.db", port, sandbox.url))
        server.start(port)
        try:
            events = [track(i) for i in range(5)]
            sent = httpx.post(
                f"{server.url}/v1/batch",
                json={"batch": events},
                auth=(SERVER_KEY, ""),
                timeout=10,
            )
            assert sent.status_code == 200
            deadline = time.monotonic() + 20
            while len(remote_received(sandbox.url)) < 5:
                assert time.monotonic() < deadline, server.log_path.read_text()
                time.sleep(0.05)
        finally:
            server.stop()
