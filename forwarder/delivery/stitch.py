"""Resolve: the best identity for each event, from the event itself and what the graph knows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forwarder.delivery.identity import Identity, choose, from_event


class Resolver:
    """Per portal: the fallback order, decided once; ``identities`` runs per batch."""

    def __init__(self, order: Sequence[str]) -> None:
        self._order = tuple(order)

    async def identities(self, events: Sequence[Mapping[str, Any]]) -> list[Identity]:
        """One identity per event (kind None when nothing usable is known yet)."""
        return [choose(from_event(data), self._order) for data in events]
