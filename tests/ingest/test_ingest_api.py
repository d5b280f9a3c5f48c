"""The Segment HTTP API as producers meet it (in-process app, real SQLite file)."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from forwarder.storage.base import Storage
from tests.support import BROWSER_KEY, ORIGIN, SERVER_KEY, track

Client = AsyncTestClient  # type: ignore[type-arg]
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}


def storage_of(client: Client) -> Storage:
    storage: Storage = client.app.state.storage
    return storage


async def stored(client: Client) -> list[dict[str, Any]]:
    events = await storage_of(client).recent_events(limit=10_000)
    return [msgspec.json.decode(e.payload) for e in events]


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/v1/track", {"userId": "u", "event": "Signed Up"}, "track"),
        ("/v1/t", {"userId": "u", "event": "Signed Up"}, "track"),
        ("/v1/identify", {"userId": "u", "traits": {"email": "a@b.co"}}, "identify"),
        ("/v1/i", {"anonymousId": "a", "traits": {}}, "identify"),
        ("/v1/page", {"anonymousId": "a", "name": "Home"}, "page"),
        ("/v1/p", {"anonymousId": "a"}, "page"),
        ("/v1/screen", {"userId": "u", "name": "Cart"}, "screen"),
        ("/v1/s", {"userId": "u"}, "screen"),
        ("/v1/group", {"userId": "u", "groupId": "g1"}, "group"),
        ("/v1/g", {"userId": "u", "groupId": 7}, "group"),
        ("/v1/alias", {"userId": "u", "previousId": "a"}, "alias"),
        ("/v1/a", {"userId": "u", "previousId": "a"}, "alias"),
    ],
)
async def test_every_call_type_is_stored_with_its_type(
    client: Client, path: str, body: dict[str, Any], kind: str
) -> None:
    response = await client.post(path, json=body, headers=BASIC)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    [event] = await stored(client)
    assert event["type"] == kind
    assert event["messageId"]
    assert event["receivedAt"]
    assert event["timestamp"]


async def test_unknown_fields_are_kept(client: Client) -> None:
    body = {"userId": "u", "event": "E", "vendorField": {"x": [1, 2]}, "context": {"k": "v"}}
    await client.post("/v1/track", json=body, headers=BASIC)
    [event] = await stored(client)
    assert event["vendorField"] == {"x": [1, 2]}
    assert event["context"] == {"k": "v"}


@pytest.mark.parametrize(
    "headers",
    [
        BASIC,
        {"Authorization": f"Bearer {SERVER_KEY}"},
    ],
)
async def test_write_key_in_basic_or_bearer_header_is_accepted(
    client: Client, headers: dict[str, str]
) -> None:
    response = await client.post("/v1/track", json=track(), headers=headers)
    assert response.status_code == 200


async def test_write_key_in_body_with_text_plain_is_accepted(client: Client) -> None:
    body = msgspec.json.encode({**track(), "writeKey": SERVER_KEY})
    response = await client.post(
        "/v1/t", content=body, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert response.status_code == 200
    [event] = await stored(client)
    assert "writeKey" not in event


async def test_batch_with_some_invalid_events_stores_the_valid_ones(client: Client) -> None:
    batch = {
        "batch": [
            track(),
            {"type": "track", "event": "No identity"},
            {"type": "track", "userId": "u", "event": 5},
            {"type": "bogus", "userId": "u"},
            {"type": "identify", "userId": "u", "traits": {"email": "x@y.z"}},
            {"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"},
            {"type": "track", "userId": "u"},
        ]
    }
    response = await client.post("/v1/batch", json=batch, headers=BASIC)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 1, "path": "$.userId", "reason": "userId or anonymousId is required"},
        {"index": 2, "path": "$.event", "reason": "Expected `str`, got `int`"},
        {"index": 3, "path": "$.type", "reason": "Invalid value 'bogus'"},
        {"index": 5, "path": "$.timestamp", "reason": "Invalid RFC3339 encoded datetime"},
        {"index": 6, "path": "$.event", "reason": "required field is missing"},
    ]
    assert len(await stored(client)) == 2


async def test_batch_context_is_merged_under_each_events_context(client: Client) -> None:
    batch = {
        "batch": [track(context={"page": {"url": "u2"}})],
        "context": {"library": {"name": "lib"}, "page": {"url": "u1"}},
    }
    await client.post("/v1/batch", json=batch, headers=BASIC)
    [event] = await stored(client)
    assert event["context"] == {"library": {"name": "lib"}, "page": {"url": "u2"}}


async def test_duplicate_message_id_within_window_is_accepted_once(client: Client) -> None:
    event = track(messageId="m-1")
    first = await client.post("/v1/track", json=event, headers=BASIC)
    second = await client.post("/v1/batch", json={"batch": [event, event]}, headers=BASIC)
    assert first.json()["accepted"] == 1
    assert second.json() == {"success": True, "accepted": 0, "duplicates": 2, "rejected": []}
    assert len(await stored(client)) == 1


async def test_gzip_body_is_decompressed(client: Client) -> None:
    body = gzip.compress(msgspec.json.encode({"batch": [track(), track()]}))
    response = await client.post(
        "/v1/batch",
        content=body,
        headers={**BASIC, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.json()["accepted"] == 2


def _nested(depth: int) -> bytes:
    return b'{"userId":"u","event":"E","properties":{"x":' + b"[" * depth + b"]" * depth + b"}}"


BAD_INPUTS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("malformed JSON", "/v1/track", b'{"userId": "u", "event":', {}, 400, "not valid JSON"),
    ("not an object", "/v1/track", b"[1, 2]", {}, 400, "must be a JSON object"),
    ("wrong type", "/v1/track", b'{"userId":"u","event":["x"]}', {}, 400, "Expected `str`"),
    ("no identity", "/v1/track", b'{"event":"E"}', {}, 400, "userId or anonymousId"),
    ("no event name", "/v1/track", b'{"userId":"u"}', {}, 400, "required field"),
    ("empty event name", "/v1/track", b'{"userId":"u","event":""}', {}, 400, "length >= 1"),
    ("traits not object", "/v1/identify", b'{"userId":"u","traits":"x"}', {}, 400, "Expected"),
    ("batch not a list", "/v1/batch", b'{"batch": {}}', {}, 400, "Expected `array`"),
    ("batch missing", "/v1/batch", b"{}", {}, 400, "batch"),
    ("invalid UTF-8", "/v1/track", b'{"userId":"\xff\xfe","event":"E"}', {}, 400, "UTF-8"),
    (
        "message id too long",
        "/v1/track",
        b'{"userId":"u","event":"E","messageId":"' + b"m" * 200 + b'"}',
        {},
        400,
        "length <= 128",
    ),
    (
        "oversize event",
        "/v1/track",
        b'{"userId":"u","event":"E","properties":{"p":"' + b"x" * 40_000 + b'"}}',
        {},
        400,
        "the limit is 32768",
    ),
    (
        "oversize body",
        "/v1/batch",
        b'{"batch":['
        + b",".join([b'{"type":"track","userId":"u","event":"' + b"e" * 1000 + b'"}'] * 600)
        + b"]}",
        {},
        413,
        "byte limit",
    ),
    (
        "gzip bomb",
        "/v1/batch",
        gzip.compress(b" " * 50_000_000),
        {"Content-Encoding": "gzip"},
        413,
        "decompressed body",
    ),
    (
        "broken gzip",
        "/v1/track",
        b"\x1f\x8b\x08\x00garbage",
        {"Content-Encoding": "gzip"},
        400,
        "gzip",
    ),
    ("unknown encoding", "/v1/track", b"{}", {"Content-Encoding": "br"}, 415, "encoding"),
    (
        "form body",
        "/v1/track",
        b"a=b",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "content type",
    ),
    ("deep nesting", "/v1/track", _nested(100_000), {}, 400, "JSON"),
    (
        "timestamp out of range",
        "/v1/track",
        b'{"userId":"u","event":"E","timestamp":"0001-01-01T00:00:00Z","sentAt":"9999-12-31T23:59:59Z"}',
        {},
        400,
        "outside 1970-2200",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "reason"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
async def test_bad_input_gets_a_precise_error_and_leaves_accepted_events_alone(
    client: Client, path: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    accepted = await client.post("/v1/track", json=track(messageId="kept"), headers=BASIC)
    assert accepted.status_code == 200
    response = await client.post(
        path, content=body, headers={"Content-Type": "application/json", **BASIC, **headers}
    )
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["success"] is False
    assert reason in answer["error"] or any(reason in r["reason"] for r in answer["rejected"])
    events = await stored(client)
    assert [e["messageId"] for e in events] == ["kept"]
    assert (await client.get("/readyz")).status_code == 200


async def test_batch_over_the_event_count_limit_is_refused_with_the_limit_named(
    client: Client,
) -> None:
    batch = {"batch": [track()] * 2501}
    response = await client.post("/v1/batch", json=batch, headers=BASIC)
    assert response.status_code == 413
    assert response.json()["field"] == "server.max_batch_events"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "Authorization"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"nope-nope-nope:").decode()},
            "Authorization",
        ),
        ({"Authorization": "Bearer nope-nope-nope"}, "Authorization"),
        ({"Authorization": "Basic !!!notbase64"}, "Authorization"),
    ],
)
async def test_missing_or_unknown_write_key_is_refused_without_saying_which(
    client: Client, headers: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/track", json=track(), headers=headers)
    assert response.status_code == 401
    assert response.json()["field"] == field
    assert response.json()["error"] in ("missing write key", "invalid write key")


async def test_browser_key_from_its_allowed_origin_is_accepted_with_cors(client: Client) -> None:
    body = msgspec.json.encode({**track(), "writeKey": BROWSER_KEY})
    response = await client.post(
        "/v1/t", content=body, headers={"Content-Type": "text/plain", "Origin": ORIGIN}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize("origin", ["https://evil.example.net", None])
async def test_browser_key_from_a_foreign_origin_is_forbidden(
    client: Client, origin: str | None
) -> None:
    headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
    body = msgspec.json.encode({**track(), "writeKey": BROWSER_KEY})
    response = await client.post("/v1/t", content=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["field"] == "Origin"
    assert await stored(client) == []


async def test_server_key_ignores_origin(client: Client) -> None:
    headers = {**BASIC, "Origin": "https://anything.example.org"}
    response = await client.post("/v1/track", json=track(), headers=headers)
    assert response.status_code == 200


async def test_cors_preflight_is_answered_only_for_allowed_origins(client: Client) -> None:
    ok = await client.options(
        "/v1/t", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    refused = await client.options(
        "/v1/t",
        headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403


async def test_health_readiness_and_metrics_answer(client: Client) -> None:
    await client.post("/v1/track", json=track(), headers=BASIC)
    await client.post("/v1/track", json={"event": "x"}, headers=BASIC)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    text = (await client.get("/metrics")).text
    assert 'forwarder_accepted_events_total{source="backend"} 1.0' in text
    assert 'forwarder_discarded_events_total{intentional="false",reason="invalid"} 1.0' in text
    assert 'forwarder_ingest_requests_total{status="400"} 1.0' in text


async def test_openapi_document_lists_the_ingest_routes(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert {"/v1/track", "/v1/batch", "/v1/t", "/healthz"} <= set(paths)
