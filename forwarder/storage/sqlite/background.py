"""Monitoring reads on a thread of their own, at the lowest CPU priority.

The queue gauges, the conservation check, the alerts and the debugger read counts that are scans
of every open item: with a backlog of 850,000 items the conservation count took 0.6 s of CPU
and the queue depth 90 ms (every 2 s). On the serving process's core those scans took half the
CPU from the event loop while they ran, and ingest's p99 was theirs (stalls of 10-20 ms in a
row for 0.6 s). Here they run on one thread whose nice value is 19 (Linux keeps one per
thread): the event loop and the writer preempt it, and it uses what they leave. SQLite
releases the GIL while it steps, so the scan does not hold the loop either.

The thread has its own read-only connection (WAL: it never waits for the writer and no commit
waits for it), apart from the reader of delivery's own reads (``read_apart``), which a slow scan
at a low priority must not hold up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOWEST = 19
"""The nice value of the thread (Linux's lowest priority)."""


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority, where the OS keeps one per thread."""
    if sys.platform != "linux":  # elsewhere a thread id is no ``setpriority`` target
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)


class BackgroundReader:
    """Read transactions on ``path`` run one at a time on a low-priority thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        """The pool thread's connection, made at its first read."""

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one read transaction; raises ``sqlite3.Error`` as SQLite does."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1, thread_name_prefix="sqlite-monitor", initializer=lower_priority
            )
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA busy_timeout=2000")
        self._conn.execute("BEGIN")
        try:
            return work(self._conn)
        finally:
            self._conn.execute("COMMIT")

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
