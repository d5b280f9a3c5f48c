"""OAuth token refresh: timing, single flight, permanent refusal, secrecy."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest

from forwarder.clock import ManualClock
from forwarder.config import Secret
from forwarder.errors import HubSpotAuthError, HubSpotRetryableError, HubSpotTransportError
from forwarder.hubspot.auth import OAuthTokens

SECRETS = ("client-secret-xyz", "refresh-secret-xyz")


class TokenServer:
    """Counts refreshes and answers with a configurable status."""

    def __init__(self, expires_in: float = 1800.0) -> None:
        self.calls = 0
        self.forms: list[dict[str, list[str]]] = []
        self.expires_in = expires_in
        self.status = 200
        self.body: dict[str, object] | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.forms.append(parse_qs(request.content.decode()))
        await asyncio.sleep(0)  # let concurrent callers pile up behind the refresh
        if self.status != 200:
            return httpx.Response(self.status, json=self.body or {})
        token = {"access_token": f"access-{self.calls}", "expires_in": self.expires_in}
        return httpx.Response(200, json=token)


def make_tokens(server: TokenServer, clock: ManualClock) -> OAuthTokens:
    return OAuthTokens(
        "client-1",
        Secret(SECRETS[0]),
        Secret(SECRETS[1]),
        base_url="https://api.test",
        transport=httpx.MockTransport(server.handle),
        clock=clock,
    )


async def test_refresh_posts_form_encoded_refresh_grant() -> None:
    server = TokenServer()
    assert await make_tokens(server, ManualClock()).token() == "access-1"
    assert server.forms[0] == {
        "grant_type": ["refresh_token"],
        "client_id": ["client-1"],
        "client_secret": [SECRETS[0]],
        "refresh_token": [SECRETS[1]],
    }


async def test_token_is_reused_until_five_minutes_before_expiry() -> None:
    server, clock = TokenServer(), ManualClock()
    tokens = make_tokens(server, clock)
    await tokens.token()
    clock.advance(1800 - 300 - 1)
    assert await tokens.token() == "access-1"
    clock.advance(2)
    assert await tokens.token() == "access-2"


async def test_time_scaled_short_token_refreshes_at_proportional_margin() -> None:
    server, clock = TokenServer(expires_in=18.0), ManualClock()
    tokens = make_tokens(server, clock)
    await tokens.token()
    clock.advance(14.9)
    assert await tokens.token() == "access-1"
    clock.advance(0.2)
    assert await tokens.token() == "access-2"


async def test_concurrent_callers_share_one_refresh() -> None:
    server = TokenServer()
    tokens = make_tokens(server, ManualClock())
    got = await asyncio.gather(*(tokens.token() for _ in range(20)))
    assert set(got) == {"access-1"}
    assert server.calls == 1


async def test_invalidate_forces_one_refresh_even_when_many_report_it() -> None:
    server = TokenServer()
    tokens = make_tokens(server, ManualClock())
    first = await tokens.token()
    assert await tokens.invalidate(first) is True
    got = await asyncio.gather(*(tokens.token() for _ in range(5)))
    await tokens.invalidate(first)  # a late report about the old token changes nothing
    assert set(got) == {"access-2"}
    assert await tokens.token() == "access-2"
    assert server.calls == 2


async def test_bad_refresh_token_is_permanent_auth_error_without_secrets() -> None:
    server = TokenServer()
    server.status = 400
    server.body = {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
    tokens = make_tokens(server, ManualClock())
    with pytest.raises(HubSpotAuthError) as info:
        await tokens.token()
    assert info.value.category == "BAD_REFRESH_TOKEN"
    for secret in SECRETS:
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
        assert secret not in repr(tokens)
    with pytest.raises(HubSpotAuthError):
        await tokens.token()
    assert server.calls == 1


async def test_token_endpoint_429_is_retryable() -> None:
    server = TokenServer()
    server.status = 429
    with pytest.raises(HubSpotRetryableError):
        await make_tokens(server, ManualClock()).token()


async def test_token_endpoint_unreachable_is_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    tokens = OAuthTokens(
        "c", Secret("s"), Secret("r"), base_url="https://x", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(HubSpotTransportError):
        await tokens.token()
