"""The machine's redis-server on loopback for storage tests: one key prefix per test, flushed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import redis
import redis.asyncio as aioredis

from forwarder.storage.redis import RedisStorage

REDIS_URL = "redis://127.0.0.1:6379/0"


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("redis-server is not running on 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@asynccontextmanager
async def replica_pair(query: str = "") -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two backends on one Redis and one fresh prefix, as two replicas would be (``query``: more
    URL parameters, e.g. ``&lease_s=0.6``)."""
    with redis_prefix() as prefix:
        pair = (
            RedisStorage(f"{REDIS_URL}?prefix={prefix}{query}"),
            RedisStorage(f"{REDIS_URL}?prefix={prefix}{query}"),
        )
        for storage in pair:
            await storage.open()
        try:
            yield pair
        finally:
            for storage in pair:
                await storage.close()


@asynccontextmanager
async def redis_storage() -> AsyncIterator[tuple[RedisStorage, str]]:
    """One opened backend on a fresh prefix (and the prefix), closed afterwards."""
    with redis_prefix() as prefix:
        storage = RedisStorage(f"{REDIS_URL}?prefix={prefix}")
        await storage.open()
        try:
            yield storage, prefix
        finally:
            await storage.close()


async def commands_of(
    prefix: str, during: Callable[[], Awaitable[object]], *, inside_scripts: bool = False
) -> list[str]:
    """The commands a client sent under ``prefix`` while ``during`` ran (MONITOR; commands run
    inside scripts left out, or only those with ``inside_scripts``), with a marker command after
    it so none is missed."""
    watcher = aioredis.Redis.from_url(REDIS_URL)
    seen: list[tuple[str, bool]] = []
    try:
        async with watcher.monitor() as monitor:

            async def listen() -> None:
                while True:
                    command = await monitor.next_command()
                    if prefix in command["command"]:
                        name = command["command"].split(" ", 1)[0].upper()
                        seen.append((name, command["client_type"] == "lua"))

            listening = asyncio.create_task(listen())
            await asyncio.sleep(0.2)
            await during()
            marker = aioredis.Redis.from_url(REDIS_URL)
            await marker.get(f"{prefix}:marker")
            await marker.aclose()
            for _ in range(50):
                if seen and seen[-1] == ("GET", False):
                    break
                await asyncio.sleep(0.05)
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
    finally:
        await watcher.aclose()
    return [name for name, scripted in seen[:-1] if scripted == inside_scripts]
