"""The SQL of the SQLite backend: schema and one function per job, run on the writer thread."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, NamedTuple

import msgspec

from forwarder.storage.base import (
    FINAL_STATES,
    OPEN_STATES,
    Accepted,
    AppendResult,
    Attempt,
    Duplicate,
    Item,
    ItemRecord,
    NewEvent,
    StoredEvent,
)
from forwarder.storage.outcomes import Outcome, Reason, decode, encode
from forwarder.storage.sqlite.dedup import SEQ_SHIFT, SeenKeys, key_of, same_event, seen_value
from forwarder.storage.sqlite.kinds import Head, Kind, KnownKinds

_TALLY = (
    "INSERT INTO tallies (portal, destination, state, n) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (portal, destination, state) DO UPDATE SET n = n + excluded.n"
)


def _tally(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, str, int]]) -> None:
    merged: dict[tuple[str, str, str], int] = {}
    for portal, destination, state, n in rows:
        merged[(portal, destination, state)] = merged.get((portal, destination, state), 0) + n
    if merged:
        conn.executemany(_TALLY, [(*k, n) for k, n in merged.items()])


_OPEN = "(" + ", ".join(f"'{state}'" for state in OPEN_STATES) + ")"
_FINAL = "(" + ", ".join(f"'{state}'" for state in FINAL_STATES) + ")"
_IDS = "(SELECT value FROM json_each(?))"
"""A whole batch of ids as one parameter (``id_list``): one statement per batch, not per item."""


def id_list(ids: Sequence[int]) -> str:
    """Item ids as the JSON array ``_IDS`` reads."""
    return msgspec.json.encode(ids).decode()


EVENT_COLS = (
    "e.seq, e.portal, e.message_id, coalesce(k.source, e.source), coalesce(k.type, e.type),"
    " CASE WHEN k.id IS NULL THEN e.name ELSE k.name END, e.received_at, e.payload, e.test"
)
EVENTS = "events e LEFT JOIN kinds k ON k.id = e.kind"
"""Where ``EVENT_COLS`` are read from: an event's source, type and name are its kind's, or
(no kind: stored before migration 14, or erased) its own columns."""
_LEASED = "(SELECT j.value FROM leases l, json_each(l.items) j)"
"""Ids of every lease (migration 12): a leased item is among them, ``pending`` with a ``lease``
(the ``leased`` state of the rows before)."""
_STATE = "CASE WHEN state = 'pending' AND lease IS NOT NULL THEN 'leased' ELSE state END"
_ITEM_COLS = (
    f"id, event_seq, portal, destination, {_STATE}, attempts, available_at, updated_at, outcome"
)


def state_where(state: str) -> str:
    """The condition of items in ``state`` (a known state, inlined: SQLite then uses the
    partial indexes); ``leased`` and ``pending`` items are both ``pending`` rows, told apart
    by ``lease``. No index holds leased items: they are found through the leases' lists."""
    if state == "leased":
        return f"id IN {_LEASED} AND state = 'pending' AND lease IS NOT NULL"
    if state == "pending":
        return "state = 'pending' AND lease IS NULL"
    return f"state = '{state}'"


_SHARED_OUTCOME = "(SELECT body FROM outcomes WHERE id = items.outcome)"
"""An item's outcome kept once in ``outcomes`` (``_stored_outcome``), or NULL: JSON text in
``items.outcome`` matches no number."""

_REPLAYED = encode(Outcome(Reason.REPLAYED))


def _policy(why: str) -> str | None:
    return encode(Outcome(Reason.POLICY, why))


def event_from_row(row: Sequence[Any]) -> StoredEvent:
    """A row of ``EVENT_COLS``: seq, portal, message_id, source, type, name, received_at,
    payload, test (positional, in the struct's field order: this runs per leased item)."""
    return StoredEvent(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]))


def count_open(conn: sqlite3.Connection) -> int:
    """Open items: those accepted less those final, from the tallies (kept in the transaction
    of every change that moves an item in or out of a final state; the conservation check
    counts the rows and compares). A read of a few rows: a count of the rows was a scan of the
    table, 170-270 ms at 1.3 M items, that a serving process beside delivery processes ran
    every second."""
    row = conn.execute(
        "SELECT sum(CASE WHEN state = 'accepted' THEN n ELSE -n END) FROM tallies"
        f" WHERE state = 'accepted' OR state IN {_FINAL}"
    ).fetchone()
    return int(row[0] or 0)


