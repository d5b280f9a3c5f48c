"""The conservation check: every accepted item is accounted for, in a final or an open state.

``accepted = delivered + dead + dropped + expired + pending + leased + held``, per queue and over
every queue, from the store's ``counts()`` (whose final states and ``accepted`` are running totals
that survive purges). The engine exports the drift, the debugger shows it, the alerts fire on it;
all three ask this module.
"""

from __future__ import annotations

import msgspec

from forwarder.storage.base import FINAL_STATES, OPEN_STATES

Counts = dict[tuple[str, str, str], int]
"""Items per ``(portal, destination, state)``, plus ``accepted`` per queue."""


class Balance(msgspec.Struct, frozen=True):
    """Accepted items against those accounted for."""

    accepted: int
    """Items ever queued."""
    final: int
    """Items delivered, dead, dropped or expired."""
    open: int
    """Items pending, leased or held."""

    @property
    def drift(self) -> int:
        """Accepted items in no state (0 unless an item was lost or counted twice)."""
        return self.accepted - self.final - self.open


def balance(counts: Counts, queue: tuple[str, str] | None = None) -> Balance:
    """The balance of one ``(portal, destination)`` queue, or of every queue when None."""
    accepted = final = open_ = 0
    for (portal, destination, state), n in counts.items():
        if queue is not None and (portal, destination) != queue:
            continue
        if state == "accepted":
            accepted += n
        elif state in FINAL_STATES:
            final += n
        elif state in OPEN_STATES:
            open_ += n
    return Balance(accepted=accepted, final=final, open=open_)
