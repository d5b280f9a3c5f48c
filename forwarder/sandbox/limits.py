"""Rate limits as HubSpot states them (docs/hubspot-contract.md, "Rate limits").

- ``TEN_SECONDLY_ROLLING``: per app (one private-app token, or the OAuth client) per account,
  a *rolling* window: at any instant, requests admitted in the last 10 s <= the limit.
- ``DAILY``: per account, shared by every app; a fixed day that starts when the sandbox starts
  (HubSpot resets at the account's midnight). Absent for the ``oauth`` tier.
- ``SECONDLY``: search, 5/s per account, exempt from the 10-second window, counted daily
  (reference: "not exempted in the spec, so assume yes"), answered without rate headers.
- Custom event sends are exempt from both general limits and capped at ``events_rps``.

A competing integration (``CompetingApp``) either *reserves* a share of every window (the
budget simply is smaller) or really spends it, request by request, in the same rolling window:
at a ``steady`` pace, at ``random`` moments of each window, or in ``bursts`` (its whole share
at once, at a random moment of each window); either way it spends its share of every window.
Its requests are played out up to the moment of each of ours, so ours and theirs collide as
they would in HubSpot.

A request refused by a limit is *not* counted against any limit (chosen: the reference says
nothing; counting refusals would let a client that backs off by the headers lock itself out).
Every attempt, refused or not, is counted for ``peak`` (the highest rate a client tried).
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal


class RollingWindow:
    """At most ``limit`` admitted in any ``window_s`` span; remembers the peak attempt count."""

    __slots__ = ("_admitted", "_attempts", "limit", "peak", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._admitted: deque[float] = deque()
        self._attempts: deque[float] = deque()
        self.peak = 0

    def try_admit(self, now: float, reserved: int = 0) -> bool:
        """Count an attempt; admit it when the window, minus ``reserved`` slots, has room."""
        horizon = now - self.window_s
        attempts = self._attempts
        attempts.append(now)
        while attempts[0] <= horizon:
            attempts.popleft()
        if len(attempts) > self.peak:
            self.peak = len(attempts)
        admitted = self._admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) + reserved >= self.limit:
            return False
        admitted.append(now)
        return True

    def admit_other(self, now: float) -> bool:
        """Another integration's request at ``now``: admitted when the window has room."""
        admitted = self._admitted
        horizon = now - self.window_s
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) >= self.limit:
            return False
        admitted.append(now)
        return True

    def used(self, now: float) -> int:
        """Requests admitted in the window ending now."""
        horizon = now - self.window_s
        admitted = self._admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        return len(admitted)

    def used_since(self, since: float) -> int:
        """Admitted requests newer than ``since`` (for the deprecated ``Secondly`` headers)."""
        count = 0
        for stamp in reversed(self._admitted):
            if stamp <= since:
                break
            count += 1
        return count


