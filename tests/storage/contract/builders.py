"""What the contract modules build their stores and records with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from forwarder.storage.base import NewEvent, Storage
from forwarder.storage.sqlite import SqliteStorage
from tests.storage.redis_server import REDIS_URL

NOW = 1_800_000_000.0
WINDOW = 3600.0

Factory = Callable[[], Storage]


def sqlite_factory(tmp_path: Path) -> Factory:
    return lambda: SqliteStorage(tmp_path / "contract.db")


def redis_factory(prefix: str) -> Factory:
    from forwarder.storage.redis import RedisStorage

    return lambda: RedisStorage(f"{REDIS_URL}?prefix={prefix}")


def event(
    message_id: str,
    *,
    portal: str = "main",
    destinations: tuple[str, ...] = ("conversions",),
    received_at: float = NOW,
) -> NewEvent:
    return NewEvent(
        portal=portal,
        message_id=message_id,
        source="backend",
        type="track",
        name="Order Completed",
        received_at=received_at,
        payload=b'{"messageId":"%s"}' % message_id.encode(),
        destinations=destinations,
    )