def release_leases(conn: sqlite3.Connection) -> None:
    """At start of the only process using the file: leases of a crashed run are void.

    A leased item kept its ``available_at`` (when it was due): it is due again at once.
    """
    conn.execute(f"UPDATE items SET lease = NULL WHERE id IN {_LEASED} AND lease IS NOT NULL")
    conn.execute("DELETE FROM leases")


def touch(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ready_probe', x'00')")


class AppendJob(NamedTuple):
    """One ``append`` call: its events, clock and default dedup window."""

    events: Sequence[NewEvent]
    now: float
    window_s: float


class Appended(NamedTuple):
    """What ``append_many`` did: per job its results and how many open items it created, and
    the dedup entries to remember once the transaction has committed (``keys`` and their
    ``values``, side by side: no tuple per event)."""

    per_job: list[tuple[list[AppendResult], int]]
    keys: list[int]
    values: list[int]

    def entries(self) -> Iterator[tuple[int, int]]:
        """(key, value) pairs for ``SeenKeys.remember``."""
        return zip(self.keys, self.values, strict=True)


class _Rows:
    """The rows one ``append_many`` call inserts, gathered event by event.

    Values are bound as the types ``sqlite3`` binds without its adaptation look-up (a type
    tuple, a dictionary miss and two attribute look-ups per value): ``bytearray`` rather than
    ``bytes``, ``int`` rather than ``bool``; NULL and constant columns are literals in the SQL.
    Open items are not bound at all: seqs are consecutive, so a run of events with the same
    portal and queues gets its items from the events table in one ``INSERT ... SELECT`` per
    queue (~1 us less per item than binding its row, measured), their clock from the events'
    ``received_at`` when that is the append's clock (as on ingest, so a run spans the appends
    of a group: a single-event append costs no statement of its own).
    """

    __slots__ = ("conn", "events", "kind_numbers", "kinds", "parts", "queues", "tallies")

    def __init__(self, conn: sqlite3.Connection, kinds: KnownKinds) -> None:
        self.conn = conn
        self.queues = _QueueNumbers(conn)
        self.kinds = kinds
        self.kind_numbers = kinds.by_kind
        self.events: list[object] = []
        """The events' values, row after row (``_EVENT_WIDTH`` each): no tuple per event."""
        self.parts: list[_Run | list[tuple[object, ...]]] = []
        """The items in seq order (a queue's item ids follow its events' order): runs, and
        lists of items inserted from their values (dropped ones, and the open items of events
        whose ``received_at`` is not the append's clock)."""
        self.tallies: dict[tuple[str, str, str], int] = {}

    def add(self, seq: int, ev: NewEvent, now: float) -> None:
        portal = ev.portal
        self.events += (
            seq,
            portal,
            ev.message_id,
            ev.received_at,
            1 if ev.test else 0,
            bytearray(ev.payload),
            self.kind_numbers.get((ev.source, ev.type, ev.name))
            or self.kinds.number(self.conn, (ev.source, ev.type, ev.name)),
        )
        destinations = ev.destinations
        if destinations:
            last = self.parts[-1] if self.parts else None
            if ev.received_at != now:
                self._bind(seq, portal, [(d, "pending", None) for d in destinations], now)
            elif (
                type(last) is _Run
                and last.last == seq - 1
                and last.destinations == destinations
                and last.portal == portal
            ):
                last.last = seq
            else:
                self.parts.append(_Run(seq, destinations, portal))
        if ev.dropped:
            self._bind(seq, portal, [(d, "dropped", _policy(why)) for d, why in ev.dropped], now)

    def _bind(
        self, seq: int, portal: str, items: list[tuple[str, str, str | None]], now: float
    ) -> None:
        last = self.parts[-1] if self.parts else None
        if not isinstance(last, list):
            last = []
            self.parts.append(last)
        tallies = self.tallies
        for destination, state, outcome in items:
            queue = self.queues.get(portal, destination)
            last.append((seq, portal, destination, state, now, now, outcome, queue))
            counted = ("accepted", "dropped") if state == "dropped" else ("accepted",)
            for tally in [(portal, destination, name) for name in counted]:
                tallies[tally] = tallies.get(tally, 0) + 1

    def insert(self, conn: sqlite3.Connection) -> None:
        insert_flat(conn, _EVENTS, _EVENT_WIDTH, self.events, _EVENT_ROW)
        tallies = self.tallies
        for part in self.parts:
            if isinstance(part, list):
                insert_rows(conn, _BOUND_ITEMS, part)
                continue
            for destination in part.destinations:
                queue = self.queues.get(part.portal, destination)
                conn.execute(_OPEN_ITEMS, (destination, queue, part.first, part.last))
                tally = (part.portal, destination, "accepted")
                tallies[tally] = tallies.get(tally, 0) + part.last - part.first + 1
        _tally(conn, [(*k, n) for k, n in tallies.items()])


_EVENTS = (
    "INSERT INTO events (seq, portal, message_id, received_at, test, payload, kind, source, type,"
    " name) VALUES "
)
_EVENT_WIDTH = 7
_EVENT_ROW = "(?, ?, ?, ?, ?, ?, ?, '', '', NULL)"
"""An event's source, type and name are its kind's (``kinds.py``): not stored in its row, where
they were three text values bound per event (``EVENTS`` reads them back)."""


class _Run:
    """Consecutive events of one portal with the same queues, received at the append's clock:
    their open items come from their rows in one statement per queue."""

    __slots__ = ("destinations", "first", "last", "portal")

    def __init__(self, seq: int, destinations: tuple[str, ...], portal: str) -> None:
        self.first = self.last = seq
        self.destinations = destinations
        self.portal = portal


_OPEN_ITEMS = (
    "INSERT INTO items (event_seq, portal, destination, state, available_at, updated_at,"
    " outcome, queue) SELECT seq, portal, ?, 'pending', received_at, received_at, NULL, ?"
    " FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq"
)
_BOUND_ITEMS = (
    "INSERT INTO items (event_seq, portal, destination, state, available_at, updated_at,"
    " outcome, queue) VALUES "
)


class _QueueNumbers:
    """Queue numbers (``queues``, migration 13) within one transaction: each item is stored
    with its queue's, by which ``items_pending`` is ordered. A queue's first item gives it its
    number. Not kept across transactions (one read per queue and append job): a rolled-back
    transaction must leave no number behind."""

    __slots__ = ("conn", "numbers")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.numbers: dict[tuple[str, str], int] = {}

    def get(self, portal: str, destination: str) -> int:
        key = (portal, destination)
        number = self.numbers.get(key)
        if number is not None:
            return number
        row = self.conn.execute(
            "SELECT id FROM queues WHERE portal = ? AND destination = ?", key
        ).fetchone()
        if row is not None:
            number = int(row[0])
        else:
            added = self.conn.execute(
                "INSERT INTO queues (portal, destination) VALUES (?, ?)", key
            ).lastrowid
            assert added is not None
            number = added
        self.numbers[key] = number
        return number


QUEUE = "(SELECT id FROM queues WHERE portal = ? AND destination = ?)"
"""The number of the queue (portal, destination) given as the next two parameters, for
``items.queue = QUEUE`` (an index's key: SQLite runs the subquery once)."""


def append_many(
    conn: sqlite3.Connection, jobs: Sequence[AppendJob], seen: SeenKeys, kinds: KnownKinds
) -> Appended:
    """Dedup and insert the events of many appends set-wise (a few statements per table).

    Sequence numbers are assigned here (one writer), so rows go in with multi-row inserts.
    ``seen`` is only read: the caller remembers ``Appended.keys`` after the commit. This loop
    runs for every event stored, so the common case (a new messageId) is kept to dictionary
    lookups and tuple building.
    """
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    next_seq = (row[0] if row else 0) + 1
    rows = _Rows(conn, kinds)
    add = rows.add
    out: list[tuple[list[AppendResult], int]] = []
    fresh = _Fresh(next_seq)
    keys: list[int] = []
    values: list[int] = []
    fresh_seqs, fresh_events, fresh_nows = fresh.seqs, fresh.events, fresh.nows
    for job in jobs:
        results: list[AppendResult] = []
        opened = 0
        now = job.now
        stamp = seen_value(0, now)
        events = job.events
        job_keys = [key_of(ev.portal, ev.message_id) for ev in events]
        held = seen.held(job_keys)  # one call, not one per event
        for ev, key in zip(events, job_keys, strict=True):
            if key in fresh_seqs or key in held:
                window = job.window_s if ev.dedup_window_s is None else ev.dedup_window_s
                earlier = _earlier(conn, seen, fresh, key, ev)
                if earlier is not None and earlier[1] > now - window:
                    results.append(Duplicate(seq=earlier[0]))
                    continue
            seq = next_seq
            next_seq += 1
            fresh_seqs[key] = seq
            fresh_events.append(ev)
            fresh_nows.append(now)
            keys.append(key)
            values.append(stamp | seq << SEQ_SHIFT)
            add(seq, ev, now)
            opened += len(ev.destinations)
            results.append(Accepted(seq))
        out.append((results, opened))
    rows.insert(conn)
    return Appended(out, keys, values)


class _Fresh:
    """The keys ``append_many`` accepted so far: key -> seq, and by seq (from ``first``) the
    event and its clock, in lists rather than a tuple per event."""

    __slots__ = ("events", "first", "nows", "seqs")

    def __init__(self, first: int) -> None:
        self.first = first
        self.seqs: dict[int, int] = {}
        self.events: list[NewEvent] = []
        self.nows: list[float] = []


_CHUNKS = (64, 32, 16, 8, 4, 2, 1)


def insert_flat(
    conn: sqlite3.Connection, insert: str, width: int, values: list[object], row: str = ""
) -> None:
    """``insert_rows`` for rows given as one flat list of ``width`` values each (``row``: the
    row's SQL, when it has more than its ``width`` parameters)."""
    count = len(values) // width
    start = 0
    while start < count:
        size = next(n for n in _CHUNKS if count - start >= n)
        statement = _statement(insert, width, size, row)
        conn.execute(statement, values[start * width : (start + size) * width])
        start += size


def insert_rows(conn: sqlite3.Connection, insert: str, rows: Sequence[tuple[object, ...]]) -> None:
    """``insert`` (ending in ``VALUES``) for every row, as multi-row statements.

    SQLite runs a statement's setup (opening a cursor on the table and each index) per
    execution, so ``executemany`` pays it per row. Rows go in chunks of power-of-two sizes
    (few distinct statements for the statement cache): 25-30 % less CPU per event, measured.
    """
    start = 0
    while start < len(rows):
        size = next(n for n in _CHUNKS if len(rows) - start >= n)
        chunk = rows[start : start + size]
        statement = _statement(insert, len(chunk[0]), size)
        conn.execute(statement, list(chain.from_iterable(chunk)))
        start += size


@functools.lru_cache(maxsize=64)
def _statement(insert: str, width: int, rows: int, row: str = "") -> str:
    one = row or f"({', '.join('?' * width)})"
    return insert + ", ".join([one] * rows)


def _earlier(
    conn: sqlite3.Connection,
    seen: SeenKeys,
    fresh: _Fresh,
    key: int,
    ev: NewEvent,
) -> tuple[int, float] | None:
    """(seq, seen_at) of the last accepted event with ``ev``'s portal and messageId, if any."""
    seq = fresh.seqs.get(key)
    if seq is not None:
        other = fresh.events[seq - fresh.first]
        if other.portal == ev.portal and other.message_id == ev.message_id:
            return seq, fresh.nows[seq - fresh.first]
        return None  # a hash collision within this call
    found = seen.get(key)
    if found is not None and same_event(conn, found[0], ev.portal, ev.message_id):
        return found
    return None


_PURGE_CHUNK = 2000


def purge_chunk(conn: sqlite3.Connection, events_before: float, after_seq: int) -> tuple[int, int]:
    """Delete finished events older than ``events_before`` among the next few after
    ``after_seq``, oldest first; returns (how many went, where to go on from: -1 when done).

    One bounded chunk per writer job, so commits of new events are not held up behind a purge
    (a single statement over the whole table took as long as the table was big). Events are in
    ``seq`` order and ``received_at`` follows it, so the scan stops at the first recent one.
    """
    rows = conn.execute(
        "SELECT seq, received_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, _PURGE_CHUNK),
    ).fetchall()
    old = [seq for seq, received_at in rows if received_at < events_before]
    done = len(old) < len(rows) or len(rows) < _PURGE_CHUNK
    if not old:
        return 0, -1
    marks = ",".join("?" * len(old))
    busy = {
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT event_seq FROM items WHERE event_seq IN ({marks})"
            f" AND state IN {_OPEN}",
            old,
        )
    }
    gone = [seq for seq in old if seq not in busy]
    if gone:
        marks = ",".join("?" * len(gone))
        conn.execute(
            "DELETE FROM attempt_items WHERE item_id IN (SELECT id FROM items WHERE event_seq IN"
            f" ({marks}))",
            gone,
        )
        conn.execute(f"DELETE FROM items WHERE event_seq IN ({marks})", gone)
        conn.execute(f"DELETE FROM events WHERE seq IN ({marks})", gone)
    return len(gone), -1 if done else old[-1]


