"""The SQLite backend's schema, as numbered forward migrations.

The database's ``PRAGMA user_version`` is the number of the last migration applied. At open,
every migration above it runs, each in its own transaction with the version it reaches, so a
crash between two leaves a database at a known version that the next open continues from. A
database whose version is above the last one here was written by a newer release and is
refused (``StoreVersionError``): an older release would misread it.

Release 0.1.0 did not stamp a version (its ``user_version`` is 0) and created its tables with
``CREATE ... IF NOT EXISTS`` on every open; migration 1 is exactly that schema, so on a 0.1.0
database it changes nothing and only stamps version 1.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from forwarder.errors import StoreVersionError
from forwarder.storage.outcomes import encode, from_detail


class Migration(NamedTuple):
    """One forward step: the version it reaches, what it does in a line, its SQL, and what
    must be computed in Python after it (rows rewritten), in the same transaction."""

    version: int
    summary: str
    sql: str
    then: Callable[[sqlite3.Connection], None] | None = None


_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    portal TEXT NOT NULL, message_id TEXT NOT NULL, source TEXT NOT NULL,
    type TEXT NOT NULL, name TEXT, received_at REAL NOT NULL, test INTEGER NOT NULL,
    payload BLOB NOT NULL
);
DROP TABLE IF EXISTS dedup;
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL, portal TEXT NOT NULL, destination TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL, updated_at REAL NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS items_ready ON items (portal, destination, available_at)
    WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS items_event ON items (event_seq);
DROP INDEX IF EXISTS items_state;
CREATE INDEX IF NOT EXISTS items_parked ON items (state, available_at)
    WHERE state IN ('held', 'dead', 'expired');
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, route TEXT NOT NULL,
    status INTEGER NOT NULL, duration_ms REAL NOT NULL, correlation_id TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS attempt_items (
    attempt_id INTEGER NOT NULL, item_id INTEGER NOT NULL, PRIMARY KEY (item_id, attempt_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attempt_items_attempt ON attempt_items (attempt_id);
CREATE TABLE IF NOT EXISTS tallies (
    portal TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (portal, destination, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identities (
    portal TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, person INTEGER NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (portal, kind, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_person ON identities (portal, person);
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL);
CREATE TABLE IF NOT EXISTS held_keys (
    portal TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, item_id INTEGER NOT NULL,
    PRIMARY KEY (portal, kind, value, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS held_keys_item ON held_keys (item_id);
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, portal TEXT NOT NULL,
    identifiers INTEGER NOT NULL, events INTEGER NOT NULL, items INTEGER NOT NULL
);
"""

_V2 = """
CREATE TABLE IF NOT EXISTS quality (
    hour INTEGER NOT NULL, source TEXT NOT NULL, event_type TEXT NOT NULL, metric TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (hour, source, event_type, metric)
) WITHOUT ROWID;
"""

_V3 = """
CREATE TABLE IF NOT EXISTS ingest_totals (
    source TEXT NOT NULL, metric TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (source, metric)
) WITHOUT ROWID;
"""

_V4 = """
CREATE TABLE IF NOT EXISTS touches (
    portal TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    first_at REAL NOT NULL, first BLOB NOT NULL, last_at REAL NOT NULL, last BLOB NOT NULL,
    PRIMARY KEY (portal, kind, value)
) WITHOUT ROWID;
"""

_V5 = """
CREATE TABLE IF NOT EXISTS quota_usage (
    portal TEXT NOT NULL, name TEXT NOT NULL, period TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (portal, name, period)
) WITHOUT ROWID;
"""

_V6 = """
CREATE TABLE IF NOT EXISTS rate_minutes (
    minute INTEGER NOT NULL, portal TEXT NOT NULL, route TEXT NOT NULL, outcome TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (minute, portal, route, outcome)
) WITHOUT ROWID;
"""

_V8 = """
DROP INDEX IF EXISTS items_parked;
CREATE INDEX items_parked ON items (state, available_at)
    WHERE state = 'held' OR state = 'dead' OR state = 'expired';
"""
"""The same index; its ``IN`` list made SQLite evaluate the condition through a temporary table
on every update of an item's state, ~0.9 µs per row, paid by every lease and finish (which never
enter the index). Queries with ``state = 'held'`` (or dead, expired) still imply the condition."""

_V9 = """
DROP INDEX IF EXISTS items_ready;
CREATE INDEX IF NOT EXISTS items_pending ON items (portal, destination, available_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS items_leased ON items (portal, destination, available_at)
    WHERE state = 'leased';
"""
"""``items_ready`` split in two: pending items, and leased ones (by lease expiry). A lease kept
its item in ``items_ready`` but moved it there (a delete and an insert in an index of every
waiting item: ~12k of the lease's ~23k instructions per item, callgrind); now it leaves the big
index and enters one of the leases in flight, whose seeks are cheap, and a finish touches only
that small one. Both still answer by queue, in due order."""

