"""forwarder.js in real headless Chromium against a real forwarder (see conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import Forwarder, Site, chromium_missing, page_html, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]

UTK = "0123456789abcdef0123456789abcdef"
LOADED = "() => window.forwarder && window.forwarder.VERSION"
# Mapped from context.attribution.firstTouch by conftest.ATTRIBUTION_MAPPING.
FIRST_TOUCH = {
    "first_touch_source": "newsletter",
    "first_touch_campaign": "spring",
    "first_touch_gclid": "G-123",
}


def open_page(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(LOADED)
    return page


def anonymous_id(page: Any) -> str:
    value: str = page.evaluate("forwarder.user().anonymousId")
    return value


def outbox(page: Any) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = page.evaluate(
        "JSON.parse(localStorage.getItem('fwd_outbox') || '[]')"
    )
    return value


def test_conversion_carries_utk_and_first_touch_campaign(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    """Landing with UTMs and a click id, a second campaign later, then a purchase."""
    context.add_cookies([{"name": "hubspotutk", "value": UTK, "url": site.origin}])
    landing = site.add("/attr/landing.html", page_html(forwarder.url))
    pricing = site.add("/attr/pricing.html", page_html(forwarder.url))
    checkout = site.add(
        "/attr/checkout.html",
        page_html(forwarder.url, body="forwarder.track('Attr Purchase', {revenue: 42})"),
    )

    page = open_page(
        context,
        f"{landing}?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=G-123",
    )
    visitor = anonymous_id(page)
    landing_view = wait_for(lambda: forwarder.events(visitor), what="the landing page view")[0]
    page.goto(f"{pricing}?utm_source=google&utm_medium=cpc&utm_campaign=retarget")
    page.goto(checkout)
    purchase = wait_for(lambda: forwarder.named("Attr Purchase"), what="the purchase")[0]

    assert landing_view["type"] == "page"
    assert landing_view["context"]["hubspotutk"] == UTK
    assert landing_view["context"]["campaign"] == {
        "source": "newsletter",
        "medium": "email",
        "name": "spring",
    }
    assert landing_view["context"]["clickIds"] == {"gclid": "G-123"}
    assert landing_view["properties"]["path"] == "/attr/landing.html"
    assert purchase["anonymousId"] == visitor
    assert purchase["properties"] == {"revenue": 42}
    context_ = purchase["context"]
    assert context_["hubspotutk"] == UTK
    assert context_["page"]["url"] == checkout
    assert context_["library"]["name"] == "forwarder.js"
    first, last = context_["attribution"]["firstTouch"], context_["attribution"]["lastTouch"]
    assert (first["source"], first["medium"], first["name"]) == ("newsletter", "email", "spring")
    assert first["clickIds"] == {"gclid": "G-123"}
    assert first["landingPage"].startswith(landing)
    assert (last["source"], last["name"]) == ("google", "retarget")
    assert context_["campaign"] == {"source": "google", "medium": "cpc", "name": "retarget"}

    delivered = wait_for(
        lambda: sandbox_events(forwarder, "pe123456_attr_purchase"), what="the sandbox conversion"
    )
    assert len(delivered) == 1
    assert delivered[0]["utk"] == UTK
    assert {k: delivered[0]["properties"].get(k) for k in FIRST_TOUCH} == FIRST_TOUCH
    assert delivered[0]["properties"]["hs_utm_campaign"] == "retarget"  # last touch


def sandbox_events(forwarder: Forwarder, name: str) -> list[dict[str, Any]]:
    """Custom event occurrences the built-in HubSpot sandbox received."""
    answer = httpx.get(f"{forwarder.url}/sandbox/_sandbox/events", params={"eventName": name})
    answer.raise_for_status()
    received: list[dict[str, Any]] = answer.json()["received"].get(name, [])
    return received


def test_calls_made_before_the_script_loads_are_not_lost(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    body = """
      forwarder.identify('early-user', {email: 'early@example.com'});
      forwarder.track('Early Click', {button: 'hero'});
      window.queuedBeforeLoad = Array.isArray(window.forwarder) && window.forwarder.length;
    """
    page = open_page(context, site.add("/early/index.html", page_html(forwarder.url, body=body)))
    visitor = anonymous_id(page)

    track = wait_for(lambda: forwarder.named("Early Click"), what="the early track")[0]
    events = forwarder.events(visitor)

    assert page.evaluate("window.queuedBeforeLoad") == 3  # load, identify, track
    assert [e["type"] for e in events] == ["page", "identify", "track"]
    assert events[1]["traits"] == {"email": "early@example.com"}
    assert track["userId"] == "early-user"


def test_page_closed_right_after_track_still_delivers(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    """The flush timer is a minute, so only the beacon on page hide can carry the event."""
    options = {"flushInterval": 60_000, "page": False}
    page = open_page(context, site.add("/beacon/index.html", page_html(forwarder.url, options)))

    page.evaluate("forwarder.track('Beacon Close')")
    page.close(run_before_unload=True)

    assert len(wait_for(lambda: forwarder.named("Beacon Close"), what="the beacon")) == 1


def test_requests_failing_offline_are_retried_when_back_online_and_arrive_once(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    url = site.add("/offline/index.html", page_html(forwarder.url, {"page": False}))
    page = open_page(context, url)

    context.set_offline(True)
    page.evaluate("forwarder.track('Offline Purchase')")
    wait_for(lambda: outbox(page), what="the failed batch in the outbox")
    assert forwarder.named("Offline Purchase") == []
    context.set_offline(False)

    wait_for(lambda: forwarder.named("Offline Purchase"), what="the retried batch")
    wait_for(lambda: not outbox(page) or None, what="an empty outbox")
    page.goto(url)  # a new page drains the outbox again: nothing left to repeat
    page.wait_for_function(LOADED)
    assert len(forwarder.named("Offline Purchase")) == 1


def test_failed_request_is_retried_with_backoff_and_arrives_once(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    """The network drops the first attempt while the browser believes it is online."""
    url = site.add("/flaky/index.html", page_html(forwarder.url, {"page": False}))
    page = open_page(context, url)
    attempts: list[str] = []

    def drop_first(route: Any) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/batch", drop_first)
    page.evaluate("forwarder.track('Flaky Purchase')")
    # Playwright runs route handlers only while the test is inside a Playwright call.
    for _ in range(200):
        if forwarder.named("Flaky Purchase"):
            break
        page.wait_for_timeout(50)

    assert len(attempts) == 2
    assert len(forwarder.named("Flaky Purchase")) == 1
    for _ in range(100):  # the event is stored a moment before the page reads its 200
        if not outbox(page):
            break
        page.wait_for_timeout(50)
    assert outbox(page) == []


def test_batch_left_in_the_outbox_is_sent_by_the_next_page(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    url = site.add("/outbox/index.html", page_html(forwarder.url, {"page": False}))
    page = open_page(context, url)
    context.set_offline(True)
    page.evaluate("forwarder.track('Next Page Purchase')")
    wait_for(lambda: outbox(page), what="the failed batch in the outbox")
    page.close()
    context.set_offline(False)

    open_page(context, url)

    assert len(wait_for(lambda: forwarder.named("Next Page Purchase"), what="the retry")) == 1


def test_consent_mode_sends_and_stores_nothing_until_consent(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    body = "forwarder.track('Consent Click')"
    html = page_html(forwarder.url, {"consent": "required"}, body=body)
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method != "GET" else None)
    page.goto(site.add("/consent/index.html", html))
    page.wait_for_function(LOADED)
    page.wait_for_timeout(400)  # four flush intervals in which nothing may leave
    kept = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('fwd_'))")
    cookies = [c["name"] for c in context.cookies() if c["name"].startswith("fwd_")]

    assert (sent, kept, cookies) == ([], [], [])

    page.evaluate("forwarder.consent({analytics: true})")
    track = wait_for(lambda: forwarder.named("Consent Click"), what="the consented track")[0]
    assert track["context"]["consent"] == {"categoryPreferences": {"analytics": True}}
    assert [e["type"] for e in forwarder.events(anonymous_id(page))] == ["page", "track"]


def test_global_privacy_control_is_honoured_when_configured(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    html = page_html(forwarder.url, {"honorGPC": True}, body="forwarder.track('GPC Click')")
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method != "GET" else None)
    page.goto(site.add("/gpc/index.html", html))
    page.wait_for_function(LOADED)
    page.wait_for_timeout(400)

    assert sent == []
    assert forwarder.named("GPC Click") == []


def test_origin_not_on_the_allowlist_is_refused(
    context: Any, site: Site, forwarder: Forwarder
) -> None:
    """``localhost`` is another origin than the allowed ``127.0.0.1`` one.

    The 403 carries no CORS header, so the page sees only a failed request; the status is
    checked on the same request sent from Python with the page's ``Origin``.
    """
    html = page_html(forwarder.url, body="forwarder.track('Foreign')")
    url = site.add("/foreign/index.html", html)
    foreign = url.replace("127.0.0.1", "localhost")
    page = context.new_page()
    with page.expect_event("requestfailed", lambda r: "/v1/batch" in r.url) as failed:
        page.goto(foreign)
    refused = httpx.post(
        f"{forwarder.url}/v1/batch",
        content=failed.value.post_data,
        headers={"Content-Type": "text/plain", "Origin": foreign.split("/foreign")[0]},
    )

    assert refused.status_code == 403
    assert forwarder.named("Foreign") == []
