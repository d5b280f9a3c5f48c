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
    # Per-event requests run concurrently, so they may be stored in any order.
    assert sorted(e["type"] for e in stored) == ["identify", "page", "track"]
    assert track["userId"] == user
    assert [e["email"] for e in delivered] == [email]
    watched.wait_for(lambda: "/v1/m" in watched.posts_to(forwarder), what="the metrics post")
    assert set(watched.posts_to(forwarder)) == paths | {"/v1/m"}
    assert forwarder.events(track["anonymousId"]) == stored  # the metrics were not stored
    assert watched.failed == []


def test_analytics_js_reads_its_settings_from_the_forwarder_instead_of_segments_cdn(
    watched: Watched, site: Site, forwarder: Forwarder
) -> None:
    user, email, event = unique("Ajs Settings")
    html = libraries.analytics_next_page(
        forwarder.url, BROWSER_KEY, {}, calls(user, email, event), settings_from_forwarder=True
    )
    watched.page.goto(site.add(f"/ajs-settings/{user}.html", html))

    delivered = watched.wait_for(
        lambda: sandbox_events(forwarder, conversion_name(event)), what="the conversion"
    )
    settings = f"GET {forwarder.url}/v1/projects/{BROWSER_KEY}/settings"
    assert [e["email"] for e in delivered] == [email]
    assert settings in watched.sent
    assert all(url.split(" ")[1].startswith((forwarder.url, site.origin)) for url in watched.sent)
    assert watched.failed == []


@pytest.mark.parametrize(
    "strategy",
    [
        # Batching holds events for a minute here: only the flush on page hide can send them.
        {"strategy": "batching", "config": {"size": 100, "timeout": 60_000}},
        # Per event, the request leaves as the page goes; keepalive (the documented setting)
        # lets the browser finish it after the page is gone.
        {"config": {"keepalive": True}},
    ],
    ids=["batching", "per-event-keepalive"],
)
def test_analytics_js_event_tracked_as_the_page_closes_is_delivered(
    watched: Watched, site: Site, forwarder: Forwarder, strategy: dict[str, Any]
) -> None:
    user, email, event = unique("Ajs Closing")
    html = libraries.analytics_next_page(
        forwarder.url, BROWSER_KEY, {"deliveryStrategy": strategy}, "window.ready = true;"
    )
    watched.page.goto(site.add(f"/ajs-close/{user}.html", html))
    watched.page.evaluate(f"analytics.identify('{user}', {{email: '{email}'}})")
    watched.page.wait_for_timeout(200)
    # ``void``: do not wait for the call's promise, which settles only once it was sent.
    watched.page.evaluate(f"void analytics.track('{event}')")
    if strategy.get("strategy") == "batching":
        watched.page.wait_for_timeout(200)
        assert forwarder.named(event) == []  # held in the batch until the page goes
    watched.page.close(run_before_unload=True)

    delivered = wait_for(
        lambda: sandbox_events(forwarder, conversion_name(event)), what="the conversion"
    )
    assert [e["email"] for e in delivered] == [email]
    assert len(forwarder.named(event)) == 1
    assert watched.failed == []


def test_analytics_js_retries_a_dropped_request_with_its_retry_header_and_it_arrives_once(
    watched: Watched, site: Site, forwarder: Forwarder
) -> None:
    """The retry carries ``X-Retry-Count``, a header the preflight must allow."""
    user, email, event = unique("Ajs Retried")
    attempts: list[dict[str, str]] = []

    def drop_first(route: Any) -> None:
        attempts.append(route.request.headers)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    watched.page.route("**/v1/t", drop_first)
    html = libraries.analytics_next_page(forwarder.url, BROWSER_KEY, {}, calls(user, email, event))
    watched.page.goto(site.add(f"/ajs-retry/{user}.html", html))

    watched.wait_for(lambda: sandbox_events(forwarder, conversion_name(event)), what="the retry")
    assert len(attempts) == 2
    assert attempts[1].get("x-retry-count") == "1"
    assert len(forwarder.named(event)) == 1
    assert watched.failed == [f"{forwarder.url}/v1/t: net::ERR_CONNECTION_RESET"]


def test_analytics_js_on_an_origin_not_allowed_fails_and_nothing_is_stored(
    watched: Watched, site: Site, forwarder: Forwarder
) -> None:
    """``localhost`` is another origin than the allowed ``127.0.0.1`` one."""
    user, email, event = unique("Ajs Foreign")
    html = libraries.analytics_next_page(forwarder.url, BROWSER_KEY, {}, calls(user, email, event))
    url = site.add(f"/ajs-foreign/{user}.html", html).replace("127.0.0.1", "localhost")
    watched.page.goto(url)

    watched.wait_for(lambda: len(watched.failed) >= 3, what="the three refused calls")
    assert all("/v1/" in failure for failure in watched.failed)
    assert forwarder.named(event) == []


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
