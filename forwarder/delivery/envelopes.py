"""Per-portal rate envelopes: one limiter per envelope, shared by every worker of the portal.

Numbers come from the tier (docs/hubspot-contract.md, "Rate limits",
"Custom events" and "Contacts"), then ``[portals.NAME.limits]``
overrides, then ``safety``. Envelopes:

* ``crm``: rolling 10-second window plus a daily cap that resets at midnight in the portal's
  time zone; timeline, contacts and look-ups share it.
* ``search``: 5 requests per second (search is exempt from the 10-second window).
* ``events``: custom event sends, per second, plus the monthly completions quota: paced, a
  warning at 80 %, never past it. Event sends are exempt from the daily and 10-second limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

import structlog

from forwarder.clock import Clock
from forwarder.config import LimitSettings, PortalSettings
from forwarder.delivery.quotas import FixedPeriodQuota, PeriodQuota, QuotaLedger
from forwarder.delivery.ratelimit import SlidingWindowLimiter
from forwarder.events.destinations import DestinationName
from forwarder.hubspot.models import RateLimitHeaders
from forwarder.storage.base import SharedWindow

_log = structlog.get_logger(__name__)


class Envelope(StrEnum):
    """A budget HubSpot enforces separately."""

    CRM = "crm"
    SEARCH = "search"
    EVENTS = "events"


DESTINATION_ENVELOPES: dict[str, Envelope] = {
    DestinationName.CONVERSIONS: Envelope.EVENTS,
    DestinationName.TIMELINE: Envelope.CRM,
    DestinationName.CONTACTS: Envelope.CRM,
    # the authenticated forms submit endpoint follows the standard limits
    DestinationName.FORMS: Envelope.CRM,
    "lookups": Envelope.CRM,
    "search": Envelope.SEARCH,
}
"""Which envelope each destination spends."""


@dataclass(frozen=True, slots=True)
class EnvelopeLimits:
    """Allowances of one portal, HubSpot's numbers (before ``safety``)."""

    crm_per_10s: int
    crm_daily: int | None
    search_per_s: int = 5
    events_per_s: int = 1250
    events_monthly: int | None = 30_000_000


TIERS: dict[str, EnvelopeLimits] = {
    "free": EnvelopeLimits(100, 250_000),
    "starter": EnvelopeLimits(100, 250_000),
    "professional": EnvelopeLimits(190, 625_000),
    "enterprise": EnvelopeLimits(190, 1_000_000),
    "oauth": EnvelopeLimits(110, None),  # public apps: 110 per 10 s per account, no daily cap
}
"""docs/hubspot-contract.md, "Rate limits" (private apps by tier; public OAuth apps)."""


def resolve_limits(tier: str, overrides: LimitSettings) -> EnvelopeLimits:
    """The tier's numbers with every explicit override applied (``safety`` not yet)."""
    base = TIERS[tier]
    return EnvelopeLimits(
        crm_per_10s=_pick(overrides.crm_per_10s, base.crm_per_10s),
        crm_daily=overrides.crm_daily if overrides.crm_daily is not None else base.crm_daily,
        search_per_s=_pick(overrides.search_per_s, base.search_per_s),
        events_per_s=_pick(overrides.events_per_s, base.events_per_s),
        events_monthly=_pick(overrides.events_monthly, base.events_monthly),
    )


def _pick(override: int | None, default: int | None) -> int:
    value = override if override is not None else default
    if value is None:
        raise ValueError("no default for this limit")
    return value


def scaled(allowance: int, safety: float) -> int:
    """The share of ``allowance`` the forwarder allows itself (at least 1)."""
    return max(1, math.floor(allowance * safety + 1e-9))


