"""Run every portal's checks with the same credential, version and client the service uses."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from forwarder.clock import SystemClock
from forwarder.config import Settings, portal_uses_sandbox
from forwarder.delivery.engine import token_provider
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.paths import paths_for
from forwarder.preflight.checks import PortalCheck
from forwarder.preflight.items import Item


async def check_portals(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    create_missing: bool = False,
    sandbox_token: str = "",
    only: str | None = None,
) -> list[Item]:
    """Check each configured portal (or ``only`` that one); the report's lines in order.

    Args:
        transports: per portal name, the transport to reach it (the in-process simulator for
            sandbox portals; None: the network).
        create_missing: create missing event definitions and event properties.
        sandbox_token: the token a sandbox portal without ``access_token`` uses.
        only: check just this portal.
    """
    items: list[Item] = []
    clock = SystemClock()
    for name, portal in settings.portals.items():
        if only is not None and name != only:
            continue
        transport = (transports or {}).get(name)
        base_url = "http://sandbox" if portal_uses_sandbox(portal) else portal.base_url
        provider = token_provider(
            portal, transport=transport, base_url=base_url, clock=clock, sandbox_token=sandbox_token
        )
        client = HubSpotClient(
            base_url,
            provider,
            transport=transport,
            clock=clock,
            timeout_s=portal.request_timeout_s,
            paths=paths_for(portal.api_version),
        )
        try:
            check = PortalCheck(name, portal, client, create_missing=create_missing)
            items.extend(await check.run())
        finally:
            await client.aclose()
    return items
