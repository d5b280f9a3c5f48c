"""The hourly attribution-quality counters in Redis: one hash per hour, expiring on its own.

A field is ``source SEP event_type SEP metric``; HINCRBY makes replicas' additions sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forwarder.storage.base import QUALITY_RETENTION_H, TOTALLED_METRICS, QualityCount
from forwarder.storage.redis.keys import SEP, Keys


async def add(client: Any, keys: Keys, counts: Sequence[QualityCount]) -> None:
    """Add to the counters and the all-time totals in one MULTI (a failed flush adds nothing,
    so the tally it goes back to is not counted twice); each hour's hash expires after
    retention, the totals never."""
    pipe = client.pipeline(transaction=True)
    hours = set()
    for c in counts:
        field = SEP.join((c.source, c.event_type, c.metric))
        pipe.hincrby(keys.name("quality", c.hour), field, c.n)
        hours.add(c.hour)
        if c.metric in TOTALLED_METRICS:
            pipe.hincrby(keys.name("ingest_totals"), SEP.join((c.source, c.metric)), c.n)
    for hour in hours:
        pipe.expire(keys.name("quality", hour), (QUALITY_RETENTION_H + 1) * 3600)
    await pipe.execute()


async def between(client: Any, keys: Keys, first: int, last: int) -> list[QualityCount]:
    """Every counter of the hours ``first`` to ``last`` (at most retention's worth of hashes)."""
    first = max(first, last - QUALITY_RETENTION_H)
    pipe = client.pipeline(transaction=False)
    wanted = list(range(first, last + 1))
    for h in wanted:
        pipe.hgetall(keys.name("quality", h))
    out = []
    for h, fields in zip(wanted, await pipe.execute(), strict=True):
        for field, n in fields.items():
            source, event_type, metric = field.decode().split(SEP)
            out.append(QualityCount(h, source, event_type, metric, int(n)))
    return out


async def totals(client: Any, keys: Keys) -> dict[tuple[str, str], int]:
    """The all-time ingest totals per (source, metric)."""
    fields = await client.hgetall(keys.name("ingest_totals"))
    out: dict[tuple[str, str], int] = {}
    for field, n in fields.items():
        source, metric = field.decode().split(SEP)
        out[(source, metric)] = int(n)
    return out
