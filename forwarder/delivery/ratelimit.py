"""Rate limiting: a rolling-window limiter and calendar quotas (daily cap, monthly quota).

``SlidingWindowLimiter`` never lets more than ``limit`` acquisitions into ANY rolling window.

HubSpot counts requests in rolling windows (reference §4.1, §4.7). A token bucket whose burst
equals the allowance lets a full burst through at the end of one window and nearly another full
allowance early in the next, so up to ~2x in some rolling window. A sliding-window log cannot:
an acquisition is allowed only if the log holds fewer than ``limit - n`` entries younger than
``window_s``.

The log lives behind ``WindowState`` (in this process). Replicas on Redis also share one log
through ``AsyncWindowState`` (a Lua script doing ``try_acquire`` atomically): an acquisition
must then fit the local log and the shared one, and header corrections and 429 penalties are
applied to both. Entries are either
ours or *phantoms*: requests HubSpot says were spent in the same budget by other integrations
(read from the ``X-HubSpot-RateLimit-*`` headers), which expire with the window like ours do.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import structlog

from forwarder.clock import Clock
from forwarder.storage.base import SharedWindow

_log = structlog.get_logger(__name__)

AsyncWindowState = SharedWindow
"""The async variant of ``WindowState``, shared by replicas (times on the store's clock):
``try_acquire`` checks and logs in one step, since another replica may log in between."""

EXPIRY_EPS_S = 1e-9
"""An entry expires this close to its window's end (float sums never land exactly on it)."""


class WindowState(Protocol):
    """The log of one rolling window; times are on the limiter's monotonic clock."""

    def delay_s(self, now: float, n: int, limit: int, window_s: float) -> float:
        """Seconds until ``n`` more fit (0 when they fit now); includes any block."""
        ...

    def add(self, now: float, n: int, window_s: float, *, phantom: bool = False) -> None:
        """Log ``n`` acquisitions (ours, or phantoms spent by others) at ``now``."""
        ...

    def counts(self, now: float, window_s: float) -> tuple[int, int]:
        """(ours, phantoms) inside the window ending at ``now``."""
        ...

    def block_until(self, until: float) -> None:
        """Refuse every acquisition before ``until`` (later calls only extend it)."""
        ...


class InMemoryWindowState:
    """A sliding-window log in one process: a deque of (time, count, phantom) entries."""

    def __init__(self) -> None:
        self._entries: deque[tuple[float, int, bool]] = deque()
        self._ours = 0
        self._phantoms = 0
        self._blocked_until = float("-inf")

    def _prune(self, now: float, window_s: float) -> None:
        entries = self._entries
        while entries and entries[0][0] + window_s <= now + EXPIRY_EPS_S:
            _, n, phantom = entries.popleft()
            if phantom:
                self._phantoms -= n
            else:
                self._ours -= n

    def delay_s(self, now: float, n: int, limit: int, window_s: float) -> float:
        self._prune(now, window_s)
        blocked = max(0.0, self._blocked_until - now)
        excess = self._ours + self._phantoms + n - limit
        if excess <= 0:
            return blocked
        freed = 0
        for at, count, _ in self._entries:  # oldest first: wait until enough of them expire
            freed += count
            if freed >= excess:
                return max(blocked, at + window_s - now)
        return max(blocked, window_s)  # unreachable while n <= limit

    def add(self, now: float, n: int, window_s: float, *, phantom: bool = False) -> None:
        self._prune(now, window_s)
        self._entries.append((now, n, phantom))
        if phantom:
            self._phantoms += n
        else:
            self._ours += n

    def counts(self, now: float, window_s: float) -> tuple[int, int]:
        self._prune(now, window_s)
        return self._ours, self._phantoms

    def block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)


