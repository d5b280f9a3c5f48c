"""Touches in the debugger: a person's remembered first and last touch for the journey, and a
conversion's attribution (which touch, and why) for the event detail.

Both ask ``delivery.attribution`` and the store's touch memory, so the page shows what delivery
does; nothing here decides attribution itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from forwarder.config import Settings
from forwarder.debugger import models
from forwarder.debugger.masking import Masker
from forwarder.delivery.attribution import Attribution, Attributor, TouchReason, UsedTouch
from forwarder.events.payload import payload_of
from forwarder.storage.base import Key, StoredEvent, Touch
from forwarder.storage.roles import IdentityGraph

_DAY_S = 86400.0


def touch_view(touch: Touch, masker: Masker) -> models.Touch:
    """A remembered touch as the admin API shows it (the device masked like any identifier)."""
    return models.Touch(
        source=touch.source,
        medium=touch.medium,
        name=touch.name,
        term=touch.term,
        content=touch.content,
        click_ids=dict(touch.click_ids),
        landing_page=masker.text(touch.landing_page),
        timestamp=datetime.fromtimestamp(touch.at, UTC).isoformat(timespec="milliseconds"),
        referrer=masker.text(touch.referrer),
        kind=touch.kind.value,
        origin=touch.origin.value,
        message_id=touch.message_id,
        event_type=touch.event_type,
        event_name=touch.event_name,
        device=masker.identifier("anonymousId", touch.device),
        sender=touch.sender,
    )


def where_from(touch: Touch, masker: Masker) -> str:
    """``page event 'm-1' on device 'A' (source 'website')``, the device masked when set."""
    what = f"{touch.event_type} event {touch.message_id!r}"
    if touch.event_name:
        what = f"{touch.event_type} {touch.event_name!r} ({touch.message_id!r})"
    if touch.device is not None:
        what += f" on device {masker.identifier('anonymousId', touch.device)!r}"
    if touch.sender:
        what += f" (source {touch.sender!r})"
    return what


def _why(used: UsedTouch, which: str, window_s: float, masker: Masker) -> str:
    source = where_from(used.touch, masker)
    match used.reason:
        case TouchReason.ON_EVENT:
            reason = "carried by this event itself"
        case TouchReason.REMEMBERED:
            reason = f"remembered for this event's {used.via} from {source}"
        case TouchReason.LINKED:
            reason = (
                f"remembered for a linked {used.via} of the same person (another device or "
                f"sign-in) from {source}"
            )
    if which == "first":
        return f"{reason}; the earliest touch known for the person"
    if used.reason is TouchReason.ON_EVENT:
        return f"{reason}; a touch on the conversion is the newest evidence"
    days = window_s / _DAY_S
    return f"{reason}; the latest touch before the conversion, within the {days:g}-day window"


def attribution_view(attribution: Attribution, masker: Masker) -> models.AttributionView:
    """Which touches a conversion gets and why, in plain words."""
    notes: list[str] = []
    if attribution.outside_window is not None:
        days = attribution.window_s / _DAY_S
        latest = where_from(attribution.outside_window, masker)
        notes.append(
            f"no last touch: the latest touch ({latest}) happened more than {days:g} days "
            "before the conversion (attribution.last_touch_window_s)"
        )
    if attribution.first is None and attribution.last is None:
        notes.append("no campaign touch is known for this person before the conversion")
    return models.AttributionView(
        first=_used(attribution.first, "first", attribution.window_s, masker),
        last=_used(attribution.last, "last", attribution.window_s, masker),
        notes=notes,
    )


def _used(
    used: UsedTouch | None, which: str, window_s: float, masker: Masker
) -> models.UsedTouch | None:
    if used is None:
        return None
    return models.UsedTouch(
        touch=touch_view(used.touch, masker),
        reason=used.reason.value,
        why=masker.text(_why(used, which, window_s, masker)) or "",
    )


async def conversion_attribution(
    storage: IdentityGraph,
    settings: Settings,
    masker: Masker,
    event: StoredEvent,
    data: dict[str, Any],
) -> models.AttributionView | None:
    """The attribution a conversion (a track, or a mapped named page) gets now; None when its
    portal is gone or it was erased."""
    portal = settings.portals.get(event.portal)
    if portal is None or "erased" in data:
        return None
    if not portal.attribution.remember:
        return models.AttributionView(
            first=None,
            last=None,
            notes=[
                "touch memory is off for this portal (attribution.remember = false): "
                "only touches the event carries are sent"
            ],
        )
    attributor = Attributor(event.portal, portal.attribution, storage)
    [found] = await attributor.attribute([payload_of(data)], [event.source])
    return attribution_view(found, masker)


async def remembered(
    storage: IdentityGraph, portals: Sequence[str], keys: Sequence[Key], masker: Masker
) -> tuple[models.Touch | None, models.Touch | None] | None:
    """The earliest and latest touch remembered for any of ``keys`` (None: nothing remembered)."""
    touches = [
        t
        for portal in portals
        for memory in (await storage.touches_of(portal, keys)).values()
        for t in (memory.first, memory.last)
    ]
    if not touches:
        return None
    first = min(touches, key=lambda t: t.at)
    # Of equal times the later listed wins: each memory lists its first before its last.
    last = max(enumerate(touches), key=lambda p: (p[1].at, p[0]))[1]
    return touch_view(first, masker), touch_view(last, masker)
