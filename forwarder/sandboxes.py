"""The in-process HubSpot simulators a configuration asks for, and their mounts.

A portal whose ``base_url`` is ``sandbox`` delivers to a simulator made from its settings
(``sandbox_config``), mounted under ``/sandbox/{portal}``; a real portal's test events go to
a simulator made for it on first use (``TestSandboxes``). Kept beside ``forwarder/sandbox/``
but outside it: the simulator itself reads none of our settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from litestar import Litestar
from litestar.handlers import asgi
from litestar.types import ASGIApp, Receive, Scope, Send

from forwarder.config import PortalSettings, Settings, portal_uses_sandbox
from forwarder.sandbox import ALL_SCOPES, DEFAULT_TOKEN, SandboxConfig, create_sandbox_app

Configure = Callable[[str, SandboxConfig], SandboxConfig]
"""A test's or benchmark's change to a portal's simulator before it is made."""


def sandbox_config(portal: PortalSettings) -> SandboxConfig:
    """The simulator for a sandbox portal: its tier, its limit overrides, its time scale."""
    tokens = {DEFAULT_TOKEN: ALL_SCOPES}
    if portal.access_token is not None:
        tokens[portal.access_token.reveal()] = ALL_SCOPES
    limits = portal.limits
    return SandboxConfig(
        portal_id=portal.portal_id,
        tier=portal.tier,
        tokens=tokens,
        limit_10s=limits.crm_per_10s,
        daily=limits.crm_daily,
        time_scale=limits.time_scale,
        **_credentials(portal),
        **_portal_data(portal),
    )


def _credentials(portal: PortalSettings) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if portal.service_key is not None:
        extra["service_keys"] = {portal.service_key.reveal(): ALL_SCOPES}
    signing = portal.client_secret or portal.webhook_secret
    if signing is not None:  # the simulator signs its webhooks with the app's secret
        extra["client_secret"] = signing.reveal()
    if portal.refresh_token is not None and portal.client_secret is not None:
        extra = {
            "client_id": portal.client_id or "",
            "client_secret": portal.client_secret.reveal(),
            "refresh_token": portal.refresh_token.reveal(),
        }
    return extra


def _portal_data(portal: PortalSettings) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    # The simulator knows the contact properties this portal maps traits to, as the real
    # portal would after they were created there.
    mapped = tuple(p for p in portal.contacts.properties.values() if p != "email")
    if mapped:
        extra["contact_properties"] = mapped
    if portal.contacts.user_id_property is not None:
        extra["unique_contact_properties"] = (portal.contacts.user_id_property,)
    if portal.limits.events_per_s is not None:
        extra["events_rps"] = portal.limits.events_per_s
    if portal.limits.search_per_s is not None:
        extra["search_rps"] = portal.limits.search_per_s
    return extra


def sandboxes_for(settings: Settings, configure: Configure | None = None) -> dict[str, Litestar]:
    """One in-process HubSpot simulator per portal whose ``base_url`` is ``sandbox``."""
    sandboxes: dict[str, Litestar] = {}
    for name, portal in settings.portals.items():
        if portal_uses_sandbox(portal):
            config = sandbox_config(portal)
            if configure is not None:
                config = configure(name, config)
            sandboxes[name] = create_sandbox_app(config)
    return sandboxes


def transports_of(sandboxes: Mapping[str, Litestar]) -> dict[str, httpx.AsyncBaseTransport]:
    """Per sandbox portal, the transport that reaches its simulator in process."""
    return {
        name: httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's narrower ASGI types
        for name, app in sandboxes.items()
    }


class TestSandboxes:
    """The simulators taking the test events of real portals, each made on first use."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.made: dict[str, Litestar] = {}
        """Per real portal, its test simulator once made."""

    def transport(self, name: str) -> httpx.AsyncBaseTransport:
        """The transport to real portal ``name``'s test simulator (made now if need be)."""
        if name not in self.made:
            self.made[name] = create_sandbox_app(sandbox_config(self._settings.portals[name]))
        return httpx.ASGITransport(app=self.made[name])  # type: ignore[arg-type]  # Litestar's ASGI types


def _mount(path: str, app: ASGIApp) -> Any:
    @asgi(path, is_mount=True, copy_scope=True, name=f"mount:{path}")
    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    return mounted


def sandbox_mounts(sandboxes: Mapping[str, Litestar]) -> list[Any]:
    """``/sandbox/{portal}/...`` for each simulator, and ``/sandbox/...`` for the first.

    One mount dispatches on the first path segment: a mount at ``/sandbox`` would otherwise
    swallow ``/sandbox/{portal}`` as a path of the first simulator.
    """
    if not sandboxes:
        return []
    first = next(iter(sandboxes.values()))

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        name, _, rest = path.lstrip("/").partition("/")
        target = sandboxes.get(name)
        if target is None:
            await first(scope, receive, send)
            return
        inner: dict[str, Any] = dict(scope)
        inner["path"] = "/" + rest
        inner["raw_path"] = ("/" + rest).encode()
        inner["root_path"] = f"{scope.get('root_path', '')}/{name}"
        await target(inner, receive, send)  # type: ignore[arg-type]

    return [_mount("/sandbox", dispatch)]
