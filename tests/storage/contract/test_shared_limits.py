"""SharedLimits: quotas spent atomically within their cap, shared and durable."""

from __future__ import annotations

from forwarder.storage.base import Storage
from tests.storage.contract.builders import Factory


async def test_a_quota_is_spent_only_within_its_cap(storage: Storage) -> None:
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 2, 3) == (True, 2)
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 2, 3) == (False, 2)
    assert await storage.spend_quota("main", "crm_daily", "2026-12-5", 1, 3) == (True, 3)
    # Another period, quota or portal counts from zero.
    assert await storage.spend_quota("main", "crm_daily", "2026-12-6", 1, 3) == (True, 1)
    assert await storage.spend_quota("main", "events_monthly", "2026-12-0", 3, 3) == (True, 3)
    assert await storage.spend_quota("other", "crm_daily", "2026-12-6", 3, 3) == (True, 3)


async def test_hubspot_s_count_raises_a_quota_but_never_lowers_it(storage: Storage) -> None:
    await storage.spend_quota("main", "crm_daily", "d1", 5, 100)
    assert await storage.raise_quota("main", "crm_daily", "d1", 3) == 5
    assert await storage.raise_quota("main", "crm_daily", "d1", 40) == 40
    assert await storage.spend_quota("main", "crm_daily", "d1", 61, 100) == (False, 40)


async def test_two_handles_on_one_store_share_a_quota_and_it_outlives_them(
    factory: Factory,
) -> None:
    one, two = factory(), factory()
    await one.open()
    await two.open()
    try:
        spent = [await h.spend_quota("main", "q", "p", 1, 5) for h in (one, two) * 4]
        assert [granted for granted, _ in spent] == [True] * 5 + [False] * 3
    finally:
        await one.close()
        await two.close()
    again = factory()  # a restart
    await again.open()
    try:
        assert await again.spend_quota("main", "q", "p", 1, 5) == (False, 5)
    finally:
        await again.close()
