"""The one place a portal's settings become a ``HubSpotClient`` (the service and preflight both
ask here, so a check talks to HubSpot exactly as delivery will)."""

from __future__ import annotations

import httpx

from forwarder.clock import Clock
from forwarder.config import ApiVersion, PortalSettings, Secret, portal_uses_sandbox
from forwarder.hubspot.auth import LockFactory, OAuthTokens, StaticToken, TokenProvider, TokenStore
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.paths import paths_for

SANDBOX_URL = "http://sandbox"
"""The base URL of an in-process simulator (its transport ignores the host)."""


def token_provider(
    portal: PortalSettings,
    *,
    transport: httpx.AsyncBaseTransport | None,
    base_url: str,
    clock: Clock,
    sandbox_token: str,
    lock_factory: LockFactory | None = None,
    store: TokenStore | None = None,
) -> TokenProvider:
    """OAuth when a refresh token is configured, else the static token or service key (both
    are sent as ``Authorization: Bearer``)."""
    if portal.refresh_token is not None and portal.client_secret is not None:
        return OAuthTokens(
            portal.client_id or "",
            portal.client_secret,
            portal.refresh_token,
            base_url=base_url,
            transport=transport,
            clock=clock,
            lock_factory=lock_factory,
            store=store,
        )
    return StaticToken(portal.access_token or portal.service_key or Secret(sandbox_token))


def portal_client(
    portal: PortalSettings,
    *,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    sandbox_token: str,
    lock_factory: LockFactory | None = None,
    token_store: TokenStore | None = None,
) -> HubSpotClient:
    """The client of one configured portal: its credential, API version and timeout.

    Args:
        transport: how to reach the portal (an in-process simulator; None: the network).
        sandbox_token: the token a sandbox portal without ``access_token`` uses.
        lock_factory: one OAuth refresh at a time across replicas (None: this process only).
        token_store: where replicas share the portal's OAuth tokens (None: not shared).
    """
    base_url = SANDBOX_URL if portal_uses_sandbox(portal) else portal.base_url
    provider = token_provider(
        portal,
        transport=transport,
        base_url=base_url,
        clock=clock,
        sandbox_token=sandbox_token,
        lock_factory=lock_factory,
        store=token_store,
    )
    return HubSpotClient(
        base_url,
        provider,
        transport=transport,
        clock=clock,
        timeout_s=portal.request_timeout_s,
        paths=paths_for(portal.api_version),
    )


def sandbox_client(
    api_version: ApiVersion, *, transport: httpx.AsyncBaseTransport, clock: Clock, token: str
) -> HubSpotClient:
    """A client of a simulator standing in for a real portal (its test events go there), in
    that portal's API version so inputs are built in its shapes."""
    return HubSpotClient(
        SANDBOX_URL,
        StaticToken(Secret(token)),
        transport=transport,
        clock=clock,
        paths=paths_for(api_version),
    )
