"""Links this replica knows settled, so learning them again costs Redis a check per request.

Almost every event of a known visitor asserts the same link again (its userId and the email in
``context.traits``). A link is *settled* when its keys are the whole of one person, all stamped
alike, and nothing is held on them: learning it again would only move those stamps forward
together (their order, the only thing the stamps decide, stays) and release nothing
(``storage/sqlite/settled.py`` keeps the same cache for SQLite).

Replicas share one graph, so what this replica knows is only as good as its *epoch*: the
``identity_epoch`` key, which every script bumps when it changes the graph in a way that could
unsettle a link (a key joining an existing person, people merging, part of a settled person
stamped apart, a contact remapped, people erased). An append sends the epoch of this cache and
flags the groups it holds settled; its script skips them only when that epoch is still the
store's and nothing is held on their keys (holds are checked live, so holding bumps nothing),
and replies which learned groups are settled now and the epoch after it. A reply with another
epoch than the cache's starts it again from that reply.

A replica of the previous release sharing the Redis bumps nothing; while one runs (a rolling
upgrade) a link it merged may be skipped here until the next change bumps the epoch: the
stamps of that person may then be older than they would be, nothing is lost or held.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_MAX_LINKS = 100_000
"""Links kept at most; past it the cache starts again empty (forgetting only costs a learn)."""


class SettledLinks:
    """Per portal, the links (as sets of ``kind SEP value``) settled as of ``epoch``."""

    def __init__(self) -> None:
        self.epoch = -1
        """The store's ``identity_epoch`` the links were settled in (-1: none read yet)."""
        self._links: set[tuple[str, frozenset[str]]] = set()

    def __len__(self) -> int:
        return len(self._links)

    def flags(self, portal: str, groups: Sequence[Sequence[str]]) -> list[bool]:
        """Per group, whether this replica holds it settled."""
        links = self._links
        return [(portal, frozenset(kvs)) in links for kvs in groups]

    def learned(
        self, epoch: int, portal: str, groups: Sequence[Sequence[str]], settled: Iterable[int]
    ) -> None:
        """Take a script's word: ``settled`` (1-based indexes into ``groups``) are settled as
        of ``epoch``."""
        if epoch != self.epoch or len(self._links) >= _MAX_LINKS:
            self._links.clear()
            self.epoch = epoch
        for i in settled:
            self._links.add((portal, frozenset(groups[i - 1])))
