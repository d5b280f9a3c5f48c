"""What replicas on one Redis share besides storage: rate windows, locks, and the durability check.

Window times come from Redis's own clock (``TIME`` inside the scripts), so replicas on machines
whose clocks disagree still share one window.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from forwarder.errors import ConfigError, StorageUnavailableError
from forwarder.storage.base import SharedWindow
from forwarder.storage.redis import scripts as lua
from forwarder.storage.redis.keys import Keys

_LOCK_POLL_S = 0.05


class RedisWindow:
    """One envelope's rolling-window log, shared through Lua scripts (``SharedWindow``)."""

    def __init__(self, shared: RedisCoordination, portal: str, envelope: str) -> None:
        self._shared = shared
        self._where = (portal, envelope)

    async def _run(self, name: str, *args: object) -> Any:
        try:
            script = self._shared.script(name)
            return await script(args=[self._shared.keys.prefix, *self._where, *args])
        except RedisError as exc:
            raise StorageUnavailableError(f"shared rate window failed: {exc}") from exc

    async def try_acquire(
        self, n: int, limit: int, window_s: float, *, interval_s: float = 0.0, burst: int = 1
    ) -> float:
        args = (n, limit, repr(window_s), repr(interval_s), max(1, burst))
        return float(await self._run("WINDOW_ACQUIRE", *args))

    async def observe(self, spent: int, limit: int, window_s: float) -> None:
        await self._run("WINDOW_OBSERVE", spent, limit, repr(window_s))

    async def block_for(self, seconds: float) -> None:
        await self._run("WINDOW_BLOCK", repr(seconds))

    async def counts(self, window_s: float) -> tuple[int, int]:
        ours, phantoms = await self._run("WINDOW_COUNTS", repr(window_s))
        return int(ours), int(phantoms)


class RedisLock:
    """A lock across replicas (``SET NX PX`` with an owner token), single-flight in-process too.

    If its holder dies, the lock expires after ``ttl_s``; a holder that outlives ``ttl_s`` loses
    it, so ``ttl_s`` must exceed the work done under it (a token refresh: one HTTP request).
    """

    def __init__(self, shared: RedisCoordination, name: str, ttl_s: float) -> None:
        self._shared = shared
        self._key = shared.keys.name("lock", name)
        self._name = name
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._local = asyncio.Lock()
        self._token = ""

    async def __aenter__(self) -> object:
        await self._local.acquire()
        token = uuid.uuid4().hex
        try:
            client = self._shared.client()
            # Another replica holds it: nothing local to wait on, so poll Redis.
            while not await client.set(self._key, token, nx=True, px=self._ttl_ms):  # noqa: ASYNC110
                await asyncio.sleep(_LOCK_POLL_S)
        except BaseException as exc:
            self._local.release()
            if isinstance(exc, RedisError):
                raise StorageUnavailableError(f"shared lock failed: {exc}") from exc
            raise
        self._token = token
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with contextlib.suppress(RedisError):  # it expires on its own
                unlock = self._shared.script("UNLOCK")
                await unlock(args=[self._shared.keys.prefix, self._name, self._token])
        finally:
            self._local.release()


class RedisTokens:
    """One portal's current OAuth tokens in a hash (``SharedTokens``). The key expires a minute
    after the refresh is due, so tokens of a portal that left the config do not stay."""

    def __init__(self, shared: RedisCoordination, portal: str) -> None:
        self._shared = shared
        self._portal = portal
        self._key = shared.keys.name("oauth", portal)

    async def load(self) -> tuple[str, str, float] | None:
        try:
            found = await self._shared.client().hmget(self._key, ["access", "refresh", "due"])
        except RedisError as exc:
            raise StorageUnavailableError(f"shared tokens unreadable: {exc}") from exc
        access, refresh, due = (v.decode() if isinstance(v, bytes) else v for v in found)
        if access is None or refresh is None or due is None:
            return None
        return access, refresh, float(due)

    async def save(self, record: tuple[str, str, float]) -> None:
        access, refresh, due = record
        client = self._shared.client()
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self._key, mapping={"access": access, "refresh": refresh, "due": due})
                pipe.expireat(self._key, int(due) + 60)
                await pipe.execute()
        except RedisError as exc:
            raise StorageUnavailableError(f"shared tokens not stored: {exc}") from exc

    async def drop(self, access_token: str) -> None:
        try:
            script = self._shared.script("FORGET_OAUTH")
            await script(args=[self._shared.keys.prefix, self._portal, access_token])
        except RedisError as exc:
            raise StorageUnavailableError(f"shared tokens not dropped: {exc}") from exc