class PortalEnvelopes:
    """Every envelope of one portal; workers ``acquire`` before each request."""

    def __init__(
        self,
        limits: EnvelopeLimits,
        clock: Clock,
        *,
        safety: float = 0.9,
        tz: str = "UTC",
        time_scale: float = 1.0,
        shared: Callable[[str], SharedWindow] | None = None,
        burst: int = 3,
        ledgers: Callable[[str], QuotaLedger] | None = None,
    ) -> None:
        """Build the limiters and quotas.

        Args:
            limits: HubSpot's allowances for the portal.
            clock: time source (wall clock for resets, monotonic for windows).
            safety: share of each envelope the forwarder allows itself.
            tz: IANA zone where the portal's day (and month) begins.
            time_scale: windows shrink by this factor (sandbox only).
            shared: the window log of an envelope (by name) shared by every replica; each
                rolling window is then enforced across replicas.
            burst: requests of an envelope that may go back to back before pacing.
            ledgers: where each quota (by name) is counted for every replica and across
                restarts (the store); None: in this process only.
        """
        self.limits = limits
        self.safety = safety
        self._clock = clock
        zone = self._zone = ZoneInfo(tz)
        self._scale = time_scale
        ten, one = 10.0 / time_scale, 1.0 / time_scale
        allowances = {
            Envelope.CRM: (limits.crm_per_10s, ten),
            Envelope.SEARCH: (limits.search_per_s, one),
            Envelope.EVENTS: (limits.events_per_s, one),
        }
        # ``safety`` caps our own requests; HubSpot's allowance caps ours and others' together.
        self._limiters = {
            envelope: SlidingWindowLimiter(
                scaled(allowance, safety),
                window_s,
                clock,
                shared=shared(envelope.value) if shared else None,
                burst=burst,
                capacity=allowance,
            )
            for envelope, (allowance, window_s) in allowances.items()
        }
        self.declared: dict[Envelope, RateLimitHeaders] = {}
        """The last rate headers HubSpot sent per envelope (for metrics and the debugger)."""
        self._differs_logged: set[Envelope] = set()
        self._quotas: dict[Envelope, PeriodQuota] = {}
        if limits.crm_daily is not None:
            cap = scaled(limits.crm_daily, safety)
            ledger = ledgers("crm_daily") if ledgers else None
            self._quotas[Envelope.CRM] = (
                PeriodQuota("crm_daily", cap, "day", zone, clock, ledger=ledger)
                if time_scale == 1.0
                else FixedPeriodQuota("crm_daily", cap, 86400.0 / time_scale, clock, ledger=ledger)
            )
        if limits.events_monthly is not None:
            cap = scaled(limits.events_monthly, safety)
            ledger = ledgers("events_monthly") if ledgers else None
            self._quotas[Envelope.EVENTS] = (
                PeriodQuota(
                    "events_monthly",
                    cap,
                    "month",
                    zone,
                    clock,
                    warn_share=0.8,
                    pace=True,
                    ledger=ledger,
                )
                if time_scale == 1.0
                else FixedPeriodQuota(
                    "events_monthly",
                    cap,
                    30 * 86400.0 / time_scale,
                    clock,
                    warn_share=0.8,
                    pace=True,
                    ledger=ledger,
                )
            )

    @classmethod
    def from_portal(
        cls,
        portal: PortalSettings,
        clock: Clock,
        shared: Callable[[str], SharedWindow] | None = None,
        ledgers: Callable[[str], QuotaLedger] | None = None,
    ) -> PortalEnvelopes:
        """Envelopes from a portal's tier and ``limits`` section (``shared``, ``ledgers``: see
        ``__init__``)."""
        limits = resolve_limits(portal.tier, portal.limits)
        return cls(
            limits,
            clock,
            safety=portal.limits.safety,
            tz=portal.limits.daily_reset_tz,
            time_scale=portal.limits.time_scale,
            shared=shared,
            burst=portal.limits.burst,
            ledgers=ledgers,
        )

    def envelope_for(self, destination: str) -> Envelope:
        """The envelope a destination spends (``conversions``, ``contacts``, ...)."""
        try:
            return DESTINATION_ENVELOPES[destination]
        except KeyError:
            raise ValueError(f"unknown destination {destination!r}") from None

    def limiter(self, envelope: Envelope) -> SlidingWindowLimiter:
        """The rolling-window limiter of an envelope."""
        return self._limiters[envelope]

    def quota(self, envelope: Envelope) -> PeriodQuota | None:
        """The daily (crm) or monthly (events) quota of an envelope, if it has one."""
        return self._quotas.get(envelope)

    def delay_s(self, destination: str, inputs: int = 1) -> float:
        """Seconds until one request with ``inputs`` inputs may go; 0 when it may go now."""
        envelope = self.envelope_for(destination)
        quota = self._quotas.get(envelope)
        waits = [self._limiters[envelope].delay_s(1)]
        if quota is not None:
            waits.append(quota.delay_s(self._units(envelope, inputs)))
        return max(waits)

    async def acquire(self, destination: str, inputs: int = 1) -> float:
        """Wait until one request with ``inputs`` inputs fits every budget, then spend it.

        A quota that is used up makes this wait until its reset (events stay queued). Returns
        when the request was logged in its window, for ``answered``.
        """
        envelope = self.envelope_for(destination)
        quota = self._quotas.get(envelope)
        units = self._units(envelope, inputs)
        while quota is not None:
            while (wait := quota.delay_s(units)) > 0:
                await self._clock.sleep(wait)
            if await quota.reserve(units):  # shared: another replica may have spent the rest
                break
        return await self._limiters[envelope].acquire(1)

    def answered(self, destination: str, sent_at: float) -> None:
        """HubSpot answered the request ``acquire`` logged at ``sent_at`` (see
        ``SlidingWindowLimiter.answered``)."""
        self._limiters[self.envelope_for(destination)].answered(sent_at)

    def observe(self, destination: str, headers: RateLimitHeaders | None) -> None:
        """Feed one response's ``X-HubSpot-RateLimit-*`` headers to its envelope.

        HubSpot's numbers are the truth about the budget: ``Interval-Milliseconds`` becomes the
        window, ``Max`` lowers the allowance (the configuration is an upper bound, never raised),
        ``Remaining`` shows what others spend (phantoms), and ``Daily``/``Daily-Remaining``
        correct the daily quota.
        """
        envelope = self.envelope_for(destination)
        if headers is None or envelope is not Envelope.CRM:
            return  # search has no headers; event sends are exempt from the counted limits
        self.declared[envelope] = headers
        limiter = self._limiters[envelope]
        configured = (limiter.limit, limiter.window_s)
        if headers.max is not None and headers.max < limiter.capacity:
            limiter.capacity = headers.max
            limiter.limit = min(limiter.limit, scaled(headers.max, self.safety))
        if headers.interval_ms is not None and headers.interval_ms > 0:
            limiter.window_s = headers.interval_ms / 1000.0
        if (limiter.limit, limiter.window_s) != configured and envelope not in self._differs_logged:
            self._differs_logged.add(envelope)  # once: every answer carries the same headers
            _log.warning(
                "rate_envelope_corrected",
                envelope=envelope.value,
                configured_limit=configured[0],
                configured_window_s=configured[1],
                hubspot_max=headers.max,
                hubspot_interval_ms=headers.interval_ms,
                limit=limiter.limit,
                window_s=limiter.window_s,
            )
        limiter.observe(headers.max, headers.remaining, headers.interval_ms)
        quota = self._quotas.get(envelope)
        if quota is not None and headers.daily is not None:
            quota.observe(headers.daily, headers.daily_remaining)

    def penalize(self, destination: str, seconds: float) -> None:
        """After a 429: let nothing of this envelope through for ``seconds``."""
        self._limiters[self.envelope_for(destination)].penalize_for(seconds)

    def throttled(self, destination: str) -> float:
        """A 429 for a rolling window: the envelope's allowance is cut (AIMD); the seconds
        until its log, which the 429's headers just filled, has room again."""
        return self._limiters[self.envelope_for(destination)].throttled()

    def succeeded(self, destination: str) -> None:
        """A request of this envelope went through: its allowance regrows."""
        self._limiters[self.envelope_for(destination)].succeeded()

    def seconds_until_daily_reset(self) -> float:
        """Seconds until the portal's next midnight (for 429 ``DAILY``)."""
        quota = self._quotas.get(Envelope.CRM)
        if quota is not None:
            return quota.seconds_until_reset()
        return PeriodQuota.seconds_until_next("day", self._zone, self._clock.now())

    @staticmethod
    def _units(envelope: Envelope, inputs: int) -> int:
        # The monthly quota counts completions (inputs); the daily cap counts requests.
        return inputs if envelope is Envelope.EVENTS else 1
