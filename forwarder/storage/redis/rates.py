"""The per-minute HubSpot request counts in Redis: one hash per minute, expiring on its own.

A field is ``portal SEP route SEP outcome``; HINCRBY makes replicas' additions sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forwarder.storage.base import RATE_RETENTION_MIN, RateCount
from forwarder.storage.redis.keys import SEP, Keys


async def add(client: Any, keys: Keys, counts: Sequence[RateCount]) -> None:
    """Add to the counts in one MULTI; each minute's hash expires after retention."""
    pipe = client.pipeline(transaction=True)
    minutes = set()
    for c in counts:
        pipe.hincrby(keys.name("rates", c.minute), SEP.join((c.portal, c.route, c.outcome)), c.n)
        minutes.add(c.minute)
    for minute in minutes:
        pipe.expire(keys.name("rates", minute), (RATE_RETENTION_MIN + 1) * 60)
    await pipe.execute()


async def between(client: Any, keys: Keys, first: int, last: int) -> list[RateCount]:
    """Every count of the minutes ``first`` to ``last`` (one round trip)."""
    wanted = list(range(max(first, last - RATE_RETENTION_MIN), last + 1))
    pipe = client.pipeline(transaction=False)
    for minute in wanted:
        pipe.hgetall(keys.name("rates", minute))
    out = []
    for minute, fields in zip(wanted, await pipe.execute(), strict=True):
        for field, n in fields.items():
            portal, route, outcome = field.decode().split(SEP)
            out.append(RateCount(minute, portal, route, outcome, int(n)))
    return out
