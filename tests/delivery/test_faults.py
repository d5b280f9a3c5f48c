"""Delivery under failure, against the sandbox over real HTTP.

Every test checks the same three things after its fault (Vector's ``assert_sink_compliance``):
the final-state counts add up per queue (``accepted == delivered + dead + dropped + expired +
pending``), nothing is lost (each accepted event reached the sandbox exactly once or sits in a
recorded final state with its reason), nothing is duplicated (no uuid twice in the sandbox), and
the error and discard counters moved only where they should.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    ContactSettings,
    EventMapping,
    LimitSettings,
    PortalSettings,
    Secret,
)
from forwarder.delivery.destinations import stable_uuid
from forwarder.sandbox import ALL_SCOPES, DEFAULT_TOKEN, FaultSpec, SandboxConfig
from forwarder.sandbox.config import SCOPE_DEFINITIONS, SCOPE_EVENTS_SEND
from forwarder.storage.base import FINAL_STATES, OPEN_STATES, Storage
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.sqlite import SqliteStorage
from tests.conftest import make_settings
from tests.delivery.harness import AUTH, Forwarder, running, track, until
from tests.support import (
    SANDBOX_PORTAL_ID,
    SERVER_KEY,
    ServerProcess,
    free_port,
    sandbox_process,
    serve_config,
)

PORTAL_ID = SANDBOX_PORTAL_ID  # the standalone sandbox runs with this id
ORDER = "pe123456_order_completed"

MAPPED = PortalSettings(
    portal_id=PORTAL_ID,
    max_delay_s=0.05,
    events=(EventMapping(event="Order Completed", custom_event="order_completed"),),
)


# -- the compliance checks ----------------------------------------------------------------------


async def assert_counts_add_up(storage: Storage) -> dict[str, int]:
    """Per queue, accepted == final + open; the totals by state."""
    counts = await storage.counts()
    totals: dict[str, int] = collections.Counter()
    for portal, destination in {(p, d) for p, d, _ in counts}:
        states = {s: counts.get((portal, destination, s), 0) for s in (*FINAL_STATES, *OPEN_STATES)}
        assert counts.get((portal, destination, "accepted"), 0) == sum(states.values()), states
    for (_, _, state), n in counts.items():
        totals[state] += n
    return dict(totals)


async def final_outcomes(storage: Storage, state: str) -> dict[str, Outcome]:
    """messageId -> outcome of the items in one final state."""
    found: dict[str, Outcome] = {}
    for record in await storage.items_in_state(state, limit=100_000):  # type: ignore[arg-type]
        event = await storage.get_event(record.event_seq)
        assert event is not None
        assert record.outcome is not None, f"{state} item {record.id} has no outcome"
        found[event.message_id] = record.outcome
    return found


async def assert_each_once(
    storage: Storage, received: list[dict[str, Any]], message_ids: list[str]
) -> None:
    """Each messageId's uuid reached the sandbox once, or its item has a recorded final state."""
    uuids = collections.Counter(e["uuid"] for e in received)
    assert [u for u, n in uuids.items() if n > 1] == []
    expected = {stable_uuid(PORTAL_ID, m): m for m in message_ids}
    assert set(uuids) <= set(expected)
    missing = {m for u, m in expected.items() if u not in uuids}
    recorded: set[str] = set()
    for state in ("dead", "dropped", "expired"):
        recorded |= set(await final_outcomes(storage, state))
    assert missing == recorded


def metric(fw: Forwarder, name: str, **labels: str) -> float:
    registry = fw.client.app.state.metrics.registry
    return float(registry.get_sample_value(name, labels) or 0.0)


def dead_lettered(fw: Forwarder) -> float:
    return metric(fw, "forwarder_discarded_events_total", reason="dead_letter", intentional="false")


def hubspot_requests(fw: Forwarder, route: str, status: int) -> float:
    return metric(fw, "forwarder_hubspot_requests_total", route=route, status=str(status))


async def delivered(fw: Forwarder, n: int, timeout_s: float = 20.0) -> None:
    async def done() -> bool:
        return (await fw.counts()).get("delivered", 0) >= n

    await until(done, timeout_s=timeout_s)


# -- 503 bursts -----------------------------------------------------------------------------------


