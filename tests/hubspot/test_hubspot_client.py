"""HubSpotClient against httpx.MockTransport: parsing, translation, secrecy."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable

import httpx
import pytest

from forwarder.clock import ManualClock
from forwarder.config import Secret
from forwarder.errors import HubSpotPermanentError, HubSpotRetryableError, HubSpotTransportError
from forwarder.hubspot.auth import OAuthTokens, StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import EventCompletion, UpsertInput
from forwarder.sandbox import DEFAULT_TOKEN
from tests.support import sandbox_process

TOKEN = "pat-na1-very-secret-token"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, token: str = TOKEN) -> HubSpotClient:
    return HubSpotClient(
        "https://api.test", StaticToken(Secret(token)), transport=httpx.MockTransport(handler)
    )


async def test_event_batch_is_posted_as_camel_case_json_with_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = make_client(handler)
    reply = await client.send_event_batch(
        [EventCompletion("pe1_order", {"amount": "9.5"}, "u-1", email="a@example.com")]
    )
    assert reply.response.status == 204
    request = seen[0]
    assert request.url.path == "/events/2026-03/send/batch"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "inputs": [
            {
                "eventName": "pe1_order",
                "properties": {"amount": "9.5"},
                "uuid": "u-1",
                "email": "a@example.com",
            }
        ]
    }


async def test_error_response_is_returned_not_raised_with_headers_parsed() -> None:
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c-body",
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    headers = {
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": "1000000",
        "X-HubSpot-RateLimit-Daily-Remaining": "999",
        "Retry-After": "3",
    }
    client = make_client(lambda _: httpx.Response(429, json=body, headers=headers))
    response = await client.request("POST", "/crm/v3/objects/contacts/batch/upsert", {})
    assert response.status == 429
    assert response.error is not None
    assert response.error.policy_name == "TEN_SECONDLY_ROLLING"
    assert response.correlation_id == "c-body"
    assert response.retry_after_s == 3.0
    assert response.rate_limit is not None
    assert (response.rate_limit.max, response.rate_limit.remaining) == (190, 0)
    assert response.rate_limit.interval_ms == 10000
    assert response.rate_limit.daily_remaining == 999


async def test_correlation_header_wins_over_body() -> None:
    client = make_client(
        lambda _: httpx.Response(
            400, json={"correlationId": "c-body"}, headers={"X-HubSpot-Correlation-Id": "c-hdr"}
        )
    )
    response = await client.request("POST", "/x", {})
    assert response.correlation_id == "c-hdr"


async def test_non_json_error_body_still_parses() -> None:
    client = make_client(lambda _: httpx.Response(502, text="<html>Bad gateway</html>"))
    response = await client.request("GET", "/x")
    assert response.status == 502
    assert response.error is not None
    assert "Bad gateway" in response.error.message
    assert response.rate_limit is None


async def test_upsert_results_are_decoded() -> None:
    body = {"status": "COMPLETE", "results": [{"id": "7", "properties": {}, "new": True}]}
    client = make_client(lambda _: httpx.Response(200, json=body))
    reply = await client.batch_upsert_contacts(
        [UpsertInput("a@example.com", "email", {"lead_score": "5"})]
    )
    assert reply.data is not None
    assert [(r.id, r.new) for r in reply.data.results] == [("7", True)]


async def test_timeout_becomes_transport_error_without_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = make_client(handler)
    with pytest.raises(HubSpotTransportError) as info:
        await client.request("POST", "/events/v3/send/batch", {})
    assert info.value.timeout is True
    assert isinstance(info.value, HubSpotRetryableError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


async def test_connection_error_becomes_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make_client(handler)
    with pytest.raises(HubSpotTransportError) as info:
        await client.request("GET", "/x")
    assert info.value.timeout is False


async def test_token_never_appears_in_reprs() -> None:
    client = make_client(lambda _: httpx.Response(204))
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(StaticToken(Secret(TOKEN)))
    oauth = OAuthTokens("cid", Secret("client-secret"), Secret("refresh-secret"), base_url="x:")
    assert "secret" not in repr(oauth)


async def test_event_definitions_follow_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if after is None:
            page = {
                "results": [{"id": "1", "name": "a", "fullyQualifiedName": "pe1_a"}],
                "paging": {"next": {"after": "p2"}},
            }
        else:
            page = {"results": [{"id": "2", "name": "b", "fullyQualifiedName": "pe1_b"}]}
        return httpx.Response(200, json=page)

    client = make_client(handler)
    found = await client.list_event_definitions()
    assert [d.fully_qualified_name for d in found] == ["pe1_a", "pe1_b"]


async def test_event_definitions_failure_raises_typed_error() -> None:
    body = {"message": "nope", "category": "MISSING_SCOPES", "correlationId": "c1"}
    client = make_client(lambda _: httpx.Response(403, json=body))
    with pytest.raises(HubSpotPermanentError) as info:
        await client.list_event_definitions()
    assert (info.value.category, info.value.correlation_id) == ("MISSING_SCOPES", "c1")


async def test_event_definitions_5xx_raises_retryable_error() -> None:
    client = make_client(lambda _: httpx.Response(503))
    with pytest.raises(HubSpotRetryableError):
        await client.list_event_definitions()


async def test_oauth_401_refreshes_once_and_retries() -> None:
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/token":
            issued.append(f"access-{len(issued)}")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 1800})
        if request.headers["authorization"] == "Bearer access-0":
            return httpx.Response(401, json={"category": "EXPIRED_AUTHENTICATION"})
        return httpx.Response(204)

    transport = httpx.MockTransport(handler)
    auth = OAuthTokens(
        "cid", Secret("cs"), Secret("rt"), base_url="https://api.test", transport=transport
    )
    client = HubSpotClient("https://api.test", auth, transport=transport, clock=ManualClock())
    response = await client.request("POST", "/events/v3/send/batch", {})
    assert (response.status, response.auth_retried) == (204, True)
    assert issued == ["access-0", "access-1"]


async def test_private_token_401_is_returned_without_retry() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"category": "INVALID_AUTHENTICATION"})

    response = await make_client(handler).request("GET", "/x")
    assert (response.status, response.auth_retried, len(calls)) == (401, False, 1)


async def test_an_answered_request_leaves_no_reference_cycle_holding_its_body() -> None:
    """Refcounting frees a sent batch's body as soon as the answer is parsed: nothing waits for
    the cyclic collector (a raised GC threshold would let thousands of 125 KB bodies pile up)."""
    with sandbox_process() as sandbox:
        client = HubSpotClient(sandbox.url, StaticToken(Secret(DEFAULT_TOKEN)))
        try:
            inputs = [EventCompletion("pe1_order", {"n": str(n)}, f"u-{n}") for n in range(500)]
            await client.send_event_batch(inputs)  # the pool's connection is made
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                reply = await client.send_event_batch(inputs)
                assert reply.response.status in (204, 400)
                del reply
                gc.collect()
                left = [
                    o for o in gc.garbage if type(o).__module__.startswith(("httpx", "httpcore"))
                ]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
            assert left == []
        finally:
            await client.aclose()
