"""A whole forwarder app in-process, with its sandbox, for delivery tests (real HTTP in ASGI)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import PortalSettings, Settings
from forwarder.sandbox import Sandbox, SandboxConfig
from forwarder.storage.base import Storage
from tests.conftest import make_settings
from tests.support import SERVER_KEY

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}


@dataclass
class Forwarder:
    """A running app: its test client, storage and sandbox."""

    client: AsyncTestClient  # type: ignore[type-arg]
    storage: Storage
    sandbox: Sandbox
    settings: Settings

    async def send(self, events: list[dict[str, Any]], chunk: int = 500) -> None:
        for start in range(0, len(events), chunk):
            response = await self.client.post(
                "/v1/batch", json={"batch": events[start : start + chunk]}, headers=AUTH
            )
            assert response.status_code == 200, response.text
            assert not response.json()["rejected"], response.json()["rejected"]

    async def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (_, _, state), n in (await self.storage.counts()).items():
            totals[state] = totals.get(state, 0) + n
        return totals

    def received(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = msgspec.to_builtins(self.sandbox.received_events())
        return events

    def requests(self, route: str) -> dict[int, int]:
        """Answers the sandbox gave on one route, by status."""
        return {s: n for (r, s), n in self.sandbox.statuses.items() if r == route}


async def until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0, every_s: float = 0.05
) -> None:
    """Poll ``check`` until it is true, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


@asynccontextmanager
async def running(
    tmp_path: Path,
    portal: PortalSettings,
    configure: Callable[[SandboxConfig], SandboxConfig] | None = None,
) -> AsyncIterator[Forwarder]:
    settings = make_settings(tmp_path, portals={"main": portal})
    app = create_app(
        settings,
        configure_sandbox=(lambda _, c: configure(c)) if configure is not None else None,
    )
    async with AsyncTestClient(app=app) as client:
        sandbox: Sandbox = app.state.sandboxes["main"].state.sandbox
        yield Forwarder(client, app.state.storage, sandbox, settings)


def track(i: int, event: str = "Order Completed", **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{i}",
        "messageId": f"m-{event}-{i}",
        "event": event,
        "properties": properties,
        "context": {"traits": {"email": f"user{i}@example.com"}},
    }
