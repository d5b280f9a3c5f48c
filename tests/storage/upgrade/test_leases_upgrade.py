"""A store at SQLite schema 11 (an item's lease in its own row: state ``leased``, due again at
the lease's end) opens under migration 12 (a lease is a row of ``leases`` and its number in
``items.lease``) and delivers its backlog once: live leases stay leased until they end, a dead
run's expired leases come back first, pending items follow in due order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forwarder.storage.sqlite import SqliteStorage
from forwarder.storage.sqlite import migrations as sqlite_migrations

NOW = 1_800_000_000.0

# message id -> (state at schema 11, available_at, updated_at): a lease kept its expiry in
# ``available_at`` and the time it was taken in ``updated_at``.
ITEMS = {
    "a": ("leased", NOW - 70, NOW - 100),  # a dead run's lease, expired
    "b": ("leased", NOW - 70, NOW - 100),
    "c": ("leased", NOW + 20, NOW - 10),  # a live lease
    "d": ("pending", NOW - 50, NOW - 50),
    "e": ("pending", NOW - 40, NOW - 40),
}


def _schema_11_store(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in sqlite_migrations.MIGRATIONS[:11]:
        conn.executescript(migration.sql)
        if migration.then is not None:
            migration.then(conn)
    conn.execute("PRAGMA user_version = 11")
    for seq, (message_id, (state, available_at, updated_at)) in enumerate(ITEMS.items(), 1):
        conn.execute(
            "INSERT INTO events (seq, portal, message_id, source, type, name, received_at,"
            " test, payload) VALUES (?, 'main', ?, 'backend', 'track', 'x', ?, 0, X'7B7D')",
            (seq, message_id, NOW - 100),
        )
        conn.execute(
            "INSERT INTO items (event_seq, portal, destination, state, available_at,"
            " updated_at) VALUES (?, 'main', 'conversions', ?, ?, ?)",
            (seq, state, available_at, updated_at),
        )
    conn.execute("INSERT INTO tallies VALUES ('main', 'conversions', 'accepted', ?)", (len(ITEMS),))
    conn.close()


async def test_a_schema_11_store_keeps_its_leases_and_delivers_its_backlog_once(
    tmp_path: Path,
) -> None:
    """Opened by a delivery process (it voids no lease: a sibling may hold them)."""
    _schema_11_store(tmp_path / "f.db")
    storage = SqliteStorage(tmp_path / "f.db", release_leases=False)
    await storage.open()
    try:
        leased = await storage.items_in_state("leased")
        first = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
        early = await storage.lease("main", "conversions", limit=10, now=NOW + 19, lease_s=30)
        late = await storage.lease("main", "conversions", limit=10, now=NOW + 20, lease_s=30)
        for batch in (first, late):
            await storage.finish([i.id for i in batch], "delivered", now=NOW + 21)
        counts = await storage.counts()
        left = await storage.lease("main", "conversions", limit=10, now=NOW + 999, lease_s=30)
    finally:
        await storage.close()
    assert sorted(r.event_seq for r in leased) == [1, 2, 3]
    assert [i.event.message_id for i in first] == ["a", "b", "d", "e"]
    assert early == []
    assert [i.event.message_id for i in late] == ["c"]
    assert counts == {
        ("main", "conversions", "accepted"): 5,
        ("main", "conversions", "delivered"): 5,
    }
    assert left == []


async def test_a_schema_11_store_opened_by_the_only_process_leases_everything_in_due_order(
    tmp_path: Path,
) -> None:
    """The serving process voids every lease at start: each item is due from when it was due
    (a lease's items from when they were leased), not a whole lease later."""
    _schema_11_store(tmp_path / "f.db")
    storage = SqliteStorage(tmp_path / "f.db", release_leases=True)
    await storage.open()
    try:
        items = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
    finally:
        await storage.close()
    assert [i.event.message_id for i in items] == ["a", "b", "d", "e", "c"]