_LEASE_COLS = (
    "i.id, coalesce(e.kind, 0) * 4294967296 + min(i.attempts, 2147483647) * 2 + (e.test != 0),"
    " e.seq, e.message_id, e.received_at, e.payload"
)
"""A leased item and its event (the event's portal is the queue's: not read per row). The
event's kind number (0: none, ``kinds.py``), the item's attempts and the event's ``test`` flag
are one number (``kind << 32 | attempts << 1 | test``; attempts stop counting at 2**31 - 1):
sqlite3 releases and takes back the GIL for each column it reads, ~1.2k instructions per
column and row (callgrind), more than the shifts and masks that split them."""
_LEASE_PENDING = (
    f"SELECT {_LEASE_COLS} FROM items i JOIN events e ON e.seq = i.event_seq"
    f" WHERE i.queue = {QUEUE} AND i.state = 'pending' AND i.lease IS NULL"
    " AND i.available_at <= ? ORDER BY i.available_at, i.id LIMIT ?"
)
_LEASE_AGAIN = (
    f"SELECT {_LEASE_COLS} FROM items i JOIN events e ON e.seq = i.event_seq"
    f" WHERE i.id IN {_IDS} AND i.lease = ? AND i.state = 'pending'"
    " ORDER BY i.available_at, i.id"
)
"""The items an expired lease still holds (not those finished, let go or leased again)."""
_LEASE = f"UPDATE items SET lease = ? WHERE id IN {_IDS}"


