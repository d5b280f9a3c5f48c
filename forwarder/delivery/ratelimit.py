"""Rate limiting: a rolling-window limiter that paces its requests and adapts to what HubSpot says.

``SlidingWindowLimiter`` never lets more than ``limit`` acquisitions into ANY rolling window, and
spends its share evenly across the window instead of all at once when the window rolls over.

HubSpot counts requests in rolling windows (docs/hubspot-contract.md, "Rate limits"). A token bucket
whose burst equals the allowance lets a full burst through at the end of one window and nearly
another full allowance early in the next, so up to ~2x in some rolling window. A sliding-window log
cannot: an acquisition is allowed only if the log holds fewer than ``limit - n`` entries younger
than ``window_s``.

The log lives behind ``WindowState`` (in this process). Replicas on Redis also share one log
through ``AsyncWindowState`` (a Lua script doing ``try_acquire`` atomically): an acquisition
must then fit the local log and the shared one, and header corrections and 429 penalties are
applied to both. Entries are either
ours or *phantoms*: requests HubSpot says were spent in the same budget by other integrations
(read from the ``X-HubSpot-RateLimit-*`` headers), which expire with the window like ours do.

Pacing is a GCRA (generic cell rate algorithm): after ``burst`` requests back to back, one per
``window_s / share``, where the share is what is left of the allowance once the phantoms are
taken off, and the allowance itself is cut in half by a 429 and regrows by one request per
window of successes (AIMD, as TCP congestion control does). A portal shared with integrations we
cannot see thus settles just under the free share instead of probing it with 429s. The rolling
log stays the hard guarantee; pacing only spreads what the log allows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol

import structlog

from forwarder.clock import Clock
from forwarder.delivery.background import BackgroundWrites
from forwarder.storage.base import SharedWindow

_log = structlog.get_logger(__name__)

AsyncWindowState = SharedWindow
"""The async variant of ``WindowState``, shared by replicas (times on the store's clock):
``try_acquire`` checks and logs in one step, since another replica may log in between."""

ADDITIVE_INCREASE = 0.1
"""Requests per window the allowance regrows by, per window of time with successes."""
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
    """Decides when a request may go: at most ``limit`` per rolling ``window_s``, paced."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Clock,
        state: WindowState | None = None,
        *,
        shared: AsyncWindowState | None = None,
        burst: int | None = None,
    ) -> None:
        """Create a limiter.

        Args:
            limit: acquisitions allowed in any rolling window.
            window_s: window length in seconds.
            clock: time source (monotonic clock and sleep).
            state: where the log lives; in memory by default.
            shared: the log every replica shares (Redis), checked after the local one.
            burst: requests that may go back to back before pacing spaces them; None turns
                pacing (and the AIMD allowance) off, leaving the bare rolling window.
        """
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self.burst = burst
        self._clock = clock
        self._state: WindowState = state or InMemoryWindowState()
        self._turn = asyncio.Lock()  # FIFO: asyncio.Lock wakes waiters in arrival order
        self._shared = shared
        self._updates = BackgroundWrites("shared_rate_window_update_failed")
        self._tat = float("-inf")  # pacing's theoretical arrival time of the next request
        self._allowance = float(limit)  # AIMD: requests per window we allow ourselves
        self._last_cut = float("-inf")
        self._last_success = float("-inf")
        self._ceiling = float("inf")  # the allowance when the last 429 came

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self.limit}, window_s={self.window_s})"

    @property
    def allowance(self) -> int:
        """Requests per window after AIMD cuts (``limit`` until a 429 cuts it)."""
        return max(1, min(self.limit, int(self._allowance + 1e-9)))

    def interval_s(self) -> float:
        """Seconds between paced requests now: the window over our share of it (0: unpaced)."""
        if self.burst is None:
            return 0.0
        _, phantoms = self._state.counts(self._clock.monotonic(), self.window_s)
        return self.window_s / max(1, self.allowance - phantoms)

    def burst_now(self) -> int:
        """Requests that may go back to back now: ``burst`` while we have the window alone.

        Once others are seen spending it (phantoms) or a 429 cut the allowance, one at a time:
        a burst into a window someone else is filling is what collides.
        """
        if self.burst is None:
            return 1
        _, phantoms = self._state.counts(self._clock.monotonic(), self.window_s)
        return self.burst if phantoms == 0 and self.allowance == self.limit else 1

    def rate_per_s(self) -> float:
        """Requests per second the pacing allows now."""
        interval = self.interval_s()
        return self.allowance / self.window_s if interval == 0 else 1.0 / interval

    def delay_s(self, n: int = 1) -> float:
        """Seconds until ``n`` acquisitions fit; 0 when they fit now."""
        self._check(n)
        now = self._clock.monotonic()
        wait = self._state.delay_s(now, n, max(n, self.allowance), self.window_s)
        if self.burst is not None:
            early = self._tat - (self.burst_now() - 1) * self.interval_s() - now
            wait = max(wait, early if early > EXPIRY_EPS_S else 0.0)
        return wait

    def record(self, n: int = 1) -> None:
        """Log ``n`` acquisitions now (whether or not ``delay_s`` allowed them)."""
        now = self._clock.monotonic()
        if self.burst is not None:
            self._tat = max(self._tat, now) + n * self.interval_s()
        self._state.add(now, n, self.window_s)

    async def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` acquisitions fit, then log them; callers pass in arrival order."""
        self._check(n)
        async with self._turn:
            while (wait := self.delay_s(n)) > 0:
                await self._clock.sleep(wait)
            if self._shared is not None:
                while (wait := await self._try_shared(n)) > 0:
                    await self._clock.sleep(wait)
            self.record(n)

    async def _try_shared(self, n: int) -> float:
        assert self._shared is not None
        return await self._shared.try_acquire(
            n, self.allowance, self.window_s, interval_s=self.interval_s(), burst=self.burst_now()
        )

    def throttled(self) -> None:
        """A 429 for this window: halve our share of it (once per window, whatever is in flight).

        Our share is the allowance above what others are seen spending (all of it when nobody
        is): like TCP halving its own congestion window, not the link's capacity, so a portal
        busy with others is not starved for the many windows it takes to regrow.
        """
        if self.burst is None:
            return
        now = self._clock.monotonic()
        if now - self._last_cut >= self.window_s:
            self._last_cut = now
            self._last_success = now
            _, phantoms = self._state.counts(now, self.window_s)
            others = min(phantoms, self._allowance - 1)
            self._ceiling = self._allowance
            self._allowance = max(1.0, others + (self._allowance - others) / 2)
            _log.info("rate_allowance_cut", allowance=self.allowance, window_s=self.window_s)

    def succeeded(self) -> None:
        """A request went through: regrow the allowance by ``ADDITIVE_INCREASE`` per window.

        Per window of time, not per success, so a small share regrows as fast as a large one;
        slower than TCP's one per round trip, since each probe past the free share costs a 429
        that HubSpot counts against the whole account.
        """
        now = self._clock.monotonic()
        elapsed = min(now - self._last_success, self.window_s)
        self._last_success = now
        if self._allowance < self.limit and elapsed > 0:
            step = ADDITIVE_INCREASE
            if self._ceiling - 1 <= self._allowance <= self._ceiling + 0.5:
                step /= 5  # near where the last 429 came: linger, as TCP CUBIC does
            grown = self._allowance + step * elapsed / self.window_s
            self._allowance = min(float(self.limit), grown)

    def observe(self, max_: int | None, remaining: int | None, interval_ms: int | None) -> None:
        """Correct the log from HubSpot's rate headers.

        When HubSpot says more of the window is spent than our own log explains, other
        integrations spend the same budget: log the difference as phantoms, so the limiter slows
        down before HubSpot answers 429. The phantoms expire with this limiter's window, which
        the envelope sets from ``interval_ms`` before calling this.
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
        """Send a correction to the shared log without making the (sync) caller wait: this
        replica's own log is already corrected; the others see it a round trip later."""
        self._updates.submit(update)

    def penalize_for(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` from now."""
        self.penalize(self._clock.monotonic() + seconds)

    def counts(self) -> tuple[int, int]:
        """(ours, phantoms) in the current window, for metrics and tests."""
        return self._state.counts(self._clock.monotonic(), self.window_s)

    def _check(self, n: int) -> None:
        if not 1 <= n <= self.limit:
            raise ValueError(f"cannot acquire {n} at once with a limit of {self.limit}")
