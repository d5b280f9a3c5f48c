"""Health of one destination (portal x endpoint): a circuit breaker with full-jitter backoff.

Transient failures (5xx, timeouts, 429) say the *destination* is unwell, not the items in the
request: they open the breaker, and every item of the destination waits for it, whatever its
own history. The wait is exponential in the destination's consecutive failures, with full
jitter, and the first success resets it. While open, one request probes (half-open); its
answer closes the breaker or opens it again for longer.

Requests already in flight when the breaker opened fail for the same reason: they neither
lengthen the wait nor count as a new failure (``Ticket`` remembers when a request left).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from forwarder.clock import Clock
from forwarder.delivery.retry import backoff_s

BREAKER_BASE_S = 0.5
"""The backoff ceiling after the first failure."""
BREAKER_CAP_S = 4.0
"""The largest backoff ceiling: a destination that recovers is probed within this long."""
PROBE_POLL_S = 0.05
"""While a probe is out, others look again this often (its answer usually comes sooner)."""


class BreakerState(IntEnum):
    """The breaker's states (the values are the ``forwarder_destination_breaker_state`` gauge)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission to send one request: the breaker's epoch when it left, and whether it probes."""

    epoch: int
    probe: bool


class DestinationHealth:
    """One destination's breaker; a worker asks ``wait_s`` before forming a batch."""

    def __init__(
        self,
        clock: Clock,
        *,
        base_s: float = BREAKER_BASE_S,
        cap_s: float = BREAKER_CAP_S,
        probe_timeout_s: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """Create a closed breaker.

        Args:
            clock: time source (monotonic).
            base_s: backoff ceiling after the first failure.
            cap_s: largest backoff ceiling.
            probe_timeout_s: a probe unanswered this long no longer blocks another one.
            rand: jitter source.
        """
        self.state = BreakerState.CLOSED
        self.failures = 0
        """Consecutive failures of the destination (reset by a success)."""
        self._clock = clock
        self._base_s = base_s
        self._cap_s = cap_s
        self._probe_timeout_s = probe_timeout_s
        self._rand = rand
        self._epoch = 0
        self._open_until = 0.0
        self._probe_sent_at: float | None = None

    def __repr__(self) -> str:
        return f"DestinationHealth({self.state.name}, failures={self.failures})"

    def wait_s(self) -> float:
        """Seconds before a request may go (0 now); does not reserve anything."""
        now = self._clock.monotonic()
        if self.state is BreakerState.CLOSED:
            return 0.0
        if self.state is BreakerState.OPEN:
            return max(0.0, self._open_until - now)
        probe = self._probe_sent_at
        if probe is None or now - probe > self._probe_timeout_s:
            return 0.0
        return PROBE_POLL_S

    def ticket(self) -> Ticket | None:
        """Permission to send now, or None (the caller puts its items back for ``wait_s``)."""
        now = self._clock.monotonic()
        if self.state is BreakerState.CLOSED:
            return Ticket(self._epoch, probe=False)
        if self.state is BreakerState.OPEN and now < self._open_until:
            return None
        if self.wait_s() > 0 and self.state is BreakerState.HALF_OPEN:
            return None
        self.state = BreakerState.HALF_OPEN
        self._probe_sent_at = now
        return Ticket(self._epoch, probe=True)

    def failed(self, ticket: Ticket, floor_s: float = 0.0) -> float:
        """A transient failure of a request sent with ``ticket``: when the destination reopens.

        ``floor_s`` is the least wait HubSpot asked for (``Retry-After``, a 429's interval).
        The result is on the monotonic clock.
        """
        now = self._clock.monotonic()
        stale = ticket.epoch != self._epoch and self.state is not BreakerState.CLOSED
        if stale:  # sent before the breaker opened: the failure is already counted
            self._open_until = max(self._open_until, now + floor_s)
            return self._open_until
        self.failures += 1
        self._epoch += 1
        self.state = BreakerState.OPEN
        self._probe_sent_at = None
        wait = backoff_s(self.failures, base_s=self._base_s, cap_s=self._cap_s, rand=self._rand)
        self._open_until = now + max(floor_s, wait)
        return self._open_until

    def succeeded(self) -> bool:
        """HubSpot answered: close the breaker; True when it was not closed (a recovery)."""
        recovered = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probe_sent_at = None
        return recovered
