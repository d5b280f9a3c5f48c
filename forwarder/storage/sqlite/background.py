"""Monitoring reads on a thread and a connection of their own.

The queue gauges, the conservation check, the alerts and the debugger read counts that are scans
of every open item: with a backlog of 850,000 items the conservation count took 0.6 s and the
queue depth 90 ms. They shared the reader connection (and its lock) with a delivery process's
own reads (``read_apart``), so a delivery batch could wait behind a scan. Here they have a
read-only connection of their own (WAL: it never waits for the writer and no commit waits for
it) on one thread.

Off the writer is not off the core: on a one-core server (or one core's worth of a busy one) a
scan that runs 150 ms takes about half the core from the event loop for 300 ms, and ingest's
latency grows by that much (at 1.3 M waiting items the queue depth read 150 ms, the conservation
count 600 ms: p99 100-200 ms at half the peak rate in ``benchmarks/ingest.py``). So a read here
is **paced** (``Pace``): SQLite calls back every ``PACE_STEPS`` steps of its virtual machine
(about a millisecond's work) and the thread sleeps until its CPU time since the read began is
at most ``SCAN_SHARE`` of the time since. A scan takes ten times as long, in bursts of about a
millisecond; a small read ends before the first call and is not slowed.

Tried and not kept: the thread at the lowest CPU priority (nice 19; Linux keeps one per
thread), so that the event loop would preempt it. A thread that holds the GIL when the kernel
preempts it keeps it; at nice 19 beside any busy thread on the core (the SQLite writer, another
process) it waits tens of ms for its next slice, and the event loop waits for the GIL with it.
The pacing sleeps without the GIL, holding nothing a writer waits for (a read snapshot
only: the WAL cannot start over until the read ends, so it grows by what is written
meanwhile).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SCAN_SHARE = 0.1
"""At most this share of a core goes to one read on the monitoring thread (``Pace``)."""
PACE_STEPS = 50_000
"""SQLite virtual-machine steps between two pacing checks: 0.4-1 ms of a scan's work."""


class Pace:
    """A progress handler that keeps its thread's CPU since it was made at ``share`` of the
    time since: called between SQLite's steps, it sleeps off what the read ran ahead."""

    def __init__(self, share: float) -> None:
        self._share = share
        self._cpu = time.thread_time()
        self._wall = time.monotonic()

    def __call__(self) -> int:
        ahead = (time.thread_time() - self._cpu) / self._share - (time.monotonic() - self._wall)
        if ahead > 0:
            time.sleep(ahead)
        return 0  # go on (non-zero would interrupt the statement)


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
        self._conn.set_progress_handler(Pace(SCAN_SHARE), PACE_STEPS)
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