_V10 = """
CREATE TABLE IF NOT EXISTS outcomes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);
"""
"""Delivered outcomes kept once: a delivered item's ``outcome`` holds the number of its row here
(as text: the column's affinity) instead of the JSON. A destination gives the items of a batch
one shared outcome, and its ~85 bytes grew every finished row, so that SQLite split and
rebalanced pages about every fourth item (~4k instructions per finished item, callgrind).
Other outcomes (retries, dead letters: they carry HubSpot's message and correlation id, nearly
one per batch) stay inline as JSON, which starts with ``{`` where a number never does."""

_V12 = """
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY, portal TEXT NOT NULL, destination TEXT NOT NULL,
    until REAL NOT NULL, items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_queue ON leases (portal, destination, until);
DROP INDEX IF EXISTS items_pending;
CREATE INDEX items_pending ON items (portal, destination, available_at)
    WHERE state = 'pending' AND lease IS NULL;
DROP INDEX IF EXISTS items_leased;
"""
"""A lease is one row of ``leases`` (queue, end, its items' ids as a JSON array) and the
number of that row in each item's ``lease``; a leased item stays ``pending``. It leaves
``items_pending`` (whose condition now names ``lease``) and enters no index, and its finish
touches no index of the items: ``items_leased`` goes. A lease moved each item from
``items_pending`` to ``items_leased`` and its finish took it out again (keys of two strings and
a number in indexes as big as the backlog and the leases in flight): ~7k instructions per
delivered item more (callgrind)."""


def _lease_rows(conn: sqlite3.Connection) -> None:
    """``items.lease``; the items a release before leased get a lease row per queue and end,
    and are due again from when they were leased (``updated_at``), as a released lease's items
    always were."""
    _add_columns(conn, "items", ("lease",), "INTEGER")
    for statement in _statements(_V12):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO leases (portal, destination, until, items) SELECT portal, destination,"
        " available_at, json_group_array(id) FROM (SELECT portal, destination, available_at,"
        " id FROM items WHERE state = 'leased' ORDER BY id) GROUP BY portal, destination,"
        " available_at"
    )
    conn.execute(
        "UPDATE items SET state = 'pending', available_at = updated_at, lease = (SELECT l.id"
        " FROM leases l WHERE l.portal = items.portal AND l.destination = items.destination"
        " AND l.until = items.available_at) WHERE state = 'leased'"
    )


_V13 = """
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY, portal TEXT NOT NULL, destination TEXT NOT NULL,
    UNIQUE (portal, destination)
);
"""
"""A queue's number: ``items_pending``'s key starts with it (``items.queue``) instead of the
queue's two strings. Every seek in that index (a lease's range, the delete of each leased item,
each append's and retry's insert) compared the portal and destination of each key on its way
down: ~3k instructions per delivered item (callgrind)."""
_V13_INDEX = """
DROP INDEX IF EXISTS items_pending;
CREATE INDEX items_pending ON items (queue, available_at)
    WHERE state = 'pending' AND lease IS NULL;
"""


def _queue_numbers(conn: sqlite3.Connection) -> None:
    """``items.queue`` for every item (any may be pending again: a retry, a released hold, a
    replayed dead letter), then ``items_pending`` by queue number."""
    _add_columns(conn, "items", ("queue",), "INTEGER")
    conn.execute(
        "INSERT OR IGNORE INTO queues (portal, destination)"
        " SELECT DISTINCT portal, destination FROM items ORDER BY 1, 2"
    )
    conn.execute(
        "UPDATE items SET queue = (SELECT q.id FROM queues q WHERE q.portal = items.portal"
        " AND q.destination = items.destination)"
    )
    for statement in _statements(_V13_INDEX):
        conn.execute(statement)


_V14 = """
CREATE TABLE IF NOT EXISTS kinds (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL, name TEXT
);
CREATE INDEX IF NOT EXISTS kinds_kind ON kinds (source, type, name);
"""
"""An event's (source, type, name) as a number (``events.kind``, ``kinds.py``): a lease reads
one integer column of each event instead of three text ones, and an append binds one number
instead of three strings."""


def _event_kinds(conn: sqlite3.Connection) -> None:
    """``events.kind``; the events of open items (the backlog a lease reads next) get their
    kind's number. Other events keep none (NULL): a lease of one later (a replayed dead
    letter) reads its own columns instead."""
    _add_columns(conn, "events", ("kind",), "INTEGER")
    conn.execute(
        "INSERT INTO kinds (source, type, name) SELECT DISTINCT source, type, name FROM events"
        " WHERE seq IN (SELECT event_seq FROM items WHERE state IN ('pending', 'held'))"
        " ORDER BY 1, 2, 3"
    )
    conn.execute(
        "UPDATE events SET kind = (SELECT k.id FROM kinds k WHERE k.source = events.source"
        " AND k.type = events.type AND k.name IS events.name)"
        " WHERE seq IN (SELECT event_seq FROM items WHERE state IN ('pending', 'held'))"
    )


_ATTEMPT_REASONS = {
    "Retry": "retrying",
    "RetryPartial": "partial",
    "Split": "split",
    "GiveUp": "rejected",
    "Pause": "paused",
    "RefreshAuth": "reauthorized",
}
"""The classifier's outcome names that attempts recorded as their error when HubSpot gave no
message, and the reasons they stand for."""


