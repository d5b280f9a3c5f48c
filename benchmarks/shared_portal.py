"""A shared, flaky HubSpot: competing integrations, intermittent failures, a full outage.

Run by hand, never in CI::

    python benchmarks/shared_portal.py                       # every scenario, full length
    python benchmarks/shared_portal.py --only compete --scale 2   # a quicker look

Scenarios (each a fresh SQLite file and an in-process sandbox, real HTTP over ASGI):

1. **compete**: another app spends 50 % of every window (``steady``, then ``random`` moments);
   HubSpot declares ``Max: 10`` per ``Interval-Milliseconds: 1000``; the forwarder is configured
   with ``crm_per_10s = 10``; 10,000 identifies -> 100 contact upserts. Figures: 429s among our
   upserts, our use of the share left by the other app (our admitted upserts per second over the
   drain / (10 - what the other app spent per second)), lost and duplicated contacts.
2. **flaky**: 3,000 conversions, one carrying a property deleted from the definition after
   start-up; 20 x 503 in bursts of four between successes and two 15-second hangs. Figures: time
   from the last failure to every good event delivered, and to the dead letter.
3. **outage**: 6,000 identifies queued during a 60-second outage (every upsert 503), then
   HubSpot answers: time from recovery to the first delivery, and the drain against the
   envelope's own speed.

``--scale`` divides every window, wait, hang and timeout (1 = real time).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    ContactSettings,
    EventMapping,
    LimitSettings,
    PortalSettings,
    Secret,
    ServerSettings,
    Settings,
    SourceSettings,
    StorageSettings,
)
from forwarder.sandbox import DEFAULT_TOKEN, FaultSpec, Sandbox, SandboxConfig
from forwarder.telemetry import Redactor, configure_logging

KEY = "srv_bench_key_0123456789"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
PORTAL_ID = 123456
ORDER = f"pe{PORTAL_ID}_order_completed"
Configure = Callable[[SandboxConfig], SandboxConfig]


@contextlib.asynccontextmanager
async def forwarder(
    portal: PortalSettings, configure: Configure
) -> AsyncIterator[tuple[AsyncTestClient, Sandbox, Any]]:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            server=ServerSettings(log_requests=False),
            storage=StorageSettings(url=f"sqlite:///{Path(tmp) / 'f.db'}"),
            sources=(SourceSettings(name="bench", write_key=Secret(KEY), portal="main"),),
            portals={"main": portal},
        )
        app = create_app(settings, configure_sandbox=lambda _, c: configure(c))
        async with AsyncTestClient(app=app) as client:
            yield client, app.state.sandboxes["main"].state.sandbox, app.state.storage


async def post(client: AsyncTestClient, events: list[dict[str, Any]]) -> None:  # type: ignore[type-arg]
    for start in range(0, len(events), 2_500):
        answer = await client.post(
            "/v1/batch", json={"batch": events[start : start + 2_500]}, headers=AUTH
        )
        assert answer.status_code == 200, answer.text


async def totals(storage: Any) -> dict[str, int]:
    found: dict[str, int] = collections.Counter()
    for (_, _, state), n in (await storage.counts()).items():
        found[state] += n
    return dict(found)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Seconds until ``check`` holds (raises after ``timeout_s``)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"identify-{i}",
        "traits": {"email": f"lead{i}@example.com", "plan": "pro"},
    }


def statuses(sandbox: Sandbox, route: str) -> dict[int, int]:
    return {s: n for (r, s), n in sandbox.statuses.items() if r == route}


async def compete(pattern: str, scale: float, identifies: int, safety: float) -> dict[str, Any]:
    portal = PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.05,
        contacts=ContactSettings(upsert=True, properties={"plan": "plan"}),
        limits=LimitSettings(crm_per_10s=10, time_scale=scale, safety=safety),
    )

    def plan(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(
            config, contact_properties=("plan",), limit_10s=10, window_ms=1000
        )

    async with forwarder(portal, plan) as (client, sandbox, storage):
        sandbox.compete(window_share=0.5, pattern=pattern)  # type: ignore[arg-type]
        spent_before = sandbox.limiter.competing.spent
        started = time.monotonic()  # delivery starts while the backlog is still being posted
        await post(client, [identify(i) for i in range(identifies)])

        async def drained() -> bool:
            return (await totals(storage)).get("delivered", 0) == identifies

        await wait_for(drained, 600)
        took_s = time.monotonic() - started
        spent = sandbox.limiter.competing.spent - spent_before
        answers = statuses(sandbox, "contacts.batch_upsert")
        ours = answers.get(200, 0)
        free_per_s = (10 - spent / (took_s * scale)) * scale
        emails = [c.properties["email"] for c in sandbox.contact_list()]
        return {
            "pattern": pattern,
            "safety": safety,
            "upserts": sum(answers.values()),
            "429": answers.get(429, 0),
            "429_share": answers.get(429, 0) / max(1, sum(answers.values())),
            "drain_s": round(took_s, 2),
            "ours_per_s": round(ours / took_s, 2),
            "free_per_s": round(free_per_s, 2),
            "use_of_free_share": round(ours / took_s / free_per_s, 3),
            "lost": identifies - len(set(emails)),
            "duplicated": len(emails) - len(set(emails)),
        }


async def flaky(scale: float) -> dict[str, Any]:
    portal = PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.2,
        request_timeout_s=10.0 / scale,
        limits=LimitSettings(time_scale=scale),
        events=(
            EventMapping(
                event="Order Completed",
                custom_event="order_completed",
                properties={"a": "a", "b": "b"},
            ),
        ),
    )

    def plan(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, seed_definitions={"order_completed": ("a", "b")})

    route = "events.send_batch"
    faults = []
    for burst in range(5):
        faults.append(FaultSpec(route=route, pass_first=1 + burst % 2, status=503, count=4))
        if burst in (1, 3):
            faults.append(
                FaultSpec(route=route, pass_first=1, hang=True, hang_s=15.0 / scale, count=1)
            )
    async with forwarder(portal, plan) as (client, sandbox, storage):
        gone = await client.delete(
            f"/sandbox/events/v3/event-definitions/{ORDER}/property/b",
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        assert gone.status_code == 204
        sandbox.script_faults(*faults)
        events = [
            {
                "type": "track",
                "userId": f"user-{i}",
                "messageId": f"m-{i}",
                "event": "Order Completed",
                "properties": {"a": str(i), **({"b": "bad"} if i == 1_234 else {})},
                "context": {"traits": {"email": f"user{i}@example.com"}},
            }
            for i in range(3_000)
        ]
        await post(client, events)

        async def spent() -> bool:
            return not sandbox.faults.active()

        await wait_for(spent, 600)
        # Faults are taken in order, so the last one scripted is the last failure; a hang
        # ends when the request times out.
        last_failure = time.monotonic() + (faults[-1].hang_s if faults[-1].hang else 0.0)

        async def good() -> bool:
            return (await totals(storage)).get("delivered", 0) == 2_999

        async def dead() -> bool:
            return (await totals(storage)).get("dead", 0) == 1

        await wait_for(good, 600)
        good_s = time.monotonic() - last_failure
        await wait_for(dead, 600)
        dead_s = time.monotonic() - last_failure
        uuids = collections.Counter(e.uuid for e in sandbox.received_events())
        return {
            "good_after_last_failure_s": round(good_s * scale, 2),
            "dead_after_last_failure_s": round(dead_s * scale, 2),
            "503": statuses(sandbox, route).get(503, 0),
            "delivered": (await totals(storage)).get("delivered", 0),
            "duplicated": sum(n - 1 for n in uuids.values() if n > 1),
        }


async def outage(scale: float) -> dict[str, Any]:
    portal = PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.05,
        request_timeout_s=10.0 / scale,
        contacts=ContactSettings(upsert=True, properties={"plan": "plan"}),
        limits=LimitSettings(crm_per_10s=100, time_scale=scale),
    )

    def plan(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, contact_properties=("plan",))

    async with forwarder(portal, plan) as (client, sandbox, storage):
        sandbox.script_faults(FaultSpec(route="contacts", status=503))
        await post(client, [identify(i) for i in range(6_000)])
        await asyncio.sleep(60.0 / scale)
        sandbox.faults.clear()

        async def first() -> bool:
            return (await totals(storage)).get("delivered", 0) > 0

        async def drained() -> bool:
            return (await totals(storage)).get("delivered", 0) == 6_000

        first_s = await wait_for(first, 600)
        drain_s = first_s + await wait_for(drained, 600)
        envelope_s = 60 / 90 * 10.0 / scale  # 60 upserts at 90 per 10 s (safety 0.9)
        return {
            "first_delivery_after_recovery_s": round(first_s * scale, 2),
            "drain_s": round(drain_s * scale, 2),
            "envelope_s": round(envelope_s * scale, 2),
            "503_during_outage": statuses(sandbox, "contacts.batch_upsert").get(503, 0),
            "429": sandbox.too_many_requests,
            "contacts": len(sandbox.contact_list()),
        }


async def main(args: argparse.Namespace) -> None:
    configure_logging(Redactor([KEY]), level=logging.ERROR)
    if args.only in (None, "compete"):
        for pattern in ("steady", "random"):
            for safety in (0.9, 1.0):
                print("compete", await compete(pattern, args.scale, args.identifies, safety))
    if args.only in (None, "flaky"):
        print("flaky", await flaky(args.scale))
    if args.only in (None, "outage"):
        print("outage (seconds in full-length terms)", await outage(args.scale))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["compete", "flaky", "outage"])
    parser.add_argument("--scale", type=float, default=1.0, help="divides windows and waits")
    parser.add_argument("--identifies", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
