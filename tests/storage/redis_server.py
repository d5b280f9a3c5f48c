"""The machine's redis-server on loopback for storage tests: one key prefix per test, flushed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import redis

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
