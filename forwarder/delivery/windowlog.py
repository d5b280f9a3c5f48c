"""The log of one rolling window: our requests and others' (phantoms), with the times they
leave it.

``SlidingWindowLimiter`` (``ratelimit``) decides with it; ``WindowState`` is the seam, and
``InMemoryWindowState`` the log of one process.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Protocol

EXPIRY_EPS_S = 1e-9
"""An entry expires this close to its window's end (float sums never land exactly on it)."""


class WindowState(Protocol):
    """The log of one rolling window; times are on the limiter's monotonic clock."""

    def delay_s(self, now: float, n: int, limit: int, window_s: float, own_limit: int) -> float:
        """Seconds until ``n`` more fit under ``limit`` (everyone's) and ``own_limit`` (ours);
        0 when they fit now; includes any block."""
        ...

    def add(self, at: float, n: int, window_s: float, *, phantom: bool = False) -> None:
        """Log ``n`` acquisitions (ours, or phantoms spent by others) made at ``at``."""
        ...

    def settle(self, sent_at: float, now: float, window_s: float) -> None:
        """Our request logged at ``sent_at`` was answered: it counts from ``now`` instead."""
        ...

    def drop_phantoms(self, now: float, n: int, window_s: float) -> None:
        """Forget the ``n`` oldest phantoms (HubSpot counts fewer than the log holds)."""
        ...

    def counts(self, now: float, window_s: float) -> tuple[int, int]:
        """(ours, phantoms) inside the window ending at ``now``."""
        ...

    def block_until(self, until: float) -> None:
        """Refuse every acquisition before ``until`` (later calls only extend it)."""
        ...


class InMemoryWindowState:
    """A sliding-window log in one process: (time, count, phantom, sent) entries in time order.

    ``time`` is when an entry leaves HubSpot's window at the latest (an answered request of
    ours: its answer); ``sent`` is when it was logged, which our own ``own_limit`` counts from.
    """

    def __init__(self) -> None:
        self._entries: deque[tuple[float, int, bool, float]] = deque()
        self._ours = 0
        self._phantoms = 0
        self._blocked_until = float("-inf")

    def _prune(self, now: float, window_s: float) -> None:
        entries = self._entries
        while entries and entries[0][0] + window_s <= now + EXPIRY_EPS_S:
            _, n, phantom, _ = entries.popleft()
            if phantom:
                self._phantoms -= n
            else:
                self._ours -= n

    def delay_s(self, now: float, n: int, limit: int, window_s: float, own_limit: int) -> float:
        self._prune(now, window_s)
        wait = max(0.0, self._blocked_until - now)
        excess = self._ours + self._phantoms + n - limit
        if excess > 0:  # oldest first: wait until enough of them expire
            entries = [(at, k) for at, k, _, _ in self._entries]
            wait = max(wait, _expiry(entries, excess, window_s) - now)
        if self._ours + n > own_limit:  # counted from when they went, ours may still fit
            sent = sorted((s, k) for _, k, p, s in self._entries if not p and s + window_s > now)
            own_excess = sum(k for _, k in sent) + n - own_limit
            if own_excess > 0:
                wait = max(wait, _expiry(sent, own_excess, window_s) - now)
        return min(wait, max(window_s, self._blocked_until - now))

    def add(self, at: float, n: int, window_s: float, *, phantom: bool = False) -> None:
        self._insert((at, n, phantom, at), window_s)

    def _insert(self, entry: tuple[float, int, bool, float], window_s: float) -> None:
        at, n, phantom, _ = entry
        self._prune(at, window_s)
        if not self._entries or self._entries[-1][0] <= at:
            self._entries.append(entry)
        else:  # a phantom placed in the past: keep the log in time order
            self._entries.insert(bisect.bisect_right(self._entries, entry), entry)
        if phantom:
            self._phantoms += n
        else:
            self._ours += n

    def settle(self, sent_at: float, now: float, window_s: float) -> None:
        for i, (at, n, phantom, sent) in enumerate(self._entries):
            if sent == sent_at and not phantom and at == sent:
                del self._entries[i]
                self._ours -= n
                self._insert((now, n, False, sent), window_s)
                return
            if at > sent_at:
                break
        self._prune(now, window_s)  # already expired (answered after a whole window)

    def drop_phantoms(self, now: float, n: int, window_s: float) -> None:
        self._prune(now, window_s)
        kept: deque[tuple[float, int, bool, float]] = deque()
        for at, count, phantom, sent in self._entries:
            gone = min(n, count) if phantom else 0
            n -= gone
            self._phantoms -= gone
            if count > gone:
                kept.append((at, count - gone, phantom, sent))
        self._entries = kept

    def counts(self, now: float, window_s: float) -> tuple[int, int]:
        self._prune(now, window_s)
        return self._ours, self._phantoms

    def block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)


def _expiry(entries: list[tuple[float, int]], excess: int, window_s: float) -> float:
    """When ``excess`` of ``entries`` ((time, count), oldest first) have left the window."""
    freed = 0
    for at, count in entries:
        freed += count
        if freed >= excess:
            return at + window_s
    return float("inf")  # more asked for than the limit: never (callers cap at the window)
