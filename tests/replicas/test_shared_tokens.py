"""Replicas on one Redis share one OAuth access token per portal: one refresh for all of them,
a refused token replaced once, and a replica that starts later uses the current token.

Each "replica" here is what a ``forwarder serve`` process builds for a portal: a Redis storage
(its coordination: the refresh lock and the shared tokens) and an ``OAuthTokens`` provider; the
token endpoint is a real sandbox process over HTTP, which counts the refreshes it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from forwarder.config import Secret
from forwarder.hubspot.auth import OAuthTokens
from forwarder.sandbox.config import SandboxConfig
from forwarder.storage.redis import RedisStorage
from tests.storage.redis_server import redis_prefix
from tests.support import SandboxProcess, sandbox_process

REDIS = "redis://127.0.0.1:6379/0"
DEFAULTS = SandboxConfig()


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    with sandbox_process() as process:
        yield process


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    with redis_prefix() as name:
        yield name


class Replica:
    def __init__(self, prefix: str, sandbox_url: str) -> None:
        self.storage = RedisStorage(f"{REDIS}?prefix={prefix}")
        self._sandbox_url = sandbox_url
        self.tokens: OAuthTokens | None = None

    async def start(self) -> Replica:
        await self.storage.open()
        shared = self.storage.coordination()
        assert shared is not None
        self.tokens = OAuthTokens(
            DEFAULTS.client_id,
            Secret(DEFAULTS.client_secret),
            Secret(DEFAULTS.refresh_token),
            base_url=self._sandbox_url,
            lock_factory=lambda: shared.lock("oauth-refresh:main", ttl_s=30.0),
            store=shared.tokens("main"),
        )
        return self

    async def stop(self) -> None:
        if self.tokens is not None:
            await self.tokens.aclose()
        await self.storage.close()


def refreshes(sandbox: SandboxProcess) -> int:
    return sandbox.requests("oauth.token").get(200, 0)


async def test_replicas_refresh_once_and_share_the_token(
    sandbox: SandboxProcess, prefix: str
) -> None:
    replicas = [await Replica(prefix, sandbox.url).start() for _ in range(3)]
    try:
        got = await asyncio.gather(*(r.tokens.token() for r in replicas for _ in range(5)))  # type: ignore[union-attr]
        assert len(set(got)) == 1
        assert refreshes(sandbox) == 1
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_refused_token_is_replaced_once_for_every_replica(
    sandbox: SandboxProcess, prefix: str
) -> None:
    a, b = Replica(prefix, sandbox.url), Replica(prefix, sandbox.url)
    await a.start()
    await b.start()
    try:
        assert a.tokens is not None
        assert b.tokens is not None
        first = await a.tokens.token()
        assert await b.tokens.token() == first
        # HubSpot answers 401 to both replicas with the same token: one refresh, not two.
        assert await a.tokens.invalidate(first)
        second = await a.tokens.token()
        assert second != first
        assert await b.tokens.invalidate(first)
        assert await b.tokens.token() == second
        assert refreshes(sandbox) == 2
    finally:
        await a.stop()
        await b.stop()


async def test_a_replica_started_later_uses_the_current_token(
    sandbox: SandboxProcess, prefix: str
) -> None:
    first = await Replica(prefix, sandbox.url).start()
    try:
        assert first.tokens is not None
        token = await first.tokens.token()
    finally:
        await first.stop()
    later = await Replica(prefix, sandbox.url).start()  # a restart: nothing in memory
    try:
        assert later.tokens is not None
        assert await later.tokens.token() == token
        assert refreshes(sandbox) == 1
    finally:
        await later.stop()
