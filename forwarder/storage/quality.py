"""Moving the process's tallies (attribution quality, HubSpot requests per minute) into the
store, where replicas' counts add up."""

from __future__ import annotations

from forwarder.storage.base import QualityCount, RateCount
from forwarder.storage.roles import Counters
from forwarder.tallies import QualityTally, RateTally

FLUSH_EVERY_S = 5.0


async def flush_quality(storage: Counters, tally: QualityTally) -> int:
    """Add what was counted since the last flush; on failure the counts stay for the next.

    Raises:
        StorageUnavailableError: the store did not take them (nothing is lost).
    """
    counts = tally.drain()
    if not counts:
        return 0
    rows = [QualityCount(h, s, t, m, n) for (h, s, t, m), n in counts.items()]
    try:
        await storage.add_quality(rows)
    except BaseException:
        tally.restore(counts)
        raise
    return len(rows)


async def flush_rates(storage: Counters, tally: RateTally) -> int:
    """Add the HubSpot requests counted since the last flush to the shared history; on failure
    the counts stay for the next.

    Raises:
        StorageUnavailableError: the store did not take them (nothing is lost).
    """
    counts = tally.drain()
    if not counts:
        return 0
    rows = [RateCount(m, p, r, o, n) for (m, p, r, o), n in counts.items()]
    try:
        await storage.add_rates(rows)
    except BaseException:
        tally.restore(counts)
        raise
    return len(rows)