async def test_503_burst_is_retried_with_backoff_and_every_event_arrives_once(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, MAPPED) as fw:
        fw.sandbox.script_faults(FaultSpec(route="events.send_batch", status=503, count=3))
        events = [track(i) for i in range(1_500)]
        await fw.send(events)
        await delivered(fw, 1_500)

        assert await assert_counts_add_up(fw.storage) == {"accepted": 1_500, "delivered": 1_500}
        await assert_each_once(fw.storage, fw.received(), [e["messageId"] for e in events])
        assert fw.requests("events.send_batch")[503] == 3
        assert hubspot_requests(fw, "/events/2026-03/send/batch", 503) == 3
        assert dead_lettered(fw) == 0
        retried = await fw.storage.attempts_of(list(range(1, 1_501)))
        assert sum(1 for a in retried if a.status == 503) == 3


# -- 207 partial failures on contact upserts ------------------------------------------------------

CONTACTS = PortalSettings(
    portal_id=PORTAL_ID,
    max_delay_s=0.05,
    contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
)


def identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"identify-{i}",
        "traits": {"email": f"lead{i}@example.com", "lead_score": i % 100},
    }


def with_lead_score(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, contact_properties=("lead_score",))


async def test_207_on_contact_upsert_settles_only_the_failed_inputs(tmp_path: Path) -> None:
    """The sandbox's scripted 207 answers ``OBJECT_NOT_FOUND`` for the first inputs: a category
    no retry cures, so exactly those are dead-lettered with HubSpot's reason, the rest delivered
    from the same request, and nothing is sent twice."""
    async with running(tmp_path, CONTACTS, with_lead_score) as fw:
        fw.sandbox.script_faults(
            FaultSpec(route="contacts.batch_upsert", partial_failures=3, count=1)
        )
        events = [identify(i) for i in range(300)]
        await fw.send(events)

        async def settled() -> bool:
            counts = await fw.counts()
            return counts.get("delivered", 0) + counts.get("dead", 0) == 300

        await until(settled)
        totals = await assert_counts_add_up(fw.storage)
        assert totals == {"accepted": 300, "delivered": 297, "dead": 3}
        dead = await final_outcomes(fw.storage, "dead")
        assert all("OBJECT_NOT_FOUND" in (d.message or "") for d in dead.values())
        emails = [c.properties["email"] for c in fw.sandbox.contact_list()]
        assert len(emails) == len(set(emails)) == 297
        assert {f"lead{m.split('-')[1]}@example.com" for m in dead}.isdisjoint(emails)
        assert fw.requests("contacts.batch_upsert") == {207: 1, 200: 2}
        assert dead_lettered(fw) == 3


# -- one bad input in a batch of 500 --------------------------------------------------------------

TWO_PROPERTIES = PortalSettings(
    portal_id=PORTAL_ID,
    max_delay_s=0.2,
    events=(
        EventMapping(
            event="Order Completed", custom_event="order_completed", properties={"a": "a", "b": "b"}
        ),
    ),
)


def with_order_definition(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, seed_definitions={"order_completed": ("a", "b")})


