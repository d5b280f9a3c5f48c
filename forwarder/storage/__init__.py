"""Durable storage: the contract (``base``) and its backends, chosen by ``storage.url``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from forwarder.config import StorageSettings
from forwarder.config import sqlite_path as sqlite_path  # its home is config (the dev key needs it)
from forwarder.errors import ConfigError, StorageUnavailableError
from forwarder.extras import require
from forwarder.storage.base import Storage


def create_storage(
    settings: StorageSettings,
    *,
    dedup_window_s: float = 86400.0,
    shared: bool = False,
    release_leases: bool = True,
    read_apart: bool = False,
) -> Storage:
    """Build the backend named by the URL; Redis is imported only when chosen.

    Args:
        shared: delivery runs in other processes on the same store (SQLite re-reads what
            they change; Redis is shared anyway).
        release_leases: void a crashed run's leases at open (SQLite; off in a delivery process).
        read_apart: reads off the write lock, on a read-only connection (SQLite; on in a
            delivery process).
    """
    url = settings.url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from forwarder.storage.sqlite import SqliteStorage

        return SqliteStorage(
            sqlite_path(url),
            synchronous=settings.synchronous,
            commit_interval_ms=settings.commit_interval_ms,
            dedup_window_s=dedup_window_s,
            shared=shared,
            release_leases=release_leases,
            read_apart=read_apart,
        )
    if scheme in ("redis", "rediss"):
        require("redis", extra="redis", key="storage.url", why="Redis storage")
        from forwarder.storage.redis import RedisStorage  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return RedisStorage(url)  # type: ignore[no-any-return,unused-ignore]
    raise ConfigError("storage.url", f"unsupported scheme {scheme!r}: use sqlite:/// or redis://")


class SchemaPlan(NamedTuple):
    """Where a store's schema stands and what opening it with this release would change."""

    store: str
    """The store, for people (no password)."""
    found: int | None
    """Its schema version now (0: written by 0.1.0, before versions); None: no store yet."""
    latest: int
    """The version this release writes."""
    steps: tuple[tuple[int, str], ...]
    """The migrations (version, summary) still to apply, or just applied, oldest first."""


async def plan_migrations(settings: StorageSettings, *, apply: bool = False) -> SchemaPlan:
    """What opening the store would migrate; with ``apply``, migrate it now.

    Raises:
        StoreVersionError: the store was written by a newer release.
        StorageUnavailableError: the store cannot be read.
    """
    scheme = urlparse(settings.url).scheme
    if scheme == "sqlite":
        return _plan_sqlite(sqlite_path(settings.url), apply=apply)
    if scheme in ("redis", "rediss"):
        require("redis", extra="redis", key="storage.url", why="Redis storage")
        from forwarder.storage.redis import plan_redis  # type: ignore[import-not-found,import-untyped,unused-ignore]

        plan: SchemaPlan = await plan_redis(settings.url, apply=apply)
        return plan
    raise ConfigError("storage.url", f"unsupported scheme {scheme!r}: use sqlite:/// or redis://")


def _plan_sqlite(path: Path, *, apply: bool) -> SchemaPlan:
    from forwarder.storage.sqlite import migrations as migrations

    store = str(path)
    if not path.exists() and not apply:
        steps = tuple((m.version, m.summary) for m in migrations.MIGRATIONS)
        return SchemaPlan(store, None, migrations.LATEST, steps)
    try:
        if apply:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
        else:  # read-only: a check never creates or changes the file
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            found = migrations.version_of(conn)
            step = migrations.migrate if apply else migrations.pending
            done = step(conn, store)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageUnavailableError(f"cannot read {store}: {exc}", retry_after_s=1.0) from exc
    return SchemaPlan(store, found, migrations.LATEST, tuple((m.version, m.summary) for m in done))
