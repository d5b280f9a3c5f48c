"""A CRM window shared with another integration that spends half of it, declared by headers.

HubSpot declares ``Max: 10`` per ``Interval-Milliseconds: 1000``; the forwarder is configured
with ``crm_per_10s = 10``. Time-scaled by ``SCALE`` (the sandbox's and the forwarder's windows
shrink alike).
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from forwarder.config import ContactSettings, LimitSettings, PortalSettings
from forwarder.hubspot.paths import DEFAULT_API_VERSION, paths_for
from forwarder.sandbox import FaultSpec, SandboxConfig
from tests.delivery.harness import running, until
from tests.delivery.test_faults import PORTAL_ID, assert_counts_add_up, identify, metric

SCALE = 4.0


def portal(scale: float) -> PortalSettings:
    return PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=0.05,
        contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
        limits=LimitSettings(crm_per_10s=10, time_scale=scale),
    )


def one_second_window(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(
        config, contact_properties=("lead_score",), limit_10s=10, window_ms=1000
    )


@pytest.mark.parametrize(
    ("pattern", "share_429"),
    # At random moments the other app sometimes fills a window between two of our answers, so
    # over 100 requests a 429 or two is chance; benchmarks/ measures the rate over many more.
    [("steady", 0.01), ("random", 0.03)],
)
async def test_competitor_spending_half_the_window_costs_few_429s(
    tmp_path: Path, pattern: str, share_429: float
) -> None:
    async with running(tmp_path, portal(SCALE), one_second_window) as fw:
        fw.sandbox.compete(window_share=0.5, pattern=pattern)  # type: ignore[arg-type]
        await fw.send([identify(i) for i in range(10_000)])

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 10_000

        await until(drained, timeout_s=60)
        statuses = fw.requests("contacts.batch_upsert")
        assert statuses.get(429, 0) <= share_429 * sum(statuses.values())
        assert len(fw.sandbox.contact_list()) == 10_000
        assert await assert_counts_add_up(fw.storage) == {"accepted": 10_000, "delivered": 10_000}
        assert fw.sandbox.limiter.competing.spent > 0


async def test_declared_window_replaces_the_configured_one_and_is_exported(tmp_path: Path) -> None:
    async with running(tmp_path, portal(SCALE), one_second_window) as fw:
        await fw.send([identify(i) for i in range(300)])

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 300

        await until(drained, timeout_s=30)
        labels = {"portal": "main", "envelope": "crm"}
        window = metric(fw, "forwarder_rate_envelope_window_seconds", **labels)
        assert window == pytest.approx(1.0 / SCALE)
        assert metric(fw, "forwarder_rate_envelope_requests_per_window", **labels) == 9
        assert metric(fw, "forwarder_rate_envelope_pace_per_second", **labels) > 0
        responses = metric(
            fw,
            "forwarder_hubspot_responses_total",
            portal="main",
            endpoint=paths_for(DEFAULT_API_VERSION).contacts_batch_upsert,
            status="200",
        )
        assert responses == 3


async def test_a_rolling_429_without_retry_after_waits_for_room_not_a_whole_window(
    tmp_path: Path,
) -> None:
    """No ``Retry-After`` and no headers: the classifier's fallback is a whole 10-second window,
    but our log has room at once, so the batch goes again as soon as the pace allows, and the
    destination's breaker (for failures, not for a full window) stays closed."""
    settings = msgspec.structs.replace(portal(1.0), limits=LimitSettings(crm_per_10s=100))
    async with running(tmp_path, settings, one_second_window) as fw:
        fw.sandbox.script_faults(FaultSpec(route="contacts.batch_upsert", status=429, count=1))
        started = time.monotonic()
        await fw.send([identify(i) for i in range(100)])

        async def drained() -> bool:
            return (await fw.counts()).get("delivered", 0) == 100

        await until(drained, timeout_s=30)
        assert time.monotonic() - started < 5.0
        assert fw.requests("contacts.batch_upsert") == {429: 1, 200: 1}
        breaker = metric(
            fw, "forwarder_destination_breaker_state", portal="main", destination="contacts"
        )
        assert breaker == 0
