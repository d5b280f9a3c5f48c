"""Recovery from a flaky, shared HubSpot: the destination's breaker, not the items, backs off.

Time-scaled: each scenario runs at ``SCALE`` times the speed of the full-length one (HubSpot's
windows, the breaker's waits, hangs and timeouts all shrink by it); the full-length variants are
marked slow.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest
import structlog

from forwarder.config import ContactSettings, EventMapping, LimitSettings, PortalSettings
from forwarder.errors import StorageUnavailableError
from forwarder.sandbox import DEFAULT_TOKEN, FaultSpec, SandboxConfig
from tests.delivery.harness import Forwarder, running, track, until
from tests.delivery.test_faults import (
    ORDER,
    PORTAL_ID,
    assert_counts_add_up,
    assert_each_once,
    final_outcomes,
    identify,
    metric,
)

SCALED = [pytest.param(10.0, id="scaled"), pytest.param(1.0, id="full", marks=pytest.mark.slow)]


def orders(scale: float) -> PortalSettings:
    return PortalSettings(
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


def with_order_definition(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, seed_definitions={"order_completed": ("a", "b")})


def intermittent(scale: float) -> list[FaultSpec]:
    """20 x 503 in bursts of four between successes, and two hangs longer than the timeout."""
    route = "events.send_batch"
    faults = []
    for burst in range(5):
        faults.append(FaultSpec(route=route, pass_first=1 + burst % 2, status=503, count=4))
        if burst in (1, 3):
            faults.append(
                FaultSpec(route=route, pass_first=1, hang=True, hang_s=15.0 / scale, count=1)
            )
    return faults


async def settled(fw: Forwarder, total: int) -> bool:
    counts = await fw.counts()
    return counts.get("delivered", 0) + counts.get("dead", 0) == total


@pytest.mark.parametrize("scale", SCALED)
async def test_intermittent_503s_and_hangs_recover_quickly_and_dead_letter_the_invalid_input(
    tmp_path: Path, scale: float
) -> None:
    """One input among 3,000 carries a property deleted from the definition after start-up."""
    async with running(tmp_path, orders(scale), with_order_definition) as fw:
        gone = await fw.client.delete(
            f"/sandbox/events/v3/event-definitions/{ORDER}/property/b",
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        assert gone.status_code == 204, gone.text
        fw.sandbox.script_faults(*intermittent(scale))
        events = [track(i, a=str(i)) for i in range(3_000)]
        events[1_234]["properties"]["b"] = "bad"
        await fw.send(events)

        async def faults_spent() -> bool:
            return not fw.sandbox.faults.active()

        await until(faults_spent, timeout_s=120 / scale + 20)
        # Faults are taken in order: the last scripted is the last failure (a hang ends later).
        last = intermittent(scale)[-1]
        last_failure = time.monotonic() + (last.hang_s if last.hang else 0.0)
        await until(lambda: settled(fw, 3_000), timeout_s=60 / scale + 10)
        took_s = time.monotonic() - last_failure

        assert took_s <= 30.0 / scale
        assert await assert_counts_add_up(fw.storage) == {
            "accepted": 3_000,
            "delivered": 2_999,
            "dead": 1,
        }
        await assert_each_once(fw.storage, fw.received(), [e["messageId"] for e in events])
        outcome = (await final_outcomes(fw.storage, "dead"))["m-Order Completed-1234"]
        assert outcome.message == "400: Property 'b' does not exist"
        assert fw.requests("events.send_batch")[503] == 20


async def test_destination_failures_do_not_grow_the_items_attempt_counts(tmp_path: Path) -> None:
    async with running(tmp_path, orders(10.0), with_order_definition) as fw:
        fw.sandbox.script_faults(FaultSpec(route="events.send_batch", status=503, count=6))
        await fw.send([track(i, a=str(i)) for i in range(200)])
        await until(lambda: settled(fw, 200))
        records = await fw.storage.items_in_state("delivered", limit=1_000)
        assert {r.attempts for r in records} == {0}
        assert fw.requests("events.send_batch")[503] == 6


def contacts(scale: float) -> PortalSettings:
    return PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.05,
        request_timeout_s=10.0 / scale,
        contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
        limits=LimitSettings(crm_per_10s=100, time_scale=scale),
    )


def with_lead_score(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, contact_properties=("lead_score",))


@pytest.mark.parametrize(
    ("scale", "backlog"),
    [
        pytest.param(5.0, 3_000, id="scaled"),
        pytest.param(1.0, 6_000, id="full", marks=pytest.mark.slow),
    ],
)
async def test_backlog_after_a_full_outage_drains_at_envelope_speed_soon_after_recovery(
    tmp_path: Path, scale: float, backlog: int
) -> None:
    """A 60-second outage (every request 503), then HubSpot answers again."""
    async with running(tmp_path, contacts(scale), with_lead_score) as fw:
        fw.sandbox.script_faults(FaultSpec(route="contacts", status=503))
        await fw.send([identify(i) for i in range(backlog)])
        await asyncio.sleep(60.0 / scale)
        assert (await fw.counts()).get("delivered", 0) == 0
        fw.sandbox.faults.clear()
        recovered = time.monotonic()
        await until(lambda: _delivered_any(fw), timeout_s=30)
        first_s = time.monotonic() - recovered
        await until(lambda: settled(fw, backlog), timeout_s=120)
        drain_s = time.monotonic() - recovered

        assert first_s <= 5.0 / scale
        # upserts of 100 at 90 per 10 s (safety 0.9), plus the first probe's wait
        envelope_s = backlog / 100 / 90 * 10.0 / scale
        assert drain_s <= envelope_s + 5.0 / scale
        assert await assert_counts_add_up(fw.storage) == {
            "accepted": backlog,
            "delivered": backlog,
        }
        assert len(fw.sandbox.contact_list()) == backlog
        assert fw.sandbox.too_many_requests == 0
        assert (
            metric(fw, "forwarder_destination_breaker_state", portal="main", destination="contacts")
            == 0
        )


async def _delivered_any(fw: Forwarder) -> bool:
    return (await fw.counts()).get("delivered", 0) > 0


class FailingStorage:
    """The worker's storage, whose next ``failures`` calls of ``method`` fail as a full disk
    (or a Redis out of connections) does."""

    def __init__(self, storage: object, method: str, failures: int) -> None:
        self._storage = storage
        self._method = method
        self.failures = failures

    def __getattr__(self, name: str) -> object:
        real = getattr(self._storage, name)
        if name != self._method:
            return real

        async def failing(*args: object, **kwargs: object) -> object:
            if self.failures:
                self.failures -= 1
                raise StorageUnavailableError("disk I/O error")
            return await real(*args, **kwargs)

        return failing


@pytest.mark.parametrize(
    ("method", "event"),
    [
        pytest.param("lease", "delivery_storage_unavailable", id="lease"),
        pytest.param("finish", "batch_delivery_storage_unavailable", id="finish"),
    ],
)
async def test_failing_storage_is_a_storage_error_without_a_traceback_and_delivery_goes_on(
    tmp_path: Path, method: str, event: str
) -> None:
    """A lease refused, or a sent batch whose finish is refused: one warning line each, no
    traceback, counted as storage errors; the items are delivered once storage answers (a
    batch whose finish failed is sent again with the same uuids)."""
    async with running(tmp_path, orders(10.0), with_order_definition) as fw:
        worker = fw.client.app.state.engine.workers[("main", "conversions")]
        failing = FailingStorage(worker._storage, method, failures=2)
        worker._storage = failing
        with structlog.testing.capture_logs() as logs:
            await fw.send([track(i, a=i, b="x") for i in range(5)])

            async def delivered() -> bool:
                return (await fw.counts()).get("delivered", 0) == 5

            await until(delivered, timeout_s=30)
        received = fw.received()
    assert failing.failures == 0
    assert metric(fw, "forwarder_errors_total", stage="delivery", error_type="storage") == 2
    assert metric(fw, "forwarder_errors_total", stage="delivery", error_type="loop") == 0
    assert metric(fw, "forwarder_errors_total", stage="delivery", error_type="batch") == 0
    warnings = [e for e in logs if e["event"] == event]
    assert [(e["log_level"], e["error"]) for e in warnings] == [("warning", "disk I/O error")] * 2
    assert not [e for e in logs if e["log_level"] in ("error", "exception") or "exc_info" in e]
    assert len({e["uuid"] for e in received}) == 5
