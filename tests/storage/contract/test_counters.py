"""Counters: attribution quality per hour and HubSpot requests per minute, shared by replicas."""

from __future__ import annotations

from forwarder.storage.base import (
    QUALITY_RETENTION_H,
    RATE_RETENTION_MIN,
    QualityCount,
    RateCount,
    Storage,
)
from tests.storage.contract.builders import NOW, Factory

HOUR = int(NOW // 3600)
MINUTE = int(NOW // 60)


def count(metric: str, n: int, *, hour: int = HOUR, event_type: str = "Purchase") -> QualityCount:
    return QualityCount(hour, "backend", event_type, metric, n)


async def test_quality_counters_add_up_per_hour_source_type_and_metric(storage: Storage) -> None:
    await storage.add_quality([count("received", 3), count("sent:email", 2)])
    await storage.add_quality([count("received", 4), count("received", 1, hour=HOUR + 1)])
    found = await storage.quality_hours(HOUR, HOUR + 1)
    assert sorted(found, key=lambda c: (c.hour, c.metric)) == [
        count("received", 7),
        count("sent:email", 2),
        count("received", 1, hour=HOUR + 1),
    ]


async def test_quality_counters_are_read_only_for_the_hours_asked(storage: Storage) -> None:
    await storage.add_quality([count("received", 1, hour=HOUR - 5), count("received", 2)])
    assert await storage.quality_hours(HOUR, HOUR) == [count("received", 2)]


async def test_quality_counters_past_retention_are_not_returned(storage: Storage) -> None:
    old = HOUR - QUALITY_RETENTION_H - 1
    await storage.add_quality([count("received", 1, hour=old), count("received", 2)])
    assert await storage.quality_hours(old, HOUR) == [count("received", 2)]


async def test_quality_counters_are_shared_by_two_handles_on_one_store(factory: Factory) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        await one.add_quality([count("received", 1)])
        await two.add_quality([count("received", 1)])
        assert await one.quality_hours(HOUR, HOUR) == [count("received", 2)]
    finally:
        await one.close()
        await two.close()


async def test_request_counts_add_up_per_minute_and_are_shared(factory: Factory) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        await one.add_rates([RateCount(MINUTE, "main", "/r", "ok", 2)])
        await two.add_rates(
            [
                RateCount(MINUTE, "main", "/r", "ok", 3),
                RateCount(MINUTE + 1, "main", "/r", "throttled", 1),
            ]
        )
        found = await one.rate_minutes(MINUTE, MINUTE + 1)
        assert sorted(found, key=lambda c: c.minute) == [
            RateCount(MINUTE, "main", "/r", "ok", 5),
            RateCount(MINUTE + 1, "main", "/r", "throttled", 1),
        ]
    finally:
        await one.close()
        await two.close()


async def test_request_counts_past_retention_are_not_returned(storage: Storage) -> None:
    old = MINUTE - RATE_RETENTION_MIN - 1
    await storage.add_rates(
        [RateCount(old, "main", "/r", "ok", 1), RateCount(MINUTE, "main", "/r", "ok", 1)]
    )
    assert await storage.rate_minutes(old, MINUTE) == [RateCount(MINUTE, "main", "/r", "ok", 1)]
