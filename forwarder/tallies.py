"""Attribution-quality tallies: hourly counts per source, event type and metric, in memory
until the flusher adds them to the store (where replicas' counts sum).

Metric names (``forwarder.debugger.quality`` reads them):

    received, accepted, duplicate, rejected, rejected:<why>
    sent, sent:<objectId|email|utk>, resolved, campaign, latency_le:<ms>
    held, released, expired, dead, dead:<why>, dropped, dropped:<why>

Counting is a dict increment on the hot path; nothing here does I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

LATENCY_BOUNDS_MS: tuple[int, ...] = (
    250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 86_400_000
)  # fmt: skip
"""Upper bounds of the accepted -> HubSpot latency buckets (the last catches the rest)."""
_LAST = len(LATENCY_BOUNDS_MS) - 1
_REASON_MAX = 100
_NUMBERS = re.compile(r"\d+")

Key = tuple[int, str, str, str]
"""(hour, source, event type, metric)."""


def event_type(type_: str, name: str | None) -> str:
    """What quality is reported per: a track event's name, else the call type (``page``)."""
    return name if type_ == "track" and name else type_


def reason_label(reason: str) -> str:
    """A reason as a bounded label: numbers folded (sizes, ids) so labels stay few."""
    return _NUMBERS.sub("N", reason.strip())[:_REASON_MAX]


def latency_bucket(latency_ms: float) -> int:
    """The upper bound of the bucket ``latency_ms`` falls in."""
    return LATENCY_BOUNDS_MS[min(bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms), _LAST)]


class QualityTally:
    """Counts since the last ``drain``; one per process, shared by ingest and delivery."""

    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}

    def add(self, at: float, source: str, event_type: str, metric: str, n: int = 1) -> None:
        """Count ``n`` of ``metric`` at Unix time ``at``."""
        key = (int(at // 3600), source, event_type, metric)
        self._counts[key] = self._counts.get(key, 0) + n

    def add_many(self, at: float, source: str, event_type: str, metrics: Iterable[str]) -> None:
        """Count one of each of ``metrics``."""
        for metric in metrics:
            self.add(at, source, event_type, metric)

    def drain(self) -> dict[Key, int]:
        """Everything counted since the last drain (the tally starts again from zero)."""
        counts, self._counts = self._counts, {}
        return counts

    def restore(self, counts: dict[Key, int]) -> None:
        """Put drained counts back (their flush failed; the next one carries them)."""
        for key, n in counts.items():
            self._counts[key] = self._counts.get(key, 0) + n


RateKey = tuple[int, str, str, str]
"""(minute, portal, route, outcome)."""


def outcome_of(status: int) -> str:
    """A HubSpot answer as the rate history counts it: ``ok``, ``throttled`` (429) or ``error``
    (any other refusal, or no answer)."""
    if status == 429:
        return "throttled"
    return "ok" if 200 <= status < 300 else "error"


class RateTally:
    """HubSpot requests per minute, portal, route and outcome since the last ``drain``; the
    flusher adds them to the store, where every replica's requests make one history."""

    def __init__(self) -> None:
        self._counts: dict[RateKey, int] = {}

    def add(self, at: float, portal: str, route: str, status: int) -> None:
        """Count one request answered with ``status`` at Unix time ``at``."""
        key = (int(at // 60), portal, route, outcome_of(status))
        self._counts[key] = self._counts.get(key, 0) + 1

    def drain(self) -> dict[RateKey, int]:
        """Everything counted since the last drain (the tally starts again from zero)."""
        counts, self._counts = self._counts, {}
        return counts

    def restore(self, counts: dict[RateKey, int]) -> None:
        """Put drained counts back (their flush failed; the next one carries them)."""
        for key, n in counts.items():
            self._counts[key] = self._counts.get(key, 0) + n
