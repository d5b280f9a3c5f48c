"""The writer's own WAL checkpoints: after a group's callers have their answers, never inside
``COMMIT``, and only once the WAL has grown."""

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
def db(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def writer(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (body BLOB)")
    tune_writer(conn)
    yield conn
    conn.close()


@pytest.fixture
def other(db: Path, writer: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The checkpoint thread's connection (the thread itself is not started: steps by hand)."""
    conn = sqlite3.connect(db, isolation_level=None)
    yield conn
    conn.close()


def write(conn: sqlite3.Connection, pages: int = 50) -> int:
    """Commit about ``pages`` new pages; the WAL file's size afterwards."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * (PAGE - 100),)] * pages)
    conn.execute("COMMIT")
    return wal_of(conn).stat().st_size


def wal_of(conn: sqlite3.Connection) -> Path:
    return Path(f"{conn.execute('PRAGMA database_list').fetchone()[2]}-wal")


def starts(conn: sqlite3.Connection) -> int:
    """How often the WAL started over: the checkpoint sequence number of the WAL header (SQLite
    file format, "WAL File Format"), which every restart increments."""
    return int.from_bytes(wal_of(conn).read_bytes()[12:16], "big")


def test_commits_never_checkpoint_by_themselves(writer: sqlite3.Connection) -> None:
    sizes = [write(writer, 300) for _ in range(6)]  # 1,800 pages: past SQLite's own 1,000
    assert all(b > a for a, b in itertools.pairwise(sizes))  # appended: never started over


def test_the_writer_checkpoints_once_the_wal_grew_and_the_wal_starts_over(
    writer: sqlite3.Connection, other: sqlite3.Connection, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Not long since the last one" whatever the machine's load makes of the writes' time
    # (the checkpoint a while after the last one while jobs wait: the test below).
    monkeypatch.setattr(checkpoint, "WRITER_BUSY_S", 60.0)
    cp = Checkpointer(db, "FULL")
    write(writer, 200)
    cp.step(other)  # the thread copies all 200 pages (and sees the WAL's size)
    write(writer)  # nothing happened meanwhile: the WAL started over
    before = starts(writer)
    cp.writer_done(writer, idle=True)  # a WAL of 200 pages: too small to bother
    write(writer)
    assert starts(writer) == before
    write(writer, checkpoint.WRITER_PAGES)
    cp.step(other)
    write(writer)
    before = starts(writer)
    cp.writer_done(writer, idle=False)  # jobs wait, and it is not long since the last one
    write(writer)
    assert starts(writer) == before
    cp.writer_done(writer, idle=True)
    write(writer)
    assert starts(writer) == before + 1


def test_while_jobs_wait_the_writer_checkpoints_a_grown_wal_a_little_later(
    writer: sqlite3.Connection, other: sqlite3.Connection, db: Path
) -> None:
    cp = Checkpointer(db, "FULL")
    write(writer, checkpoint.WRITER_PAGES)
    cp.step(other)
    write(writer)
    before = starts(writer)
    time.sleep(checkpoint.WRITER_BUSY_S)
    cp.writer_done(writer, idle=False)
    write(writer)
    assert starts(writer) == before + 1


def test_without_word_from_the_thread_the_writer_still_checkpoints(
    writer: sqlite3.Connection, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "WRITER_MAX_S", 0.05)
    cp = Checkpointer(db, "FULL")
    write(writer)
    before = starts(writer)
    time.sleep(0.05)
    cp.writer_done(writer, idle=False)
    write(writer)
    assert starts(writer) == before + 1
