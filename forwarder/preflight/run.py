"""Run every portal's checks with the same credential, version and client the service uses."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from forwarder.clock import SystemClock
from forwarder.config import Settings
from forwarder.hubspot.connect import portal_client
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
        client = portal_client(
            portal,
            transport=(transports or {}).get(name),
            clock=clock,
            sandbox_token=sandbox_token,
        )
        try:
            check = PortalCheck(name, portal, client, create_missing=create_missing)
            items.extend(await check.run())
        finally:
            await client.aclose()
    return items
