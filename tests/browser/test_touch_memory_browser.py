"""The Safari case in real Chromium: script storage is wiped, the server-set cookie survives,
and the conversion still reaches HubSpot with the first touch the forwarder remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Forwarder, Site, chromium_missing, page_html, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]

LOADED = "() => window.forwarder && window.forwarder.VERSION"
UTK = "00112233445566778899aabbccddeeff"


def sandbox_events(forwarder: Forwarder, name: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{forwarder.url}/sandbox/_sandbox/events", params={"eventName": name})
    answer.raise_for_status()
    received: list[dict[str, Any]] = answer.json()["received"].get(name, [])
    return received


def test_conversion_after_safari_wiped_script_storage_keeps_the_first_touch(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    """Day 0 a Google ad click; day 8 (the browser's clock moved on) Safari's 7-day cap has
    removed localStorage and script-set cookies, HubSpot's included; the purchase then carries
    no attribution of its own, and the forwarder fills it from its touch memory."""
    site.upstream = forwarder.url  # the forwarder behind the site's own /fwd/ path
    options = {"serverCookie": True}
    landing = site.add("/safari/landing.html", page_html(f"{site.origin}/fwd", options))
    checkout = site.add(
        "/safari/checkout.html",
        page_html(
            f"{site.origin}/fwd",
            options,
            body="forwarder.identify({email: 'sam@example.com'});"
            "forwarder.track('Attr Purchase', {revenue: 42});",
        ),
    )
    eight_days_ago = datetime.now(UTC) - timedelta(days=8)
    context.clock.install(time=eight_days_ago)
    context.add_cookies([{"name": "hubspotutk", "value": UTK, "url": site.origin}])
    page = context.new_page()

    with page.expect_response(lambda r: "/fwd/v1/cookie" in r.url) as cookie_answer:
        page.goto(f"{landing}?utm_source=google&utm_medium=cpc&utm_campaign=spring-sale&gclid=G-8")
    page.wait_for_function(LOADED)
    visitor = page.evaluate("forwarder.user().anonymousId")
    wait_for(lambda: forwarder.events(visitor), what="the landing page view")

    # Safari, 7 days later: what scripts stored is gone; the cookie set over HTTP is not.
    page.evaluate("localStorage.clear()")
    context.clear_cookies(name="hubspotutk")
    context.clock.set_system_time(datetime.now(UTC))
    kept = {c["name"]: c["value"] for c in context.cookies()}
    page.goto(checkout)
    purchase = wait_for(lambda: forwarder.named("Attr Purchase"), what="the purchase")[0]
    delivered = wait_for(
        lambda: sandbox_events(forwarder, "pe123456_attr_purchase"), what="the sandbox conversion"
    )

    assert cookie_answer.value.header_value("set-cookie").startswith(f"fwd_aid={visitor};")
    assert kept == {"fwd_aid": visitor}
    assert purchase["anonymousId"] == visitor
    assert "attribution" not in purchase["context"]  # the browser had nothing left to send
    assert "hubspotutk" not in purchase["context"]
    [conversion] = delivered
    assert conversion["email"] == "sam@example.com"
    properties = conversion["properties"]
    assert (
        properties["first_touch_source"],
        properties["first_touch_campaign"],
        properties["first_touch_gclid"],
    ) == ("google", "spring-sale", "G-8")
    assert properties["hs_utm_campaign"] == "spring-sale"  # the last touch, 8 days old
