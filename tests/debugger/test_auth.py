"""Every admin and debugger route refuses without the admin token; no response carries a secret."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import Secret, Settings, with_development_defaults
from tests.conftest import make_settings
from tests.debugger.conftest import ADMIN, ADMIN_TOKEN, Admin, admin_settings, track
from tests.delivery.harness import AUTH, until
from tests.support import BROWSER_KEY, SERVER_KEY

OPEN = {"/debugger/login", "/debugger/login.css"}  # the form and its style: nothing to see
REFUSED = {401, 403}


def guarded_requests(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) for every /admin and /debugger route, path parameters filled in."""
    found = []
    for route in app.routes:
        path = route.path
        if not path.startswith(("/admin", "/debugger")) or path in OPEN:
            continue
        concrete = re.sub(r"\{file_path:path\}", "debugger.js", path)
        concrete = re.sub(r"\{[^}]+:int\}", "1", concrete)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            found.append((method, concrete))
    return found


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {SERVER_KEY}"},
        _basic(SERVER_KEY),
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Cookie": "fwd_admin=1700000000.abc.def"},
    ],
    ids=["none", "wrong", "write-key-bearer", "write-key-basic", "token-as-basic", "forged"],
)
async def test_every_admin_route_refuses_without_the_admin_token(
    admin: Admin, headers: dict[str, str]
) -> None:
    requests = guarded_requests(admin.app)
    assert len(requests) >= 14
    for method, path in requests:
        response = await admin.client.request(
            method,
            path,
            headers=headers,
            json={} if method == "POST" else None,
            follow_redirects=False,
        )
        refused = response.status_code in REFUSED or (
            path == "/debugger" and response.headers.get("location") == "/debugger/login"
        )
        assert refused, (method, path, response.status_code)


async def test_login_sets_an_http_only_same_site_cookie_without_the_token(admin: Admin) -> None:
    wrong = await admin.client.post("/debugger/login", data={"token": "nope"})
    right = await admin.client.post(
        "/debugger/login", data={"token": ADMIN_TOKEN}, follow_redirects=False
    )

    cookie = right.headers["set-cookie"]
    assert wrong.status_code == 401
    assert right.status_code == 303
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/" in cookie
    assert ADMIN_TOKEN not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    session = {"Cookie": f"fwd_admin={value}"}
    assert (await admin.client.get("/admin/api/stats", headers=session)).status_code == 200
    page = await admin.client.get("/debugger", headers=session)
    assert page.status_code == 200
    assert "Forwarder debugger" in page.text


async def test_without_an_admin_token_the_admin_api_is_disabled(tmp_path: Path) -> None:
    async with AsyncTestClient(app=create_app(make_settings(tmp_path))) as client:
        response = await client.get("/admin/api/stats")

    assert response.status_code == 403
    assert "server.admin_token" in response.json()["error"]


async def test_zero_config_sandbox_mode_opens_on_loopback_only(tmp_path: Path) -> None:
    settings = with_development_defaults(make_settings(tmp_path, sources=(), portals={}))
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        local = await client.get("/admin/api/stats")
        remote_transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=remote_transport, base_url="http://x") as remote:
            refused = await remote.get("/admin/api/stats")

    assert local.status_code == 200
    assert refused.status_code == 403


def _secrets_settings(tmp_path: Path) -> tuple[Settings, list[str]]:
    settings = admin_settings(tmp_path)
    portal = msgspec.structs.replace(
        settings.portals["main"], access_token=Secret("pat-na1-secret-portal-token")
    )
    settings = msgspec.structs.replace(settings, portals={"main": portal})
    return settings, [SERVER_KEY, BROWSER_KEY, ADMIN_TOKEN, "pat-na1-secret-portal-token"]


async def test_no_response_carries_a_configured_secret(tmp_path: Path) -> None:
    settings, secrets = _secrets_settings(tmp_path)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        event = track(
            "m1",
            userId="u1",
            writeKey=SERVER_KEY,
            properties={"note": f"key {SERVER_KEY} and {BROWSER_KEY}", "token": ADMIN_TOKEN},
            context={"traits": {"email": "jane@example.com"}},
        )
        assert (await client.post("/v1/track", json=event, headers=AUTH)).status_code == 200

        async def delivered() -> bool:
            body = (await client.get("/admin/api/events/1", headers=ADMIN)).json()
            return bool(body["finalState"] == "delivered")

        await until(delivered)
        bodies: list[Any] = []
        for path in (
            "/admin/api/events",
            "/admin/api/events/1",
            "/admin/api/journey?userId=u1",
            "/admin/api/overview",
            "/admin/api/stats",
            "/admin/api/envelopes",
            "/admin/api/dead-letters",
            "/admin/api/events/stream?after=0&timeout_s=0.3",
            "/debugger",
            "/schema/openapi.json",
        ):
            response = await client.get(path, headers=ADMIN)
            assert response.status_code == 200, path
            bodies.append(response.text)

    text = "\n".join(bodies)
    for secret in secrets:
        assert secret not in text


def test_debugger_static_files_are_in_the_package() -> None:
    from importlib.resources import files

    static = files("forwarder.debugger") / "static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "debugger.js", "debugger.css", "login.css"} <= names
