"""Monitoring reads on a thread and a connection of their own.

The queue gauges, the conservation check, the alerts and the debugger read counts that are scans
of every open item: with a backlog of 850,000 items the conservation count took 0.6 s and the
queue depth 90 ms. They shared the reader connection (and its lock) with a delivery process's
own reads (``read_apart``), so a delivery batch could wait behind a scan. Here they have a
read-only connection of their own (WAL: it never waits for the writer and no commit waits for
it) on one thread.

Tried and not kept: the thread at the lowest CPU priority (nice 19; Linux keeps one per
thread), so that the event loop would preempt it. A thread that holds the GIL when the kernel
preempts it keeps it; at nice 19 beside any busy thread on the core (the SQLite writer, another
process) it waits tens of ms for its next slice, and the event loop waits for the GIL with it.
The scans' CPU is bounded by their pacing instead (``CheckPace``, ``BUSY_SHARE``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``, usable from any one thread at a time (WAL: it never
    waits for the writer)."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute("PRAGMA busy_timeout=2000")
    return conn


def in_snapshot(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` in one read transaction on ``conn``: it reads one snapshot."""
    conn.execute("BEGIN")
    try:
        return work(conn)
    finally:
        conn.execute("COMMIT")


class BackgroundReader:
    """Read transactions on ``path`` run one at a time on a thread of their own."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        """The pool thread's connection, made at its first read."""

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one read transaction; raises ``sqlite3.Error`` as SQLite does."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-monitor")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = connect_read_only(self._path)
        return in_snapshot(self._conn, work)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection on its thread, then the thread (a read under way finishes)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._close_connection)
            pool.shutdown(wait=False)