def lease(
    conn: sqlite3.Connection,
    portal: str,
    destination: str,
    *,
    limit: int,
    now: float,
    lease_s: float,
    kinds: KnownKinds,
) -> list[Item]:
    """The queue's due items, leased until ``now + lease_s``: first those of leases that ran
    out (a crashed worker's, oldest lease first), then pending ones in due order.

    A lease is a row of ``leases`` and its number in each item's ``lease`` (migration 12): the
    item leaves ``items_pending`` and enters no other index. Without expired leases: one read
    (a range of ``items_pending``), an insert and an update."""
    rows: list[Any] = []
    if conn.execute(
        "SELECT 1 FROM leases WHERE portal = ? AND destination = ? AND until <= ? LIMIT 1",
        (portal, destination, now),
    ).fetchone():
        rows = _lease_expired(conn, portal, destination, limit, now)
    if len(rows) < limit:
        rows += conn.execute(
            _LEASE_PENDING, (portal, destination, now, limit - len(rows))
        ).fetchall()
    if not rows:
        return []
    listed = id_list([row[0] for row in rows])
    lease_id = conn.execute(
        "INSERT INTO leases (portal, destination, until, items) VALUES (?, ?, ?, ?)",
        (portal, destination, now + lease_s, listed),
    ).lastrowid
    conn.execute(_LEASE, (lease_id, listed))
    return _leased_items(conn, portal, destination, rows, kinds)


