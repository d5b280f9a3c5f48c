"""The writer's own WAL checkpoints: after a group's callers have their answers, never inside
``COMMIT``, and only now and then."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forwarder.storage.sqlite import checkpoint
from forwarder.storage.sqlite.checkpoint import Checkpointer, tune_writer

PAGE = 4096


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (body BLOB)")
    tune_writer(conn)
    yield conn
    conn.close()


def write(conn: sqlite3.Connection, pages: int = 50) -> int:
    """Commit about ``pages`` new pages; the WAL file's size afterwards."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * (PAGE - 100),)] * pages)
    conn.execute("COMMIT")
    return Path(f"{conn.execute('PRAGMA database_list').fetchone()[2]}-wal").stat().st_size


def test_commits_never_checkpoint_by_themselves(writer: sqlite3.Connection) -> None:
    sizes = [write(writer, 300) for _ in range(6)]  # 1,800 pages: past SQLite's own 1,000
    assert all(b > a for a, b in itertools.pairwise(sizes))  # none reset the WAL


def test_the_writer_checkpoints_when_idle_after_a_while_and_the_wal_starts_over(
    writer: sqlite3.Connection, tmp_path: Path
) -> None:
    cp = Checkpointer(tmp_path / "db", "FULL")  # its thread is not started: the writer alone
    grown = write(writer)
    cp.writer_done(writer, idle=True)  # too soon after the last one
    assert write(writer) > grown
    time.sleep(checkpoint.WRITER_IDLE_S)
    cp.writer_done(writer, idle=False)  # jobs wait: not yet
    grown = write(writer)
    assert grown > 0
    cp.writer_done(writer, idle=True)
    assert write(writer) == grown  # all copied: the WAL is written again from its start


def test_under_constant_load_the_writer_still_checkpoints(
    writer: sqlite3.Connection, tmp_path: Path
) -> None:
    cp = Checkpointer(tmp_path / "db", "FULL")
    time.sleep(checkpoint.WRITER_BUSY_S)
    grown = write(writer)
    cp.writer_done(writer, idle=False)
    assert write(writer) == grown
