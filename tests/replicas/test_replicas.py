"""Three ``forwarder serve`` replicas on one Redis and one sandbox behave as one forwarder.

Load is spread over the replicas, one is killed with SIGKILL mid-run; afterwards every
acknowledged event is in the sandbox exactly once, the sandbox never answered 429 for the
10-second window, and a messageId sent to two replicas was stored once. A private Redis restarted
mid-run makes ingest answer 503 while it is down, and nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from forwarder.storage.redis import RedisStorage
from tests.replicas.cluster import (
    Process,
    conversion_uuid,
    flush_prefix,
    identify,
    missing,
    new_prefix,
    post,
    sandbox_uuids,
    start_redis,
    start_replicas,
    start_sandbox,
    track,
)
from tests.support import ServerProcess

SHARED_REDIS = "redis://127.0.0.1:6379/11"  # the machine's Redis; this suite's DB number
BATCH = 50


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s} s")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Process]:
    process = start_sandbox(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def prefix() -> Iterator[str]:
    name = new_prefix()
    yield name
    flush_prefix(SHARED_REDIS, name)


def stored_copies(url: str, message_id: str) -> int:
    async def count() -> int:
        storage = RedisStorage(url)
        await storage.open()
        try:
            events = await storage.recent_events(limit=100_000)
        finally:
            await storage.close()
        return sum(e.message_id == message_id for e in events)

    return asyncio.run(count())


def test_three_replicas_deliver_every_acknowledged_event_once_despite_a_sigkill(
    tmp_path: Path, sandbox: Process, prefix: str
) -> None:
    url = f"{SHARED_REDIS}?prefix={prefix}&lease_s=3"
    replicas = start_replicas(tmp_path, url, sandbox.url, 3)
    acked: list[str] = []
    try:
        # Definitions are created outside the envelopes (one request, on first sight): let that
        # happen before the load, so the window only carries the deliveries.
        for i, replica in enumerate(replicas):
            assert post(replica.url, [track(f"warm-up-{i}")]) == 200
            acked.append(f"warm-up-{i}")
            wait_until(lambda: not missing(sandbox.url, acked), 20, "the definition is known")
        # The same messageId to two replicas at the same moment.
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda r: post(r.url, [track("twice")]), replicas[:2]))
        assert both == [200, 200]
        acked.append("twice")

        batches = [
            [(identify if i % 5 == 0 else track)(f"m{b}-{i}") for i in range(BATCH)]
            for b in range(90)
        ]
        turns = itertools.count()

        def send(batch: list[dict[str, object]]) -> list[str]:
            start = next(turns)
            for k in range(len(replicas)):  # a producer retries elsewhere when one is down
                if post(replicas[(start + k) % len(replicas)].url, batch) == 200:
                    return [e["messageId"] for e in batch if e["type"] == "track"]  # type: ignore[misc]
            return []

        with ThreadPoolExecutor(6) as pool:
            first = list(pool.map(send, batches[:30]))
            replicas[1].kill()  # SIGKILL mid-run: its leased items must be claimed by others
            rest = list(pool.map(send, batches[30:]))
        acked += [m for ids in first + rest for m in ids]
        assert len(acked) == 4 + 90 * BATCH * 4 // 5  # every batch acknowledged by a replica

        wait_until(lambda: not missing(sandbox.url, acked), 60, "every conversion delivered")
        copies = Counter(sandbox_uuids(sandbox.url))
        assert {conversion_uuid(m): copies[conversion_uuid(m)] for m in acked} == {
            conversion_uuid(m): 1 for m in acked
        }
        limits = httpx.get(f"{sandbox.url}/_sandbox/limits", timeout=5).json()
        assert limits["refusedByPolicy"]["TEN_SECONDLY_ROLLING"] == 0
        assert stored_copies(url, "twice") == 1
    finally:
        for replica in replicas:
            replica.stop()


def test_redis_restart_answers_503_while_down_and_loses_nothing_acknowledged(
    tmp_path: Path, sandbox: Process
) -> None:
    redis_server = start_redis(tmp_path)
    url = f"{redis_server.url}?lease_s=3"
    [replica] = start_replicas(tmp_path, url, sandbox.url, 1)
    acked: list[str] = []
    statuses: list[int] = []
    try:
        for b in range(10):
            batch = [track(f"before{b}-{i}") for i in range(BATCH)]
            assert post(replica.url, batch) == 200
            acked += [e["messageId"] for e in batch]
        redis_server.kill()
        for b in range(5):
            statuses.append(post(replica.url, [track(f"down{b}")], timeout_s=15))
        assert set(statuses) == {503}
        redis_server.start("redis")  # same port, same AOF directory

        def ingest_recovers() -> bool:
            return post(replica.url, [track("probe")]) == 200

        wait_until(ingest_recovers, 20, "ingest answered 200 after the restart")
        acked.append("probe")
        for b in range(10):
            batch = [track(f"after{b}-{i}") for i in range(BATCH)]
            assert post(replica.url, batch) == 200
            acked += [e["messageId"] for e in batch]
        wait_until(lambda: not missing(sandbox.url, acked), 45, "every conversion delivered")
    finally:
        replica.stop()
        redis_server.stop()


def _sanity(replica: ServerProcess) -> None:  # pragma: no cover - debugging aid
    print(replica.log()[-4000:])