def _leased_items(
    conn: sqlite3.Connection,
    portal: str,
    destination: str,
    rows: list[Any],
    kinds: KnownKinds,
) -> list[Item]:
    """The ``Item``s of leased rows (``_LEASE_COLS``): this loop runs per leased item."""
    heads = kinds.heads
    unnumbered: dict[int, Kind] = {}
    items: list[Item] = []
    append = items.append
    for row in rows:
        try:
            attempts, source, kind, name, test = heads[row[1]]
        except KeyError:
            attempts, source, kind, name, test = _head(conn, kinds, row, rows, unnumbered)
        # Positional, in the structs' field order (id, portal, destination, attempts, event).
        append(
            Item(
                row[0],
                portal,
                destination,
                attempts,
                StoredEvent(row[2], portal, row[3], source, kind, name, row[4], row[5], test),
            )
        )
    return items


def _head(
    conn: sqlite3.Connection,
    kinds: KnownKinds,
    row: Any,
    rows: list[Any],
    unnumbered: dict[int, Kind],
) -> Head:
    """A leased row's head not known by its number: read from ``kinds``, or (kind 0: an event
    stored before migration 14, or erased) from the event's columns, read for every such row
    of the batch at once into ``unnumbered``."""
    packed = row[1]
    if packed >> 32:
        return kinds.head(conn, packed)
    if not unnumbered:
        unnumbered.update(_kinds_of_events(conn, [r[2] for r in rows if r[1] >> 32 == 0]))
    source, kind, name = unnumbered[row[2]]
    return (packed >> 1) & 0x7FFFFFFF, source, kind, name, packed & 1 == 1


