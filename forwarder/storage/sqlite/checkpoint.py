"""WAL checkpoints off the writer's commits, so no commit waits for one.

SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that commit, and every
request queued behind it, waits while the pages are copied into the database file and it is
synced (the p99 spikes of ingest). Here a thread of its own, on its own connection, runs
``wal_checkpoint(PASSIVE)`` after commits, at most every ``INTERVAL_S``; a passive checkpoint
never blocks the writer. The writer still checkpoints itself once the WAL has grown past
``WRITER_PAGES`` (``writer_done``): a checkpoint by the connection that just committed is what
lets the WAL start again from its beginning while writes never pause, and it finds nearly every
page already copied. It runs after the group's callers have their answers (SQLite's automatic
checkpoint, off on the writer, ran inside ``COMMIT``: traced, 35 of 1,490 commits took a median
7 ms instead of 0.7 ms, up to 23 ms, for it) and preferably when no job waits.
``journal_size_limit`` truncates a WAL that grew in a burst.

Measured (100 events an append, 8 callers at once, ``synchronous=full``, 15 s, four interleaved
pairs on a busy 2-core machine): append p99 26-32 ms and p99.9 47-65 ms, against 40-73 ms and
88-128 ms with SQLite's checkpoints alone; the worst call 51-130 ms against 134-145 ms.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from forwarder.telemetry import get_logger

INTERVAL_S = 0.05
"""The shortest time between two checkpoints (each syncs the database file)."""
WRITER_PAGES = 1000
"""The WAL size (pages, as this thread last saw it) past which the writer checkpoints itself, so
that the WAL starts over (SQLite's own automatic threshold) ..."""
WRITER_BUSY_S = 0.25
"""... when no job waits for the writer, or at most this long after its last one if jobs do."""
WRITER_MAX_S = 2.0
"""And at least this often whatever this thread saw (it may have stopped), to bound the WAL."""
LIMIT_BYTES = 16 * 1024 * 1024
"""``journal_size_limit``: the WAL file is truncated to this after a checkpoint resets it."""


def tune_writer(conn: sqlite3.Connection) -> None:
    """Settings of the writer's connection."""
    conn.execute("PRAGMA wal_autocheckpoint=0")  # inside COMMIT: see ``writer_done``
    conn.execute(f"PRAGMA journal_size_limit={LIMIT_BYTES}")


class Checkpointer:
    """A thread that checkpoints the WAL of ``path`` after the writer's commits."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writer_at = time.monotonic()
        self._wal_pages = 0
        """The WAL's size at this thread's last checkpoint (written here, read by the writer)."""
        self._log = get_logger("storage")

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def committed(self) -> None:
        """Called by the writer after each commit: a checkpoint is due."""
        self._wake.set()

    def writer_done(self, conn: sqlite3.Connection, *, idle: bool) -> None:
        """Called by the writer after each group, once its callers have their answers: the
        writer's connection checkpoints when the WAL has grown past ``WRITER_PAGES`` (``idle``:
        no job waits for the writer)."""
        since = time.monotonic() - self._writer_at
        grown = self._wal_pages >= WRITER_PAGES
        if (grown and (idle or since >= WRITER_BUSY_S)) or since >= WRITER_MAX_S:
            self._writer_at = time.monotonic()
            self._wal_pages = 0
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the next one may succeed; the WAL only grows meanwhile
                self._log.warning("writer_checkpoint_failed", error=str(exc))

    def step(self, conn: sqlite3.Connection) -> None:
        """One passive checkpoint on this thread's connection; notes the WAL's size."""
        self._wal_pages = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=2000")
            while True:
                self._wake.wait()
                if self._stopping:
                    return
                self._wake.clear()
                self.step(conn)
                time.sleep(INTERVAL_S)
        except sqlite3.Error as exc:
            # The writer's own checkpoints still bound the WAL without this thread.
            self._log.warning("checkpoint_stopped", error=str(exc))
        finally:
            if conn is not None:
                conn.close()
