"""A store at SQLite schema 13 (an event's source, type and name in its own columns) opens under
migration 14 (table ``kinds``, ``events.kind``): the events of open items get their kind's
number, others keep their columns, and every event reads back and leases with its own source,
type and name (a dead letter of an event without a number, replayed, too)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forwarder.storage.sqlite import SqliteStorage
from forwarder.storage.sqlite import migrations as sqlite_migrations

NOW = 1_800_000_000.0

# message id -> (source, name, item state)
EVENTS = {
    "a": ("backend", "Order Completed", "pending"),
    "b": ("web", None, "pending"),
    "c": ("backend", "Order Completed", "held"),
    "d": ("web", "Signed Up", "dead"),
    "e": ("backend", "Signed Up", "delivered"),
}


def _schema_13_store(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in sqlite_migrations.MIGRATIONS[:13]:
        conn.executescript(migration.sql)
        if migration.then is not None:
            migration.then(conn)
    conn.execute("PRAGMA user_version = 13")
    conn.execute("INSERT INTO queues (portal, destination) VALUES ('main', 'conversions')")
    for seq, (message_id, (source, name, state)) in enumerate(EVENTS.items(), 1):
        conn.execute(
            "INSERT INTO events (seq, portal, message_id, source, type, name, received_at,"
            " test, payload) VALUES (?, 'main', ?, ?, 'track', ?, ?, 0, X'7B7D')",
            (seq, message_id, source, name, NOW - 100),
        )
        conn.execute(
            "INSERT INTO items (event_seq, portal, destination, state, available_at,"
            " updated_at, queue) VALUES (?, 'main', 'conversions', ?, ?, ?, 1)",
            (seq, state, NOW - 50, NOW - 50),
        )
    conn.close()


async def test_a_schema_13_store_numbers_its_backlog_and_keeps_every_events_kind(
    tmp_path: Path,
) -> None:
    _schema_13_store(tmp_path / "f.db")
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        leased = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
        [dead] = await storage.items_in_state("dead")
        await storage.requeue([dead.id], state="dead", now=NOW)
        replayed = await storage.lease("main", "conversions", limit=10, now=NOW, lease_s=30)
        stored = [await storage.get_event(seq) for seq in range(1, len(EVENTS) + 1)]
    finally:
        await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    numbered = conn.execute("SELECT message_id FROM events WHERE kind IS NOT NULL").fetchall()
    conn.close()

    def kinds(events: list) -> dict[str, tuple[str, str, str | None]]:
        return {e.message_id: (e.source, e.type, e.name) for e in events if e is not None}

    expected = {mid: (source, "track", name) for mid, (source, name, _) in EVENTS.items()}
    assert sorted(numbered) == [("a",), ("b",), ("c",)]
    assert kinds([i.event for i in leased]) == {k: expected[k] for k in ("a", "b")}
    assert kinds([i.event for i in replayed]) == {"d": expected["d"]}
    assert kinds(stored) == expected
