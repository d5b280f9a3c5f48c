"""Security properties of the edge: constant-time key checks, what a browser key can reach,
refusals that say nothing, rate limits, secrets nowhere, and a non-root image."""

from __future__ import annotations

import ast
import base64
import inspect
import re
import textwrap
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.clock import ManualClock
from forwarder.config import Secret, ServerSettings, SourceSettings
from forwarder.ingest import auth
from forwarder.ingest.auth import SourceResolver
from tests.conftest import make_settings
from tests.support import BROWSER_KEY, ORIGIN, SERVER_KEY, track

Client = AsyncTestClient  # type: ignore[type-arg]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "adm_security_test_token_0123456789"


def _resolve_tree() -> ast.FunctionDef:
    source = textwrap.dedent(inspect.getsource(SourceResolver.resolve))
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def test_write_key_lookup_compares_with_hmac_compare_digest_in_a_loop_without_early_exit() -> None:
    loops = [n for n in ast.walk(_resolve_tree()) if isinstance(n, ast.For)]
    assert len(loops) == 1
    body = list(ast.walk(loops[0]))
    calls = [n for n in body if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert any(c.func.attr == "compare_digest" for c in calls)  # type: ignore[attr-defined]
    assert not any(isinstance(n, ast.Break | ast.Return | ast.Raise) for n in body)


def test_every_configured_key_is_compared_whichever_key_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = [f"key-number-{i:02d}-abcdef" for i in range(12)]
    sources = [SourceSettings(name=f"s{i}", write_key=Secret(k)) for i, k in enumerate(keys)]
    resolver = SourceResolver(sources, ServerSettings(), ManualClock())
    compared: list[bytes] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for key in (keys[0], keys[-1]):
        compared.clear()
        assert resolver.resolve(key, None).write_key.reveal() == key
        assert len(compared) == len(keys)


@pytest.fixture
async def client(tmp_path: Path) -> Client:  # type: ignore[misc]
    settings = make_settings(tmp_path)
    settings = msgspec.structs.replace(
        settings,
        server=ServerSettings(
            log_requests=False,
            admin_token=Secret(ADMIN_TOKEN),
            browser_rate_per_s=1.0,
            browser_burst=5,
        ),
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_unknown_keys_get_one_answer_whatever_their_likeness_to_a_real_one(
    client: Client,
) -> None:
    """A malformed header counts as no key ("missing write key"): it tells nothing about keys."""
    unknown = await client.post("/v1/track", json=track(), headers=_basic("no-such-key-000"))
    almost = await client.post("/v1/track", json=track(), headers=_basic(SERVER_KEY[:-1] + "X"))
    bearer = await client.post("/v1/track", json=track(), headers={"Authorization": "Bearer zz"})
    malformed = await client.post("/v1/track", json=track(), headers={"Authorization": "Basic %%%"})
    answers = {(r.status_code, r.content) for r in (unknown, almost, bearer)}
    assert len(answers) == 1
    assert malformed.status_code == 401
    assert malformed.json()["field"] == unknown.json()["field"] == "Authorization"
    assert unknown.status_code == 401
    assert SERVER_KEY not in unknown.text


BROWSER = {"Origin": ORIGIN, **_basic(BROWSER_KEY)}


@pytest.mark.parametrize(
    "path",
    ["/admin/api/events", "/admin/api/stats", "/admin/api/dead-letters", "/debugger"],
)
async def test_a_browser_key_cannot_reach_the_admin_api_or_the_debugger(
    client: Client, path: str
) -> None:
    for headers in (BROWSER, {"Authorization": f"Bearer {BROWSER_KEY}", "Origin": ORIGIN}):
        response = await client.get(path, headers=headers, follow_redirects=False)
        assert response.status_code in (303, 401, 403), (path, response.status_code)
        assert "payload" not in response.text


async def test_a_browser_key_can_ingest(client: Client) -> None:
    response = await client.post("/v1/track", json=track(), headers=BROWSER)
    assert response.status_code == 200, response.text


async def test_a_browser_key_over_its_rate_gets_429_with_retry_after(client: Client) -> None:
    batch = {"batch": [track() for _ in range(5)]}
    assert (await client.post("/v1/batch", json=batch, headers=BROWSER)).status_code == 200
    refused = await client.post("/v1/batch", json=batch, headers=BROWSER)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    server_key = await client.post("/v1/batch", json=batch, headers=_basic(SERVER_KEY))
    assert server_key.status_code == 200  # server keys are not limited at ingest


async def test_no_secret_in_error_bodies_metrics_or_the_admin_api(client: Client) -> None:
    secrets = (SERVER_KEY, BROWSER_KEY, ADMIN_TOKEN)
    seen = [
        await client.post("/v1/track", json={**track(), "writeKey": SERVER_KEY}),
        await client.post("/v1/track", json={"writeKey": SERVER_KEY}, headers=_basic(SERVER_KEY)),
        await client.post("/v1/track", json=track(), headers=BROWSER | {"Origin": "https://x.y"}),
        await client.post("/v1/batch", content=b"{bad", headers=_basic(SERVER_KEY)),
        await client.get("/metrics"),
        await client.get("/readyz"),
        await client.get("/schema/openapi.json"),
    ]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/admin/api/events", "/admin/api/stats", "/admin/api/overview"):
        response = await client.get(path, headers=admin)
        assert response.status_code == 200, (path, response.text)
        seen.append(response)
    for response in seen:
        leaked = [s for s in secrets if s in response.text]
        assert leaked == [], (str(response.url), response.status_code)


def test_metrics_are_unauthenticated_by_design_and_documented() -> None:
    """Prometheus scrapes without credentials; docs/security.md says so and how to fence it."""
    text = (ROOT / "docs" / "security.md").read_text()
    assert "/metrics" in text
    assert "unauthenticated" in text


def test_docker_image_runs_as_a_non_root_user() -> None:
    dockerfile = ROOT / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("no Dockerfile yet")
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
    assert users, "the image never switches user"
    assert users[-1].split(":")[0] not in ("root", "0")