def _kinds_of_events(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, Kind]:
    """The kinds of events without a number (stored before migration 14, or erased), from
    their columns, by seq."""
    rows = conn.execute(
        f"SELECT seq, source, type, name FROM events WHERE seq IN {_IDS}", (id_list(seqs),)
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _lease_expired(
    conn: sqlite3.Connection, portal: str, destination: str, limit: int, now: float
) -> list[Any]:
    """Up to ``limit`` open items of the queue's expired leases, oldest lease first. A lease
    that gave up all it still held goes; one that kept some (more than ``limit``) stays
    expired, and the next lease takes them."""
    rows: list[Any] = []
    expired = conn.execute(
        "SELECT id, items FROM leases WHERE portal = ? AND destination = ? AND until <= ?"
        " ORDER BY until, id",
        (portal, destination, now),
    ).fetchall()
    for lease_id, listed in expired:
        if len(rows) >= limit:
            break
        found = conn.execute(_LEASE_AGAIN, (listed, lease_id)).fetchall()
        taken = found[: limit - len(rows)]
        rows += taken
        if len(taken) == len(found):
            conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
    return rows


_IS_LEASED = "(state = 'pending' AND lease IS NOT NULL)"
"""The row's item is leased (its ``state`` was ``leased`` before migration 12)."""
_STILL_OPEN = "(state = 'pending' OR state = 'held')"
"""``state IN`` the open states (a leased item is ``pending``), as ORs, the common case first:
~0.3k instructions per row fewer than the ``IN`` list (callgrind)."""
_FINISH_QUEUE = (
    f"UPDATE items SET state = ?, updated_at = ?, outcome = ?, lease = NULL WHERE id IN {_IDS}"
    f" AND {_STILL_OPEN} AND +queue = ?"
)
"""``+``: the queue is checked on each row found by id, never searched through an index; by its
number (migration 13), one integer rather than two strings compared per row."""


def finish(
    conn: sqlite3.Connection, ids: Sequence[int], state: str, now: float, outcome: Outcome | None
) -> int:
    """Returns how many items left an open state.

    A batch is one queue's: the items of the first id's queue are closed in one update whose
    row count is the queue's tally (no read of the rows first). Only when that did not close
    every id (some were closed already, or belong to other queues) are the rest counted by
    queue and closed (``_finish_mixed``)."""
    if not ids:
        return 0
    listed, encoded = id_list(ids), _stored_outcome(conn, outcome)
    queue = conn.execute(
        "SELECT portal, destination, queue FROM items WHERE id = ?", (ids[0],)
    ).fetchone()
    closed = 0
    if queue is not None:
        closed = conn.execute(_FINISH_QUEUE, (state, now, encoded, listed, queue[2])).rowcount
        if closed:
            _tally(conn, [(queue[0], queue[1], state, closed)])
    if queue is None or closed != len(ids):
        closed += _finish_mixed(conn, listed, state, now, encoded)
    # A batch finished whole is its lease's list; else the lease goes when it runs out.
    conn.execute("DELETE FROM leases WHERE items = ?", (listed,))
    return closed


def _stored_outcome(conn: sqlite3.Connection, outcome: Outcome | None) -> str | int | None:
    """What ``finish`` writes into ``items.outcome``: a delivered outcome's number in the
    ``outcomes`` table (added there the first time: two statements a batch, not ~85 bytes a
    row), else the outcome's JSON (migration 10)."""
    encoded = encode(outcome)
    if outcome is None or outcome.reason is not Reason.DELIVERED:
        return encoded
    row = conn.execute("SELECT id FROM outcomes WHERE body = ?", (encoded,)).fetchone()
    if row is not None:
        return int(row[0])
    return conn.execute("INSERT INTO outcomes (body) VALUES (?)", (encoded,)).lastrowid


def _finish_mixed(
    conn: sqlite3.Connection, listed: str, state: str, now: float, encoded: str | int | None
) -> int:
    """``finish`` of ids of any queues: counted by queue first, then closed.

    The queues are counted by a read before the update rather than by its ``RETURNING``:
    SQLite keeps returned rows aside until the update is done, ~1.5 us per item (measured,
    500 a batch), and a second pass over the rows the update is about to write costs less
    (the writer holds the lock in between: the same rows)."""
    closed = conn.execute(
        f"SELECT portal, destination, ?, count(*) FROM items WHERE id IN {_IDS}"
        f" AND {_STILL_OPEN} GROUP BY portal, destination",
        (state, listed),
    ).fetchall()
    if not closed:
        return 0
    conn.execute(
        "UPDATE items SET state = ?, updated_at = ?, outcome = ?, lease = NULL"
        f" WHERE id IN {_IDS} AND {_STILL_OPEN}",
        (state, now, encoded, listed),
    )
    _tally(conn, closed)
    return sum(row[3] for row in closed)


def expedite(conn: sqlite3.Connection, portal: str, destination: str, now: float) -> int:
    return conn.execute(
        f"UPDATE items SET available_at = ? WHERE queue = {QUEUE}"
        " AND state = 'pending' AND lease IS NULL AND available_at > ?",
        (now, portal, destination, now),
    ).rowcount


def requeue(conn: sqlite3.Connection, ids: Sequence[int], state: str, now: float) -> int:
    """Final items (dead letters) back to pending; returns how many moved."""
    tallies = []
    for item_id in ids:
        row = conn.execute(
            "UPDATE items SET state = 'pending', attempts = 0, available_at = ?, updated_at = ?,"
            " outcome = ?, lease = NULL WHERE id = ? AND state = ? RETURNING portal, destination",
            (now, now, _REPLAYED, item_id, state),
        ).fetchone()
        if row is not None:
            tallies.append((row[0], row[1], state, -1))
    _tally(conn, tallies)
    return len(tallies)


def retry(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    available_at: float,
    now: float,
    outcome: Outcome | None,
    count_attempt: bool = True,
) -> None:
    # Let go of their lease: due at ``available_at``, not when the lease would have run out.
    conn.execute(
        "UPDATE items SET state = 'pending', attempts = attempts + ?, available_at = ?,"
        f" updated_at = ?, outcome = ?, lease = NULL WHERE id IN {_IDS} AND {_IS_LEASED}",
        (int(count_attempt), available_at, now, encode(outcome), id_list(ids)),
    )


def move(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    state: str,
    available_at: float,
    now: float,
    outcome: Outcome | None,
    from_state: str,
) -> None:
    was = _IS_LEASED if from_state == "leased" else "state = ?"  # leased: a ``pending`` row
    conn.execute(
        "UPDATE items SET state = ?, available_at = ?, updated_at = ?,"
        f" outcome = coalesce(?, outcome), lease = NULL WHERE id IN {_IDS} AND {was}",
        (state, available_at, now, encode(outcome), id_list(ids))
        + (() if from_state == "leased" else (from_state,)),
    )


def ready_at(conn: sqlite3.Connection, portal: str, destination: str) -> float | None:
    """When the queue's next item is due: its earliest pending item not leased, or the earliest
    lease expiry."""
    due = conn.execute(
        f"SELECT min(available_at) FROM items WHERE queue = {QUEUE}"
        " AND state = 'pending' AND lease IS NULL",
        (portal, destination),
    ).fetchone()
    ends = conn.execute(
        "SELECT min(until) FROM leases WHERE portal = ? AND destination = ?",
        (portal, destination),
    ).fetchone()
    found = [float(row[0]) for row in (due, ends) if row is not None and row[0] is not None]
    return min(found) if found else None


def queue_depth(
    conn: sqlite3.Connection, portal: str, destination: str, now: float
) -> tuple[int, float]:
    """Waiting items of one queue, pending and leased, and the age of the oldest: pending ones
    read from the ``items_pending`` index alone, leased ones through the queue's leases (ids
    grow with the events, so the smallest id is the oldest item). One read of the index
    (130 ms at 1.2 M waiting items): read in parts of ids like ``counts``, it would read every
    item of the table, and a store keeps its delivered items far longer than its backlog."""
    count, oldest = conn.execute(
        "SELECT sum(n), min(m) FROM (SELECT count(*) AS n, min(id) AS m FROM items"
        " WHERE queue = (SELECT id FROM queues WHERE portal = ?1 AND destination = ?2)"
        " AND state = 'pending' AND lease IS NULL"
        " UNION ALL SELECT count(*), min(i.id) FROM leases l, json_each(l.items) j"
        " JOIN items i ON i.id = j.value WHERE l.portal = ?1 AND l.destination = ?2"
        " AND i.lease = l.id AND i.state = 'pending')",
        (portal, destination),
    ).fetchone()
    if oldest is None:
        return 0, 0.0
    row = conn.execute(
        "SELECT e.received_at FROM items i JOIN events e ON e.seq = i.event_seq WHERE i.id = ?",
        (oldest,),
    ).fetchone()
    return int(count), max(0.0, now - row[0]) if row is not None else 0.0


COUNT_PART = 20_000
"""Item ids ``counts`` reads a part at a time: cheaper than one ``GROUP BY`` over the table
(0.51 against 0.7-1.0 s at 850,000 open items)."""


def counts(conn: sqlite3.Connection) -> dict[tuple[str, str, str], int]:
    """Open items counted from the rows; accepted and final states from the tallies.

    The rows are read in parts of ``COUNT_PART`` ids; a caller reading in one transaction gets
    one snapshot (the monitoring reader paces it: ``background.py``)."""
    # each by itself: SQLite reads one end of the index for a lone min() or max(), and scans
    # the table for the two in one SELECT
    low, high = conn.execute(
        "SELECT (SELECT min(id) FROM items), (SELECT max(id) FROM items)"
    ).fetchone()
    found: dict[tuple[str, str, str], int] = {}
    for first in range(low or 1, (high or 0) + 1, COUNT_PART):
        for portal, destination, state, n in conn.execute(
            f"SELECT portal, destination, {_STATE}, count(*) FROM items"
            f" WHERE id BETWEEN ? AND ? AND state IN {_OPEN} GROUP BY 1, 2, 3",
            (first, first + COUNT_PART - 1),
        ):
            key = (portal, destination, state)
            found[key] = found.get(key, 0) + int(n)
    for portal, destination, state, n in conn.execute(
        "SELECT portal, destination, state, n FROM tallies WHERE n != 0"
    ):
        found[(portal, destination, state)] = int(n)
    return found


def record_attempts(conn: sqlite3.Connection, attempts: Sequence[Attempt]) -> None:
    """Each attempt's row lists its items (read back by ``attempts_of``); ``attempt_items``
    finds the attempts of an item (migration 11)."""
    for a in attempts:
        listed = id_list(a.item_ids)
        attempt_id = conn.execute(
            "INSERT INTO attempts (at, route, status, duration_ms, correlation_id, error, reason,"
            " category, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.at,
                a.route,
                a.status,
                a.duration_ms,
                a.correlation_id,
                a.error,
                a.reason,
                a.category,
                listed,
            ),
        ).lastrowid
        conn.execute(
            "INSERT OR IGNORE INTO attempt_items (attempt_id, item_id)"
            " SELECT ?, value FROM json_each(?)",
            (attempt_id, listed),
        )