def _typed_outcomes(conn: sqlite3.Connection) -> None:
    """Read each item's free-text ``detail`` once into its typed outcome, then drop the column;
    attempts get the reason their error named, and successes ``delivered``.

    Columns are added only where missing (ALTER TABLE has no IF NOT EXISTS), so a file whose
    version was stamped back by hand migrates too.
    """
    _add_columns(conn, "items", ("outcome",))
    if "detail" in _columns(conn, "items"):
        rows = conn.execute(
            "SELECT id, state, detail FROM items WHERE detail IS NOT NULL OR state NOT IN"
            " ('pending', 'leased')"
        ).fetchall()
        conn.executemany(
            "UPDATE items SET outcome = ? WHERE id = ?",
            [(encode(from_detail(state, detail)), item_id) for item_id, state, detail in rows],
        )
        conn.execute("ALTER TABLE items DROP COLUMN detail")
    if _add_columns(conn, "attempts", ("reason", "category")):
        conn.executemany(
            "UPDATE attempts SET reason = ?, error = NULL WHERE error = ?",
            [(reason, name) for name, reason in _ATTEMPT_REASONS.items()],
        )
        conn.execute(
            "UPDATE attempts SET reason = 'delivered'"
            " WHERE reason IS NULL AND error IS NULL AND status BETWEEN 200 AND 299"
        )


def _attempt_item_lists(conn: sqlite3.Connection) -> None:
    """Each attempt keeps the ids of its items (``attempts.items``, a JSON array) for reading it
    back, so ``attempt_items`` is only searched by item: its index by attempt goes. That index
    took an entry per item sent (~1.6k of ``record_attempts``' ~4.5k instructions per item,
    callgrind). Attempts recorded before are given their lists from that index first."""
    if _add_columns(conn, "attempts", ("items",)):
        conn.execute(
            "UPDATE attempts SET items = (SELECT json_group_array(item_id) FROM attempt_items"
            " WHERE attempt_id = attempts.id)"
        )
    conn.execute("DROP INDEX IF EXISTS attempt_items_attempt")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _add_columns(
    conn: sqlite3.Connection, table: str, names: tuple[str, ...], kind: str = "TEXT"
) -> bool:
    """Add the missing columns (of type ``kind``); whether any was missing."""
    missing = [n for n in names if n not in _columns(conn, table)]
    for name in missing:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    return bool(missing)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the 0.1.0 schema (on a 0.1.0 database: no change, version stamped)", _V1),
    Migration(2, "hourly attribution-quality counters", _V2),
    Migration(3, "all-time ingest totals per source (the debugger's shared funnel)", _V3),
    Migration(4, "touch memory: first and last touch per identifier (table touches)", _V4),
    Migration(5, "daily and monthly quota counts that outlive restarts (table quota_usage)", _V5),
    Migration(6, "HubSpot requests per minute, the shared rate history (table rate_minutes)", _V6),
    Migration(
        7,
        "typed outcomes: items.outcome from the old detail text, attempts.reason and category",
        "",
        _typed_outcomes,
    ),
    Migration(8, "index items_parked's condition as ORs: cheaper state changes", _V8),
    Migration(
        9, "index items_ready split into items_pending and items_leased: cheaper leases", _V9
    ),
    Migration(10, "table outcomes: a delivered item refers to its shared outcome", _V10),
    Migration(
        11,
        "attempts.items lists an attempt's items; index attempt_items_attempt dropped",
        "",
        _attempt_item_lists,
    ),
    Migration(
        12,
        "a lease is a row of table leases and items.lease; items_pending without leased items,"
        " items_leased dropped",
        "",
        _lease_rows,
    ),
    Migration(
        13,
        "table queues numbers each queue; items.queue; items_pending by queue number",
        _V13,
        _queue_numbers,
    ),
    Migration(14, "table kinds numbers each event kind; events.kind", _V14, _event_kinds),
)
LATEST = MIGRATIONS[-1].version


def version_of(conn: sqlite3.Connection) -> int:
    """The schema version the database is at (0: new, or written by 0.1.0)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def pending(conn: sqlite3.Connection, store: str) -> list[Migration]:
    """The migrations the database still needs, oldest first.

    Raises:
        StoreVersionError: the database was written by a newer release.
    """
    found = version_of(conn)
    if found > LATEST:
        raise StoreVersionError(store, found, LATEST)
    return [m for m in MIGRATIONS if m.version > found]


def migrate(conn: sqlite3.Connection, store: str) -> list[Migration]:
    """Apply every pending migration, each in one transaction with its version; return them.

    ``conn`` is in autocommit mode (``isolation_level=None``), as the backend's writer opens it.
    ``BEGIN IMMEDIATE`` takes the write lock first, so two processes opening one file at once
    apply each migration once: the second waits, then finds the version already reached.
    """
    applied = []
    for migration in pending(conn, store):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version_of(conn) >= migration.version:  # another process got here first
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(migration.sql):
                conn.execute(statement)
            if migration.then is not None:
                migration.then(conn)
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration's SQL into statements (``executescript`` would commit on its own)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
