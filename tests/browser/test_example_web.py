"""``examples/web`` runs as written, behind a ``/fwd/`` proxy path of the site's own origin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Forwarder, Site, chromium_missing, wait_for
from tests.support import BROWSER_KEY

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]

EXAMPLE = Path(__file__).parents[2] / "examples" / "web"
LOADED = "() => window.forwarder && window.forwarder.VERSION"
UTK = "fedcba9876543210fedcba9876543210"


def test_example_shop_sends_views_signup_and_attributed_purchase(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    site.upstream = forwarder.url
    for page_file in EXAMPLE.glob("*.html"):
        html = page_file.read_text().replace("pub_REPLACE_WITH_YOUR_BROWSER_KEY", BROWSER_KEY)
        site.add(f"/shop/{page_file.name}", html)
    context.add_cookies([{"name": "hubspotutk", "value": UTK, "url": site.origin}])
    page = context.new_page()
    cookie_answers: list[Any] = []
    page.on("response", lambda r: cookie_answers.append(r) if "/fwd/v1/cookie" in r.url else None)

    page.goto(f"{site.origin}/shop/index.html?utm_source=newsletter&utm_campaign=spring")
    page.wait_for_function(LOADED)
    page.click("text=Sign up")
    page.wait_for_function(LOADED)
    page.fill("input[name=email]", "ada@example.com")
    page.click("text=Create account")
    page.click("text=Go to checkout")
    page.wait_for_function(LOADED)
    page.click("text=Buy now")
    purchase = wait_for(lambda: forwarder.named("Order Completed"), what="the purchase")[0]
    visitor = page.evaluate("forwarder.user().anonymousId")
    events = forwarder.events(visitor)

    assert [(e["type"], e.get("event")) for e in events] == [
        ("page", None),
        ("page", None),
        ("identify", None),
        ("track", "Signed Up"),
        ("page", None),
        ("track", "Order Completed"),
    ]
    assert events[2]["traits"]["email"] == "ada@example.com"
    assert purchase["userId"] == "ada@example.com"
    assert purchase["context"]["hubspotutk"] == UTK
    assert purchase["context"]["attribution"]["firstTouch"]["name"] == "spring"
    # serverCookie: true -> the forwarder itself set the anonymousId cookie, via /fwd/v1/cookie,
    # once (then at most daily).
    assert len(cookie_answers) == 1
    assert cookie_answers[0].header_value("set-cookie").startswith(f"fwd_aid={visitor};")
