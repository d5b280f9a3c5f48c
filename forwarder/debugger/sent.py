"""What was sent to HubSpot for an event: each destination's request input, rebuilt from the
stored event by the destination itself (without side effects), secrets scrubbed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from forwarder.debugger.masking import Masker
from forwarder.debugger.models import SentInput
from forwarder.delivery.destinations import Drop, Hold, Prepared, Ready
from forwarder.delivery.engine import Engine
from forwarder.storage.base import Item, ItemRecord, StoredEvent
from forwarder.storage.outcomes import describe


class _Previews(Protocol):
    route: str

    async def preview(self, items: Sequence[Item]) -> list[Prepared]: ...


def _why(prepared: Prepared) -> str:
    match prepared:
        case Ready(outcome=outcome):
            return describe(outcome) or "sent as mapped"
        case Hold(notes=notes):
            return f"nothing sent yet: held ({'; '.join(notes)})"
        case Drop(reason=reason):
            return f"nothing sent: dropped ({reason})"
    return ""


async def sent_inputs(
    engine: Engine, masker: Masker, event: StoredEvent, items: Sequence[ItemRecord]
) -> list[SentInput]:
    """One entry per delivery item whose destination can show its input."""
    out = []
    for record in items:
        worker = engine.workers.get((record.portal, record.destination))
        destination: Any = worker.destination if worker is not None else None
        if destination is None or not hasattr(destination, "preview"):
            continue
        previews: _Previews = destination
        item = Item(record.id, record.portal, record.destination, record.attempts, event)
        found = [p for p in await previews.preview([item]) if p.item.id == record.id]
        ready = next((p for p in found if isinstance(p, Ready) and p.input is not None), None)
        body = masker.payload(msgspec.to_builtins(ready.input)) if ready is not None else None
        note = _why(ready or found[0]) if found else "nothing to send"
        out.append(
            SentInput(
                destination=record.destination,
                route=previews.route,
                input=body,
                note=masker.text(note) or "",
            )
        )
    return out
