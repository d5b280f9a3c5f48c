"""Reading touches off events, and the rules that pick a conversion's first and last touch."""

from __future__ import annotations

from typing import Any

from forwarder.config import AttributionSettings
from forwarder.delivery.attribution import Attributor, TouchReason, apply
from forwarder.delivery.touches import TouchReader, epoch
from forwarder.events.payload import payload_of
from forwarder.storage.base import Touch, TouchKind, TouchMemory, TouchOrigin
from forwarder.storage.sqlite import SqliteStorage

DEFAULT = TouchReader(("click_id", "utm"))
WITH_REFERRERS = TouchReader(("click_id", "utm", "referrer"))
T0 = "2026-11-01T10:00:00.000Z"


def page(referrer: str, url: str = "https://shop.example/pricing") -> dict[str, Any]:
    context = {"page": {"url": url, "referrer": referrer}}
    return {
        "type": "page",
        "messageId": "p",
        "anonymousId": "A",
        "timestamp": T0,
        "context": context,
    }


def remembered(at: float, name: str) -> Touch:
    return Touch(
        at=at,
        kind=TouchKind.UTM,
        origin=TouchOrigin.CAMPAIGN,
        message_id=name,
        event_type="page",
        name=name,
    )


def test_plain_referrer_is_a_touch_only_when_configured() -> None:
    data = page("https://news.example/article")
    assert DEFAULT(data) == []
    [touch] = WITH_REFERRERS(data, "website")
    assert (touch.kind, touch.origin, touch.referrer) == (
        TouchKind.REFERRER,
        TouchOrigin.REFERRER,
        "https://news.example/article",
    )
    assert (touch.device, touch.sender, touch.at) == ("A", "website", epoch(T0))


def test_navigation_inside_the_site_is_no_touch() -> None:
    assert WITH_REFERRERS(page("https://shop.example/")) == []


def test_click_id_is_the_strongest_kind_of_touch() -> None:
    context = {"campaign": {"name": "spring"}, "clickIds": {"gclid": "G"}}
    data = {"type": "track", "messageId": "t", "userId": "U", "timestamp": T0, "context": context}
    [touch] = DEFAULT(data)
    assert (touch.kind, touch.name, touch.click_ids, touch.device) == (
        TouchKind.CLICK_ID,
        "spring",
        {"gclid": "G"},
        None,
    )


def test_snippet_touch_is_never_later_than_its_event() -> None:
    """A browser clock running ahead cannot make a kept touch newer than the event."""
    ahead = {"name": "spring", "timestamp": "2026-11-09T10:00:00.000Z"}
    context = {"attribution": {"firstTouch": ahead, "lastTouch": ahead}}
    data = {
        "type": "page",
        "messageId": "p",
        "anonymousId": "A",
        "timestamp": T0,
        "context": context,
    }
    [touch] = DEFAULT(data)
    assert (touch.at, touch.origin) == (epoch(T0), TouchOrigin.SNIPPET)


def decide(data: dict[str, Any], memory: dict[tuple[str, str], TouchMemory]) -> Any:
    attributor = Attributor("main", AttributionSettings(), SqliteStorage(":memory:"))
    own = {("anonymousId", "A")}
    everyone = [("anonymousId", "A"), ("userId", "U"), ("anonymousId", "B")]
    return attributor.decide(payload_of(data), DEFAULT(data), own, everyone, memory)


def test_touch_on_the_event_wins_last_touch_and_the_earliest_remembered_wins_first() -> None:
    at = epoch(T0) or 0.0
    context = {"campaign": {"name": "on-event"}}
    data = {
        "type": "track",
        "messageId": "o",
        "anonymousId": "A",
        "timestamp": T0,
        "context": context,
    }
    memory = {
        ("anonymousId", "A"): TouchMemory(
            remembered(at - 100, "own"), remembered(at - 1, "own-last")
        ),
        ("anonymousId", "B"): TouchMemory(
            remembered(at - 900, "other-device"), remembered(at, "b")
        ),
    }
    chosen = decide(data, memory)
    assert (chosen.first.touch.name, chosen.first.reason, chosen.first.via) == (
        "other-device",
        TouchReason.LINKED,
        "anonymousId",
    )
    assert (chosen.last.touch.name, chosen.last.reason) == ("on-event", TouchReason.ON_EVENT)
    context_ = apply(payload_of(data), chosen).context
    assert context_["attribution"]["firstTouch"]["name"] == "other-device"
    assert "lastTouch" not in context_["attribution"]  # the event's own stays as it was sent
    assert context_["campaign"] == {"name": "on-event"}


def test_touches_remembered_after_the_conversion_are_not_used_for_it() -> None:
    at = epoch(T0) or 0.0
    data = {"type": "track", "messageId": "o", "anonymousId": "A", "timestamp": T0}
    memory = {
        ("userId", "U"): TouchMemory(remembered(at - 50, "before"), remembered(at + 50, "after"))
    }
    chosen = decide(data, memory)
    assert (chosen.first.touch.name, chosen.last.touch.name) == ("before", "before")
    assert chosen.last.reason == TouchReason.LINKED
    assert apply(payload_of(data), chosen).context["campaign"] == {"name": "before"}
