"""Per-portal envelopes: tier defaults, overrides, safety, daily reset, monthly quota."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from forwarder.clock import ManualClock
from forwarder.config import LimitSettings, PortalSettings
from forwarder.delivery.envelopes import (
    Envelope,
    EnvelopeLimits,
    PortalEnvelopes,
    resolve_limits,
)
from forwarder.hubspot.models import RateLimitHeaders


def at(text: str, tz: str = "UTC") -> ManualClock:
    """A manual clock whose wall time is ``text`` in ``tz``."""
    return ManualClock(start=datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp())


def envelopes(clock: ManualClock, tier: str = "professional", **limits: object) -> PortalEnvelopes:
    settings = LimitSettings(**limits)  # type: ignore[arg-type]
    return PortalEnvelopes.from_portal(PortalSettings(tier=tier, limits=settings), clock)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tier", "per_10s", "daily"),
    [
        ("free", 100, 250_000),
        ("starter", 100, 250_000),
        ("professional", 190, 625_000),
        ("enterprise", 190, 1_000_000),
        ("oauth", 110, None),
    ],
)
def test_tier_defaults(tier: str, per_10s: int, daily: int | None) -> None:
    limits = resolve_limits(tier, LimitSettings())
    assert limits == EnvelopeLimits(per_10s, daily, 5, 1250, 30_000_000)


def test_overrides_replace_tier_numbers() -> None:
    limits = resolve_limits("free", LimitSettings(crm_per_10s=20, events_monthly=1000))
    assert (limits.crm_per_10s, limits.crm_daily, limits.events_monthly) == (20, 250_000, 1000)


def test_safety_factor_scales_every_envelope() -> None:
    env = envelopes(at("2027-01-15T08:00:00"), "enterprise", safety=0.5)
    assert env.limiter(Envelope.CRM).limit == 95
    assert env.limiter(Envelope.SEARCH).limit == 2
    assert env.limiter(Envelope.EVENTS).limit == 625
    daily = env.quota(Envelope.CRM)
    assert daily is not None
    assert daily.cap == 500_000


def test_destinations_map_to_envelopes() -> None:
    env = envelopes(at("2027-01-15T08:00:00"))
    assert [env.envelope_for(d) for d in ("conversions", "timeline", "contacts", "lookups")] == [
        Envelope.EVENTS,
        Envelope.CRM,
        Envelope.CRM,
        Envelope.CRM,
    ]
    assert env.envelope_for("search") is Envelope.SEARCH


def test_oauth_portal_has_no_daily_cap() -> None:
    assert envelopes(at("2027-01-15T08:00:00"), "oauth").quota(Envelope.CRM) is None


async def test_daily_cap_resets_at_portal_midnight() -> None:
    clock = at("2027-01-15T23:00:00", "America/New_York")
    env = envelopes(clock, crm_daily=3, safety=1.0, daily_reset_tz="America/New_York")
    for _ in range(3):
        await env.acquire("contacts")
    assert env.delay_s("contacts") == pytest.approx(3600.0)
    assert env.seconds_until_daily_reset() == pytest.approx(3600.0)
    clock.advance(3600.0)
    assert env.delay_s("contacts") == 0.0


async def test_acquire_waits_for_the_daily_reset() -> None:
    clock = at("2027-01-15T23:59:00")
    env = envelopes(clock, crm_daily=1, safety=1.0)
    await env.acquire("timeline")
    waiter = asyncio.create_task(env.acquire("timeline"))
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(60.0)
    await asyncio.wait_for(waiter, 1.0)


def test_daily_header_from_other_apps_counts_against_the_cap() -> None:
    env = envelopes(at("2027-01-15T08:00:00"), crm_daily=1000, safety=1.0)
    env.observe("contacts", RateLimitHeaders(daily=1000, daily_remaining=0))
    assert env.delay_s("contacts") > 0.0


def test_window_headers_lower_the_envelope_when_hubspot_allows_less() -> None:
    env = envelopes(at("2027-01-15T08:00:00"), "enterprise")
    env.observe("lookups", RateLimitHeaders(max=100, remaining=100, interval_ms=10_000))
    assert env.limiter(Envelope.CRM).limit == 90


def test_event_headers_are_ignored() -> None:
    env = envelopes(at("2027-01-15T08:00:00"))
    env.observe("conversions", RateLimitHeaders(max=1, remaining=0))
    assert env.limiter(Envelope.EVENTS).counts() == (0, 0)


async def test_monthly_quota_counts_inputs_warns_and_stops() -> None:
    clock = at("2027-01-31T12:00:00")  # late in the month: pacing allows the whole quota
    env = envelopes(clock, events_monthly=1000, safety=1.0)
    quota = env.quota(Envelope.EVENTS)
    assert quota is not None
    await env.acquire("conversions", inputs=500)
    assert not quota.warned
    await env.acquire("conversions", inputs=400)
    assert quota.warned
    assert env.delay_s("conversions", inputs=100) == 0.0
    assert env.delay_s("conversions", inputs=101) == pytest.approx(12 * 3600.0)
    clock.advance(12 * 3600.0)
    assert env.delay_s("conversions", inputs=101) == 0.0
    assert not quota.warned


def test_monthly_quota_is_paced_early_in_the_month() -> None:
    clock = at("2027-01-01T00:00:00")
    env = envelopes(clock, events_monthly=1000, safety=1.0)
    assert env.delay_s("conversions", inputs=200) == 0.0
    assert env.delay_s("conversions", inputs=300) > 0.0


async def test_envelopes_are_independent() -> None:
    env = envelopes(at("2027-01-15T08:00:00"), search_per_s=1, safety=1.0)
    await env.acquire("search")
    assert env.delay_s("search") > 0.0
    assert env.delay_s("contacts") == 0.0
    assert env.delay_s("conversions") == 0.0


def test_penalize_blocks_only_that_envelope() -> None:
    env = envelopes(at("2027-01-15T08:00:00"))
    env.penalize("contacts", 4.0)
    assert env.delay_s("lookups") == 4.0
    assert env.delay_s("conversions") == 0.0


def test_unknown_destination_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown destination"):
        envelopes(at("2027-01-15T08:00:00")).envelope_for("fax")


def test_declared_interval_becomes_the_window_and_max_never_raises_the_allowance() -> None:
    env = PortalEnvelopes(EnvelopeLimits(crm_per_10s=10, crm_daily=None), ManualClock())
    env.observe("contacts", RateLimitHeaders(max=100, remaining=99, interval_ms=1000))
    limiter = env.limiter(Envelope.CRM)
    assert (limiter.limit, limiter.window_s) == (9, 1.0)


def test_a_rolling_429_cuts_the_envelope_and_successes_regrow_it() -> None:
    clock = ManualClock()
    env = PortalEnvelopes(EnvelopeLimits(crm_per_10s=100, crm_daily=None), clock)
    env.throttled("timeline")
    assert env.limiter(Envelope.CRM).allowance == 81  # a tenth of the 90 we allow ourselves
    for _ in range(500):  # a success every window: 0.1 % of HubSpot's 100 more per window
        clock.advance(10.0)
        env.succeeded("contacts")
    assert env.limiter(Envelope.CRM).allowance == 90
    assert env.limiter(Envelope.EVENTS).allowance == env.limiter(Envelope.EVENTS).limit
