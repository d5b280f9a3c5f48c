"""Durable storage: the contract (``base``) and its backends, chosen by ``storage.url``."""

from __future__ import annotations

from urllib.parse import urlparse

from forwarder.config import StorageSettings
from forwarder.errors import ConfigError
from forwarder.extras import require
from forwarder.storage.base import Storage


def create_storage(settings: StorageSettings, *, dedup_window_s: float = 86400.0) -> Storage:
    """Build the backend named by the URL; Redis is imported only when chosen."""
    url = settings.url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from forwarder.storage.sqlite import SqliteStorage

        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        return SqliteStorage(
            path or "forwarder.db",
            synchronous=settings.synchronous,
            commit_interval_ms=settings.commit_interval_ms,
            dedup_window_s=dedup_window_s,
        )
    if scheme in ("redis", "rediss"):
        require("redis", extra="redis", key="storage.url", why="Redis storage")
        from forwarder.storage.redis import RedisStorage  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return RedisStorage(url)  # type: ignore[no-any-return,unused-ignore]
    raise ConfigError("storage.url", f"unsupported scheme {scheme!r}: use sqlite:/// or redis://")
