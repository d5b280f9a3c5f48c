"""The SQLite backend's touch memory: one row per identifier with its first and last touch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgspec

from forwarder.storage.base import Key, Touch, TouchMemory

# SET expressions read the row as it was, so each CASE compares against the stored times.
_REMEMBER = """
INSERT INTO touches (portal, kind, value, first_at, first, last_at, last)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (portal, kind, value) DO UPDATE SET
    first = CASE WHEN excluded.first_at < first_at THEN excluded.first ELSE first END,
    first_at = MIN(first_at, excluded.first_at),
    last = CASE WHEN excluded.last_at >= last_at THEN excluded.last ELSE last END,
    last_at = MAX(last_at, excluded.last_at)
"""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Touch).decode


def remember(conn: sqlite3.Connection, portal: str, seen: Sequence[tuple[Key, Touch]]) -> None:
    rows = []
    for (kind, value), touch in seen:
        packed = _encode(touch)
        rows.append((portal, kind, value, touch.at, packed, touch.at, packed))
    conn.executemany(_REMEMBER, rows)


def touches_of(
    conn: sqlite3.Connection, portal: str, keys: Sequence[Key]
) -> dict[Key, TouchMemory]:
    # One statement per batch; CROSS JOIN keeps the keys the outer loop (a primary key look-up
    # each, never a scan of the portal's touches).
    rows = conn.execute(
        "SELECT t.kind, t.value, t.first, t.last FROM json_each(?) j CROSS JOIN touches t"
        " ON t.portal = ? AND t.kind = json_extract(j.value, '$[0]')"
        " AND t.value = json_extract(j.value, '$[1]')",
        (_encode(list(dict.fromkeys(keys))), portal),
    )
    return {
        (kind, value): TouchMemory(first=_decode(first), last=_decode(last))
        for kind, value, first, last in rows
    }


def forget(conn: sqlite3.Connection, portal: str, keys: Iterable[Key]) -> None:
    conn.executemany(
        "DELETE FROM touches WHERE portal = ? AND kind = ? AND value = ?",
        [(portal, kind, value) for kind, value in keys],
    )
