"""Links the writer already knows by heart, so learning them again costs no SQL.

Almost every event of a known visitor asserts the same link again (its userId and the email in
``context.traits``). Learning a link again changes the graph only when it is not *settled*. A
link is settled when its keys are the whole of one person, all stamped at once by learning
exactly that link, and nothing of that person is held: learning it again would only move those
stamps forward together (their order, the only thing the stamps decide, stays) and release
nothing.

What unsettles a link, and how this forgets it (all on the writer thread, in commit order):

* learning another link that shares a key with it (a merge, a new key, a new stamp order);
* holding an item on one of its keys (learning the link again would release the item);
* a merge, deletion or erasure from HubSpot or an operator (the whole cache is forgotten);
* any of these done by another process sharing the file (a delivery process holds items): each
  bumps the ``identity_epoch`` row of ``meta`` in its own transaction, and the writer reads that
  row in the transaction that would use the cache, so it is never trusted past a change it has
  not seen. A restart begins with an empty cache.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from forwarder.storage.base import Key

_EPOCH_KEY = "identity_epoch"
_NONE: frozenset[frozenset[Key]] = frozenset()
_MAX_LINKS = 100_000
"""Links kept at most; past it the cache starts again empty (forgetting only costs a learn)."""


class SettledLinks:
    """Per portal, the settled links (as key sets), with the epoch they were settled in."""

    def __init__(self) -> None:
        self._links: dict[str, set[frozenset[Key]]] = {}
        """Per portal, its settled links."""
        self._count = 0
        self._by_key: dict[tuple[str, Key], list[frozenset[Key]]] = {}
        self._epoch = -1
        """The ``identity_epoch`` this cache is valid for (-1: not read yet)."""

    def __len__(self) -> int:
        return self._count

    def check(self, conn: sqlite3.Connection) -> None:
        """Forget everything when another process changed the graph or its holds since the
        cache was last checked (call inside the transaction that then uses the cache)."""
        epoch = read_epoch(conn)
        if epoch != self._epoch:
            self.clear()
            self._epoch = epoch

    def settled(self, portal: str, keys: frozenset[Key]) -> bool:
        """Whether learning ``keys`` again would change nothing but their stamps."""
        return keys in self.of(portal)

    def of(self, portal: str) -> AbstractSet[frozenset[Key]]:
        """The settled links of ``portal`` (``settled`` of many links, without a call each);
        valid until this cache next changes."""
        return self._links.get(portal) or _NONE

    def add(self, portal: str, keys: frozenset[Key]) -> None:
        if self._count >= _MAX_LINKS:
            self.clear()
        links = self._links.setdefault(portal, set())
        if keys in links:
            return
        links.add(keys)
        self._count += 1
        for key in keys:
            self._by_key.setdefault((portal, key), []).append(keys)

    def forget(self, portal: str, keys: Iterable[Key]) -> None:
        """Forget every settled link holding one of ``keys``."""
        links = self._links.get(portal)
        for key in keys:
            for gone in self._by_key.pop((portal, key), ()):
                if links is not None and gone in links:
                    links.discard(gone)
                    self._count -= 1

    def clear(self) -> None:
        self._links.clear()
        self._by_key.clear()
        self._count = 0

    def reset(self) -> None:
        """Forget everything, the epoch too (a transaction that changed either rolled back)."""
        self.clear()
        self._epoch = -1

    def changed(self, conn: sqlite3.Connection) -> int:
        """This process changed the graph or its holds (and forgot what that unsettles): bump
        the epoch in the caller's transaction, so other processes sharing the file forget
        theirs. Ours stays valid unless someone else bumped it since we last looked. Returns
        the new epoch (for the writer's ``people_of`` answers, ``people.py``)."""
        epoch = bump_epoch(conn)
        if epoch != self._epoch + 1:
            self.clear()
        self._epoch = epoch
        return epoch


def read_epoch(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_EPOCH_KEY,)).fetchone()
    return 0 if row is None else int(row[0])


def bump_epoch(conn: sqlite3.Connection) -> int:
    """Another change to the identity graph or the holds, for processes caching settled links."""
    row = conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, 1)"
        " ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
        (_EPOCH_KEY,),
    ).fetchone()
    return int(row[0])
