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
from forwarder.storage.sqlite import store as sqlite_store
from tests.storage.test_sqlite import event


async def test_the_counts_scan_runs_on_the_monitoring_thread_and_counts_what_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conservation count scans every open item (0.6 s at 850,000): it runs on the
    monitoring reader's thread, off the writer and off delivery's reader, and its answer is
    the scan's."""
    seen: list[str] = []
    scan = sql.counts

    def counts(conn: Any, **pause: Any) -> Any:
        seen.append(threading.current_thread().name)
        return scan(conn, **pause)

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


async def test_the_counts_scan_reads_a_large_backlog_in_parts_that_add_up_to_one_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog larger than one part is counted a part of ids at a time, with the monitoring
    thread's pause between two parts (a scan of 850,000 items in one go stalled the event loop
    sharing its core for 0.6 s); the parts add up to the counts of each state."""
    monkeypatch.setattr(sql, "COUNT_PART", 3)
    pauses: list[str] = []
    monkeypatch.setattr(
        sqlite_store, "_pause_scan", lambda: pauses.append(threading.current_thread().name)
    )
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        other = [
            NewEvent("other", f"o{i}", "s", "track", "E", 1.0, b"{}", ("conversions",))
            for i in range(4)
        ]
        mine = [event(f"m{i}") for i in range(7)]
        await storage.append(mine + other, now=1.0, dedup_window_s=60)
        leased = await storage.lease("main", "conversions", limit=3, now=2.0, lease_s=30)
        await storage.finish([leased[0].id], "delivered", now=2.0)
        found = await storage.counts()
    finally:
        await storage.close()
    assert found[("main", "conversions", "pending")] == 4
    assert found[("main", "conversions", "leased")] == 2
    assert found[("main", "conversions", "delivered")] == 1
    assert found[("other", "conversions", "pending")] == 4
    assert len(pauses) == 3  # 11 items in parts of 3: four parts, three pauses
    assert all(name.startswith("sqlite-monitor") for name in pauses)
