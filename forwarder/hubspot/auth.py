"""Where the bearer token comes from: a private-app token, or OAuth tokens refreshed on time.

OAuth access tokens live 30 minutes (``expires_in: 1800``). They are refreshed ahead of expiry
and when HubSpot answers 401, with one refresh in flight per portal: concurrent callers share it.
``lock_factory`` makes that single flight hold across replicas (a Redis lock; by default a
process-local ``asyncio.Lock``), and a ``TokenStore`` (the shared store, on Redis) keeps the one
current access token of the portal, so every replica uses the token the last refresh got instead
of refreshing for itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import httpx
import msgspec

from forwarder.clock import Clock, SystemClock
from forwarder.config import Secret
from forwarder.errors import (
    HubSpotAuthError,
    HubSpotPermanentError,
    HubSpotRetryableError,
    HubSpotTransportError,
)
from forwarder.hubspot.models import ErrorBody, TokenResponse

TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 - a URL path, not a secret
REFRESH_MARGIN_MAX_S = 300.0
"""Refresh at most this long before expiry (HubSpot's 30-minute tokens: at 25 minutes)."""
REFRESH_MARGIN_SHARE = 1 / 6
"""...or this share of the lifetime, whichever is smaller, so time-scaled short tokens work too."""

_TOKEN_DECODER = msgspec.json.Decoder(TokenResponse)
_ERROR_DECODER = msgspec.json.Decoder(ErrorBody)

LockFactory = Callable[[], AbstractAsyncContextManager[object]]

TokenRecord = tuple[str, str, float]
"""A portal's current tokens as shared between replicas: (access token, refresh token, refresh
due at in wall-clock seconds). The refresh token is shared too: HubSpot may rotate it."""


class TokenStore(Protocol):
    """Where replicas share one portal's current OAuth tokens."""

    async def load(self) -> TokenRecord | None:
        """The tokens the last refresh stored, if any."""
        ...

    async def save(self, record: TokenRecord) -> None:
        """Store the tokens a refresh just got."""
        ...

    async def drop(self, access_token: str) -> None:
        """Forget the stored tokens if their access token is ``access_token`` (refused)."""
        ...


class TokenProvider(Protocol):
    """Gives the bearer token for the next request."""

    async def token(self) -> str:
        """The current access token, refreshed first when due."""
        ...

    async def invalidate(self, token: str) -> bool:
        """Report that HubSpot refused ``token``.

        Returns:
            True when a different token will be handed out next (worth one retry).
        """
        ...


class StaticToken:
    """A private-app token: never expires on a timer and cannot be refreshed."""

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    async def token(self) -> str:
        return self._secret.reveal()

    async def invalidate(self, token: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(Secret('***'))"


class OAuthTokens:
    """OAuth access tokens refreshed with a refresh token, one refresh in flight at a time."""

    def __init__(
        self,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        *,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        lock_factory: LockFactory | None = None,
        store: TokenStore | None = None,
    ) -> None:
        """Set up the provider; nothing is fetched until the first ``token()``.

        Args:
            client_id: the public app's client id.
            client_secret: the app's client secret.
            refresh_token: the installing account's refresh token.
            base_url: ``https://api.hubapi.com`` or the sandbox's URL.
            transport: httpx transport (tests, the in-process sandbox).
            clock: time source for expiry.
            timeout_s: timeout of the token request.
            lock_factory: makes the lock that keeps one refresh in flight.
            store: the tokens shared by replicas (None: this process only).
        """
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._clock = clock or SystemClock()
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout_s)
        self._lock: AbstractAsyncContextManager[object] = (lock_factory or asyncio.Lock)()
        self._store_shared = store
        self._access: Secret | None = None
        self._refresh_at = 0.0
        self._refused: HubSpotAuthError | None = None
        self.refresh_count = 0
        """How many refreshes succeeded (for metrics and tests)."""

    def __repr__(self) -> str:
        return f"OAuthTokens(client_id={self._client_id!r}, tokens=Secret('***'))"

    async def token(self) -> str:
        current = self._access
        if current is not None and self._clock.monotonic() < self._refresh_at:
            return current.reveal()
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock; with a
            # shared store, another replica may have: its token is as good as a new one.
            if self._access is not None and self._clock.monotonic() < self._refresh_at:
                return self._access.reveal()
            adopted = await self._adopt()
            if adopted is not None:
                return adopted
            return await self._refresh()

    async def invalidate(self, token: str) -> bool:
        if self._access is not None and self._access.reveal() == token:
            self._access = None
        if self._store_shared is not None:
            await self._store_shared.drop(token)
        return True

    async def _adopt(self) -> str | None:
        """Take the portal's current tokens from the shared store when still fresh."""
        if self._store_shared is None:
            return None
        record = await self._store_shared.load()
        if record is None:
            return None
        access, refresh, refresh_due_at = record
        left_s = refresh_due_at - self._clock.now()
        if left_s <= 0:
            return None
        self._access = Secret(access)
        self._refresh_token = Secret(refresh)
        self._refresh_at = self._clock.monotonic() + left_s
        return access

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _refresh(self) -> str:
        refused = self._refused
        if refused is not None:  # a refused refresh token stays refused: do not hammer HubSpot
            raise HubSpotAuthError(
                refused.message, status=refused.status, category=refused.category
            )
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.reveal(),
            "refresh_token": self._refresh_token.reveal(),
        }
        try:
            response = await self._http.post(TOKEN_PATH, data=form)
        except httpx.TimeoutException as exc:
            raise HubSpotTransportError("token refresh timed out", timeout=True) from exc
        except httpx.TransportError as exc:
            raise HubSpotTransportError(f"token refresh failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            error = _refresh_error(response)
            if isinstance(error, HubSpotAuthError):
                self._refused = error
            raise error
        try:
            body = _TOKEN_DECODER.decode(response.content)
        except msgspec.DecodeError as exc:
            raise HubSpotRetryableError("token response unreadable", status=200) from exc
        self._keep(body)
        if self._store_shared is not None:
            due_at = self._clock.now() + self._refresh_at - self._clock.monotonic()
            record = (body.access_token, self._refresh_token.reveal(), due_at)
            await self._store_shared.save(record)
        return body.access_token

    def _keep(self, body: TokenResponse) -> None:
        self._access = Secret(body.access_token)
        if body.refresh_token:  # HubSpot may rotate it; keep the newest.
            self._refresh_token = Secret(body.refresh_token)
        margin = min(REFRESH_MARGIN_MAX_S, body.expires_in * REFRESH_MARGIN_SHARE)
        self._refresh_at = self._clock.monotonic() + body.expires_in - margin
        self.refresh_count += 1


def _refresh_error(response: httpx.Response) -> Exception:
    """Translate a failed token refresh; only HubSpot's own words, never the form we sent."""
    try:
        body = _ERROR_DECODER.decode(response.content)
    except msgspec.DecodeError:
        body = ErrorBody()
    status = response.status_code
    message = f"token refresh refused ({status}): {body.message or 'no message'}"
    category = body.category or body.status
    if status == 429 or status >= 500:
        return HubSpotRetryableError(message, status=status, category=category)
    if body.status == "BAD_REFRESH_TOKEN" or status in (400, 401, 403):
        return HubSpotAuthError(message, status=status, category=category or "BAD_REFRESH_TOKEN")
    return HubSpotPermanentError(message, status=status, category=category)
