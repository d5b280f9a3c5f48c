"""One ingest implementation: the fast path and the Litestar routes refuse a body alike."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import Settings
from forwarder.events.messages import Batch
from tests.support import SERVER_KEY, ServerProcess

BASIC = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}
Answer = tuple[int, Any]


class ThroughLitestarRoutes:
    """The app with its fast path skipped: every request goes through Litestar's routing."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await Litestar.__call__(self.app, scope, receive, send)


def over_the_cap(settings: Settings, extra_bytes: int) -> bytes:
    """A JSON track call padded to ``max_request_bytes + extra_bytes`` bytes."""
    size = settings.server.max_request_bytes + extra_bytes
    head = b'{"userId":"u","event":"E","properties":{"p":"'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def answers(client: Any, body: bytes) -> list[Answer]:
    """The answers to ``body`` on a single-call path and on a batch path."""
    seen = []
    for path in ("/v1/track", "/v1/batch"):
        response = await client.post(path, content=body, headers=BASIC)
        seen.append((response.status_code, response.json()))
    return seen


@pytest.fixture
async def fast_path(settings: Settings) -> AsyncIterator[Any]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@pytest.fixture
async def litestar_routes(settings: Settings) -> AsyncIterator[Any]:
    app = ThroughLitestarRoutes(create_app(settings))
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.mark.parametrize(
    ("extra_bytes", "field", "limit"),
    [
        (64 * 1024 + 1, "server.max_request_bytes", "the 577536 byte limit"),
        (1, "server.max_request_bytes", "the 512000 byte limit"),
    ],
    ids=["over the wire cap", "over the decoded cap"],
)
async def test_a_body_over_the_cap_is_refused_alike_by_both_entries(
    fast_path: Any,
    litestar_routes: Any,
    settings: Settings,
    extra_bytes: int,
    field: str,
    limit: str,
) -> None:
    body = over_the_cap(settings, extra_bytes)
    by_fast_path = await answers(fast_path, body)
    by_routes = await answers(litestar_routes, body)
    assert by_fast_path == by_routes
    assert [status for status, _ in by_fast_path] == [413, 413]
    assert all(a["field"] == field and limit in a["error"] for _, a in by_fast_path)


async def test_the_real_server_refuses_a_body_over_the_cap_as_the_routes_do(
    server: ServerProcess, litestar_routes: Any, settings: Settings
) -> None:
    body = over_the_cap(settings, 64 * 1024 + 1)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as real:
        assert await answers(real, body) == await answers(litestar_routes, body)


async def test_openapi_document_describes_each_ingest_body_with_its_wire_schema(
    fast_path: Any,
) -> None:
    document = (await fast_path.get("/schema/openapi.json")).json()
    bodies = {
        path: document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for path in ("/v1/t", "/v1/identify", "/beacon/v1/batch")
    }
    assert bodies == {
        "/v1/t": {"schema": {"$ref": "#/components/schemas/Track"}},
        "/v1/identify": {"schema": {"$ref": "#/components/schemas/Identify"}},
        "/beacon/v1/batch": {"schema": {"$ref": "#/components/schemas/Batch"}},
    }
    assert (
        msgspec.json.schema_components([Batch], ref_template="#/components/schemas/{name}")[1][
            "Batch"
        ]
        == document["components"]["schemas"]["Batch"]
    )
