"""What only the SQLite backend does: WAL, fsync settings, failing storage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage


def event(message_id: str) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=message_id,
        source="s",
        type="track",
        name="E",
        received_at=1.0,
        payload=b"{}",
        destinations=("conversions",),
    )


async def test_database_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_locked_database_fails_with_storage_unavailable(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    blocker = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StorageUnavailableError, match="locked"):
        await storage.append([event("a")], now=1.0, dedup_window_s=10)
    blocker.execute("ROLLBACK")
    blocker.close()
    await storage.append([event("a")], now=1.0, dedup_window_s=10)
    assert len(await storage.recent_events()) == 1
    await storage.close()


async def test_unopenable_path_fails_with_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    storage = SqliteStorage(tmp_path / "dir.db")
    with pytest.raises(StorageUnavailableError):
        await storage.open()


async def test_closed_storage_refuses_writes(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.close()
    with pytest.raises(StorageUnavailableError):
        await storage.append([event("a")], now=1.0, dedup_window_s=10)
