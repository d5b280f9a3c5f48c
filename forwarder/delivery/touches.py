"""Touches: the campaign visits an event carries, read once into ``Touch`` values.

Three places on an event say where a person came from: ``context.attribution`` (the first and
last touch the browser script keeps and sends with every event), ``context.campaign`` with
``context.clickIds`` (what any sender saw on this visit), and ``context.page.referrer`` (a
plain referrer from another site, counted only when configured). A touch must carry evidence
of a counted kind (click ids, UTM fields, a referrer); its time is when the visit happened, never
later than the event itself (a browser clock running ahead cannot make a touch newer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from forwarder.events.payload import Payload, as_dict
from forwarder.identity.keys import text_id
from forwarder.storage.base import Touch, TouchKind, TouchOrigin

UTM_FIELDS = ("source", "medium", "name", "term", "content")
_STRONGEST_FIRST = (TouchKind.CLICK_ID, TouchKind.UTM, TouchKind.REFERRER)


def epoch(value: object) -> float | None:
    """An ISO-8601 time (as events carry them) in seconds since the epoch, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without a zone is not a point in time
    return moment.timestamp()


def _mapping(value: object) -> Mapping[str, Any]:
    # Decoded JSON is made of dicts, and most fields read here are absent: both are answered
    # before the ABC check of Mapping, which is slow (this runs for every event ingested).
    if type(value) is dict:
        return value
    return value if value is not None and isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _other_site(referrer: str | None, page: str | None) -> bool:
    """A referrer from another host than the page's (internal navigation is no touch)."""
    if referrer is None:
        return False
    host = urlsplit(referrer).hostname
    return bool(host) and host != (urlsplit(page).hostname if page else None)


def touch_fingerprint(touch: Touch) -> tuple[object, ...]:
    """What makes two touches the same visit (not which event carried it)."""
    clicks = tuple(sorted(touch.click_ids.items()))
    campaign = tuple(getattr(touch, f) for f in UTM_FIELDS)
    return (touch.at, touch.kind, campaign, clicks, touch.landing_page, touch.referrer)


class TouchReader:
    """Which kinds count, decided once; ``__call__`` reads the touches of one event."""

    def __init__(self, counted: Iterable[str]) -> None:
        wanted = set(counted)
        self._counted = tuple(k for k in _STRONGEST_FIRST if k.value in wanted)
        self._referrers = TouchKind.REFERRER in self._counted

    @property
    def counts_referrers(self) -> bool:
        """Whether a page view's plain referrer may be a touch."""
        return self._referrers

    def __call__(self, data: Mapping[str, Any], sender: str | None = None) -> list[Touch]:
        """The touches ``data`` carries, oldest first (empty for most events); ``sender`` is the
        configured source that sent it."""
        context = data.get("context")
        if type(context) is not dict:  # a dict, or absent: answered without a call
            context = _mapping(context)
        if not context:
            return []
        kept = context.get("attribution")
        if kept is not None:
            kept = _mapping(kept)
        campaign = "campaign" in context or "clickIds" in context
        if not (kept or campaign or (self._referrers and data.get("type") == "page")):
            return []  # the common case: nothing to read (and no timestamp to parse)
        return self._read(data, context, kept, campaign, sender)

    def of_payload(self, payload: Payload, sender: str | None = None) -> list[Touch]:
        """``__call__`` of a leased event (delivery's typed ``Payload``)."""
        context = payload.context
        if type(context) is not dict:  # a dict, or absent: answered without a call
            context = _mapping(context)
        if not context:
            return []
        kept = context.get("attribution")
        if kept is not None:
            kept = _mapping(kept)
        campaign = "campaign" in context or "clickIds" in context
        if not (kept or campaign or (self._referrers and payload.type == "page")):
            return []  # the common case: nothing to read (and no timestamp to parse)
        # The rare event with touches: read as the dict of its fields (every top-level key
        # ``_read`` looks up is one).
        return self._read(as_dict(payload), context, kept, campaign, sender)

    def _read(
        self,
        data: Mapping[str, Any],
        context: Mapping[str, Any],
        kept: Mapping[str, Any] | None,
        campaign: bool,
        sender: str | None,
    ) -> list[Touch]:
        """``__call__`` for an event that carries something to read."""
        event_at = epoch(data.get("timestamp"))
        if event_at is None:
            return []
        page = _mapping(context.get("page"))
        found: list[Touch] = []
        if kept:
            found = self._kept(data, kept, event_at, sender)
        elif campaign:
            raw = {
                **_mapping(context.get("campaign")),
                "clickIds": context.get("clickIds"),
                "landingPage": page.get("url"),
                "referrer": page.get("referrer"),
            }
            touch = self._touch(data, raw, TouchOrigin.CAMPAIGN, event_at, sender)
            if touch is not None:
                found.append(touch)
        if not found and self._referrer_of(data):
            raw = {"landingPage": page.get("url"), "referrer": page.get("referrer")}
            touch = self._touch(data, raw, TouchOrigin.REFERRER, event_at, sender)
            if touch is not None:
                found.append(touch)
        return sorted(found, key=lambda t: t.at)

    def _kept(
        self, data: Mapping[str, Any], kept: Mapping[str, Any], event_at: float, sender: str | None
    ) -> list[Touch]:
        """The first and last touch the browser script sent (``context.attribution``)."""
        found: list[Touch] = []
        first, last = kept.get("firstTouch"), kept.get("lastTouch")
        # Until a second campaign visit the script sends one touch as both: read it once.
        for raw in (first,) if first == last else (first, last):
            touch = self._touch(data, _mapping(raw), TouchOrigin.SNIPPET, event_at, sender)
            if touch is not None and touch not in found:
                found.append(touch)
        return found

    def _referrer_of(self, data: Mapping[str, Any]) -> bool:
        """A page view's referrer may be its touch (when referrers are counted)."""
        return self._referrers and data.get("type") == "page"

    def _kind(
        self, clicks: bool, utm: bool, referrer: str | None, landing: str | None
    ) -> TouchKind | None:
        """The strongest counted kind of evidence (URLs are parsed only when it comes to that)."""
        for kind in self._counted:
            if kind is TouchKind.CLICK_ID and clicks:
                return kind
            if kind is TouchKind.UTM and utm:
                return kind
            if kind is TouchKind.REFERRER and _other_site(referrer, landing):
                return kind
        return None

    def _touch(
        self,
        data: Mapping[str, Any],
        raw: Mapping[str, Any],
        origin: TouchOrigin,
        event_at: float,
        sender: str | None,
    ) -> Touch | None:
        utm = {f: v for f in UTM_FIELDS if (v := _text(raw.get(f))) is not None}
        clicks = {str(k): str(v) for k, v in _mapping(raw.get("clickIds")).items() if v}
        landing, referrer = _text(raw.get("landingPage")), _text(raw.get("referrer"))
        kind = self._kind(bool(clicks), bool(utm), referrer, landing)
        if kind is None:
            return None
        at = epoch(raw.get("timestamp"))
        name = data.get("event") or data.get("name")
        return Touch(
            at=event_at if at is None else min(at, event_at),
            kind=kind,
            origin=origin,
            message_id=str(data.get("messageId") or ""),
            event_type=str(data.get("type") or ""),
            event_name=name if isinstance(name, str) else None,
            click_ids=clicks,
            referrer=referrer,
            landing_page=landing,
            device=text_id(data.get("anonymousId")),
            sender=sender,
            **utm,
        )