class DailyCounter:
    """A per-account counter that resets every ``period_s`` (a day, divided by the time scale)."""

    __slots__ = ("_day_start", "limit", "period_s", "used")

    def __init__(self, limit: int, period_s: float, start: float) -> None:
        self.limit = limit
        self.period_s = period_s
        self._day_start = start
        self.used = 0

    def spent(self, now: float) -> int:
        """Requests counted today (a new day starts at zero)."""
        if now - self._day_start >= self.period_s:
            elapsed_days = int((now - self._day_start) // self.period_s)
            self._day_start += elapsed_days * self.period_s
            self.used = 0
        return self.used

    def try_admit(self, now: float, reserved: int = 0) -> bool:
        """Count one request unless the day's budget (minus ``reserved``) is spent."""
        if self.spent(now) + reserved >= self.limit:
            return False
        self.used += 1
        return True


Pattern = Literal["reserve", "steady", "random", "bursts"]


@dataclass(slots=True)
class CompetingApp:
    """Another integration in the same account spending a share of its budget.

    ``daily_share`` of the daily limit is gone (the daily limit is shared by all apps).
    ``window_share`` of every 10-second window is spent by it: this models other processes
    using the *same* app's token, since each distinct app has its own burst window. With
    ``pattern`` ``reserve`` the share is simply unavailable; the others spend it for real.
    """

    daily_share: float = 0.0
    window_share: float = 0.0
    pattern: Pattern = "reserve"
    rng: random.Random = field(default_factory=random.Random)
    spent: int = 0
    """Requests it made that HubSpot admitted."""
    refused: int = 0
    """Requests it made that HubSpot refused (it does not retry them)."""
    _next_at: dict[str, float] = field(default_factory=dict)
    _pending: dict[str, list[float]] = field(default_factory=dict)

    def restart(self, now: float) -> None:
        """Its spending starts (again) at ``now`` with a new pattern or share."""
        self._next_at.clear()
        self._pending.clear()
        self._next_at[""] = now

    def reserved(self, limit: int) -> int:
        """Slots of every window it holds without spending them (``reserve`` only)."""
        return int(limit * self.window_share) if self.pattern == "reserve" else 0

    def spend_until(self, key: str, window: RollingWindow, now: float) -> None:
        """Play out its requests in ``window`` up to ``now``."""
        per_window = round(window.limit * self.window_share)
        if self.pattern == "reserve" or per_window <= 0:
            return
        start = self._next_at.get(key, self._next_at.get("", now))
        moments = self._pending.pop(key, [])
        while start <= now:  # one period (a window's length) at a time
            moments += self._moments(start, window.window_s, per_window)
            start += window.window_s
        self._next_at[key] = start
        moments.sort()
        due = bisect.bisect_right(moments, now)
        for at in moments[:due]:
            if window.admit_other(at):
                self.spent += 1
            else:
                self.refused += 1
        self._pending[key] = moments[due:]

    def _moments(self, start: float, window_s: float, per_window: int) -> list[float]:
        """When its requests of the period starting at ``start`` go, in order."""
        if self.pattern == "steady":
            return [start + i * window_s / per_window for i in range(per_window)]
        if self.pattern == "random":
            return sorted(start + self.rng.random() * window_s for _ in range(per_window))
        return [start + self.rng.random() * window_s] * per_window  # bursts: all at one moment


POLICY_WINDOW = "TEN_SECONDLY_ROLLING"
POLICY_DAILY = "DAILY"
POLICY_SECONDLY = "SECONDLY"
MESSAGES = {
    POLICY_WINDOW: "You have reached your ten_secondly_rolling limit.",
    POLICY_DAILY: "You have reached your daily limit.",
    POLICY_SECONDLY: "You have reached your secondly limit.",
}

Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request over a limit: the policy it hit and the headers the 429 carries."""

    policy: str
    headers: Headers
    group_name: str | None = None


class Limiter:
    """Every limit of one account; ``general``/``search``/``events`` decide one request each."""

    def __init__(
        self,
        *,
        limit_10s: int,
        daily: int | None,
        search_rps: int,
        events_rps: int,
        time_scale: float,
        start: float,
        portal_id: int,
        window_ms: int = 10_000,
        rng: random.Random | None = None,
    ) -> None:
        self.limit_10s = limit_10s
        self.window_s = window_ms / 1000.0 / time_scale
        self.second_s = 1.0 / time_scale
        self._interval_ms = str(round(window_ms / time_scale))
        self._secondly = max(1, limit_10s // 10)
        self.daily = DailyCounter(daily, 86_400.0 / time_scale, start) if daily else None
        self.search = RollingWindow(search_rps, self.second_s)
        self.events = RollingWindow(events_rps, self.second_s)
        self.windows: dict[str, RollingWindow] = {}
        self.competing = CompetingApp(rng=rng or random.Random())
        self.refused: dict[str, int] = {POLICY_WINDOW: 0, POLICY_DAILY: 0, POLICY_SECONDLY: 0}
        self._portal_id = portal_id

    def general(self, app_key: str, now: float) -> Headers | Refusal:
        """A request under the 10-second and daily limits."""
        window = self.windows.get(app_key)
        if window is None:
            window = self.windows[app_key] = RollingWindow(self.limit_10s, self.window_s)
        self.competing.spend_until(app_key, window, now)
        reserved_window = self.competing.reserved(self.limit_10s)
        daily = self.daily
        if daily is not None:
            reserved_daily = int(daily.limit * self.competing.daily_share)
            if daily.spent(now) + reserved_daily >= daily.limit:
                window.try_admit(now, self.limit_10s)  # counts the attempt for the peak only
                self.refused[POLICY_DAILY] += 1
                return Refusal(POLICY_DAILY, self._headers(window, now, reserved_window))
        if not window.try_admit(now, reserved_window):
            self.refused[POLICY_WINDOW] += 1
            group = f"publicapi:private_app-api-calls-ten-secondly:{app_key}:{self._portal_id}"
            return Refusal(POLICY_WINDOW, self._headers(window, now, reserved_window), group)
        if daily is not None:
            daily.try_admit(now)
        return self._headers(window, now, reserved_window)

    def search_request(self, now: float) -> Refusal | None:
        """A search request: 5/s per account, counted daily, never any rate headers."""
        if not self.search.try_admit(now):
            self.refused[POLICY_SECONDLY] += 1
            return Refusal(POLICY_SECONDLY, [])
        daily = self.daily
        if daily is not None and not daily.try_admit(
            now, int(daily.limit * self.competing.daily_share)
        ):
            self.refused[POLICY_DAILY] += 1
            return Refusal(POLICY_DAILY, [])
        return None

    def event_send(self, now: float) -> Refusal | None:
        """A custom event send: exempt from daily and 10-second limits, capped per second."""
        if self.events.try_admit(now):
            return None
        self.refused[POLICY_SECONDLY] += 1
        return Refusal(POLICY_SECONDLY, [])

    def peak_10s(self) -> int:
        """Most attempts any one app made within one 10-second window."""
        return max((w.peak for w in self.windows.values()), default=0)

    def _headers(self, window: RollingWindow, now: float, reserved: int) -> Headers:
        used = window.used(now) + reserved
        secondly_used = window.used_since(now - self.second_s)
        headers: Headers = [
            ("X-HubSpot-RateLimit-Interval-Milliseconds", self._interval_ms),
            ("X-HubSpot-RateLimit-Max", str(self.limit_10s)),
            ("X-HubSpot-RateLimit-Remaining", str(max(0, self.limit_10s - used))),
            ("X-HubSpot-RateLimit-Secondly", str(self._secondly)),
            ("X-HubSpot-RateLimit-Secondly-Remaining", str(max(0, self._secondly - secondly_used))),
        ]
        daily = self.daily
        if daily is not None:
            spent = daily.used + int(daily.limit * self.competing.daily_share)
            headers.append(("X-HubSpot-RateLimit-Daily", str(daily.limit)))
            headers.append(
                ("X-HubSpot-RateLimit-Daily-Remaining", str(max(0, daily.limit - spent)))
            )
        return headers