class SlidingWindowLimiter:
    """Decides when a request may go: at most ``limit`` per rolling ``window_s``."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Clock,
        state: WindowState | None = None,
        *,
        shared: AsyncWindowState | None = None,
    ) -> None:
        """Create a limiter.

        Args:
            limit: acquisitions allowed in any rolling window.
            window_s: window length in seconds.
            clock: time source (monotonic clock and sleep).
            state: where the log lives; in memory by default.
            shared: the log every replica shares (Redis), checked after the local one.
        """
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._state: WindowState = state or InMemoryWindowState()
        self._turn = asyncio.Lock()  # FIFO: asyncio.Lock wakes waiters in arrival order
        self._shared = shared
        self._updates: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self.limit}, window_s={self.window_s})"

    def delay_s(self, n: int = 1) -> float:
        """Seconds until ``n`` acquisitions fit; 0 when they fit now."""
        self._check(n)
        return self._state.delay_s(self._clock.monotonic(), n, self.limit, self.window_s)

    def record(self, n: int = 1) -> None:
        """Log ``n`` acquisitions now (whether or not ``delay_s`` allowed them)."""
        self._state.add(self._clock.monotonic(), n, self.window_s)

    async def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` acquisitions fit, then log them; callers pass in arrival order."""
        self._check(n)
        async with self._turn:
            while (wait := self.delay_s(n)) > 0:
                await self._clock.sleep(wait)
            if self._shared is not None:
                while (wait := await self._shared.try_acquire(n, self.limit, self.window_s)) > 0:
                    await self._clock.sleep(wait)
            self.record(n)

    def observe(self, max_: int | None, remaining: int | None, interval_ms: int | None) -> None:
        """Correct the log from HubSpot's rate headers.

        When HubSpot says more of the window is spent than our own log explains, other
        integrations spend the same budget: log the difference as phantoms, so the limiter slows
        down before HubSpot answers 429. ``interval_ms`` is informational: the phantoms expire
        with this limiter's window.
        """
        if max_ is None or remaining is None:
            return
        now = self._clock.monotonic()
        ours, phantoms = self._state.counts(now, self.window_s)
        spent_by_others = (max_ - remaining) - ours
        missing = min(spent_by_others, self.limit) - phantoms
        if missing > 0:
            self._state.add(now, missing, self.window_s, phantom=True)
        if self._shared is not None:
            self._update_shared(self._shared.observe(max_ - remaining, self.limit, self.window_s))

    def penalize(self, until: float) -> None:
        """Let nothing through before ``until`` (monotonic clock), e.g. after a 429."""
        self._state.block_until(until)
        if self._shared is not None:
            seconds = until - self._clock.monotonic()
            if seconds > 0:
                self._update_shared(self._shared.block_for(seconds))

    def _update_shared(self, update: Coroutine[Any, Any, None]) -> None:
        """Send a correction to the shared log without making the (sync) caller wait.

        This replica's own log is already corrected; the others see it a round trip later.
        """
        try:
            task = asyncio.get_running_loop().create_task(update)
        except RuntimeError:  # no loop (synchronous use): the local correction must do
            update.close()
            return
        self._updates.add(task)
        task.add_done_callback(self._shared_updated)

    def _shared_updated(self, task: asyncio.Task[None]) -> None:
        self._updates.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            _log.warning("shared_rate_window_update_failed", error=str(exc))

    def penalize_for(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` from now."""
        self.penalize(self._clock.monotonic() + seconds)

    def counts(self) -> tuple[int, int]:
        """(ours, phantoms) in the current window, for metrics and tests."""
        return self._state.counts(self._clock.monotonic(), self.window_s)

    def _check(self, n: int) -> None:
        if not 1 <= n <= self.limit:
            raise ValueError(f"cannot acquire {n} at once with a limit of {self.limit}")


Period = Literal["day", "month"]


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

    def record(self, n: int = 1) -> None:
        """Spend ``n`` units; warn once when the warning share is crossed."""
        self._roll()
        self.used += n
        self._maybe_warn()

    def observe(self, cap_reported: int, remaining: int | None) -> None:
        """HubSpot counts the whole account: take its usage when it exceeds ours."""
        if remaining is not None:
            self.used = max(self.used, cap_reported - remaining)
            self._maybe_warn()

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
    ) -> None:
        self._period_s = period_s
        self._origin = clock.now()
        super().__init__(name, cap, "day", ZoneInfo("UTC"), clock, warn_share=warn_share, pace=pace)

    def _period_key(self, now: float) -> tuple[int, int, int]:
        return (int((now - self._origin) // self._period_s), 0, 0)

    def seconds_until_reset(self) -> float:
        now = self._clock.now()
        elapsed = (now - self._origin) % self._period_s
        return self._period_s - elapsed

    def _bounds(self, now: float) -> tuple[float, float]:
        start = now - (now - self._origin) % self._period_s
        return start, start + self._period_s
