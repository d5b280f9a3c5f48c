"""SQLite's monitoring scans run where ingest and delivery do not wait for them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage, sql
from forwarder.storage.sqlite.background import SCAN_SHARE, BackgroundReader
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
    """A backlog larger than one part is counted a part of ids at a time; the parts add up to
    the counts of each state."""
    monkeypatch.setattr(sql, "COUNT_PART", 3)
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


async def test_a_long_read_on_the_monitoring_thread_takes_at_most_its_share_of_a_core(
    tmp_path: Path,
) -> None:
    """A scan there shares the core with the event loop: it is paced to ``SCAN_SHARE`` of the
    time it takes (0.6 s of a count in one go held ingest's p99 at 100-200 ms), and a small read
    is not slowed."""
    path = tmp_path / "big.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE t AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
            " LIMIT 1500000) SELECT x FROM c"
        )
    reader = BackgroundReader(path)

    def timed(sql_text: str) -> Any:
        def work(conn: sqlite3.Connection) -> tuple[float, float]:
            cpu, wall = time.thread_time(), time.monotonic()
            conn.execute(sql_text).fetchall()
            return time.thread_time() - cpu, time.monotonic() - wall

        return work

    try:
        cpu, wall = await reader.run(timed("SELECT count(*) FROM t WHERE x % 7 = 1"))
        _, small_wall = await reader.run(timed("SELECT x FROM t WHERE rowid = 5"))
    finally:
        await reader.close()
    assert cpu > 0.03, "the scan must be long enough to be paced"
    assert wall >= 0.8 * cpu / SCAN_SHARE
    assert small_wall < 0.5  # a handful of steps: never paced
