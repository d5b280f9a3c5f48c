"""The shared backend: one Redis (or Valkey) that every replica uses; imported only when chosen."""

from __future__ import annotations

from forwarder.storage.redis.store import RedisStorage, plan_redis

__all__ = ["RedisStorage", "plan_redis"]