async def test_one_bad_input_in_500_is_bisected_out_and_dead_lettered_with_hubspots_reason(
    tmp_path: Path,
) -> None:
    """The forwarder loaded the definition with ``a`` and ``b``; ``b`` is then deleted in
    HubSpot, so the one event carrying ``b`` passes our stale catalog and HubSpot refuses it."""
    async with running(tmp_path, TWO_PROPERTIES, with_order_definition) as fw:
        gone = await fw.client.delete(
            f"/sandbox/events/v3/event-definitions/{ORDER}/property/b",
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        assert gone.status_code == 204, gone.text
        events = [track(i, a=str(i)) for i in range(500)]
        events[137]["properties"]["b"] = "bad"
        await fw.send(events)

        async def settled() -> bool:
            counts = await fw.counts()
            return counts.get("delivered", 0) + counts.get("dead", 0) == 500

        await until(settled)
        assert await assert_counts_add_up(fw.storage) == {
            "accepted": 500,
            "delivered": 499,
            "dead": 1,
        }
        await assert_each_once(fw.storage, fw.received(), [e["messageId"] for e in events])
        dead = await final_outcomes(fw.storage, "dead")
        assert list(dead) == [events[137]["messageId"]]
        outcome = dead[events[137]["messageId"]]
        assert outcome.reason == Reason.REJECTED
        assert outcome.message == "400: Property 'b' does not exist"
        assert outcome.category == "VALIDATION_ERROR"
        refused = [r["requestId"] for r in msgspec.to_builtins(fw.sandbox.events.rejected)]
        assert outcome.correlation_id in refused
        statuses = fw.requests("events.send_batch")
        assert statuses[400] <= 10  # one per halving: log2(500) rounds
        assert dead_lettered(fw) == 1


# -- 403 MISSING_SCOPES, then fixed ---------------------------------------------------------------

LIMITED_TOKEN = "pat-na1-without-event-sends"


def without_send_scope(config: SandboxConfig) -> SandboxConfig:
    scopes = tuple(s for s in ALL_SCOPES if s != SCOPE_EVENTS_SEND)
    assert SCOPE_DEFINITIONS in scopes
    return msgspec.structs.replace(
        config, tokens={DEFAULT_TOKEN: ALL_SCOPES, LIMITED_TOKEN: scopes}
    )


async def test_missing_scope_pauses_the_destination_keeps_events_and_resumes_when_granted(
    tmp_path: Path,
) -> None:
    portal = msgspec.structs.replace(MAPPED, access_token=Secret(LIMITED_TOKEN), paused_retry_s=0.3)
    async with running(tmp_path, portal, without_send_scope) as fw:
        events = [track(i) for i in range(600)]
        await fw.send(events)
        paused = {"portal": "main", "destination": "conversions"}

        async def is_paused() -> bool:
            return metric(fw, "forwarder_destination_paused", **paused) == 1

        await until(is_paused)
        ready = (await fw.client.get("/readyz")).json()
        assert ready["status"] == "degraded"
        assert ready["paused"][0]["destination"] == "conversions"
        assert "MISSING_SCOPES" in ready["paused"][0]["reason"]
        await asyncio.sleep(0.5)  # at least one more paused retry
        counts = await assert_counts_add_up(fw.storage)
        assert counts.get("delivered", 0) == 0
        assert counts.get("pending", 0) + counts.get("leased", 0) == 600
        assert fw.received() == []

        fw.sandbox.add_token(LIMITED_TOKEN, ALL_SCOPES)
        await delivered(fw, 600)

        assert await assert_counts_add_up(fw.storage) == {"accepted": 600, "delivered": 600}
        await assert_each_once(fw.storage, fw.received(), [e["messageId"] for e in events])
        assert fw.requests("events.send_batch")[403] >= 2
        assert metric(fw, "forwarder_destination_paused", **paused) == 0
        assert (await fw.client.get("/readyz")).json() == {"status": "ready"}
        assert dead_lettered(fw) == 0


# -- daily cap hit, then reset --------------------------------------------------------------------

DAY_S = 2.0
DAILY_CAP = 3
DAILY = PortalSettings(
    portal_id=PORTAL_ID,
    max_delay_s=0.05,
    contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
    # Our own daily cap is far above HubSpot's: the sandbox, not our envelope, says 429 DAILY.
    limits=LimitSettings(crm_daily=1_000, time_scale=86_400.0 / DAY_S),
)


def small_day(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(with_lead_score(config), daily=DAILY_CAP)


async def test_daily_cap_waits_for_the_reset_without_hammering_and_loses_nothing(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, DAILY, small_day) as fw:
        started = time.monotonic()
        await fw.send([identify(i) for i in range(800)])  # 8 requests: 3 "days" at 3 a day
        await delivered(fw, 800, timeout_s=30)
        days = (time.monotonic() - started) / DAY_S + 1

        assert await assert_counts_add_up(fw.storage) == {"accepted": 800, "delivered": 800}
        emails = [c.properties["email"] for c in fw.sandbox.contact_list()]
        assert len(emails) == len(set(emails)) == 800
        statuses = fw.requests("contacts.batch_upsert")
        assert statuses[200] == 8
        refused = fw.sandbox.rate_stats()["refusedByPolicy"].get("DAILY", 0)
        assert refused == statuses.get(429, 0) >= 1
        # At most the requests in flight when the day ran out, once per day: no hammering.
        assert refused <= DAILY.concurrency * days
        assert dead_lettered(fw) == 0


# -- timeouts, against a sandbox process on a loopback port --------------------------------------


def remote_received(url: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/_sandbox/events", timeout=10).json()
    return [e for events in body["received"].values() for e in events]


def remote_portal(url: str, **fields: Any) -> PortalSettings:
    return PortalSettings(
        portal_id=PORTAL_ID,
        base_url=url,
        access_token=Secret(DEFAULT_TOKEN),
        unmapped_events="auto",
        max_delay_s=0.05,
        **fields,
    )


@contextlib.asynccontextmanager
async def forwarder_for(tmp_path: Path, portal: PortalSettings) -> AsyncIterator[Any]:
    settings = make_settings(tmp_path, portals={"main": portal})
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_hanging_request_times_out_and_is_retried_until_delivered_once(
    tmp_path: Path,
) -> None:
    with sandbox_process() as sandbox:
        url = sandbox.url
        # A hang longer than the test: the timed-out requests never land in the sandbox.
        hang = {"route": "events.send_batch", "hang": True, "hangS": 120, "count": 2}
        async with httpx.AsyncClient() as http:
            await http.post(f"{url}/_sandbox/faults", json={"faults": [hang]}, timeout=5)
        portal = remote_portal(url, request_timeout_s=0.5)
        async with forwarder_for(tmp_path, portal) as client:
            events = [track(i) for i in range(700)]
            for start in (0, 500):
                response = await client.post(
                    "/v1/batch", json={"batch": events[start : start + 500]}, headers=AUTH
                )
                assert response.status_code == 200
            storage: Storage = client.app.state.storage

            async def all_delivered() -> bool:
                counts = await storage.counts()
                return sum(n for (_, _, s), n in counts.items() if s == "delivered") == 700

            await until(all_delivered, timeout_s=20)
            assert await assert_counts_add_up(storage) == {"accepted": 700, "delivered": 700}
            await assert_each_once(storage, remote_received(url), [e["messageId"] for e in events])
            registry = client.app.state.metrics.registry
            attempts = await storage.attempts_of(list(range(1, 701)))
            assert sum(1 for a in attempts if "timed out" in (a.error or "")) == 2
            sent = registry.get_sample_value(
                "forwarder_sent_events_total", {"destination": "conversions"}
            )
            assert sent == 700


# -- graceful shutdown of a real ``forwarder serve`` ---------------------------------------------


def shutdown_config(db: Path, port: int, sandbox_url: str, *, events_per_s: int) -> str:
    """A real server on ``db`` sending one request at a time at ``events_per_s``."""
    limits = (
        f"concurrency = 1\n\n[portals.main.limits]\nevents_per_s = {events_per_s}\nsafety = 1.0"
    )
    return serve_config(
        db,
        port,
        sandbox_url,
        extra=limits,
        server_extra=f"shutdown_deadline_s = {SHUTDOWN_DEADLINE_S}",
        max_delay_s=0.05,
    )


SHUTDOWN_DEADLINE_S = 2.0
BACKLOG = 6_000


def post_backlog_then_terminate(tmp_path: Path, url: str, events: list[dict[str, Any]]) -> float:
    """Serve at one slow send a second, post a backlog, SIGTERM mid-drain; seconds to exit."""
    slow = {"route": "events.send_batch", "latencyMs": 500}
    httpx.post(f"{url}/_sandbox/faults", json={"faults": [slow]}, timeout=5)
    port = free_port()
    config = shutdown_config(tmp_path / "forwarder.db", port, url, events_per_s=1)
    server = ServerProcess(tmp_path, config).start(port)
    try:
        for start in range(0, len(events), 2_000):
            response = httpx.post(
                f"{server.url}/v1/batch",
                json={"batch": events[start : start + 2_000]},
                auth=(SERVER_KEY, ""),
                timeout=20,
            )
            assert response.status_code == 200, response.text
        assert server.proc is not None
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=20)
        took = time.monotonic() - signalled
        assert "Traceback" not in server.log()
        return took
    finally:
        server.kill()
        httpx.delete(f"{url}/_sandbox/faults", timeout=5)


async def test_sigterm_with_a_backlog_exits_in_time_and_a_restart_delivers_the_rest_once(
    tmp_path: Path,
) -> None:
    events = [track(i) for i in range(BACKLOG)]
    with sandbox_process() as sandbox:
        url = sandbox.url
        took = await asyncio.to_thread(post_backlog_then_terminate, tmp_path, url, events)
        assert took < SHUTDOWN_DEADLINE_S + 2.0  # the deadline, plus the process's teardown
        first_run = len(remote_received(url))
        assert 0 < first_run < BACKLOG

        port = free_port()
        config = shutdown_config(tmp_path / "forwarder.db", port, url, events_per_s=100)
        server = await asyncio.to_thread(ServerProcess(tmp_path, config).start, port)
        try:

            async def arrived() -> bool:
                return len(await asyncio.to_thread(remote_received, url)) >= BACKLOG

            await until(arrived, timeout_s=20)
        finally:
            await asyncio.to_thread(server.stop)  # SIGTERM: the last acknowledgements commit
        storage = SqliteStorage(tmp_path / "forwarder.db")
        await storage.open()
        try:
            assert await assert_counts_add_up(storage) == {
                "accepted": BACKLOG,
                "delivered": BACKLOG,
            }
            await assert_each_once(storage, remote_received(url), [e["messageId"] for e in events])
        finally:
            await storage.close()
