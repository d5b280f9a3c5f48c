"""SQLite's monitoring scans run where ingest and delivery do not wait for them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage, sql


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


async def test_the_counts_scan_runs_on_the_monitoring_thread_and_counts_what_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conservation count scans every open item (0.6 s at 850,000): it runs on the
    monitoring reader's thread, off the writer and off delivery's reader, and its answer is
    the scan's."""
    seen: list[str] = []
    scan = sql.counts

    def counts(conn: Any) -> Any:
        seen.append(threading.current_thread().name)
        return scan(conn)

    monkeypatch.setattr(sql, "counts", counts)
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.append([event("a"), event("b")], now=1.0, dedup_window_s=60)
        found = await storage.counts()
        depth, _ = await storage.queue_depth("main", "conversions", now=2.0)
    finally:
        await storage.close()
    assert found[("main", "conversions", "pending")] == 2
    assert depth == 2
    assert len(seen) == 1
    assert seen[0].startswith("sqlite-monitor")


async def test_a_long_scan_does_not_hold_up_delivery_reads_on_the_reader(tmp_path: Path) -> None:
    """A delivery process reads on its own reader connection (``read_apart``); a monitoring
    scan has a connection and a thread of its own, so delivery's reads go on while it runs."""
    storage = SqliteStorage(tmp_path / "f.db", read_apart=True)
    await storage.open()
    release = threading.Event()
    try:
        await storage.append([event("a")], now=1.0, dedup_window_s=60)

        def slow(conn: Any) -> int:
            release.wait(10)
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

        scanning = asyncio.create_task(storage._scan(slow))
        await asyncio.sleep(0.05)
        assert not scanning.done()
        got = await asyncio.wait_for(storage.get_event(1), 2.0)
        assert got is not None
        assert got.message_id == "a"
        release.set()
        assert await scanning == 1
    finally:
        release.set()
        await storage.close()


async def test_scans_after_close_raise_storage_unavailable_and_reopen_works(
    tmp_path: Path,
) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a")], now=1.0, dedup_window_s=60)
    await storage.close()
    with pytest.raises(StorageUnavailableError):
        await storage.counts()
    await storage.open()
    try:
        assert (await storage.counts())[("main", "conversions", "pending")] == 1
    finally:
        await storage.close()