def get_event(conn: sqlite3.Connection, seq: int) -> StoredEvent | None:
    row = conn.execute(f"SELECT {EVENT_COLS} FROM {EVENTS} WHERE e.seq = ?", (seq,)).fetchone()
    return None if row is None else event_from_row(row)


def recent_events(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        f"SELECT {EVENT_COLS} FROM {EVENTS} WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [event_from_row(r) for r in rows]


def items_where(
    conn: sqlite3.Connection, where: str, args: tuple[Any, ...], limit: int
) -> list[ItemRecord]:
    rows = conn.execute(
        f"SELECT {_ITEM_COLS}, {_SHARED_OUTCOME} FROM items WHERE {where}"
        " ORDER BY available_at, id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [
        ItemRecord(
            id=r[0],
            event_seq=r[1],
            portal=r[2],
            destination=r[3],
            state=r[4],
            attempts=r[5],
            available_at=r[6],
            updated_at=r[7],
            outcome=decode(r[8] if r[9] is None else r[9]),
        )
        for r in rows
    ]


_ITEM_IDS = msgspec.json.Decoder(tuple[int, ...])


def attempts_of(conn: sqlite3.Connection, item_ids: Sequence[int]) -> list[Attempt]:
    if not item_ids:
        return []
    marks = ",".join("?" * len(item_ids))
    rows = conn.execute(
        "SELECT a.items, a.at, a.route, a.status, a.duration_ms, a.correlation_id, a.error,"
        " a.reason, a.category FROM attempts a WHERE a.id IN (SELECT attempt_id"
        f" FROM attempt_items WHERE item_id IN ({marks})) ORDER BY a.at",
        tuple(item_ids),
    ).fetchall()
    out = []
    for r in rows:
        ids = () if r[0] is None else _ITEM_IDS.decode(r[0])
        out.append(
            Attempt(
                item_ids=ids,
                at=r[1],
                route=r[2],
                status=r[3],
                duration_ms=r[4],
                correlation_id=r[5],
                error=r[6],
                reason=None if r[7] is None else Reason(r[7]),
                category=r[8],
            )
        )
    return out


def get_meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else bytes(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: bytes) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
