"""The SQLite backend's identity graph: people, their identifiers, holds and erasure."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from forwarder.storage.base import Erasure, Item, Key
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.sqlite.sql import EVENT_COLS, event_from_row, finish
from forwarder.storage.sqlite.touch import forget as forget_touches


def _person(conn: sqlite3.Connection, portal: str, key: Key) -> int | None:
    row = conn.execute(
        "SELECT person FROM identities WHERE portal = ? AND kind = ? AND value = ?",
        (portal, key[0], key[1]),
    ).fetchone()
    return None if row is None else int(row[0])


def _keys_of(conn: sqlite3.Connection, portal: str, person: int) -> list[Key]:
    # Without INDEXED BY, SQLite (no ANALYZE statistics) picks the primary key on ``portal``
    # alone: a scan of the portal's whole graph per lookup, O(n^2) over a backlog.
    rows = conn.execute(
        "SELECT kind, value FROM identities INDEXED BY identities_person"
        " WHERE portal = ? AND person = ? ORDER BY updated_at",
        (portal, person),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def link(conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float) -> None:
    people = {p for k in keys if (p := _person(conn, portal, k)) is not None}
    if people:
        person = min(people)
        others = sorted(people - {person})
        if others:
            marks = ",".join("?" * len(others))
            conn.execute(
                f"UPDATE identities SET person = ? WHERE portal = ? AND person IN ({marks})",
                (person, portal, *others),
            )
    else:
        person = int(
            conn.execute("INSERT INTO people (created_at) VALUES (?)", (now,)).lastrowid or 0
        )
    conn.executemany(
        "INSERT INTO identities (portal, kind, value, person, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (portal, kind, value) DO UPDATE SET updated_at = excluded.updated_at",
        [(portal, kind, value, person, now) for kind, value in keys],
    )


def people_of(conn: sqlite3.Connection, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
    """Two statements for a whole batch of keys: their people, then every key of those.

    CROSS JOIN keeps the key list as the outer loop (SQLite does not reorder it): one primary
    key look-up per key, never a scan of the portal's graph."""
    rows = conn.execute(
        "SELECT i.kind, i.value, i.person FROM json_each(?) j CROSS JOIN identities i"
        " ON i.portal = ? AND i.kind = json_extract(j.value, '$[0]')"
        " AND i.value = json_extract(j.value, '$[1]')",
        (_encode_keys(keys), portal),
    ).fetchall()
    if not rows:
        return {}
    by_person: dict[int, list[Key]] = {row[2]: [] for row in rows}
    # INDEXED BY: see ``_keys_of``.
    for person, kind, value in conn.execute(
        "SELECT person, kind, value FROM identities INDEXED BY identities_person"
        " WHERE portal = ? AND person IN (SELECT value FROM json_each(?))"
        " ORDER BY person, updated_at, kind, value",
        (portal, _encode_keys(list(by_person))),
    ):
        by_person[person].append((kind, value))
    return {(row[0], row[1]): by_person[row[2]] for row in rows}


_encode_keys = msgspec.json.Encoder().encode


def index_held(
    conn: sqlite3.Connection, portal: str, ids: Sequence[int], keys: Sequence[Key]
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO held_keys (portal, kind, value, item_id) VALUES (?, ?, ?, ?)",
        [(portal, k, v, i) for i in ids for k, v in keys],
    )


def release_for(
    conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float
) -> list[Item]:
    ids: set[int] = set()
    for kind, value in keys:
        rows = conn.execute(
            "SELECT item_id FROM held_keys WHERE portal = ? AND kind = ? AND value = ?",
            (portal, kind, value),
        ).fetchall()
        ids.update(r[0] for r in rows)
    released = []
    for item_id in sorted(ids):
        conn.execute("DELETE FROM held_keys WHERE item_id = ?", (item_id,))
        row = conn.execute(
            "UPDATE items SET state = 'pending', available_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'held' RETURNING id, portal, destination, attempts,"
            " event_seq",
            (now, now, item_id),
        ).fetchone()
        if row is None:
            continue
        event = conn.execute(
            f"SELECT {EVENT_COLS} FROM events e WHERE seq = ?", (row[4],)
        ).fetchone()
        released.append(
            Item(
                id=row[0],
                portal=row[1],
                destination=row[2],
                attempts=row[3],
                event=event_from_row(event),
            )
        )
    return released


def remap_contact(
    conn: sqlite3.Connection, portal: str, old_ids: Sequence[str], new_id: str, now: float
) -> int:
    changed = 0
    for old in old_ids:
        person = _person(conn, portal, ("contactId", old))
        if person is None:
            continue
        conn.execute(
            "DELETE FROM identities WHERE portal = ? AND kind = 'contactId' AND value = ?",
            (portal, old),
        )
        survivors = _keys_of(conn, portal, person)
        link(conn, portal, [("contactId", new_id), *survivors[:1]], now)
        changed += 1
    return changed


def erase(
    conn: sqlite3.Connection, portal: str, keys: Sequence[Key], now: float
) -> tuple[Erasure, int]:
    """Returns the erasure and how many open items it closed."""
    identifiers: set[Key] = set(keys)
    for key in keys:
        person = _person(conn, portal, key)
        if person is not None:
            identifiers.update(_keys_of(conn, portal, person))
            conn.execute("DELETE FROM identities WHERE portal = ? AND person = ?", (portal, person))
    forget_touches(conn, portal, identifiers)
    seqs: set[int] = set()
    for _, value in identifiers:
        needle = msgspec.json.encode(value)
        rows = conn.execute(
            "SELECT seq FROM events WHERE portal = ? AND instr(payload, ?) > 0", (portal, needle)
        ).fetchall()
        seqs.update(r[0] for r in rows)
    item_ids: list[int] = []
    for seq in seqs:
        item_ids += [r[0] for r in conn.execute("SELECT id FROM items WHERE event_seq = ?", (seq,))]
        conn.execute(
            "UPDATE events SET payload = ?, name = NULL WHERE seq = ?", (b'{"erased":true}', seq)
        )
    closed = finish(conn, item_ids, "dropped", now, Outcome(Reason.ERASED))
    conn.executemany("DELETE FROM held_keys WHERE item_id = ?", [(i,) for i in item_ids])
    record = Erasure(identifiers=len(identifiers), events=len(seqs), items=len(item_ids))
    conn.execute(
        "INSERT INTO erasures (at, portal, identifiers, events, items) VALUES (?, ?, ?, ?, ?)",
        (now, portal, record.identifiers, record.events, record.items),
    )
    return record, closed
