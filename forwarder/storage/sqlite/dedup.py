"""Dedup keys of the SQLite backend: an in-memory index over the events table.

The events table is the durable record of every key (portal, messageId, received_at). A B-tree
keyed by messageIds, which are random, costs a random page write per event at every commit;
measured, that was half of a durable append (``benchmarks/RESULTS.md``). So the index lives in
memory, is rebuilt from the events of the last window when the file is opened, and is only
changed after the transaction that stored its events has committed.

Keys are 64-bit hashes of (portal, messageId), about 25 bytes each in memory (a portal at
HubSpot's 30 million events a month holds about a million in a one-day window). A hash hit is
confirmed against the stored event, so a collision can never drop an event. The one process
that appends to the file is the only writer of events (see ``release_leases``), so the index
cannot go stale.
"""

from __future__ import annotations

import sqlite3
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence

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
_COMPACT_AT = 512
"""New keys a shard gathers in its dictionary before they are folded into its sorted arrays."""


class _Shard:
    """One shard: the newest keys in a dictionary, older ones in three parallel sorted arrays
    (key, seq, ms: 24 bytes a key instead of ~100 in a dictionary of Python ints)."""

    __slots__ = ("keys", "ms", "recent", "seqs")

    def __init__(self) -> None:
        self.recent: dict[int, int] = {}
        self.keys = array("q")
        self.seqs = array("q")
        self.ms = array("q")

    def __len__(self) -> int:
        return len(self.keys) + sum(1 for key in self.recent if self._find(key) < 0)

    def _find(self, key: int) -> int:
        keys = self.keys
        at = bisect_left(keys, key)
        return at if at < len(keys) and keys[at] == key else -1

    def get(self, key: int) -> tuple[int, int] | None:
        packed = self.recent.get(key)
        if packed is not None:
            return packed >> SEQ_SHIFT, packed & _MS_MASK
        at = self._find(key)
        return None if at < 0 else (self.seqs[at], self.ms[at])

    def compact(self) -> None:
        """Fold the dictionary into the arrays (a dictionary entry is newer: it wins).

        Each new key's place is found by bisection and the runs of old keys between them are
        copied as slices (memcpy), so a fold costs about the same whatever the shard's size.
        Sorting the whole shard again made every key dearer as the index grew: ~1 us a key
        remembered at 100,000 keys, ~4-6 us at a million (a day of a busy portal).
        """
        keys, seqs, mss = self.keys, self.seqs, self.ms
        size = len(keys)
        out_keys, out_seqs, out_ms = array("q"), array("q"), array("q")
        at = 0
        for key, packed in sorted(self.recent.items()):
            to = bisect_left(keys, key, at)
            if to > at:
                out_keys += keys[at:to]
                out_seqs += seqs[at:to]
                out_ms += mss[at:to]
            out_keys.append(key)
            out_seqs.append(packed >> SEQ_SHIFT)
            out_ms.append(packed & _MS_MASK)
            at = to + 1 if to < size and keys[to] == key else to  # the old entry is replaced
        out_keys += keys[at:]
        out_seqs += seqs[at:]
        out_ms += mss[at:]
        self.keys, self.seqs, self.ms = out_keys, out_seqs, out_ms
        self.recent = {}

    def forget_before(self, limit: int) -> int:
        before = len(self.keys) + len(self.recent)
        self.recent = {k: v for k, v in self.recent.items() if v & _MS_MASK >= limit}
        mss = self.ms
        kept = [i for i in range(len(mss)) if mss[i] >= limit]
        if len(kept) != len(mss):
            self._set(self.keys, self.seqs, mss, kept)
        return before - len(self.keys) - len(self.recent)

    def _set(
        self, keys: Sequence[int], seqs: Sequence[int], mss: Sequence[int], kept: list[int]
    ) -> None:
        self.keys = array("q", [keys[i] for i in kept])
        self.seqs = array("q", [seqs[i] for i in kept])
        self.ms = array("q", [mss[i] for i in kept])


