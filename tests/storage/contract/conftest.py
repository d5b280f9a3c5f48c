"""Every module of the contract suite runs against every backend: a real SQLite file and a real
redis-server (one key prefix per test, flushed afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from forwarder.storage.base import Storage
from tests.storage.contract.builders import Factory, redis_factory, sqlite_factory
from tests.storage.redis_server import redis_prefix


@pytest.fixture(params=["sqlite", "redis"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "sqlite":
        yield sqlite_factory(tmp_path)
        return
    with redis_prefix() as prefix:  # one key prefix per test, flushed afterwards
        yield redis_factory(prefix)


@pytest.fixture
async def storage(factory: Factory) -> AsyncIterator[Storage]:
    backend = factory()
    await backend.open()
    yield backend
    await backend.close()
