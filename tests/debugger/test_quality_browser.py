"""The quality view, the readable charts and an alert, in real headless Chromium against a real
``forwarder serve``; desktop and phone width.

With ``FORWARDER_SCREENSHOTS=<dir>`` the tests also save the pictures docs/debugger.md shows
(``scripts/debugger-screenshots`` runs them that way).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forwarder.alerts.rules import Snapshot, evaluate
from forwarder.alerts.webhook import payload
from forwarder.config import AlertRules
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tests.debugger.conftest import ADMIN_TOKEN
from tests.delivery.harness import AUTH
from tests.support import ServerProcess, config_toml, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]
SHOTS = os.environ.get("FORWARDER_SCREENSHOTS")
UTK = "0123456789abcdef0123456789abcdef"
CLOCK = re.compile(r"^\d\d:\d\d(:\d\d)?$")


def shoot(target: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(Path(SHOTS) / name))


def send(server: ServerProcess, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": events}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text


def purchases() -> list[dict[str, Any]]:
    """10 Purchases: 6 by email (3 with a campaign), 3 with a utk only, 1 never identified."""
    out: list[dict[str, Any]] = []
    for i in range(6):
        context: dict[str, Any] = {"traits": {"email": f"buyer{i}@example.com"}}
        if i % 2 == 0:
            context["campaign"] = {"name": "spring-sale", "source": "google", "medium": "cpc"}
        out.append({"type": "track", "event": "Purchase", "userId": f"b{i}", "context": context})
    for i in range(3):
        out.append({"type": "track", "event": "Purchase", "anonymousId": f"v{i}",
                    "context": {"hubspotutk": UTK}})  # fmt: skip
    out.append({"type": "track", "event": "Purchase", "anonymousId": "nobody"})
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("quality-page")
    port = free_port()
    env = {"FORWARDER_SERVER_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = ServerProcess(tmp, config_toml(tmp / "forwarder.db", port), env=env).start(port)
    send(proc, purchases())
    send(proc, [{"type": "track", "event": "Newsletter Signup", "userId": "n1",
                 "context": {"traits": {"email": "n1@example.com"}}}])  # fmt: skip
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def logged_in(browser: Any, url: str, **context: Any) -> tuple[Any, Any]:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.goto(f"{url}/debugger")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#live-state:has-text('live')")
    return ctx, page


def test_quality_view_shows_scores_reasons_and_labelled_figures(
    browser: Any, served: ServerProcess
) -> None:
    ctx, page = logged_in(browser, served.url, viewport={"width": 1100, "height": 1400})
    page.click("#tabs button[data-view=quality]")
    card = page.wait_for_selector(".card.quality[data-event-type='Purchase']", timeout=10_000)
    sent_nine = """() => [...document.querySelectorAll(
        ".card.quality[data-event-type='Purchase'] .bar-row")].some(r =>
        r.querySelector(".bar-label").textContent === "sent" &&
        r.querySelector(".bar-value").textContent === "9")"""
    page.wait_for_function(sent_nine, timeout=20_000)  # the view redraws every 5 s
    card = page.query_selector(".card.quality[data-event-type='Purchase']")

    score = float(card.query_selector(".score").inner_text().split("/")[0])
    lowered = [li.inner_text() for li in card.query_selector_all(".lowered li")]
    bars = {
        row.query_selector(".bar-label").inner_text(): row.query_selector(".bar-value").inner_text()
        for row in card.query_selector_all(".bar-row")
    }
    assert 0 <= score < 10
    assert any(line.startswith("33 % of Purchase events had no email") for line in lowered)
    assert bars["received"] == "10"
    assert bars["sent"] == "9"
    assert bars["held"] == "1"
    assert bars["sent with email"] == "67"
    assert bars["sent with utk"] == "33"
    widths = {
        row.query_selector(".bar-label").inner_text(): row.query_selector("rect").get_attribute(
            "width"
        )
        for row in card.query_selector_all(".bar-row")
    }
    assert (widths["received"], widths["sent"], widths["held"], widths["dead"]) == (
        "100",
        "90",
        "10",
        "0",
    )
    shoot(page, "debugger-quality.png")
    ctx.close()


def test_quality_view_updates_live_when_a_new_event_type_arrives(
    browser: Any, served: ServerProcess
) -> None:
    ctx, page = logged_in(browser, served.url)
    page.click("#tabs button[data-view=quality]")
    page.wait_for_selector(".card.quality[data-event-type='Purchase']", timeout=10_000)
    send(served, [{"type": "track", "event": "Demo Booked", "userId": "d1",
                   "context": {"traits": {"email": "d1@example.com"}}}])  # fmt: skip
    page.wait_for_selector(".card.quality[data-event-type='Demo Booked']", timeout=15_000)
    assert page.url.endswith("/debugger")  # no reload
    ctx.close()


def test_rate_and_funnel_charts_have_time_axes_labels_and_values(
    browser: Any, served: ServerProcess
) -> None:
    ctx, page = logged_in(browser, served.url, viewport={"width": 1100, "height": 1000})
    page.click("#tabs button[data-view=rates]")
    chart = page.wait_for_selector(".rates-card svg.chart", timeout=10_000)
    ticks = [t.text_content() for t in chart.query_selector_all("text.tick")]
    axis = [t.text_content() for t in chart.query_selector_all("text.axis:not(.tick)")]
    legend = [li.inner_text() for li in page.query_selector_all(".rates-card .legend li")]
    assert len(ticks) == 5
    assert all(CLOCK.match(t) for t in ticks), ticks
    assert axis == ["0%", "50%", "100%"]
    assert any(entry.startswith("events_1s") and entry.endswith("%") for entry in legend), legend
    shoot(page, "debugger-rates.png")

    page.click("#tabs button[data-view=overview]")
    funnel = page.wait_for_selector("figure.funnel-chart:has-text('main / conversions')")
    rows = {
        r.query_selector(".bar-label").inner_text(): r.query_selector(".bar-value").inner_text()
        for r in funnel.query_selector_all(".bar-row")
    }
    assert list(rows) == ["accepted", "pending", "delivered", "dead", "dropped", "expired"]
    assert int(rows["accepted"]) >= 11
    ctx.close()


def test_quality_and_charts_fit_a_phone(browser: Any, served: ServerProcess) -> None:
    ctx, page = logged_in(
        browser, served.url, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    for view, ready in (
        ("quality", ".card.quality .bar-row"),
        ("rates", ".rates-card svg.chart"),
        ("overview", "figure.funnel-chart .bar-row"),
    ):
        page.click(f"#tabs button[data-view={view}]")
        page.wait_for_selector(ready, timeout=10_000)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (view, width)
        if view == "quality":
            shoot(page, "debugger-quality-phone.png")
    ctx.close()


def test_an_alert_as_a_chat_app_shows_it(browser: Any) -> None:
    """The real body of a paused-destination alert, laid out as Slack lays out ``text`` and an
    attachment's fields (the picture in docs/debugger.md)."""
    reason = "MISSING_SCOPES: This app hasn't been granted all required scopes"
    now = Snapshot(at=1_780_000_000.0, paused={"main/conversions": reason})
    [condition] = evaluate(now, Snapshot(at=now.at - 600), AlertRules())
    body = payload("firing", condition, at=now.at, since=now.at)
    [attachment] = body["attachments"]
    fields = "".join(
        f"<div class=f><b>{html.escape(f['title'])}</b><br>{html.escape(f['value'])}</div>"
        for f in attachment["fields"]
    )
    text = html.escape(body["text"].removeprefix(":rotating_light: "))  # no emoji font here
    ctx = browser.new_context(viewport={"width": 720, "height": 300})
    page = ctx.new_page()
    page.set_content(
        "<style>body{font:15px system-ui;margin:16px}.msg{display:flex;gap:10px}"
        ".av{width:36px;height:36px;border-radius:6px;background:#ff7a59}.att{border-left:4px "
        f"solid {attachment['color']};padding:4px 10px;margin-top:6px}}.f{{margin:4px 0}}</style>"
        "<div class=msg><div class=av></div><div><b>hubspot-forwarder</b> <small>APP</small>"
        f"<div>{text}</div><div class=att><b>{html.escape(attachment['title'])}</b>{fields}"
        "</div></div></div>"
    )
    assert "Delivery paused: main/conversions" in page.inner_text("body")
    assert "MISSING_SCOPES" in page.inner_text(".att")
    shoot(page, "alert-paused.png")
    ctx.close()
