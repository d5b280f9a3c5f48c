"""A store at SQLite schema 12 (``items_pending`` keyed by the queue's portal and destination)
opens under migration 13 (a number per queue in table ``queues``, ``items.queue``, the index by
that number) and delivers its backlog once, queue by queue: pending items in due order, a dead
run's expired lease first, a live lease kept, and items that are not pending yet (a dead letter,
a held item) leased once they are pending again. From schema 11, see test_leases_upgrade.py
(it runs migrations 12 and 13)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage
from forwarder.storage.sqlite import migrations as sqlite_migrations

NOW = 1_800_000_000.0

# message id -> (destination, state, available_at, lease: "expired" / "live" / None)
ITEMS = {
    "a": ("conversions", "pending", NOW - 50, None),
    "b": ("conversions", "pending", NOW - 60, "expired"),
    "c": ("conversions", "pending", NOW - 40, None),
    "d": ("timeline", "pending", NOW - 30, None),
    "e": ("timeline", "pending", NOW - 45, "live"),
    "f": ("conversions", "dead", NOW - 90, None),
    "g": ("timeline", "pending", NOW + 500, None),  # not due yet
}


def _schema_12_store(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in sqlite_migrations.MIGRATIONS[:12]:
        conn.executescript(migration.sql)
        if migration.then is not None:
            migration.then(conn)
    conn.execute("PRAGMA user_version = 12")
    leases = {
        "expired": ("conversions", NOW - 10),
        "live": ("timeline", NOW + 20),
    }
    lease_ids = {}
    for name, (destination, until) in leases.items():
        lease_ids[name] = conn.execute(
            "INSERT INTO leases (portal, destination, until, items) VALUES ('main', ?, ?, '[]')",
            (destination, until),
        ).lastrowid
    for seq, (message_id, (destination, state, available_at, lease)) in enumerate(ITEMS.items(), 1):
        conn.execute(
            "INSERT INTO events (seq, portal, message_id, source, type, name, received_at,"
            " test, payload) VALUES (?, 'main', ?, 'backend', 'track', 'x', ?, 0, X'7B7D')",
            (seq, message_id, NOW - 100),
        )
        item_id = conn.execute(
            "INSERT INTO items (event_seq, portal, destination, state, available_at,"
            " updated_at, lease) VALUES (?, 'main', ?, ?, ?, ?, ?)",
            (seq, destination, state, available_at, available_at, lease and lease_ids[lease]),
        ).lastrowid
        if lease is not None:
            conn.execute(
                "UPDATE leases SET items = json_insert(items, '$[#]', ?) WHERE id = ?",
                (item_id, lease_ids[lease]),
            )
    conn.execute("INSERT INTO tallies VALUES ('main', 'conversions', 'accepted', 4)")
    conn.execute("INSERT INTO tallies VALUES ('main', 'timeline', 'accepted', 3)")
    conn.close()


async def test_a_schema_12_store_delivers_its_backlog_once_by_queue_number(
    tmp_path: Path,
) -> None:
    """Opened by a delivery process (it voids no lease: a sibling may hold them)."""
    _schema_12_store(tmp_path / "f.db")
    storage = SqliteStorage(tmp_path / "f.db", release_leases=False)
    await storage.open()
    try:
        conversions = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
        timeline = await storage.lease("main", "timeline", limit=10, now=NOW, lease_s=30)
        live = await storage.lease("main", "timeline", limit=10, now=NOW + 20, lease_s=30)
        dead = await storage.items_in_state("dead")
        await storage.requeue([r.id for r in dead], state="dead", now=NOW + 21)
        replayed = await storage.lease("main", "conversions", limit=10, now=NOW + 21, lease_s=30)
        await storage.append(
            [NewEvent("main", "h", "backend", "track", "x", NOW + 22, b"{}", ("timeline",))],
            now=NOW + 22,
            dedup_window_s=60,
        )
        await storage.expedite("main", "timeline", now=NOW + 22)
        expedited = await storage.lease("main", "timeline", limit=10, now=NOW + 22, lease_s=30)
        depth = await storage.queue_depth("main", "timeline", now=NOW + 22)
        for batch in (conversions, timeline, live, replayed, expedited):
            await storage.finish([i.id for i in batch], "delivered", now=NOW + 23)
        left = await storage.lease("main", "conversions", limit=10, now=NOW + 999, lease_s=30)
        left += await storage.lease("main", "timeline", limit=10, now=NOW + 999, lease_s=30)
        counts = await storage.counts()
    finally:
        await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    queues = conn.execute("SELECT portal, destination FROM queues ORDER BY id").fetchall()
    unnumbered = conn.execute("SELECT count(*) FROM items WHERE queue IS NULL").fetchone()[0]
    conn.close()
    assert [i.event.message_id for i in conversions] == ["b", "a", "c"]
    assert [i.event.message_id for i in timeline] == ["d"]
    assert [i.event.message_id for i in live] == ["e"]
    assert [i.event.message_id for i in replayed] == ["f"]
    assert sorted(i.event.message_id for i in expedited) == ["g", "h"]
    assert depth[0] == 4  # d, e, g and h: leased, not finished yet
    assert left == []
    assert counts[("main", "conversions", "delivered")] == 4
    assert counts[("main", "timeline", "delivered")] == 4
    assert queues == [("main", "conversions"), ("main", "timeline")]
    assert unnumbered == 0
