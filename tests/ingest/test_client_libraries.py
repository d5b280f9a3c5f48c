"""What the browser and mobile libraries send beside the plain calls (in-process app)."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from forwarder.storage.base import Storage
from tests.support import BROWSER_KEY, ORIGIN, SERVER_KEY, track

Client = Any
BROWSER_BASIC = "Basic " + base64.b64encode(f"{BROWSER_KEY}:".encode()).decode()


async def stored(client: Client) -> list[dict[str, Any]]:
    storage: Storage = client.app.state.storage
    events = await storage.recent_events(limit=100)
    return [msgspec.json.decode(e.payload) for e in events]


async def test_batch_on_the_short_path_takes_the_key_from_the_body(client: Client) -> None:
    body = {"batch": [track("Short Batch")], "writeKey": SERVER_KEY, "sentAt": None}
    response = await client.post(
        "/v1/b", content=msgspec.json.encode(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert [e["event"] for e in await stored(client)] == ["Short Batch"]


async def test_batch_on_the_short_path_takes_the_key_from_the_basic_header(
    client: Client,
) -> None:
    body = {"batch": [track("Header Batch")], "sentAt": "2026-01-02T03:04:05.678Z"}
    headers = {"Authorization": BROWSER_BASIC, "Origin": ORIGIN, "Content-Type": "text/plain"}
    response = await client.post("/v1/b", content=msgspec.json.encode(body), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    [event] = await stored(client)
    assert event["event"] == "Header Batch"


async def test_beacon_batch_takes_the_key_from_the_query(client: Client) -> None:
    body = msgspec.json.encode({"batch": [track("Beacon Batch")], "sentAt": None})
    response = await client.post(
        f"/beacon/v1/batch?writeKey={BROWSER_KEY}",
        content=body,
        headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    assert [e["event"] for e in await stored(client)] == ["Beacon Batch"]


async def test_write_key_in_the_query_is_ignored_on_other_paths(client: Client) -> None:
    body = msgspec.json.encode({"batch": [track("Query Elsewhere")]})
    response = await client.post(f"/v1/batch?writeKey={SERVER_KEY}", content=body)
    assert response.status_code == 401
    assert await stored(client) == []


async def test_library_metrics_are_answered_with_cors_and_never_stored(client: Client) -> None:
    series = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    for path in ("/v1/m", "/rsaMetrics"):
        response = await client.post(
            path,
            content=msgspec.json.encode(series),
            headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
    assert await stored(client) == []


async def test_library_metrics_from_a_foreign_origin_get_no_cors_header(client: Client) -> None:
    response = await client.post(
        "/v1/m", content=b"{}", headers={"Origin": "https://evil.example.net"}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_allows_the_headers_the_library_asks_for(client: Client) -> None:
    asked = "authorization,content-type,x-retry-count,sentat,rsa-retry-attempt"
    response = await client.options(
        "/v1/b",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == (
        "authorization, content-type, x-retry-count, sentat, rsa-retry-attempt"
    )


async def test_preflight_falls_back_to_the_plain_headers_for_odd_names(client: Client) -> None:
    response = await client.options(
        "/v1/b",
        headers={"Origin": ORIGIN, "Access-Control-Request-Headers": "x-a\r\nset-cookie: x"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == (
        "Content-Type, Authorization, Content-Encoding"
    )


async def test_rudderstack_source_config_names_the_source_without_destinations(
    client: Client,
) -> None:
    response = await client.get(
        "/sourceConfig/?p=npm&v=3.34.1&writeKey=" + BROWSER_KEY,
        headers={"Authorization": BROWSER_BASIC, "Origin": ORIGIN},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    source = response.json()["source"]
    assert (source["id"], source["enabled"], source["destinations"]) == ("website", True, [])
    assert source["config"]["statsCollection"]["errors"] == {"enabled": False}
    assert BROWSER_KEY not in response.text


async def test_rudderstack_source_config_refuses_an_unknown_key(client: Client) -> None:
    response = await client.get(
        "/sourceConfig/?writeKey=nope", headers={"Origin": ORIGIN, "Authorization": ""}
    )
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_rudderstack_source_config_refuses_a_foreign_origin(client: Client) -> None:
    response = await client.get(
        f"/sourceConfig/?writeKey={BROWSER_KEY}", headers={"Origin": "https://evil.example.net"}
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


async def test_openapi_document_lists_the_library_paths(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert {"/v1/b", "/beacon/v1/batch", "/sourceConfig"} <= set(paths)


async def test_segment_settings_for_a_mobile_app_key_name_no_api_host(client: Client) -> None:
    """Apps send no Origin (their keys are server sources); an apiHost would replace theirs."""
    response = await client.get(f"/v1/projects/{SERVER_KEY}/settings")
    assert response.status_code == 200, response.text
    assert response.json()["integrations"] == {"Segment.io": {"apiKey": SERVER_KEY}}


async def test_segment_settings_refuse_an_unknown_key_and_a_foreign_origin(client: Client) -> None:
    unknown = await client.get("/v1/projects/nope/settings")
    foreign = await client.get(
        f"/v1/projects/{BROWSER_KEY}/settings", headers={"Origin": "https://evil.example.net"}
    )
    assert (unknown.status_code, foreign.status_code) == (401, 403)
    assert "access-control-allow-origin" not in foreign.headers