class SeenKeys:
    """messageIds seen within the dedup window: key -> (seq, seen_at). Writer thread only.

    Kept in 256 shards by the key's low bits, each a small dictionary of the newest keys over
    sorted arrays of the rest: a million keys take ~25 MB rather than ~100 MB, and neither
    folding new keys in nor dropping expired ones ever touches more than one small shard (one
    dictionary of a million keys rehashed all at once took ~100 ms holding the GIL).
    """

    def __init__(self) -> None:
        self._shards = [_Shard() for _ in range(_SHARDS)]

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __contains__(self, key: int) -> bool:
        shard = self._shards[key & _SHARD]  # asked for every event appended: no tuple made
        return key in shard.recent or shard._find(key) >= 0

    def held(self, keys: Iterable[int]) -> set[int]:
        """Those of ``keys`` the index holds (``in`` of each, in one call: every key appended
        is asked, and a call and its look-ups per key cost more than the answer)."""
        shards = self._shards
        found: set[int] = set()
        for key in keys:
            shard = shards[key & _SHARD]
            if key in shard.recent:
                found.add(key)
                continue
            sorted_keys = shard.keys
            at = bisect_left(sorted_keys, key)
            if at < len(sorted_keys) and sorted_keys[at] == key:
                found.add(key)
        return found

    def get(self, key: int) -> tuple[int, float] | None:
        """(seq, seen_at) of the key's last accepted event, or None."""
        found = self._shards[key & _SHARD].get(key)
        return None if found is None else (found[0], found[1] / 1000.0)

    def remember(self, entries: Iterable[tuple[int, int]]) -> None:
        """Record committed (key, ``seen_value(seq, seen_at)``) entries."""
        shards = self._shards
        for key, value in entries:
            shard = shards[key & _SHARD]
            shard.recent[key] = value
            if len(shard.recent) >= _COMPACT_AT:
                shard.compact()

    def forget_before(self, cutoff: float, part: int = 0, parts: int = 1) -> int:
        """Drop keys seen before ``cutoff`` (from shards ``part`` of ``parts``); how many."""
        limit = _ms(cutoff)
        return sum(self._shards[i].forget_before(limit) for i in range(part, _SHARDS, parts))

    def load(self, conn: sqlite3.Connection, window_s: float) -> None:
        """Rebuild from the events of the last ``window_s`` before the newest one.

        Newest first, so a key accepted again after its window keeps its latest event. The
        window is counted back from the newest event rather than from the clock: after a long
        stop the keys are expired by the first append's own check, and a test clock works too.
        Gathered straight into arrays, so a million keys never sit in dictionaries at once.
        """
        gathered = [(array("q"), array("q"), array("q")) for _ in range(_SHARDS)]
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
            keys, seqs, mss = gathered[key & _SHARD]
            keys.append(key)
            seqs.append(seq)
            mss.append(ms)
        shards = []
        for keys, seqs, mss in gathered:
            shard = _Shard()
            # Stable sort by key: of equal keys the first gathered (the newest) comes first.
            order = sorted(range(len(keys)), key=keys.__getitem__)
            kept = [i for n, i in enumerate(order) if n == 0 or keys[order[n - 1]] != keys[i]]
            shard._set(keys, seqs, mss, kept)
            shards.append(shard)
        self._shards = shards


def same_event(conn: sqlite3.Connection, seq: int, portal: str, message_id: str) -> bool:
    """Whether the stored event ``seq`` has this portal and messageId (confirms a hash hit)."""
    row = conn.execute("SELECT portal, message_id FROM events WHERE seq = ?", (seq,)).fetchone()
    return row is not None and row[0] == portal and row[1] == message_id


def _ms(seconds: float) -> int:
    return max(0, min(_MS_MASK, int(seconds * 1000.0)))
