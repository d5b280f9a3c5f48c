"""Dedup keys of the SQLite backend: an in-memory index over the events table.

The events table is the durable record of every key (portal, messageId, received_at). A B-tree
keyed by messageIds, which are random, costs a random page write per event at every commit;
measured, that was half of a durable append (``benchmarks/RESULTS.md``). So the index lives in
memory, is rebuilt from the events of the last window when the file is opened, and is only
changed after the transaction that stored its events has committed.

Keys are 64-bit hashes of (portal, messageId), 103 bytes each in memory (a portal at HubSpot's
30 million events a month holds about a million in a one-day window; rebuilding them takes about
8 s). A hash hit is confirmed against the stored event, so a collision can never drop an event.
The one process that opens the file is the only writer (see ``release_leases``), so the index
cannot go stale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

SEQ_SHIFT = 42
_MS_MASK = (1 << SEQ_SHIFT) - 1
"""A value packs ``seq << 42 | seen_at in ms``: 42 bits of milliseconds last until 2109."""


def seen_value(seq: int, seen_at: float) -> int:
    """The packed index value of an event accepted at ``seen_at``."""
    return seq << SEQ_SHIFT | _ms(seen_at)


def key_of(portal: str, message_id: str) -> int:
    """The index key of a messageId in a portal (stable within one process only)."""
    return hash((portal, message_id))


_SHARDS = 256
_SHARD = _SHARDS - 1


class SeenKeys:
    """messageIds seen within the dedup window: key -> (seq, seen_at). Writer thread only.

    Kept in 256 dictionaries by the key's low bits: growing one dictionary of a million keys
    rehashes it all at once (~100 ms holding the GIL, a stall of every request), and so did
    dropping expired keys; a shard is small enough for either to take a millisecond.
    """

    def __init__(self) -> None:
        self._shards: list[dict[int, int]] = [{} for _ in range(_SHARDS)]

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __contains__(self, key: int) -> bool:
        return key in self._shards[key & _SHARD]

    def get(self, key: int) -> tuple[int, float] | None:
        """(seq, seen_at) of the key's last accepted event, or None."""
        packed = self._shards[key & _SHARD].get(key)
        if packed is None:
            return None
        return packed >> SEQ_SHIFT, (packed & _MS_MASK) / 1000.0

    def remember(self, entries: Iterable[tuple[int, int]]) -> None:
        """Record committed (key, ``seen_value(seq, seen_at)``) entries."""
        shards = self._shards
        for key, value in entries:
            shards[key & _SHARD][key] = value

    def forget_before(self, cutoff: float, part: int = 0, parts: int = 1) -> int:
        """Drop keys seen before ``cutoff`` (from shards ``part`` of ``parts``); how many."""
        limit = _ms(cutoff)
        gone = 0
        for index in range(part, _SHARDS, parts):
            shard = self._shards[index]
            kept = {k: v for k, v in shard.items() if v & _MS_MASK >= limit}
            gone += len(shard) - len(kept)
            self._shards[index] = kept
        return gone

    def load(self, conn: sqlite3.Connection, window_s: float) -> None:
        """Rebuild from the events of the last ``window_s`` before the newest one.

        Newest first, so a key accepted again after its window keeps its latest event. The
        window is counted back from the newest event rather than from the clock: after a long
        stop the keys are expired by the first append's own check, and a test clock works too.
        """
        shards: list[dict[int, int]] = [{} for _ in range(_SHARDS)]
        cutoff: int | None = None
        rows = conn.execute(
            "SELECT seq, portal, message_id, received_at FROM events ORDER BY seq DESC"
        )
        for seq, portal, message_id, received_at in rows:
            ms = _ms(received_at)
            if cutoff is None:
                cutoff = ms - _ms(window_s) - 60_000  # a minute of slack for clock steps
            elif ms < cutoff:
                break
            key = key_of(portal, message_id)
            shards[key & _SHARD].setdefault(key, seen_value(seq, received_at))
        self._shards = shards


def same_event(conn: sqlite3.Connection, seq: int, portal: str, message_id: str) -> bool:
    """Whether the stored event ``seq`` has this portal and messageId (confirms a hash hit)."""
    row = conn.execute("SELECT portal, message_id FROM events WHERE seq = ?", (seq,)).fetchone()
    return row is not None and row[0] == portal and row[1] == message_id


def _ms(seconds: float) -> int:
    return max(0, min(_MS_MASK, int(seconds * 1000.0)))
