"""The /debugger page in real headless Chromium against a real ``forwarder serve``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tests.debugger.conftest import ADMIN_TOKEN
from tests.delivery.harness import AUTH
from tests.support import ServerProcess, config_toml, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("page")
    port = free_port()
    env = {"FORWARDER_SERVER_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = ServerProcess(tmp, config_toml(tmp / "forwarder.db", port), env=env).start(port)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def log_in(page: Any, url: str, token: str = ADMIN_TOKEN) -> None:
    page.goto(f"{url}/debugger")
    page.fill("#token", token)
    page.click("button[type=submit]")


def test_live_event_detail_and_journey(browser: Any, served: ServerProcess) -> None:
    context = browser.new_context()
    page = context.new_page()
    log_in(page, served.url)
    page.wait_for_selector("#live-state:has-text('live')")

    event = {
        "userId": "browser-1",
        "event": "Browser Purchase",
        "properties": {"revenue": 9},
        "context": {"traits": {"email": "b1@example.com"}},
    }
    response = httpx.post(f"{served.url}/v1/track", json=event, headers=AUTH, timeout=5)
    assert response.status_code == 200

    row = page.wait_for_selector("li.event:has-text('Browser Purchase')", timeout=10_000)
    assert page.url.endswith("/debugger")  # it arrived live, without a reload
    page.wait_for_selector("li.event:has-text('Browser Purchase') .s-delivered", timeout=10_000)
    row.click()
    attempt = page.wait_for_selector("tr.attempt", timeout=5_000)
    assert "/events/2026-03/send/batch" in attempt.inner_text()
    assert "delivered" in page.inner_text("#detail")

    page.click("#to-journey")
    step = page.wait_for_selector("li.step:has-text('Browser Purchase')", timeout=10_000)
    assert "attributed" in step.inner_text()
    assert "not attributed" not in step.inner_text()
    context.close()


def test_a_wrong_token_sees_nothing(browser: Any, served: ServerProcess) -> None:
    context = browser.new_context()
    page = context.new_page()
    log_in(page, served.url, token="wrong-token")

    assert "not the admin token" in page.inner_text("#error")
    page.goto(f"{served.url}/debugger")
    assert page.url.endswith("/debugger/login")
    status = page.evaluate("fetch('/admin/api/events').then(r => r.status)")
    assert status == 401
    context.close()


def test_the_page_fits_a_phone(browser: Any, served: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    log_in(page, served.url)
    page.wait_for_selector("#live-state:has-text('live')")
    httpx.post(
        f"{served.url}/v1/track",
        json={"userId": "phone-1", "event": "A Rather Long Conversion Name For A Small Screen"},
        headers=AUTH,
        timeout=5,
    )
    page.wait_for_selector("li.event:has-text('Small Screen')", timeout=10_000)

    for view in ("live", "overview", "rates", "journey"):
        page.click(f"#tabs button[data-view={view}]")
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (view, width)
    for selector in ("#tabs", "#journey-form input[name=value]", "#journey-form button"):
        assert page.is_visible(selector), selector
    context.close()
