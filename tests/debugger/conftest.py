"""An in-process forwarder with an admin token, for the admin API tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import PortalSettings, Secret, ServerSettings, Settings
from forwarder.storage.base import FinalState, Storage
from forwarder.storage.outcomes import Outcome
from tests.conftest import make_settings
from tests.delivery.harness import AUTH

ADMIN_TOKEN = "admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def admin_settings(tmp_path: Path, *, delivery: bool = True, **server: Any) -> Settings:
    """The test settings with an admin token (and delivery workers on or off)."""
    base = make_settings(tmp_path)
    return msgspec.structs.replace(
        base,
        server=ServerSettings(
            log_requests=False, admin_token=Secret(ADMIN_TOKEN), delivery=delivery, **server
        ),
    )


@dataclass
class Admin:
    """A running app, its test client and storage."""

    app: Litestar
    client: AsyncTestClient  # type: ignore[type-arg]
    storage: Storage

    async def send(self, *events: dict[str, Any]) -> None:
        response = await self.client.post("/v1/batch", json={"batch": list(events)}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert not response.json()["rejected"], response.json()

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post(path, json=body, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    async def finish_conversion(self, seq: int, state: FinalState, outcome: Outcome) -> None:
        """Lease the event's conversion item and record a final state (delivery is off)."""
        items = await self.storage.lease(
            "main", "conversions", limit=100, now=time.time(), lease_s=60
        )
        item = next(i for i in items if i.event.seq == seq)
        others = [i.id for i in items if i is not item]
        if others:  # back to pending, due now
            await self.storage.retry(others, available_at=time.time(), now=time.time())
        await self.storage.finish([item.id], state, now=time.time(), outcome=outcome)


@asynccontextmanager
async def running_admin(settings: Settings) -> AsyncIterator[Admin]:
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        yield Admin(app, client, app.state.storage)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    """Delivery on: events reach the sandbox."""
    async with running_admin(admin_settings(tmp_path)) as running:
        yield running


@pytest.fixture
async def idle(tmp_path: Path) -> AsyncIterator[Admin]:
    """Delivery off: items stay where the test puts them."""
    async with running_admin(admin_settings(tmp_path, delivery=False)) as running:
        yield running


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "messageId": message_id, **fields}


def drop_portal() -> PortalSettings:
    return PortalSettings(portal_id=123456, unmapped_events="drop")
