"""The identity graph's answers by heart: ``people_of`` without SQL for keys asked before.

Delivery asks for the people of every key of every batch (the same few thousand visitors come
back batch after batch), and the join that answers it was a quarter of the writer's time per
delivered event. An answer changes only when the graph does, and every change to the graph
bumps the ``identity_epoch`` row of ``meta`` in its own transaction (``settled.py``: ``learn``,
``link``, remapped contacts, erasure, in this process or another sharing the file). So an answer
read at epoch *e* is exact in any transaction that reads epoch *e*; this reads the row in the
transaction that uses the answers and forgets everything when it moved.

On the writer's connection, the writer's own changes are followed without forgetting all: a
``learn`` forgets the answers of every key of the people it touched (their members, merges and
stamps: the order of an answer), then ``changed`` takes its bump as long as nobody else bumped
in between. A group that rolls back forgets everything (its answers may hold what it undid).
A migration that rewrites ``identities`` must bump the epoch too (none does today).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from forwarder.storage.base import Key
from forwarder.storage.sqlite import identity
from forwarder.storage.sqlite.settled import read_epoch

MAX_KEYS = 10_000
"""Answers kept at most (~4.5 MB of two-key people, measured: the 1,000,000-event backlog's RSS
must stay under 150 MB); past it the cache starts again empty (forgetting costs a read)."""


class KnownPeople:
    """Per (portal, key): the key's person's keys, least recently seen first; ``()`` when the
    graph does not know the key (a known key is always among its person's keys)."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, Key], tuple[Key, ...]] = {}
        self._epoch = -1
        """The ``identity_epoch`` the answers are valid for (-1: not read yet)."""

    def __len__(self) -> int:
        return len(self._answers)

    def people_of(
        self, conn: sqlite3.Connection, portal: str, keys: Sequence[Key]
    ) -> dict[Key, list[Key]]:
        """``identity.people_of``, reading only the keys without an answer (call inside a
        transaction: the epoch and the answers read must be of one snapshot)."""
        epoch = read_epoch(conn)
        if epoch != self._epoch:
            self._answers.clear()
            self._epoch = epoch
        answers = self._answers
        found: dict[Key, list[Key]] = {}
        missing: list[Key] = []
        for key in dict.fromkeys(keys):
            members = answers.get((portal, key))
            if members is None:
                missing.append(key)
            elif members:
                found[key] = list(members)
        if missing:
            read = identity.people_of(conn, portal, missing)
            if len(answers) + len(missing) > MAX_KEYS:
                answers.clear()
            for key in missing:
                answers[(portal, key)] = tuple(read.get(key, ()))
            found.update(read)
        return found

    def forget(self, portal: str, keys: Iterable[Key]) -> None:
        """Forget the answers of ``keys`` (every key of a person whose keys changed)."""
        answers = self._answers
        for key in keys:
            answers.pop((portal, key), None)

    def changed(self, epoch: int) -> None:
        """The writer bumped the epoch to ``epoch`` after forgetting what its change touched:
        the other answers stay valid unless someone else bumped it since they were read."""
        if epoch != self._epoch + 1:
            self._answers.clear()
        self._epoch = epoch

    def clear(self) -> None:
        self._answers.clear()

    def reset(self) -> None:
        """Forget everything, the epoch too (a transaction that changed either rolled back)."""
        self._answers.clear()
        self._epoch = -1
