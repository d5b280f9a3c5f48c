"""Rate limiting: a rolling-window limiter that paces its requests and adapts to what HubSpot says.

``SlidingWindowLimiter`` never lets more than ``limit`` of our acquisitions, nor more than
``capacity`` of everyone's, into ANY rolling window, and spends its share evenly across the
window instead of all at once when the window rolls over.

HubSpot counts requests in rolling windows (docs/hubspot-contract.md, "Rate limits"). A token bucket
whose burst equals the allowance lets a full burst through at the end of one window and nearly
another full allowance early in the next, so up to ~2x in some rolling window. A sliding-window log
cannot: an acquisition is allowed only if the log holds fewer than ``limit - n`` entries younger
than ``window_s``. An entry of ours counts from its answer once it has one: HubSpot counted the
request when it arrived, at the latest then, so every rolling window of HubSpot's holds no more
of ours than ours does, however long requests take.

Two caps: ``limit`` (our ``safety`` share of HubSpot's allowance) counts only our requests;
``capacity`` (HubSpot's ``X-HubSpot-RateLimit-Max``) counts ours and *phantoms*: what other
integrations spent in the same window, inferred at every answer as ``Max - Remaining`` less our
own entries, and expiring with the window like ours. So ``safety`` is not taken off the share
others leave, and others' spending is met before HubSpot answers 429.

Pacing is a GCRA (generic cell rate algorithm): after ``burst`` requests back to back (only
while nobody else is seen), one per ``window_s / share``, where the share is 0.97 of what the
others' smoothed spending leaves of the allowance. The log keeps room for the others' requests
expected since the last reading and for their swing. The allowance (of everyone's requests) is
cut by a rolling-window 429, a tenth of our share above the others', and regrows slowly (AIMD,
as TCP congestion control does), so a portal shared with integrations we cannot see settles
just under the free share instead of probing it with 429s. The rolling log stays the hard
guarantee; pacing only spreads what the log allows.

Replicas on Redis also share one log through ``AsyncWindowState`` (a Lua script doing
``try_acquire`` atomically): an acquisition must fit the local log and the shared one, which
holds every replica's requests (within ``limit``, paced alike) and 429 penalties. Phantoms stay
local: each replica reads ``Remaining`` itself and sees the other replicas' requests among the
others', which is what the ``capacity`` check needs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any

import structlog

from forwarder.clock import Clock
from forwarder.delivery.background import BackgroundWrites
from forwarder.delivery.windowlog import EXPIRY_EPS_S, InMemoryWindowState, WindowState
from forwarder.storage.base import SharedWindow

_log = structlog.get_logger(__name__)

AsyncWindowState = SharedWindow
"""The async variant of ``WindowState``, shared by replicas (times on the store's clock):
``try_acquire`` checks and logs in one step, since another replica may log in between."""

ADDITIVE_INCREASE = 0.001
"""Share of ``capacity`` the allowance regrows by per window of time with successes (one
request per 100 windows of a 10-request window): slow, since every probe past what others leave
costs a 429 that HubSpot counts against the whole account."""
MULTIPLICATIVE_DECREASE = 0.9
"""A rolling-window 429 keeps this much of our share above what others spend."""
PACE_SHARE = 0.97
"""Of what others leave of HubSpot's ``Max``, the share we pace at (the rest absorbs their
swing)."""
SWING_MARGIN = 2.0
"""Room kept for the others' swing, in standard deviations of their readings."""
OTHERS_SMOOTHING = 0.2
"""Weight of each new reading in the running estimate of what others spend per window."""


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
        capacity: int | None = None,
    ) -> None:
        """Create a limiter.

        Args:
            limit: our acquisitions allowed in any rolling window.
            window_s: window length in seconds.
            clock: time source (monotonic clock and sleep).
            state: where the log lives; in memory by default.
            shared: the log every replica shares (Redis), checked after the local one.
            burst: requests that may go back to back before pacing spaces them; None turns
                pacing (and the AIMD allowance) off, leaving the bare rolling window.
            capacity: what HubSpot allows everyone sharing the window (ours and others'
                phantoms together); ``limit`` when None. ``limit`` below it is our ``safety``.
        """
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self.limit = limit
        self.capacity = max(limit, capacity or limit)
        self._window_s = window_s
        self.burst = burst
        self._clock = clock
        self._state: WindowState = state or InMemoryWindowState()
        self._turn = asyncio.Lock()  # FIFO: asyncio.Lock wakes waiters in arrival order
        self._shared = shared
        self._updates = BackgroundWrites("shared_rate_window_update_failed")
        self._tat = float("-inf")  # pacing's theoretical arrival time of the next request
        self._total = float(self.capacity)  # AIMD: what we believe HubSpot lets everyone spend
        self._others = 0.0  # what others spend per window (smoothed HubSpot readings)
        self._swing = 0.0  # the variance of those readings (smoothed alike)
        self._last_reading = float("-inf")
        self._phantoms_read = 0  # the log's phantoms just after the last reading
        self._last_cut = float("-inf")
        self._last_success = float("-inf")

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self.limit}, window_s={self.window_s})"

    @property
    def window_s(self) -> float:
        """The window's length (HubSpot's ``Interval-Milliseconds`` once it declares one)."""
        return self._window_s

    @window_s.setter
    def window_s(self, window_s: float) -> None:
        # Pacing ran at the old window's spacing: what it had booked ahead shrinks alike, or a
        # 10-second window corrected to 1 s would hold the burst's requests for seconds.
        now = self._clock.monotonic()
        if self._tat > now:
            self._tat = now + (self._tat - now) * window_s / self._window_s
        self._window_s = window_s

    @property
    def allowance(self) -> int:
        """Our requests per window: ``limit``, or less once a 429 cut HubSpot's share (AIMD)."""
        return max(1, min(self.limit, int(self._total + 1e-9)))

    def _total_now(self) -> int:
        """Everyone's requests per window we allow in the log (AIMD-cut ``capacity``)."""
        return max(1, min(self.capacity, int(self._total + 1e-9)))

    def _share(self) -> float:
        """Our requests per window: what others leave (less a margin for their swing)."""
        free = min(float(self.capacity), self._total) - self._others
        if self._others > 0.5:
            free *= PACE_SHARE
        return max(1.0, min(float(self.limit), free))

    def _unseen(self, now: float) -> int:
        """Others' requests likely made since HubSpot's last reading (none in our log yet).

        At least as many as left the log since that reading: HubSpot's count of the others
        falls only when it says so (one spending steadily, or holding its share, replaces what
        expires), and a send timed just after a phantom's expiry otherwise met a full window.
        At least, too, their rate over the time since the reading, floored (new phantoms are
        stamped when read, after they came, so the log runs ahead), plus their swing.
        """
        if self._others <= 0.5:
            return 0
        age = min(1.0, (now - self._last_reading) / self.window_s)
        expected = math.floor(self._others * age + SWING_MARGIN * math.sqrt(self._swing))
        _, phantoms = self._state.counts(now, self.window_s)
        return max(expected, self._phantoms_read - phantoms)

    def interval_s(self) -> float:
        """Seconds between paced requests now: the window over our share of it (0: unpaced)."""
        if self.burst is None:
            return 0.0
        return self.window_s / self._share()

    def burst_now(self) -> int:
        """Requests that may go back to back now: ``burst`` while we have the window alone.

        Once others are seen spending it or a 429 cut the allowance, one at a time: a burst
        into a window someone else is filling is what collides.
        """
        if self.burst is None:
            return 1
        alone = self._others <= 0.5 and self._total >= self.capacity
        return self.burst if alone else 1

    def rate_per_s(self) -> float:
        """Requests per second the pacing allows now."""
        interval = self.interval_s()
        return self.allowance / self.window_s if interval == 0 else 1.0 / interval

    def delay_s(self, n: int = 1) -> float:
        """Seconds until ``n`` acquisitions fit; 0 when they fit now."""
        self._check(n)
        now = self._clock.monotonic()
        total = self.capacity if self.burst is None else self._total_now() - self._unseen(now)
        total = max(n, total)
        wait = self._state.delay_s(now, n, total, self.window_s, self.limit)
        if self.burst is not None:
            early = self._tat - (self.burst_now() - 1) * self.interval_s() - now
            wait = max(wait, early if early > EXPIRY_EPS_S else 0.0)
        return wait

    def record(self, n: int = 1) -> float:
        """Log ``n`` acquisitions now (whether or not ``delay_s`` allowed them); the time
        they were logged at, for ``answered``."""
        now = self._clock.monotonic()
        if self.burst is not None:
            self._tat = max(self._tat, now) + n * self.interval_s()
        self._state.add(now, n, self.window_s)
        return now

    async def acquire(self, n: int = 1) -> float:
        """Wait until ``n`` acquisitions fit, then log them; callers pass in arrival order.

        Returns when they were logged, for ``answered``.
        """
        self._check(n)
        async with self._turn:
            while (wait := self.delay_s(n)) > 0:
                await self._clock.sleep(wait)
            if self._shared is not None:
                while (wait := await self._try_shared(n)) > 0:
                    await self._clock.sleep(wait)
            return self.record(n)

    def answered(self, sent_at: float) -> None:
        """HubSpot answered the request logged at ``sent_at``: it counts from now on.

        HubSpot counted it when it arrived, somewhere between the two; counting it from the
        answer keeps every rolling window of HubSpot's within ours, however long the request
        took (a slow first answer would otherwise let later requests crowd its window).
        """
        self._state.settle(sent_at, self._clock.monotonic(), self.window_s)

    async def _try_shared(self, n: int) -> float:
        assert self._shared is not None
        return await self._shared.try_acquire(
            n, self.allowance, self.window_s, interval_s=self.interval_s(), burst=self.burst_now()
        )

    def throttled(self) -> float:
        """A rolling-window 429: cut our share above what others spend (once per window).

        Like TCP cutting its own congestion window, not the link's capacity, so a portal busy
        with others is not starved for the many windows it takes to regrow. Returns the seconds
        until our log has room again: the 429's headers have told it how full the window is,
        so nothing waits a whole interval for a window that frees up sooner.
        """
        if self.burst is None:
            return self.delay_s()
        now = self._clock.monotonic()
        if now - self._last_cut >= self.window_s:
            self._last_cut = self._last_success = now
            others = min(self._others, self._total - 1)
            spent = min(self._total, self.limit + others)  # what we and they were spending
            self._total = max(1.0, others + (spent - others) * MULTIPLICATIVE_DECREASE)
            _log.info("rate_allowance_cut", allowance=self.allowance, window_s=self.window_s)
        return self.delay_s()

    def succeeded(self) -> None:
        """A request went through: regrow the allowance by ``ADDITIVE_INCREASE`` per window.

        Per window of time, not per success, so a small share regrows as fast as a large one;
        slower than TCP's one per round trip, since each probe past the free share costs a 429
        that HubSpot counts against the whole account.
        """
        now = self._clock.monotonic()
        elapsed = min(now - self._last_success, self.window_s)
        self._last_success = now
        if self._total < self.capacity and elapsed > 0:
            grown = self._total + ADDITIVE_INCREASE * self.capacity * elapsed / self.window_s
            self._total = min(float(self.capacity), grown)

    def observe(self, max_: int | None, remaining: int | None, interval_ms: int | None) -> None:
        """Correct the log from HubSpot's rate headers.

        ``Max - Remaining`` less our own requests in the window is what other integrations
        spent in it: the log holds that many phantoms, which expire with the window as ours
        do. New ones are spread over the time since the last reading (they came somewhere in
        it); when HubSpot counts fewer than the log holds, the oldest go. The envelope sets the
        window from ``interval_ms`` before calling this.
        """
        if max_ is None or remaining is None:
            return
        now = self._clock.monotonic()
        ours, phantoms = self._state.counts(now, self.window_s)
        others = max(0, min((max_ - remaining) - ours, self.capacity))
        if others > phantoms:
            self._add_phantoms(now, others - phantoms)
        elif others < phantoms:
            self._state.drop_phantoms(now, phantoms - others, self.window_s)
        first = self._last_reading == float("-inf")
        weight = 1.0 if first else OTHERS_SMOOTHING
        deviation = others - self._others
        self._others += weight * deviation
        self._swing = (1 - weight) * (self._swing + weight * deviation * deviation)
        self._last_reading = now
        self._phantoms_read = self._state.counts(now, self.window_s)[1]

    def _add_phantoms(self, now: float, n: int) -> None:
        since = max(self._last_reading, now - self.window_s)
        span = now - since
        for i in range(n):  # evenly over (since, now], the newest at now
            self._state.add(now - span * i / n, 1, self.window_s, phantom=True)

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
