"""Event kinds: an event's (source, type, name) as one number (``events.kind``, migration 14).

A lease reads each item's event row through ``sqlite3``, which costs ~1.2k instructions per
column and row (it releases and takes back the GIL and the connection's mutex for each); a
kind is one integer column instead of three text ones (~3k per leased item fewer, callgrind).
Kinds are few (a source's event names) and a row of ``kinds`` never changes, so both ways are
kept in memory on the writer's connection; ``reset`` after a rollback (a number it gave out
may be given again to another kind).
"""

from __future__ import annotations

import sqlite3

Kind = tuple[str, str, str | None]
"""An event's source, type and name."""
Head = tuple[int, str, str, str | None, bool]
"""A leased row's item attempts, event source, type, name and test flag."""
_MAX_HEADS = 4096


class KnownKinds:
    """Kind numbers by kind (appends) and kinds by number (leases); one connection's."""

    __slots__ = ("by_kind", "by_number", "heads")

    def __init__(self) -> None:
        self.by_kind: dict[Kind, int] = {}
        self.by_number: dict[int, Kind] = {}
        self.heads: dict[int, Head] = {}
        """Heads by the number a lease reads (``head``): a look-up per leased row instead of
        splitting the number with shifts and masks (big ints: ~0.8k instructions a row)."""

    def reset(self) -> None:
        """Forget all: the transaction that may have added some was rolled back."""
        self.by_kind.clear()
        self.by_number.clear()
        self.heads.clear()

    def head(self, conn: sqlite3.Connection, packed: int) -> Head:
        """What ``kind << 32 | attempts << 1 | test`` (a kind number > 0) stands for."""
        source, kind, name = self.of(conn, packed >> 32)
        head = ((packed >> 1) & 0x7FFFFFFF, source, kind, name, packed & 1 == 1)
        if len(self.heads) >= _MAX_HEADS:
            self.heads.clear()
        self.heads[packed] = head
        return head

    def number(self, conn: sqlite3.Connection, kind: Kind) -> int:
        """The number of ``kind``, added to ``kinds`` the first time (in the caller's
        transaction)."""
        number = self.by_kind.get(kind)
        if number is not None:
            return number
        row = conn.execute(
            "SELECT id FROM kinds WHERE source = ? AND type = ? AND name IS ?", kind
        ).fetchone()
        if row is not None:
            number = int(row[0])
        else:
            added = conn.execute(
                "INSERT INTO kinds (source, type, name) VALUES (?, ?, ?)", kind
            ).lastrowid
            assert added is not None
            number = added
        self.by_kind[kind] = number
        self.by_number[number] = kind
        return number

    def of(self, conn: sqlite3.Connection, number: int) -> Kind:
        """The kind numbered ``number`` (a row of ``kinds`` this connection can read)."""
        kind = self.by_number.get(number)
        if kind is not None:
            return kind
        row = conn.execute(
            "SELECT source, type, name FROM kinds WHERE id = ?", (number,)
        ).fetchone()
        kind = (row[0], row[1], row[2])
        self.by_number[number] = kind
        return kind
