"""SQLite's monitoring scans run where ingest and delivery do not wait for them."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage, sql

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread")


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


@linux_only
async def test_the_counts_scan_runs_on_a_thread_at_the_lowest_cpu_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conservation count scans every open item (0.6 s of CPU at 850,000): it runs at nice
    19, so the event loop and the writer thread preempt it, and its answer is the scan's."""
    seen: list[tuple[str, int]] = []
    scan = sql.counts

    def counts(conn: Any) -> Any:
        me = threading.current_thread()
        seen.append((me.name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
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
    name, nice = seen[0]
    assert name.startswith("sqlite-monitor")
    assert nice == 19
    # the loop's own thread keeps its priority
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != 19


async def test_a_long_scan_does_not_hold_up_delivery_reads_on_the_reader(tmp_path: Path) -> None:
    """A delivery process reads on its own reader connection (``read_apart``); a monitoring
    scan, slowed by its low priority, has a connection and thread of its own, so delivery's
    reads go on while it runs."""
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
