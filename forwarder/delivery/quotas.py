"""Calendar quotas of an envelope: the daily CRM cap and the paced monthly event quota.

With a ``QuotaLedger`` (the store) a quota is counted once per portal for every replica and
across restarts: a request reserves its units in the ledger atomically before it goes, so
replicas together never spend more than the cap, and HubSpot's daily headers raise the shared
count when the account spent more than we know of.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import structlog

from forwarder.clock import Clock
from forwarder.delivery.background import BackgroundWrites
from forwarder.storage.roles import SharedLimits

_log = structlog.get_logger(__name__)


Period = Literal["day", "month"]


class QuotaLedger(Protocol):
    """Where one quota of one portal is counted for every replica, per period."""

    async def spend(self, period: str, n: int, cap: int) -> tuple[bool, int]:
        """Add ``n`` to the period's count if it stays within ``cap``, atomically.

        Returns:
            Whether it was added, and the count after the call.
        """
        ...

    async def raise_to(self, period: str, used: int) -> int:
        """Make the period's count at least ``used``; return the count."""
        ...


class PeriodQuota:
    """A count that resets when a calendar day or month begins in the portal's time zone.

    ``crm_daily`` counts requests; ``events_monthly`` counts completions and is *paced*: by any
    moment, at most the elapsed share of the month plus ``PACE_HEADROOM`` of the quota may be
    spent, so a flood early in the month cannot use up what the rest of the month needs.
    """

    PACE_HEADROOM = 0.2

    def __init__(
        self,
        name: str,
        cap: int,
        period: Period,
        zone: ZoneInfo,
        clock: Clock,
        *,
        warn_share: float | None = None,
        pace: bool = False,
        ledger: QuotaLedger | None = None,
    ) -> None:
        self.name = name
        self.cap = cap
        self.used = 0
        self.warned = False
        """True once ``warn_share`` of this period's quota was used (reset with the period)."""
        self._period: Period = period
        self._zone = zone
        self._clock = clock
        self._warn_share = warn_share
        self._pace = pace
        self._key = self._period_key(clock.now())
        self._ledger = ledger
        self._updates = BackgroundWrites("quota_update_failed")

    def __repr__(self) -> str:
        return f"PeriodQuota({self.name!r}, used={self.used}, cap={self.cap})"

    def delay_s(self, n: int = 1) -> float:
        """Seconds until ``n`` more units may be spent (0 now); at the cap, until the reset."""
        now = self._roll()
        if self.used + n > self.cap:
            return self.seconds_until_reset()
        if not self._pace:
            return 0.0
        start, end = self._bounds(now)
        share_needed = (self.used + n) / self.cap - self.PACE_HEADROOM
        allowed_at = start + max(0.0, share_needed) * (end - start)
        return max(0.0, allowed_at - now)

    def usage(self) -> tuple[int, int]:
        """(used, cap) in the current period (a new period starts at 0 even if nothing was
        spent since it began)."""
        self._roll()
        return self.used, self.cap

    async def reserve(self, n: int = 1) -> bool:
        """Spend ``n`` units if they fit the cap; with a ledger, atomically for every replica.

        Returns:
            False when the period's cap would be passed (someone else spent the rest):
            ``delay_s`` then says how long to wait.
        """
        self._roll()
        if self._ledger is None:
            if self.used + n > self.cap:
                return False
            self.record(n)
            return True
        granted, used = await self._ledger.spend(self._period_name(), n, self.cap)
        self._roll()
        self.used = max(self.used, used) if granted else max(self.used, used, self.cap)
        self._maybe_warn()
        return granted

    def record(self, n: int = 1) -> None:
        """Count ``n`` units spent (this process only; ``reserve`` is the shared way)."""
        self._roll()
        self.used += n
        self._maybe_warn()

    def observe(self, cap_reported: int, remaining: int | None) -> None:
        """HubSpot counts the whole account: take its usage when it exceeds ours (and raise the
        shared count too, in the background: the caller does not wait for the store)."""
        if remaining is None:
            return
        self._roll()
        self.used = max(self.used, cap_reported - remaining)
        self._maybe_warn()
        if self._ledger is not None:
            self._updates.submit(self._ledger.raise_to(self._period_name(), self.used))

    async def refresh(self) -> None:
        """Read the shared count (what other replicas spent) into ``used``."""
        if self._ledger is not None:
            self._roll()
            self.used = max(self.used, await self._ledger.raise_to(self._period_name(), 0))

    def _period_name(self) -> str:
        """The current period as the ledger's key (the same in every replica)."""
        return "-".join(str(part) for part in self._key)

    def seconds_until_reset(self) -> float:
        """Seconds until this period ends."""
        return self.seconds_until_next(self._period, self._zone, self._clock.now())

    @staticmethod
    def seconds_until_next(period: Period, zone: ZoneInfo, now: float) -> float:
        """Seconds from ``now`` to the next local midnight (day) or first of a month."""
        return PeriodQuota._edges(period, zone, now)[1] - now

    def _roll(self) -> float:
        now = self._clock.now()
        key = self._period_key(now)
        if key != self._key:
            self._key, self.used, self.warned = key, 0, False
        return now

    def _maybe_warn(self) -> None:
        share = self._warn_share
        if share is not None and not self.warned and self.used >= share * self.cap:
            self.warned = True
            _log.warning("quota_warning_reached", quota=self.name, used=self.used, cap=self.cap)

    def _period_key(self, now: float) -> tuple[int, int, int]:
        local = datetime.fromtimestamp(now, self._zone)
        return (local.year, local.month, local.day if self._period == "day" else 0)

    def _bounds(self, now: float) -> tuple[float, float]:
        return self._edges(self._period, self._zone, now)

    @staticmethod
    def _edges(period: Period, zone: ZoneInfo, now: float) -> tuple[float, float]:
        local = datetime.fromtimestamp(now, zone)
        if period == "day":
            start = local.date()
            end = start + timedelta(days=1)
        else:
            start = local.date().replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
        return _midnight(start, zone), _midnight(end, zone)


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(0), tzinfo=zone).timestamp()