class RedisCoordination:
    """Shared windows and locks of one prefix (``Coordination``); usable before ``open``,
    working once the storage is open."""

    def __init__(self, client: Callable[[], aioredis.Redis], keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._scripts: dict[str, Any] = {}
        self._scripts_of: aioredis.Redis | None = None

    def script(self, name: str) -> Any:
        """A registered script of ``redis.scripts`` (re-registered for a new connection)."""
        client = self.client()
        if client is not self._scripts_of:
            self._scripts, self._scripts_of = {}, client
        if name not in self._scripts:
            self._scripts[name] = client.register_script(lua.source(name))
        return self._scripts[name]

    def window(self, portal: str, envelope: str) -> SharedWindow:
        return RedisWindow(self, portal, envelope)

    def lock(self, name: str, *, ttl_s: float) -> RedisLock:
        return RedisLock(self, name, ttl_s)

    def tokens(self, portal: str) -> RedisTokens:
        return RedisTokens(self, portal)


MIN_REDIS = (6, 2)
"""The oldest Redis the scripts run on: ``FINISH`` trims a stream with ``XTRIM MINID``."""


def check_version(version: str) -> None:
    """Refuse a Redis older than ``MIN_REDIS`` at open, in one line, rather than fail every
    finish later.

    Raises:
        ConfigError: ``version`` (``INFO server``'s ``redis_version``) is too old.
    """
    found = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if found and found < MIN_REDIS:  # a server that does not say: its first finish will
        need = ".".join(map(str, MIN_REDIS))
        raise ConfigError("storage.url", f"Redis {version} is too old: {need} or later is needed")


async def check_persistence(client: aioredis.Redis, log: Any) -> None:
    """Warn loudly when Redis would lose acknowledged events on a restart (no AOF)."""
    try:
        settings: dict[Any, Any] = await client.config_get("append*")
    except RedisError as exc:
        if "unknown command" in str(exc).lower() or "NOPERM" in str(exc):  # managed Redis
            log.warning("redis_persistence_unknown", reason=str(exc))
            return
        raise
    appendonly = _text(settings.get(b"appendonly", settings.get("appendonly")))
    fsync = _text(settings.get(b"appendfsync", settings.get("appendfsync")))
    if appendonly != "yes":
        log.error(
            "redis_aof_disabled",
            appendonly=appendonly,
            action="set appendonly yes: without it a Redis restart loses acknowledged events",
        )
    else:
        log.info("redis_persistence_checked", appendonly=appendonly, appendfsync=fsync)


COMPACT_VALUE_BYTES = 4096
"""The ``hash-max-listpack-value`` docs/redis.md recommends. An event is a hash whose payload is
one field: above the server's limit (64 bytes by default, shorter than any event) Redis keeps
the hash as a table of separately allocated entries: ``MEMORY USAGE`` 1,371 bytes for an event
of ``benchmarks/ingest.py`` whose compact form (a listpack) takes 584, and Redis's memory an
appended event 1,703 against 1,097-1,110 bytes (``benchmarks/RESULTS.md``)."""


async def check_encoding(client: aioredis.Redis, log: Any) -> None:
    """Say at open when the server stores events in their large form, and what to set."""
    try:
        # ``hash-max-ziplist-value`` is the name Redis 6.2 knows and 7 keeps as an alias
        found: dict[Any, Any] = await client.config_get("hash-max-ziplist-value")
    except RedisError:
        return  # a managed Redis that refuses CONFIG: check_persistence has said so
    values = [_text(v) for v in found.values()]
    limit = int(values[0]) if values and values[0].isdigit() else None
    if limit is not None and limit < COMPACT_VALUE_BYTES:
        log.info(
            "redis_events_not_compact",
            hash_max_listpack_value=limit,
            action=f"set hash-max-listpack-value {COMPACT_VALUE_BYTES}: an event then takes"
            " about a third less of Redis's memory (docs/redis.md)",
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
