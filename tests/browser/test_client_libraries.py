"""Segment's analytics.js and RudderStack's v3 SDK, unchanged, in Chromium against the forwarder.

Both load from their npm packages (``tests/browser/libraries``), served by the test site with
their settings inline; every request they make goes to the forwarder or the site, and none
may fail. The conversions must reach the built-in HubSpot sandbox with the identify's email.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from tests.browser import libraries
from tests.browser.conftest import Forwarder, Site, chromium_missing, wait_for
from tests.support import BROWSER_KEY

T = TypeVar("T")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
    pytest.mark.skipif(libraries.npm_missing() is not None, reason=libraries.npm_missing() or ""),
]


@pytest.fixture(scope="module", autouse=True)
def published(site: Site) -> None:
    libraries.install()
    libraries.publish(site.root)


class Watched:
    """A page and every request of it that failed or was answered with an error."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.failed: list[str] = []
        self.sent: list[str] = []
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", self._answered)
        page.on("request", lambda r: self.sent.append(f"{r.method} {r.url}"))

    def wait_for(self, probe: Callable[[], T | None], what: str, timeout_s: float = 10.0) -> T:
        """Poll ``probe`` inside Playwright calls, so the page's events are recorded meanwhile."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
            self.page.wait_for_timeout(50)

    def posts_to(self, forwarder: Forwarder) -> list[str]:
        """The paths the page posted to on the forwarder."""
        return [
            url.removeprefix(f"POST {forwarder.url}").split("?")[0]
            for url in self.sent
            if url.startswith(f"POST {forwarder.url}")
        ]

    def _answered(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url}: {response.status}")


@pytest.fixture
def watched(context: Any) -> Watched:
    return Watched(context.new_page())


def sandbox_events(forwarder: Forwarder, name: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{forwarder.url}/sandbox/_sandbox/events", params={"eventName": name})
    answer.raise_for_status()
    received: list[dict[str, Any]] = answer.json()["received"].get(name, [])
    return received


def unique(prefix: str) -> tuple[str, str, str]:
    """A user id, email and event name no other test uses."""
    tag = uuid.uuid4().hex[:8]
    return f"user-{tag}", f"{tag}@example.com", f"{prefix} {tag}"


def all_three(events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return events if len(events) >= 3 else None


def conversion_name(event: str) -> str:
    return "pe123456_" + event.lower().replace(" ", "_")


def calls(user: str, email: str, event: str, client: str = "analytics") -> str:
    """The page's script: a page view, who the visitor is, then the conversion."""
    return (
        f"{client}.page();"
        f"{client}.identify('{user}', {{email: '{email}'}});"
        f"{client}.track('{event}', {{revenue: 42}});"
    )


@pytest.mark.parametrize(
    ("strategy", "paths"),
    [
        ({}, {"/v1/p", "/v1/i", "/v1/t"}),
        ({"strategy": "batching", "config": {"size": 10, "timeout": 100}}, {"/v1/b"}),
    ],
    ids=["per-event", "batching"],
)
def test_analytics_js_delivers_page_identify_and_track_to_hubspot(
    watched: Watched,
    site: Site,
    forwarder: Forwarder,
    strategy: dict[str, Any],
    paths: set[str],
) -> None:
    user, email, event = unique("Ajs Purchase")
    segment = {"deliveryStrategy": strategy} if strategy else {}
    html = libraries.analytics_next_page(
        forwarder.url, BROWSER_KEY, segment, calls(user, email, event), {"flushTimer": 50}
    )
    watched.page.goto(site.add(f"/ajs/{user}.html", html))

    delivered = watched.wait_for(
        lambda: sandbox_events(forwarder, conversion_name(event)), what="the conversion"
    )
    [track] = forwarder.named(event)
    stored = forwarder.events(track["anonymousId"])
    assert [e["type"] for e in stored] == ["page", "identify", "track"]
    assert track["userId"] == user
    assert [e["email"] for e in delivered] == [email]
    watched.wait_for(lambda: "/v1/m" in watched.posts_to(forwarder), what="the metrics post")
    assert set(watched.posts_to(forwarder)) == paths | {"/v1/m"}
    assert forwarder.events(track["anonymousId"]) == stored  # the metrics were not stored
    assert watched.failed == []


def test_analytics_js_event_tracked_as_the_page_closes_is_delivered(
    watched: Watched, site: Site, forwarder: Forwarder
) -> None:
    """Batching holds events for a minute here, so only the flush on page hide can send it."""
    user, email, event = unique("Ajs Closing")
    batching = {"strategy": "batching", "config": {"size": 100, "timeout": 60_000}}
    html = libraries.analytics_next_page(
        forwarder.url, BROWSER_KEY, {"deliveryStrategy": batching}, "window.ready = true;"
    )
    watched.page.goto(site.add(f"/ajs-close/{user}.html", html))
    watched.page.evaluate(f"analytics.identify('{user}', {{email: '{email}'}})")
    watched.page.evaluate(f"analytics.track('{event}')")
    watched.page.wait_for_timeout(200)
    assert forwarder.named(event) == []

    watched.page.close(run_before_unload=True)

    delivered = wait_for(
        lambda: sandbox_events(forwarder, conversion_name(event)), what="the conversion"
    )
    assert [e["email"] for e in delivered] == [email]
    assert watched.failed == []


@pytest.mark.parametrize(
    ("options", "paths"),
    [
        ({}, {"/v1/page", "/v1/identify", "/v1/track"}),
        (
            {"queueOptions": {"batch": {"enabled": True, "maxItems": 10, "flushInterval": 100}}},
            {"/v1/batch"},
        ),
        (
            {"useBeacon": True, "beaconQueueOptions": {"flushQueueInterval": 100}},
            {"/beacon/v1/batch"},
        ),
    ],
    ids=["xhr", "xhr-batching", "beacon"],
)
def test_rudderstack_sdk_delivers_page_identify_and_track_to_hubspot(
    watched: Watched,
    site: Site,
    forwarder: Forwarder,
    options: dict[str, Any],
    paths: set[str],
) -> None:
    """``configUrl`` is the forwarder too, so nothing goes to RudderStack's control plane."""
    user, email, event = unique("Rs Purchase")
    html = libraries.rudderstack_page(
        forwarder.url, BROWSER_KEY, options, calls(user, email, event, "rs")
    )
    watched.page.goto(site.add(f"/rs/{user}.html", html))

    delivered = watched.wait_for(
        lambda: sandbox_events(forwarder, conversion_name(event)), what="the conversion"
    )
    [track] = forwarder.named(event)
    # Per-event requests race each other: the page view may land after the track.
    stored = watched.wait_for(
        lambda: all_three(forwarder.events(track["anonymousId"])), what="all three calls"
    )
    assert sorted(e["type"] for e in stored) == ["identify", "page", "track"]
    assert track["userId"] == user
    assert [e["email"] for e in delivered] == [email]
    assert set(watched.posts_to(forwarder)) == paths
    assert watched.failed == []