class FixedPeriodQuota(PeriodQuota):
    """A quota over fixed periods of ``period_s`` from start: a time-scaled "day" (or 30-day
    "month") for the sandbox.

    With ``limits.time_scale`` the sandbox's day is 86400 / scale seconds from its start; the
    forwarder's daily cap follows the same clock so the two agree on when the day resets.
    """

    def __init__(
        self,
        name: str,
        cap: int,
        period_s: float,
        clock: Clock,
        *,
        warn_share: float | None = None,
        pace: bool = False,
        ledger: QuotaLedger | None = None,
    ) -> None:
        self._period_s = period_s
        # Periods counted from the epoch, not from this process's start: every replica agrees
        # on when a scaled day begins, so they count the same day in the ledger.
        self._origin = 0.0
        super().__init__(
            name,
            cap,
            "day",
            ZoneInfo("UTC"),
            clock,
            warn_share=warn_share,
            pace=pace,
            ledger=ledger,
        )

    def _period_key(self, now: float) -> tuple[int, int, int]:
        return (int((now - self._origin) // self._period_s), 0, 0)

    def seconds_until_reset(self) -> float:
        now = self._clock.now()
        elapsed = (now - self._origin) % self._period_s
        return self._period_s - elapsed

    def _bounds(self, now: float) -> tuple[float, float]:
        start = now - (now - self._origin) % self._period_s
        return start, start + self._period_s


class StoredQuota:
    """The ``QuotaLedger`` of one quota of one portal, kept in the store (every replica, every
    restart)."""

    def __init__(self, storage: SharedLimits, portal: str, name: str) -> None:
        self._storage = storage
        self._portal = portal
        self._name = name

    async def spend(self, period: str, n: int, cap: int) -> tuple[bool, int]:
        return await self._storage.spend_quota(self._portal, self._name, period, n, cap)

    async def raise_to(self, period: str, used: int) -> int:
        return await self._storage.raise_quota(self._portal, self._name, period, used)
